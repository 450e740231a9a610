"""Several machines, one knowledge base: a real Chroma server and a real PostgreSQL on 127.0.0.1, with app
replicas and ingesters as separate processes, each with its own empty data dir."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kbagent.components import open_knowledge_base
from kbagent.errors import ServiceError
from kbagent.settings import Settings
from knowledge_base.keyword_index import KeywordIndex, KeywordRow
from knowledge_base.postgres import Database, PostgresKeywordIndex
from tests.support import parts
from tests.support.paths import REPO
from tests.support.pg_server import PostgresServer, new_database
from tests.support.servers import free_port
from tests.support.stored import keyword_ids

pytestmark = [parts.postgres(), pytest.mark.slow]
CLI = [sys.executable, "-c", "from kbagent.cli import main; main()"]
LEFTOVERS = ("sources.sqlite3", "threads.sqlite3", "ingest.lock", "chroma")  # the embedded store's files


def _servers_env(data: Path, chroma: str, database: str, collection: str) -> dict[str, str]:
    return {
        **os.environ,
        "KBAGENT_DATA_DIR": str(data),
        "KBAGENT_CHROMA_URL": chroma,
        "KBAGENT_DATABASE_URL": database,
        "KBAGENT_COLLECTION": collection,
    }


def _corpus(folder: Path, files: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(files):
        body = " ".join(f"Note {i} sentence {k} on valve {i * 7 % 13} and gasket {k}." for k in range(40))
        (folder / f"note{i:03}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")
    return folder


# ---- the keyword index ranks as FTS5 does -------------------------------------------------------


def _rows(rng: random.Random) -> list[KeywordRow]:
    """Texts of varied length over a skewed vocabulary, with inflected forms (Porter stems them together),
    accents (folded) and capitals: what makes BM25's tf, df, length and the tokenizer matter."""
    words = [f"w{n}" for n in range(300)] + ["running", "runs", "ran", "café", "Cafe", "valves", "valve", "Gasket"]
    rows = []
    for i in range(400):
        length = rng.choice([3, 8, 20, 60, 150])
        text = " ".join(rng.choices(words, weights=[1 / (r + 1) for r in range(len(words))], k=length))
        rows.append(KeywordRow(f"c{i}", f"/src/{i % 37}", "notes" if i % 3 else "faq", text))
    return rows


def test_keyword_search_ranks_exactly_as_fts5(database_url: str) -> None:
    rng = random.Random(7)
    rows = _rows(rng)
    fts5 = KeywordIndex(sqlite3.connect(":memory:", isolation_level=None))
    db = Database(database_url, "parity")
    pg = PostgresKeywordIndex(db)
    try:
        for index in (fts5, pg):
            index.replace_sources([], rows)
            index.replace_sources(["/src/3", "/src/4"], [r for r in rows if r.source == "/src/3"])  # /src/4 gone
        assert pg.count() == fts5.count() == len([r for r in rows if r.source != "/src/4"])
        queries = ["w1 w2", "running valve", "café w50 w7", "Gasket w299", "runs ran", "w3 w3 w120 w8 w9", "zzz"]
        for query in queries:
            for doc_type, sources in ((None, None), ("faq", None), (None, ["/src/1", "/src/5"])):
                want = {h.chunk_id: h.score for h in fts5.search(query, 1000, doc_type, sources)}
                got = {h.chunk_id: h.score for h in pg.search(query, 1000, doc_type, sources)}
                assert got.keys() == want.keys(), query
                assert all(abs(got[c] - want[c]) < 1e-6 * max(1.0, abs(want[c])) for c in want), query
                top = [h.chunk_id for h in pg.search(query, 10, doc_type, sources)]
                assert [want[c] for c in top] == sorted(want.values(), reverse=True)[: len(top)]
        for index in (fts5, pg):  # the same words left out when a query would score too many rows
            index.max_scored_rows = 300
        for query in queries:
            assert {h.chunk_id for h in pg.search(query, 1000)} == {h.chunk_id for h in fts5.search(query, 1000)}
    finally:
        db.close()


# ---- connection failures --------------------------------------------------------------------------


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    env = {
        **os.environ,
        "KBAGENT_DATA_DIR": str(tmp_path / "data"),
        "KBAGENT_DATABASE_URL": f"postgresql://kb:secret@127.0.0.1:{port}/kb",
    }
    done = subprocess.run([*CLI, "sources"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith(f"kbagent: error: cannot reach the database at 127.0.0.1:{port}")
    assert "Traceback" not in done.stderr and "secret" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_replica_recovers_when_its_database_comes_back(tmp_path: Path, embedder, chroma_server: str) -> None:  # type: ignore[no-untyped-def]
    server = PostgresServer(free_port())
    try:
        server.start()
        settings = Settings(
            data_dir=tmp_path / "data",
            collection="recover",
            chroma_url=chroma_server,
            database_url=new_database(server.url),
            _env_file=None,
        )
        with open_knowledge_base(settings, embedder) as kb:
            notes = _corpus(tmp_path / "notes", 3)
            from ingest import IngestConfig, build_ingestor

            build_ingestor(IngestConfig(), kb).run([notes])
            assert kb.search("valve gasket", k=3)
            server.stop()
            with pytest.raises(ServiceError, match=r"cannot reach the database at 127\.0\.0\.1"):
                kb.sources()
            server.start()
            assert len(kb.sources()) == 3  # the same objects: no restart of the replica
            hits = kb.search("valve gasket", k=3)
            assert hits and hits[0].metadata.get("bm25") is not None
    finally:
        server.remove()


def test_an_ingester_that_lost_its_lock_writes_nothing_more(  # type: ignore[no-untyped-def]
    tmp_path: Path, embedder, chroma_server: str, database_url: str
) -> None:
    """The lock's connection cut (as by a database restart or a network cut) while the ingester holds it: the
    next write stops with one line instead of committing beside whoever holds the lock now."""
    import psycopg

    settings = Settings(data_dir=tmp_path / "data", collection="lostlock", chroma_url=chroma_server,
                        database_url=database_url, _env_file=None)  # fmt: skip
    notes = _corpus(tmp_path / "notes", 2)
    from ingest import IngestConfig, build_ingestor

    with open_knowledge_base(settings, embedder) as kb:
        with kb.writing():
            pid = kb._lock._conn.info.backend_pid  # type: ignore[attr-defined]
            with psycopg.connect(database_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            with pytest.raises(ServiceError, match=r"lost the ingest lock: .* run the ingest again"):
                build_ingestor(IngestConfig(), kb).run([notes])
        assert kb.sources() == []


# ---- several processes on one knowledge base ------------------------------------------------------


def test_two_ingesters_on_two_machines_are_serialised(  # type: ignore[no-untyped-def]
    tmp_path: Path, chroma_server: str, database_url: str, embedder
) -> None:
    corpus = _corpus(tmp_path / "corpus", 20)
    datas = [tmp_path / "machine-a", tmp_path / "machine-b"]
    envs = [_servers_env(d, chroma_server, database_url, "shared") for d in datas]
    procs = [
        subprocess.Popen([*CLI, "ingest", str(corpus), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        for e in envs
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err.decode()[-1000:] for _, err in outs]
    summaries = [json.loads(out) for out, _ in outs]
    assert sorted(s["added"] for s in summaries) == [0, 20]
    assert sorted(s["unchanged"] for s in summaries) == [0, 20]
    assert "waiting" in b"".join(err for _, err in outs).decode()
    settings = Settings(data_dir=tmp_path / "reader", collection="shared", chroma_url=chroma_server,
                        database_url=database_url, _env_file=None)  # fmt: skip
    with open_knowledge_base(settings, embedder) as kb:
        ids = kb.collection.get(include=[])["ids"]
        recorded = sorted(i for r in kb.sources() for i in r.chunk_ids)
        assert len(kb.sources()) == 20 and sorted(ids) == recorded == keyword_ids(kb)  # no duplicates
    for data in datas:
        assert not [name for name in LEFTOVERS if (data / name).exists()], "knowledge-base state on a replica's disk"


SCRIPTED_TURN = """
import json, sys
from langchain_core.messages import AIMessage
from kbagent.components import Components
from kbagent.settings import Settings
from tests.support.scripted_model import ScriptedChatModel

model = ScriptedChatModel(replies=[AIMessage(sys.argv[2])])
with Components(Settings(), chat_model=model) as parts:
    answer = parts.agent("openai:scripted").ask(sys.argv[1], thread_id=sys.argv[3] or None)
    prompt = " ".join(str(m.content) for m in model.prompts[-1])
    titles = [t.title for t in parts.threads.list()]
print(json.dumps({"thread": answer.thread_id, "prompt": prompt, "titles": titles}))
"""


def test_replicas_share_documents_and_conversations(  # type: ignore[no-untyped-def]
    tmp_path: Path, chroma_server: str, database_url: str
) -> None:
    """What one replica ingests another finds (hybrid, its keyword part too); a conversation started on one
    continues on the other."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("# Ferry\n\nThe Skerry Island ferry QX-5521 leaves Pier 9 at 07:40.\n")
    one, other = (_servers_env(tmp_path / d, chroma_server, database_url, "replicas") for d in ("one", "other"))
    done = subprocess.run([*CLI, "ingest", str(docs), "--json"], capture_output=True, text=True, env=one, timeout=300)
    assert done.returncode == 0, done.stderr[-1000:]
    found = subprocess.run(
        [*CLI, "search", "ferry QX-5521", "--mode", "hybrid", "--json"],
        capture_output=True,
        text=True,
        env=other,
        timeout=300,
    )
    assert found.returncode == 0, found.stderr[-1000:]
    hits = json.loads(found.stdout)
    assert hits and "QX-5521" in hits[0]["text"] and hits[0]["bm25"] is not None

    def turn(env: dict[str, str], question: str, reply: str, thread: str = "") -> dict[str, object]:
        run = subprocess.run(
            [sys.executable, "-c", SCRIPTED_TURN, question, reply, thread],
            capture_output=True,
            text=True,
            env={**env, "PYTHONPATH": str(REPO)},
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        return json.loads(run.stdout.strip().splitlines()[-1])

    first = turn(one, "My name is Ada. When does the ferry leave?", "Hello Ada.")
    second = turn(other, "What is my name?", "Your name is Ada.", str(first["thread"]))
    assert second["thread"] == first["thread"]
    assert "My name is Ada." in str(second["prompt"]) and "Hello Ada." in str(second["prompt"])
    assert second["titles"] == ["My name is Ada. When does the ferry leave?"]
    for data in (tmp_path / "one", tmp_path / "other"):
        assert not [name for name in LEFTOVERS if (data / name).exists()]


# ---- migration -------------------------------------------------------------------------------------


def _results(settings: Settings, embedder) -> dict[str, list[tuple[str, float | None]]]:  # type: ignore[no-untyped-def]
    from knowledge_base.retrieval import SearchOptions

    found = {}
    with open_knowledge_base(settings, embedder) as kb:
        for query in ("valve 3 gasket 7", "note 5 sentence 2", "ferry pier"):
            for mode in ("hybrid", "keyword", "dense"):
                hits = kb.search(query, k=6, options=SearchOptions(mode=mode))  # type: ignore[arg-type]
                found[f"{mode}: {query}"] = [(h.metadata["chunk_id"], h.metadata.get("bm25")) for h in hits]
    return found


def test_migrate_moves_an_embedded_data_dir_and_search_answers_the_same(  # type: ignore[no-untyped-def]
    tmp_path: Path, chroma_server: str, database_url: str, embedder
) -> None:
    from langchain_core.messages import AIMessage

    from ingest import IngestConfig, build_ingestor
    from kbagent.components import Components
    from tests.support.scripted_model import ScriptedChatModel

    data = tmp_path / "data"
    embedded = Settings(data_dir=data, collection="migrated", _env_file=None)
    notes = tmp_path / "notes"  # texts of different lengths and words: no two chunks score alike
    notes.mkdir()
    rng = random.Random(3)
    for i in range(12):
        vocabulary = [f"valve {n}" for n in range(9)] + [f"gasket {n}" for n in range(9)] + ["note", "pump"]
        words = rng.choices(vocabulary, k=30)
        (notes / f"note{i:02}.md").write_text(f"# Note {i}\n\nNote {i}: {' '.join(words)} sentence {i % 4}.\n")
    (notes / "ferry.md").write_text("# Ferry\n\nThe Skerry Island ferry leaves Pier 9 at 07:40.\n")
    with open_knowledge_base(embedded, embedder) as kb:
        build_ingestor(IngestConfig(), kb).run([notes])
        chunks = kb.collection.count()
    before = _results(embedded, embedder)
    with Components(embedded, embedder=embedder, chat_model=ScriptedChatModel(replies=[AIMessage("Hello Ada.")])) as c:
        thread = c.agent("openai:scripted").ask("My name is Ada.").thread_id

    env = {**os.environ, "KBAGENT_DATA_DIR": str(data), "KBAGENT_COLLECTION": "migrated"}
    command = [*CLI, "migrate", "--to", database_url, "--chroma-url", chroma_server, "--json"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads(first.stdout) == {
        "sources_copied": 13,
        "sources_already_there": 0,
        "keyword_rows_copied": chunks,
        "vectors_copied": chunks,
        "vectors_already_there": 0,
        "threads_copied": 1,
        "threads_already_there": 0,
    }
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout) == {
        "sources_copied": 0,
        "sources_already_there": 13,
        "keyword_rows_copied": 0,
        "vectors_copied": 0,
        "vectors_already_there": chunks,
        "threads_copied": 0,
        "threads_already_there": 1,
    }

    served = Settings(data_dir=tmp_path / "replica", collection="migrated", chroma_url=chroma_server,
                      database_url=database_url, _env_file=None)  # fmt: skip
    assert _results(served, embedder) == before
    model = ScriptedChatModel(replies=[AIMessage("Your name is Ada.")])
    with Components(served, embedder=embedder, chat_model=model) as c:
        c.agent("openai:scripted").ask("What is my name?", thread_id=thread)
        assert [t.thread_id for t in c.threads.list()] == [thread]
    prompt = " ".join(str(m.content) for m in model.prompts[-1])
    assert "My name is Ada." in prompt and "Hello Ada." in prompt
