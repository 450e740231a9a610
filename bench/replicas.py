"""Several app replicas on one knowledge base: one and two app processes against one Chroma server and one
PostgreSQL, N simultaneous chats (a fast scripted model) through the Gradio API, spread over the replicas;
throughput and latency p95 for each. Then two ingesters at once, on two empty data dirs, into one knowledge base.

    .venv/bin/python bench/replicas.py [--chats 50] [--word-delay 0.01]

Every process runs on this machine, so replicas share its CPUs: the figures show that replicas work together
(no errors, one shared store), not how they scale across machines. Writes bench/results/replicas.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from record import save  # bench/record.py: every result file with its command
from ui_load import percentile, simultaneous_chats  # bench/ui_load.py

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", GRADIO_ANALYTICS_ENABLED="False")
CLI = [sys.executable, "-c", "from kbagent.cli import main; main()"]
REPLICA = """
import sys
from pathlib import Path
from kbagent.settings import Settings
from tests.support.ui_app import running_app

data, chroma, database, models, delay = sys.argv[1:6]
settings = Settings(data_dir=Path(data), collection="replicas", chroma_url=chroma, database_url=database,
                    models_dir=Path(models), answers_per_client=100, _env_file=None)  # one address asks all
with running_app(settings, delay_s=float(delay)) as app:
    print(app.url, flush=True)
    sys.stdin.read()  # serves until the benchmark closes this pipe
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_chroma(stack: ExitStack, folder: Path) -> str:
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    port = free_port()
    log = stack.enter_context(open(folder / "chroma.log", "wb"))  # noqa: SIM115 (closed by the stack)
    proc = subprocess.Popen(
        [chroma, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(folder / "chroma")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack.callback(proc.terminate)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("chroma run did not start")


def chats(urls: list[str], count: int) -> dict[str, object]:
    """`count` chats at once, round-robin over the replicas: latency of each, throughput of all."""
    latencies, errors, wall = simultaneous_chats(urls, count)
    return {
        "replicas": len(urls),
        "chats": count,
        "completed": len(latencies),
        "errors": errors,
        "chats_per_s": round(len(latencies) / wall, 2),
        "latency_p50_s": round(percentile(latencies, 50), 3) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 95), 3) if latencies else None,
        "wall_s": round(wall, 2),
    }


def two_ingesters(tmp: Path, env: dict[str, str]) -> dict[str, object]:
    corpus = tmp / "corpus"
    corpus.mkdir()
    for i in range(40):
        body = " ".join(f"Record {i} line {k} about pump {i % 9} and valve {k % 7}." for k in range(60))
        (corpus / f"r{i:03}.md").write_text(f"# Record {i}\n\n{body}\n", encoding="utf-8")
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*CLI, "ingest", str(corpus), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**env, "KBAGENT_DATA_DIR": str(tmp / f"ingester{n}"), "KBAGENT_COLLECTION": "two-ingesters"},
        )
        for n in range(2)
    ]
    outs = [p.communicate(timeout=1200) for p in procs]
    wall = time.perf_counter() - start
    summaries = [json.loads(out) if p.returncode == 0 else {"error": err.decode()[-300:]} for p, (out, err) in
                 zip(procs, outs, strict=True)]  # fmt: skip
    return {
        "files": 40,
        "wall_s": round(wall, 1),
        "added": [s.get("added") for s in summaries],
        "unchanged": [s.get("unchanged") for s in summaries],
        "one_waited": any(b"waiting" in err for _, err in outs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--word-delay", type=float, default=0.01)
    args = parser.parse_args()
    from postgres_scifact import start_postgres

    from tests.support.ui_app import write_docs

    results: dict[str, object] = {"note": "every process on this machine's CPUs, shared with other jobs"}
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        chroma, database = start_chroma(stack, tmp), start_postgres(stack)
        models = Path(os.environ.get("KBAGENT_MODELS_DIR", tmp / "models"))
        env = {**os.environ, "KBAGENT_CHROMA_URL": chroma, "KBAGENT_DATABASE_URL": database,
               "KBAGENT_MODELS_DIR": str(models), "PYTHONPATH": str(REPO)}  # fmt: skip
        docs = write_docs(tmp / "docs")
        done = subprocess.run([*CLI, "ingest", str(docs)], env={**env, "KBAGENT_DATA_DIR": str(tmp / "first"),
                              "KBAGENT_COLLECTION": "replicas"}, capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        replicas = []
        for n in range(2):
            proc = subprocess.Popen(
                [sys.executable, "-c", REPLICA, str(tmp / f"replica{n}"), chroma, database, str(models),
                 str(args.word_delay)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
            )  # fmt: skip
            stack.callback(proc.wait, 60)
            stack.callback(proc.stdin.close)  # type: ignore[union-attr]
            replicas.append(proc.stdout.readline().strip())  # type: ignore[union-attr]
        runs = [chats(replicas[:1], args.chats), chats(replicas, args.chats)]
        for run in runs:
            print(run, flush=True)
        results["chats"] = runs
        results["two_ingesters"] = two_ingesters(tmp, env)
        print(results["two_ingesters"], flush=True)
    save("replicas", results)


if __name__ == "__main__":
    main()
