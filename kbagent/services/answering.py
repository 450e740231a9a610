"""Answers run in worker threads; a front door reads an answer's events from a bounded queue and holds nothing else.

A front door that iterated the agent itself held an answer slot and an in-process model's turn across every
network write: a client that hung up, or stopped reading, froze the model for everyone. Here a worker thread owns
all of it (the slot, the model's turn, an answer's temporary thread) and frees it in its `finally`; the front door
only reads the `Feed`. Closing the feed, or leaving it full for `stall_s`, cancels the answer: the agent stops at
its next token (`agent.runner.AnswerCancelled`) and the worker gives everything back.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from enum import Enum

from agent.events import Error, Event
from kbagent.errors import UserError

log = logging.getLogger(__name__)
MAX_PENDING = 64  # events a reader may leave unread before the worker waits for it
POLL_S = 0.2  # how often a waiting worker or reader looks at the cancel flag


class _End(Enum):
    """The writer's last item in a feed's queue: no more events."""

    END = "end"


_END = _End.END


def client_of(request: object) -> str:
    """The client's address from a Starlette or Gradio request: whose share of the answer slots a request uses.
    (Behind a reverse proxy every client has the proxy's address, unless the server trusts its forwarding
    header.)"""
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "local")


class Busy(UserError):
    """The client already has its share of answers running or waiting."""


class AnswerSlots:
    """How many answers run at once (`total`, shared by chat, API and MCP), and how many one client address may
    have running or waiting (`per_client`): one client can never hold every slot."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total, self.per_client = total, per_client
        self._free = threading.BoundedSemaphore(total)
        self._lock = threading.Lock()
        self._clients: Counter[str] = Counter()

    def admit(self, client: str) -> None:
        """Counts an answer against `client`; raises Busy when it already has `per_client`."""
        with self._lock:
            if self._clients[client] >= self.per_client:
                raise Busy(
                    f"{self.per_client} answers for this client are already running or waiting; "
                    "ask again when one is done"
                )
            self._clients[client] += 1

    def leave(self, client: str) -> None:
        with self._lock:
            self._clients[client] -= 1
            if self._clients[client] <= 0:
                del self._clients[client]

    def take(self, cancel: threading.Event) -> bool:
        """Waits for a free slot; False when the answer is cancelled first."""
        while not self._free.acquire(timeout=POLL_S):
            if cancel.is_set():
                return False
        return True

    def give_back(self) -> None:
        self._free.release()


class Feed:
    """One answer's events as its worker produces them. Iterating blocks until the next event; `close` (or leaving
    a `with` block) cancels the answer and ends the reading within `POLL_S`: what was not read yet is dropped, so
    nothing more reaches the reader after a Stop. `batch` returns the next event and whatever else is already
    waiting, so a page repaints once for several tokens."""

    def __init__(self, stall_s: float) -> None:
        self.cancel = threading.Event()
        self.stall_s = stall_s
        self._queue: queue.Queue[Event | _End] = queue.Queue(MAX_PENDING)
        self._done = threading.Event()
        self._ended = False

    # ---- the reader's side -------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        while not self._ended:
            if self.cancel.is_set():
                self._ended = True
                break
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if self._done.is_set() and self._queue.empty():
                    self._ended = True
                continue
            if isinstance(item, _End):
                self._ended = True
            else:
                return item
        raise StopIteration

    def batch(self) -> list[Event]:
        """The next event and every event already waiting after it; empty at the end."""
        events = [event for event in [next(self, None)] if event is not None]
        while events and not self._ended and not self.cancel.is_set():
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _End):
                self._ended = True
            else:
                events.append(item)
        return events

    def close(self) -> None:
        self.cancel.set()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- the worker's side -------------------------------------------------------------------------------------

    def put(self, event: Event) -> bool:
        """Hands `event` to the reader; False when the answer is cancelled, or the reader has left the queue full
        for `stall_s` (it is gone or not reading: the answer is cancelled)."""
        deadline = time.monotonic() + self.stall_s
        while not self.cancel.is_set():
            try:
                self._queue.put(event, timeout=POLL_S)
                return True
            except queue.Full:
                if time.monotonic() >= deadline:
                    log.info("an answer's reader left it unread for %.0f s: the answer stops", self.stall_s)
                    self.cancel.set()
        return False

    def finish(self) -> None:
        self._done.set()
        with contextlib.suppress(queue.Full):  # the reader drains what is there, then sees `_done`
            self._queue.put_nowait(_END)


def start(
    events: Callable[[threading.Event], Iterator[Event]], slots: AnswerSlots, client: str, stall_s: float
) -> Feed:
    """Runs `events(cancel)` in a worker thread once a slot is free and returns its Feed. Raises Busy, before
    anything starts, when `client` already has its share of answers."""
    slots.admit(client)
    feed = Feed(stall_s)

    def work() -> None:
        taken = False
        try:
            taken = slots.take(feed.cancel)
            if not taken:
                return
            delivered = True
            # Once the reader is gone the answer runs on, unread, until the agent sees the cancel flag (its next
            # token): the generator then ends the way it always does, its `finally` blocks and locks included.
            for event in events(feed.cancel):
                delivered = delivered and feed.put(event)
        except Exception as exc:  # said to the reader as the answer's error, never lost in a thread
            log.exception("an answer failed outside the agent")
            feed.put(Error(f"{type(exc).__name__}: {exc}"[:300]))
        finally:
            if taken:
                slots.give_back()
            slots.leave(client)
            feed.finish()

    threading.Thread(target=work, name="kbagent-answer", daemon=True).start()
    return feed
