"""Load on the app: N simultaneous chats through the Gradio API (`/ask`), with a fast scripted model.

Real parts otherwise: the app on a free loopback port, Chroma and the embedding model, the agent loop with its
tool call and checkpointed threads. Prints errors and latency p50/p95, writes bench/results/ui_load.json.

    .venv/bin/python bench/ui_load.py [--chats 20] [--word-delay 0.01]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", GRADIO_ANALYTICS_ENABLED="False")

QUESTIONS = [
    "When does the first ferry to Skerry Island leave?",
    "What do cardamom buns cost at the harbour bakery?",
    "How much does a workshop bench cost per hour?",
    "What does the repair workshop lend?",
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def simultaneous_chats(urls: list[str], count: int) -> tuple[list[float], list[str], float]:
    """`count` chats through `/ask` at once, round-robin over `urls` (each warmed up first): the latency of each
    chat answered with a citation and its sources, the errors of the others, and the wall time of all."""
    from gradio_client import Client

    clients = [Client(urls[n % len(urls)], verbose=False) for n in range(count)]
    for url in urls:
        Client(url, verbose=False).predict("warm-up: what is the bakery?", "", "", api_name="/ask")
    barrier = threading.Barrier(count)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def chat(n: int) -> None:
        barrier.wait()
        start = time.perf_counter()
        try:
            answer = clients[n].predict(QUESTIONS[n % len(QUESTIONS)], "", "", api_name="/ask")
            if "[1]" not in answer["answer"] or not answer["sources"]:
                raise AssertionError(f"no citation: {answer['answer'][:120]!r}")
        except Exception as exc:  # counted and reported, the run goes on
            with lock:
                errors.append(f"chat {n}: {type(exc).__name__}: {exc}"[:300])
            return
        with lock:
            latencies.append(time.perf_counter() - start)

    wall = time.perf_counter()
    threads = [threading.Thread(target=chat, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=20, help="simultaneous chats")
    parser.add_argument("--word-delay", type=float, default=0.01, help="scripted model: seconds per streamed word")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ui_load.json")
    args = parser.parse_args()

    from kbagent.settings import Settings
    from tests.support.ui_app import running_app, write_docs

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            collection=f"b{uuid.uuid4().hex[:10]}",
            answers_per_client=args.chats,  # every chat comes from this one address
            _env_file=None,
        )
        with running_app(settings, delay_s=args.word_delay, docs=[write_docs(Path(tmp) / "docs")]) as app:
            latencies, errors, wall = simultaneous_chats([app.url], args.chats)

    result = {
        "chats": args.chats,
        "completed": len(latencies),
        "errors": errors,
        "word_delay_s": args.word_delay,
        "latency_p50_s": round(percentile(latencies, 50), 3) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 95), 3) if latencies else None,
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "latency_mean_s": round(statistics.mean(latencies), 3) if latencies else None,
        "wall_s": round(wall, 3),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_average_1min_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "note": "the app, the clients and the scripted model on the same CPUs; shared with other jobs when the "
        "load average before exceeds 1",
    }
    save("ui_load", result, args.out)
    print(
        f"{result['completed']}/{args.chats} chats completed, {len(errors)} errors; latency p50 "
        f"{result['latency_p50_s']} s, p95 {result['latency_p95_s']} s, max {result['latency_max_s']} s; "
        f"wall {result['wall_s']} s ({os.cpu_count()} CPUs)"
    )
    for error in errors:
        print("  " + error)
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
