"""Operations on knowledge bases themselves (`kbagent kb ...`): create, rename, configure, delete. Every front door
shares them; each names the knowledge base it acts on (the caller comes with accounts).

A deletion is marked in the catalog first, so every reader (an answer in progress, a watcher, an ingest) sees it
gone at once and stops; its data goes once its watcher and writers have let go, and the entry last. One cut short
is finished by the next `kb` command (`finish_deletions`).
"""

from __future__ import annotations

import builtins
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from kbagent.components import CHUNKING_FIELDS, OVERRIDES
from kbagent.errors import ConfigError, UserError
from kbagent.settings import FLAT
from knowledge_base.backend import Place, WriteLock
from knowledge_base.catalog import LEGACY_FOLDER, KbInfo, check_name, new_id

if TYPE_CHECKING:
    from kbagent.components import Components

MAX_DESCRIPTION_CHARS = 500
DELETE_WAIT_S = 60.0  # how long a deletion waits for a watcher or an ingest of the knowledge base to stop
SETTABLE = ("description", *OVERRIDES)


@dataclass
class Deleted:
    """What a deletion removed."""

    name: str
    sources: int
    chunks: int
    conversations: int


class KnowledgeBases:
    """The catalog's operations over built parts (`Components.kbs`)."""

    def __init__(self, parts: Components) -> None:
        self.parts = parts
        self.catalog = parts.catalog

    def list(self) -> list[KbInfo]:
        """Every knowledge base, by name (the default one made first where the data dir has none yet)."""
        self.finish_deletions()
        self.parts.kb_info(None)
        return self.catalog.all()

    def create(self, name: str, description: str = "") -> KbInfo:
        """A new, empty knowledge base, embedding and chunking as the settings say now (fixed from here on)."""
        self.finish_deletions()
        self.parts.kb_info(None)  # an existing data dir's own knowledge base is registered before any other
        settings = self.parts.settings
        kb_id = new_id()
        info = KbInfo(
            id=kb_id,
            name=check_name(name),
            folder=f"kbs/{kb_id}",
            embedding_model=settings.embedding.model,
            chunking={key: getattr(settings.ingest, key) for key in CHUNKING_FIELDS},
            description=_description(description),
        )
        self.catalog.add(info)
        info.path(settings.store.data_dir).mkdir(parents=True, exist_ok=True)
        return info

    def rename(self, old: str, new: str) -> KbInfo:
        info = self.parts.kb_info(old)
        name = check_name(new)
        self.catalog.rename(info.id, name)
        return self.parts.kb_info(name)

    def set(self, name: str, key: str, value: str) -> KbInfo:
        """One of its own settings (`SETTABLE`); an empty value goes back to the global setting."""
        info = self.parts.kb_info(name)
        if key == "description":
            self.catalog.update(info.id, description=_description(value))
            return self.parts.kb_info(info.id)
        if key not in OVERRIDES:
            raise UserError(f"unknown knowledge base setting {key!r}; use one of: {', '.join(SETTABLE)}")
        overrides = dict(info.overrides)
        if value.strip():
            overrides[key] = self._checked(key, value)
        else:
            overrides.pop(key, None)
        self.catalog.update(info.id, overrides=overrides)
        self.parts.forget(info.id)  # opened again with its new settings
        return self.parts.kb_info(info.id)

    def _checked(self, key: str, value: str) -> str | int | float | bool | None:
        """`value` as the setting it overrides takes it, validated the same way."""
        flat = OVERRIDES[key]
        try:
            settings = self.parts.settings.override(**{flat: value})
        except ValidationError as exc:
            raise UserError(f"invalid value for {key}: {exc.errors()[0]['msg']}") from None
        section, field = FLAT[flat]
        checked = getattr(getattr(settings, section), field)
        if key == "model":
            from agent.models import parse_model

            try:
                parse_model(checked)
            except ConfigError as exc:
                raise UserError(str(exc)) from None
        return checked

    def effective(self, name: str) -> dict[str, tuple[object, str]]:
        """Each setting a knowledge base may set: its value there, and whose it is ("knowledge base" or "global")."""
        info = self.parts.kb_info(name)
        settings = self.parts.kb_settings(info)
        shown: dict[str, tuple[object, str]] = {}
        for key, flat in OVERRIDES.items():
            section, field = FLAT[flat]
            whose = "knowledge base" if key in info.overrides else "global"
            shown[key] = (getattr(getattr(settings, section), field), whose)
        return shown

    def describe(self, name: str) -> dict[str, object]:
        """Its catalog entry with its totals: sources, chunks, conversations."""
        info = self.parts.kb_info(name)
        sources, chunks, conversations = self._totals(info)
        return {**info.as_dict(), "sources": sources, "chunks": chunks, "conversations": conversations}

    def _totals(self, info: KbInfo) -> tuple[int, int, int]:
        """How many sources, chunks and conversations it holds."""
        kb = self.parts.knowledge_base(info)
        threads = self.parts.threads.list(limit=1 << 62, kb=info.id)
        return len(kb.records.hashes()), kb.collection.count(), len(threads)

    # ---- deleting ------------------------------------------------------------------------------------

    def delete(self, name: str, wait_s: float = DELETE_WAIT_S) -> Deleted:
        """Deletes a knowledge base: its vectors, records, keyword index, uploads, watch list and conversations.
        A watcher following it stops first (it sees the deletion within a second); UserError when it or an
        ingest has not let go within `wait_s` (the deletion is then finished by a later `kb` command)."""
        info = self.parts.kb_info(name)
        sources, chunks, conversations = self._totals(info)
        self.catalog.start_delete(info.id)
        self._finish(info, wait_s)
        return Deleted(info.name, sources, chunks, conversations)

    def finish_deletions(self) -> builtins.list[str]:
        """Finishes deletions cut short (a crash, or a watcher that had not stopped yet); the names finished."""
        done = []
        for info in self.catalog.deleting():
            with contextlib.suppress(UserError):
                self._finish(info, 0.0)
                done.append(info.name)
        return done

    def _finish(self, info: KbInfo, wait_s: float) -> None:
        """Removes a knowledge base marked deleted, once no watcher or writer holds it; idempotent."""
        store = self.parts.settings.store
        place = Place(info.id, info.path(store.data_dir))
        watch_lock, ingest_lock, close = _locks(self.parts, place)
        try:
            _take(watch_lock, wait_s, f"a `kbagent watch` of {info.name!r} did not stop")
            try:
                _take(ingest_lock, wait_s, f"an ingest into {info.name!r} did not stop")
                try:
                    self._remove_data(info, place)
                finally:
                    ingest_lock.release()
            finally:
                watch_lock.release()
        finally:
            close()
        self.catalog.finish_delete(info.id)

    def _remove_data(self, info: KbInfo, place: Place) -> None:
        from knowledge_base.chroma import delete_collection

        self.parts.forget(info.id)
        delete_collection(self.parts.chroma, info.id)
        url = self.parts.settings.store.database_url.get_secret_value()
        if url:
            from knowledge_base.postgres import drop_knowledge_base

            drop_knowledge_base(url, info.id)
        if info.folder == LEGACY_FOLDER:  # the data dir itself: only what is this knowledge base's
            for path in place.own_files():
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        else:
            shutil.rmtree(place.folder, ignore_errors=True)
        threads = self.parts.threads
        for thread in threads.list(limit=1 << 62, kb=info.id):
            threads.delete(thread.thread_id)


def _description(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise UserError(f"a description has at most {MAX_DESCRIPTION_CHARS} characters")
    return text


def _locks(parts: Components, place: Place) -> tuple[WriteLock, WriteLock, Callable[[], None]]:
    """The watch and ingest locks of a knowledge base, without opening it; and what closes them."""
    from knowledge_base.backend import FileWriteLock

    url = parts.settings.store.database_url.get_secret_value()
    if not url:
        return FileWriteLock(place.watch_lock_path), FileWriteLock(place.lock_path), lambda: None
    from knowledge_base.postgres import AdvisoryLock, Database

    db = Database(url, place.collection, max_size=1, schema_sql="")
    return AdvisoryLock(db, "watch"), AdvisoryLock(db), db.close


def _take(lock: WriteLock, wait_s: float, problem: str) -> None:
    """Takes `lock` within `wait_s`, or UserError: the deletion stays marked, and a later `kb` command ends it."""
    deadline = time.monotonic() + wait_s
    while not lock.acquire(wait=False):
        if time.monotonic() >= deadline:
            raise UserError(f"{problem} within {wait_s:.0f} s; it is deleted, and its data goes once it stops")
        time.sleep(0.2)
