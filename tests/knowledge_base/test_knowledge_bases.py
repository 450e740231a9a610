"""Several knowledge bases in one data dir: names, isolation, their own settings, conversations per knowledge base,
exports, deletion (while an answer or a watcher uses it), and existing data dirs opened as the default one."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from agent.events import Done, Error
from kbagent.components import Components
from kbagent.errors import UnknownKnowledgeBase, UserError
from kbagent.knowledge_bases import KnowledgeBases
from kbagent.settings import Settings
from knowledge_base.backend import Place
from knowledge_base.embeddings import Embedder
from knowledge_base.retrieval import SearchOptions
from tests.support import parts as needed
from tests.support.embedders import CountingEmbedder
from tests.support.files import write_pdf
from tests.support.paths import VENV_BIN
from tests.support.scripted_model import ScriptedChatModel, tool_call

BAD_NAMES = [
    "../etc",
    "a/b",
    "a\\b",
    "x'; DROP TABLE knowledge_bases;--",
    'say "hi"',
    "<script>alert(1)</script>",
    "a&b",
    "$HOME",
    "tab\tname",
    "new\nline",
    ".hidden",
    "a..b",
    "",
    "   ",
    "x" * 65,
]


def _note(folder: Path, name: str, title: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
    return path


@pytest.fixture
def parts(settings: Settings, embedder: Embedder) -> Iterator[Components]:
    with Components(settings, embedder=embedder) as built:
        yield built


# ---- names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_with_path_sql_or_markup_characters_are_refused(parts: Components, name: str) -> None:
    admin = KnowledgeBases(parts)
    before = admin.list()
    with pytest.raises(UserError) as refused:
        admin.create(name)
    assert "\n" not in str(refused.value) and "knowledge base" in str(refused.value)
    made = "harbour"
    admin.create(made)
    with pytest.raises(UserError):
        admin.rename(made, name)
    assert [i.name for i in admin.list()] == sorted([*(i.name for i in before), made], key=str.casefold)
    assert len(list((parts.settings.store.data_dir / "kbs").iterdir())) == 1  # only the good one's folder


def test_good_names_any_case_once(parts: Components) -> None:
    admin = KnowledgeBases(parts)
    for name in ("Team docs", "Équipe RH", "v1.2_notes-x", "7"):
        assert admin.create(name).name == name
    with pytest.raises(UserError, match="'Team docs' exists already"):
        admin.create("TEAM DOCS")
    with pytest.raises(UnknownKnowledgeBase, match="no knowledge base named"):
        parts.knowledge_base("../Team docs")


def test_the_cli_refuses_a_bad_name_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "KBAGENT_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [str(VENV_BIN / "kbagent"), "kb", "create", "x'; DROP TABLE knowledge_bases;--"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith("kbagent: error: refused knowledge base name")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


# ---- each its own --------------------------------------------------------------------------------------


def _alpha_and_beta(parts: Components, tmp_path: Path) -> Path:
    """Two knowledge bases: alpha with a bakery note, beta with a canal note, both with one ferry note (returned)."""
    shared = _note(tmp_path / "shared", "ferry.md", "Ferry", "The Skerry ferry leaves Pier 9 at 07:40.")
    _note(tmp_path / "a", "bakery.md", "Bakery", "The harbour bakery sells cardamom buns for 3.50.")
    _note(tmp_path / "b", "locks.md", "Locks", "The canal locks open at dawn for the barge QX-5521.")
    admin = KnowledgeBases(parts)
    admin.create("alpha")
    admin.create("beta")
    parts.ingest([tmp_path / "a", shared], kb="alpha")
    parts.ingest([tmp_path / "b", shared], kb="beta")
    return shared


def test_each_knowledge_base_has_its_own_documents(
    store_settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """Embedded Chroma, a Chroma server, and PostgreSQL beside a server: what one holds the other never shows,
    and removing a source from one leaves the other's source of the same file alone."""
    with Components(store_settings, embedder=embedder) as parts:
        shared = _alpha_and_beta(parts, tmp_path)
        alpha, beta = parts.knowledge_base("alpha"), parts.knowledge_base("beta")
        assert alpha.id != beta.id and alpha.embedder is beta.embedder  # one loaded embedder for both
        assert {Path(r.source).name for r in alpha.sources()} == {"bakery.md", "ferry.md"}
        assert {Path(r.source).name for r in beta.sources()} == {"locks.md", "ferry.md"}
        for mode in ("hybrid", "keyword", "dense"):
            hits = alpha.search("barge locks QX-5521", k=10, options=SearchOptions(mode=mode))  # type: ignore[arg-type]
            assert "locks.md" not in {Path(d.metadata["source"]).name for d in hits}, mode
        assert not {Path(d.metadata["source"]).name for d in beta.search("cardamom buns bakery", k=10)} & {"bakery.md"}
        alpha.remove([str(shared.resolve())])
        assert str(shared.resolve()) in {r.source for r in beta.sources()}
        assert "07:40" in beta.search("Skerry ferry", k=1)[0].page_content
        assert parts.kb.sources() == []  # the default one holds nothing of theirs
        assert alpha.place.uploads_path != beta.place.uploads_path


def test_own_settings_override_the_global_ones(parts: Components, tmp_path: Path) -> None:
    admin = KnowledgeBases(parts)
    admin.create("handbook")
    _note(tmp_path / "docs", "ferry.md", "Ferry", "The Skerry ferry leaves Pier 9 at 07:40.")
    parts.ingest([tmp_path / "docs"], kb="handbook")
    for key, value in [("k", "2"), ("mode", "keyword"), ("min_score", "0.25"), ("instructions", "Answer in French.")]:
        admin.set("handbook", key, value)
    admin.set("handbook", "model", "openai:scripted-kb")
    with pytest.raises(UserError, match="invalid value for mode"):
        admin.set("handbook", "mode", "sideways")
    with pytest.raises(UserError, match="unknown knowledge base setting 'chunk_size'"):
        admin.set("handbook", "chunk_size", "100")
    model = ScriptedChatModel(replies=[tool_call("search_knowledge_base", {"query": "ferry"}), AIMessage("Bien.")])
    with Components(parts.settings, embedder=parts.kb.embedder, chat_model=model) as other:
        agent = other.agent(kb="handbook")
        assert (agent.config.k, agent.search_options.mode, agent.search_options.min_score) == (2, "keyword", 0.25)
        assert agent.spec.label == "openai:scripted-kb"
        fold_events = list(agent.stream("When does the ferry leave?"))
        assert isinstance(fold_events[-1], Done)
        system = model.prompts[0][0]
        assert isinstance(system, SystemMessage) and str(system.content).endswith("Answer in French.")
        plain = other.agent("openai:scripted", kb=None)  # the default knowledge base keeps the global settings
        assert (plain.config.k, plain.search_options.mode, plain.config.instructions) == (5, "hybrid", "")
    shown = admin.effective("handbook")
    assert shown["k"] == (2, "knowledge base") and shown["model"] == ("openai:scripted-kb", "knowledge base")
    admin.set("handbook", "k", "")
    assert admin.effective("handbook")["k"] == (5, "global")


def test_chunking_is_fixed_when_a_knowledge_base_is_made(
    settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """A later chunk size applies to knowledge bases made after it; an existing one re-embeds nothing."""
    long_text = " ".join(f"Sentence {n} about the harbour crane and its ledger." for n in range(60))
    _note(tmp_path / "docs", "crane.md", "Crane", long_text)
    counting = CountingEmbedder(embedder)
    with Components(settings.override(chunk_size=400, chunk_overlap=40), embedder=counting) as parts:  # type: ignore[arg-type]
        KnowledgeBases(parts).create("old")
        parts.ingest([tmp_path / "docs"], kb="old")
        chunks = parts.knowledge_base("old").collection.count()
    embedded = counting.embedded
    with Components(settings.override(chunk_size=1500, chunk_overlap=40), embedder=counting) as parts:  # type: ignore[arg-type]
        (tmp_path / "docs" / "crane.md").touch()
        report = parts.ingest([tmp_path / "docs"], kb="old")
        assert report.counts["unchanged"] == 1 and counting.embedded == embedded
        assert parts.knowledge_base("old").collection.count() == chunks
        KnowledgeBases(parts).create("new")
        parts.ingest([tmp_path / "docs"], kb="new")
        assert parts.knowledge_base("new").collection.count() < chunks
        assert (
            parts.kb_info("old").chunking["chunk_size"] == 400 and parts.kb_info("new").chunking["chunk_size"] == 1500
        )


# ---- conversations -------------------------------------------------------------------------------------


def _ask(parts: Components, kb: str, question: str, reply: str, thread: str | None = None) -> list[Any]:
    model = ScriptedChatModel(replies=[tool_call("search_knowledge_base", {"query": question}), AIMessage(reply)])
    return list(parts.agent("openai:scripted", kb=kb, chat_model=model).stream(question, thread))


def test_conversations_belong_to_their_knowledge_base_and_export(
    settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    write_pdf(
        tmp_path / "a" / "tides.pdf",
        ["Tide tables", "High tide at Pier 9 is at 07:40 on Mondays."],
        title="Tide tables",
    )
    _note(tmp_path / "b", "locks.md", "Locks", "The canal locks open at dawn.")
    with Components(settings, embedder=embedder, chat_model=None) as parts:
        admin = KnowledgeBases(parts)
        admin.create("tides")
        admin.create("canal")
        parts.ingest([tmp_path / "a"], kb="tides")
        parts.ingest([tmp_path / "b"], kb="canal")
        first = _ask(parts, "tides", "When is high tide at Pier 9?", "High tide at Pier 9 is at 07:40 on Mondays [1].")
        done = first[-1]
        assert isinstance(done, Done)
        _ask(parts, "canal", "When do the locks open?", "The canal locks open at dawn [1].")
        tides, canal = parts.kb_info("tides").id, parts.kb_info("canal").id
        assert [t.title for t in parts.threads.list(kb=tides)] == ["When is high tide at Pier 9?"]
        assert [t.title for t in parts.threads.list(kb=canal)] == ["When do the locks open?"]
        assert len(parts.threads.list()) == 2
        crossed = _ask(parts, "canal", "And on Tuesdays?", "Dawn.", thread=done.thread_id)
        assert isinstance(crossed[-1], Error) and "belongs to another knowledge base" in crossed[-1].message
        admin.rename("tides", "tide tables")
        assert [t.thread_id for t in parts.threads.list(kb=tides)] == [done.thread_id]  # a rename keeps them

    from typer.testing import CliRunner

    from kbagent.cli import app

    env = {"KBAGENT_DATA_DIR": str(settings.store.data_dir), "KBAGENT_COLLECTION": settings.store.collection}
    markdown = CliRunner().invoke(app, ["export", done.thread_id], env=env)
    assert markdown.exit_code == 0, markdown.output
    assert "When is high tide at Pier 9?" in markdown.output and "07:40 on Mondays [1]" in markdown.output
    assert "Knowledge base: tide tables" in markdown.output
    assert f"[1] Tide tables — {tmp_path / 'a' / 'tides.pdf'} (p. 2)" in markdown.output
    exported = json.loads(CliRunner().invoke(app, ["export", done.thread_id, "--format", "json"], env=env).output)
    turn = exported["turns"][0]
    assert exported["knowledge_base"] == "tide tables" and turn["question"] == "When is high tide at Pier 9?"
    assert [(c["source"], c["location"]) for c in turn["cited"]] == [(str(tmp_path / "a" / "tides.pdf"), "p. 2")]
    missing = CliRunner().invoke(app, ["export", "nope"], env=env)
    assert missing.exit_code != 0


# ---- deleting ------------------------------------------------------------------------------------------


class DeletingModel(ScriptedChatModel):
    """A scripted model that deletes the knowledge base (from another process's view) when first asked."""

    delete: Any = None

    def _next(self, messages: list[Any]) -> AIMessage:
        if self.delete is not None:
            self.delete()
            self.delete = None
        return super()._next(messages)


@pytest.mark.parametrize("provider", ["openai", "gguf"])
def test_a_knowledge_base_deleted_while_answering_ends_the_answer_in_one_line(
    settings: Settings, embedder: Embedder, tmp_path: Path, provider: str
) -> None:
    """Tool calling: deleted between the model's search call and the search. Retrieval-first (gguf): deleted
    before the answer starts. Either way the answer's last event is one line naming it."""
    _note(tmp_path / "docs", "ferry.md", "Ferry", "The Skerry ferry leaves Pier 9 at 07:40.")
    with Components(settings, embedder=embedder) as parts, Components(settings, embedder=embedder) as elsewhere:
        KnowledgeBases(parts).create("doomed")
        parts.ingest([tmp_path / "docs"], kb="doomed")
        model = DeletingModel(replies=[tool_call("search_knowledge_base", {"query": "ferry"}), AIMessage("07:40 [1].")])
        agent = parts.agent(f"{provider}:scripted", kb="doomed", chat_model=model)
        if provider == "openai":
            model.delete = lambda: KnowledgeBases(elsewhere).delete("doomed")
        else:
            KnowledgeBases(elsewhere).delete("doomed")
        events = list(agent.stream("When does the ferry leave?"))
        assert isinstance(events[-1], Error) and not any(isinstance(e, Done) for e in events)
        assert events[-1].message == "the knowledge base 'doomed' was deleted"
        with pytest.raises(UnknownKnowledgeBase):
            parts.knowledge_base("doomed")
        assert list((settings.store.data_dir / "kbs").iterdir()) == []


def test_a_deletion_a_watcher_holds_up_is_finished_later(parts: Components, tmp_path: Path) -> None:
    admin = KnowledgeBases(parts)
    info = admin.create("watched")
    _note(tmp_path / "docs", "ferry.md", "Ferry", "The Skerry ferry leaves Pier 9 at 07:40.")
    parts.ingest([tmp_path / "docs"], kb="watched")
    kb = parts.knowledge_base("watched")
    assert kb.watch_lock.acquire(wait=False)  # as `kbagent watch --kb watched` holds it
    with pytest.raises(UserError, match="did not stop within 0 s; it is deleted"):
        admin.delete("watched", wait_s=0.3)
    assert "watched" not in {i.name for i in admin.list()}  # gone for every reader at once
    assert info.path(parts.settings.store.data_dir).exists()  # its data waits for the watcher
    kb.watch_lock.release()
    assert admin.finish_deletions() == ["watched"]
    assert not info.path(parts.settings.store.data_dir).exists()
    assert info.id not in {c.name for c in parts.chroma.list_collections()}


@pytest.mark.slow
def test_kb_delete_stops_a_watcher_first(tmp_path: Path) -> None:
    kbagent = str(VENV_BIN / "kbagent")
    env = {**os.environ, "KBAGENT_DATA_DIR": str(tmp_path / "data")}
    folder = tmp_path / "watched"
    _note(folder, "ferry.md", "Ferry", "The Skerry ferry leaves Pier 9 at 07:40.")
    made = subprocess.run([kbagent, "kb", "create", "harbour"], capture_output=True, text=True, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    watcher = subprocess.Popen(
        [kbagent, "watch", str(folder), "--kb", "harbour"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        lines = []
        while not any("full sync" in line for line in lines):
            line = watcher.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        start = time.monotonic()
        done = subprocess.run(
            [kbagent, "kb", "delete", "harbour", "--yes"], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert watcher.wait(timeout=30) == 1
        assert "harbour was deleted; stopped watching" in watcher.stdout.read()
        assert time.monotonic() - start < 60
    finally:
        watcher.kill()
    listed = subprocess.run([kbagent, "kb", "list", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert "harbour" not in {kb["name"] for kb in json.loads(listed.stdout)}
    assert not any((tmp_path / "data" / "kbs").iterdir())
    unasked = subprocess.run([kbagent, "kb", "delete", "kbagent"], capture_output=True, text=True, env=env, timeout=120)
    assert unasked.returncode == 2 and "pass --yes" in unasked.stderr  # no terminal to ask: nothing deleted


# ---- existing data dirs --------------------------------------------------------------------------------

LEGACY_THREADS = """
CREATE TABLE IF NOT EXISTS kb_threads (
    thread_id  TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    model      TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)
"""
"""The thread list as data dirs made before knowledge bases hold it (its checkpoints are LangGraph's own)."""


def _legacy_conversation(checkpointer: Any, thread_id: str, question: str, answer: str) -> None:
    """One turn written by LangGraph's own checkpointer, as the agent's graph writes it."""
    from langgraph.graph import START, MessagesState, StateGraph

    graph = StateGraph(MessagesState)
    graph.add_node("answer", lambda state: {"messages": [AIMessage(answer)]})
    graph.add_edge(START, "answer")
    graph.compile(checkpointer=checkpointer).invoke(
        {"messages": [HumanMessage(question)]}, {"configurable": {"thread_id": thread_id}}
    )


def _write_legacy_threads(settings: Settings) -> list[tuple[str, str, str, float, float]]:
    rows = [("t0ld00000001", "When does the ferry leave?", "openai:x", 1.0, 2.0)]
    rows.append(("t0ld00000002", "Where is the bakery?", "gguf:y", 3.0, 4.0))
    url = settings.store.database_url.get_secret_value()
    if url:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        schema = settings.store.collection
        with psycopg.connect(url, autocommit=True, options=f"-c search_path={schema}") as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(LEGACY_THREADS)
            conn.cursor().executemany("INSERT INTO kb_threads VALUES (%s, %s, %s, %s, %s)", rows)
        kwargs = {"autocommit": True, "row_factory": dict_row, "options": f"-c search_path={schema}"}
        with ConnectionPool(url, kwargs=kwargs, min_size=1, max_size=2) as pool:
            saver = PostgresSaver(pool)  # type: ignore[arg-type]
            saver.setup()
            for thread_id, title, *_ in rows:
                _legacy_conversation(saver, thread_id, title, f"Answer to {title}")
        return rows
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    db = sqlite3.connect(settings.threads_path, check_same_thread=False)
    db.execute(LEGACY_THREADS)
    db.executemany("INSERT INTO kb_threads VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    saver = SqliteSaver(db)
    saver.setup()
    for thread_id, title, *_ in rows:
        _legacy_conversation(saver, thread_id, title, f"Answer to {title}")
    db.close()
    return rows


def _snapshot(kb: Any) -> dict[str, Any]:
    """Everything a user would notice: sources, chunks (ids, texts, vectors), and what searches find."""
    got = kb.collection.get(include=["embeddings", "metadatas"])
    ids = sorted(got["ids"])
    rows = {r.chunk_id: r.text for r in kb.keywords.rows(ids)}
    vectors = {i: [round(float(x), 6) for x in v] for i, v in zip(got["ids"], got["embeddings"], strict=True)}
    found = {}
    for query in ("ferry Pier 9", "cardamom buns", "locks dawn barge"):
        for mode in ("hybrid", "keyword", "dense"):
            hits = kb.search(query, k=5, options=SearchOptions(mode=mode))
            found[f"{mode}:{query}"] = [(h.metadata["chunk_id"], round(h.metadata["score"], 6)) for h in hits]
    return {"sources": [r.as_dict() for r in kb.sources()], "texts": rows, "vectors": vectors, "found": found}


def _history(parts: Components, thread_id: str) -> list[tuple[str, str]]:
    from kbagent.export import conversation

    return [(t.question, t.answer) for t in conversation(parts, thread_id).turns]


@pytest.mark.parametrize(
    "chroma, database",
    [
        ("embedded", "sqlite"),
        ("server", "sqlite"),
        pytest.param("embedded", "postgres", marks=needed.postgres()),
        pytest.param("server", "postgres", marks=needed.postgres()),
    ],
)
def test_an_existing_data_dir_opens_as_the_default_knowledge_base_unchanged(
    request: pytest.FixtureRequest, settings: Settings, embedder: Embedder, tmp_path: Path, chroma: str, database: str
) -> None:
    """A data dir written by the store's own write path and the thread tables of before: its sources, chunks,
    vectors, search results and conversations are the same after, nothing is embedded again, and its files stay
    where they are. Interrupted after the catalog entry (before the conversations are its own), it resumes."""
    from ingest import IngestConfig, build_ingestor
    from kbagent.components import open_knowledge_base

    changes: dict[str, Any] = {}
    if chroma == "server":
        changes["chroma_url"] = request.getfixturevalue("chroma_server")
    if database == "postgres":
        changes["database_url"] = request.getfixturevalue("database_url")
    legacy = settings.override(**changes)
    _note(tmp_path / "docs", "ferry.md", "Ferry", "The Skerry ferry leaves Pier 9 at 07:40.")
    _note(tmp_path / "docs", "bakery.md", "Bakery", "The harbour bakery sells cardamom buns for 3.50 each.")
    _note(tmp_path / "docs", "locks.md", "Locks", "The canal locks open at dawn for the barge QX-5521.")
    with open_knowledge_base(legacy, embedder) as kb:  # today's write path, unchanged
        build_ingestor(IngestConfig(), kb).run([tmp_path / "docs"])
        before = _snapshot(kb)
    threads = _write_legacy_threads(legacy)
    data = legacy.store.data_dir
    files = sorted(p.name for p in data.iterdir()) if data.exists() else []

    counting = CountingEmbedder(embedder)
    interrupted = pytest.MonkeyPatch()
    store_class = "PostgresThreadStore" if database == "postgres" else "ThreadStore"

    def killed(*_: Any) -> int:
        raise KeyboardInterrupt

    interrupted.setattr(f"agent.memory.{store_class}.adopt", killed)
    with Components(legacy, embedder=counting) as parts, pytest.raises(KeyboardInterrupt):  # type: ignore[arg-type]
        assert parts.kb.id == legacy.store.collection
        parts.threads  # noqa: B018
    interrupted.undo()

    with Components(legacy, embedder=counting) as parts:  # type: ignore[arg-type]
        kb = parts.kb
        assert kb.name == legacy.store.collection and [i.id for i in parts.catalog.all()] == [kb.id]
        assert _snapshot(kb) == before
        listed = [(t.thread_id, t.title, t.model, t.created_at, t.updated_at) for t in parts.threads.list(kb=kb.id)]
        assert sorted(listed) == sorted(threads)
        for thread_id, title, *_ in threads:
            assert _history(parts, thread_id) == [(title, f"Answer to {title}")]
        assert counting.embedded == 0  # opening it embedded nothing (queries are not counted)
        (tmp_path / "docs" / "ferry.md").touch()
        again = parts.ingest([tmp_path / "docs"])  # the next ingest, as its chunking was recorded: nothing to do
        assert again.counts["unchanged"] == 3 and counting.embedded == 0
    after = sorted(p.name for p in data.iterdir()) if data.exists() else []
    assert {*files, "kbagent.sqlite3"} >= set(after) if data.exists() else not files, (files, after)
    if database == "sqlite":
        assert Place.of(legacy.store).records_path.exists() and "kbagent.sqlite3" in os.listdir(legacy.store.data_dir)
    else:
        assert not Place.of(legacy.store).records_path.exists() and not legacy.threads_path.exists()


@pytest.mark.parametrize("variable", ["KBAGENT_KB", "KBAGENT_COLLECTION"])
def test_the_default_follows_kbagent_kb_and_its_alias(tmp_path: Path, embedder: Embedder, variable: str) -> None:
    data = tmp_path / "data"
    with Components(Settings(data_dir=data, collection="legacy", _env_file=None), embedder=embedder) as parts:
        assert parts.kb.name == "legacy"
        KnowledgeBases(parts).create("other")
    named = {"kb": "other"} if variable == "KBAGENT_KB" else {"collection": "other"}
    with Components(Settings(data_dir=data, _env_file=None, **named), embedder=embedder) as parts:
        assert parts.kb.name == "other"
    missing = Settings(data_dir=data, kb="missing", _env_file=None)
    with Components(missing, embedder=embedder) as parts, pytest.raises(UnknownKnowledgeBase, match="KBAGENT_KB"):
        parts.kb  # noqa: B018
    fresh = tmp_path / "fresh"
    with Components(Settings(data_dir=fresh, kb="Handbook", _env_file=None), embedder=embedder) as parts:
        assert (parts.kb.name, parts.kb.id) == ("Handbook", "kbagent")  # a fresh data dir's first: as always


# ---- the promises: no configuration needed, nothing seen across ----------------------------------------


@pytest.mark.slow
def test_the_readme_start_needs_no_configuration(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kbagent ingest FOLDER && python app.py` in a fresh folder, no setting made: the app opens on what the
    ingest wrote, a data dir laid out as before knowledge bases (the first one's files in the data dir itself)."""
    from kbagent.services.operations import Services
    from tests.support.ui_app import MODELS

    _note(tmp_path / "docs", "ferry.md", "Ferry", "The Skerry ferry leaves Pier 9 at 07:40.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KBAGENT_") or k == "KBAGENT_MODELS_DIR"}
    done = subprocess.run(
        [str(VENV_BIN / "kbagent"), "ingest", "docs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    data = tmp_path / "data"
    assert {"chroma", "sources.sqlite3", "kbagent.sqlite3"} <= {p.name for p in data.iterdir()}
    assert not (data / "kbs").exists()

    monkeypatch.chdir(tmp_path)
    with Components(Settings(_env_file=None), embedder=embedder) as parts:  # what app.main builds, by default
        svc = Services(parts, MODELS)
        assert [Path(r.source).name for r in svc.sources()] == ["ferry.md"]
        assert "07:40" in svc.kb.search("When does the Skerry ferry leave?", k=1)[0].page_content
        assert [(i.name, i.folder) for i in parts.catalog.all()] == [("kbagent", ".")]


def _answer_sees(parts: Components, kb: str, question: str) -> tuple[set[str], str]:
    """The file names of every passage an answer from `kb` was shown (cited or not), and what its searches
    returned to the model."""
    from agent.events import Sources, ToolEnd

    model = ScriptedChatModel(replies=[tool_call("search_knowledge_base", {"query": question}), AIMessage("[1]")])
    events = list(parts.agent("openai:scripted", kb=kb, chat_model=model).stream(question))
    assert isinstance(events[-1], Done), events[-1]
    shown = {Path(p.source).name for e in events if isinstance(e, Sources) for p in (*e.cited, *e.retrieved)}
    return shown, " ".join(e.output for e in events if isinstance(e, ToolEnd))


def test_two_knowledge_bases_never_see_each_others_passages(
    settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """Through the front doors: `kbagent search/sources/stats/remove --kb` and an answer (`ask`) from each."""
    from typer.testing import CliRunner

    from kbagent.cli import app

    with Components(settings, embedder=embedder) as parts:
        shared = _alpha_and_beta(parts, tmp_path)
        both = "When does the Skerry ferry leave, when do the locks open for barge QX-5521, what do buns cost?"
        shown, read = _answer_sees(parts, "alpha", both)
        assert "ferry.md" in shown and "locks.md" not in shown and "QX-5521" not in read and "07:40" in read
        shown, read = _answer_sees(parts, "beta", both)
        assert "ferry.md" in shown and "bakery.md" not in shown and "cardamom" not in read and "07:40" in read

    env = {"KBAGENT_DATA_DIR": str(settings.store.data_dir), "KBAGENT_COLLECTION": settings.store.collection}

    def cli(*args: str) -> Any:
        done = CliRunner().invoke(app, list(args), env=env)
        assert done.exit_code == 0, done.output
        return json.loads(done.output) if "--json" in args else done.output

    def names(rows: list[dict[str, Any]]) -> set[str]:
        return {Path(r["source"]).name for r in rows}

    found = names(cli("search", "barge locks QX-5521", "--kb", "alpha", "--json", "-k", "10"))
    assert found and found <= {"bakery.md", "ferry.md"}
    found = names(cli("search", "cardamom buns", "--kb", "beta", "--json", "-k", "10"))
    assert found and found <= {"locks.md", "ferry.md"}
    assert names(cli("sources", "--kb", "alpha", "--json")) == {"bakery.md", "ferry.md"}
    assert names(cli("sources", "--json")) == set()  # the default one holds nothing of theirs
    assert "1 sources removed" in cli("remove", str(shared.resolve()), "--kb", "alpha")
    assert names(cli("sources", "--kb", "alpha", "--json")) == {"bakery.md"}
    assert names(cli("sources", "--kb", "beta", "--json")) == {"locks.md", "ferry.md"}
    assert cli("stats", "--kb", "beta", "--json")["sources"] == 2
