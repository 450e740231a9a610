"""Keyword (BM25) search over the same chunks as the dense index, in SQLite FTS5.

It lives in the source-records database, so a source's record and its keyword rows are written in one
transaction, and it updates row by row: no rebuild when one file changes.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from kbagent.text import RANKING_STOPWORDS

TOKENIZER = "porter unicode61 remove_diacritics 2"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS chunk_text (
    id       INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    source   TEXT NOT NULL,
    doc_type TEXT NOT NULL DEFAULT '',
    text     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunk_text_source ON chunk_text(source);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_fts USING fts5(
    text, content='chunk_text', content_rowid='id', tokenize='{TOKENIZER}'
);
CREATE TRIGGER IF NOT EXISTS chunk_text_ai AFTER INSERT ON chunk_text BEGIN
    INSERT INTO chunk_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunk_text_ad AFTER DELETE ON chunk_text BEGIN
    INSERT INTO chunk_fts(chunk_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""

TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class KeywordHit:
    chunk_id: str
    source: str
    score: float  # BM25, higher is better


class KeywordRow(NamedTuple):
    """One chunk as the keyword index stores it: in an embedded store, the only copy of its text."""

    chunk_id: str
    source: str
    doc_type: str
    text: str


def query_terms(query: str) -> list[str]:
    words = dict.fromkeys(w.lower() for w in TOKEN.findall(query))
    return [w for w in words if w not in RANKING_STOPWORDS] or list(words)


def match_expression(query: str | Sequence[str]) -> str:
    """An FTS5 query that ORs the query's words; user text never reaches FTS5's own syntax."""
    terms = query_terms(query) if isinstance(query, str) else query
    return " OR ".join(f'"{w}"' for w in terms)


def term_counts(texts: Sequence[str]) -> list[Counter[str]]:
    """Each text's terms, and how often, as FTS5 indexes them: SQLite's own tokenizer (porter, unicode61), run on
    an in-memory table, so a BM25 computed elsewhere (the Postgres index) sees exactly the terms FTS5 sees."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(
            f"CREATE VIRTUAL TABLE t USING fts5(text, tokenize='{TOKENIZER}');"
            "CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance');"
        )
        db.executemany("INSERT INTO t(rowid, text) VALUES (?, ?)", enumerate(texts))
        counts: list[Counter[str]] = [Counter() for _ in texts]
        for doc, term, n in db.execute("SELECT doc, term, count(*) FROM v GROUP BY doc, term"):
            counts[doc][term] = n
        return counts
    finally:
        db.close()


class KeywordIndex:
    def __init__(self, connection: sqlite3.Connection, max_scored_rows: int = 0) -> None:
        """max_scored_rows: the most rows one search scores; 0 = no limit (see `_affordable_terms`)."""
        self._db = connection
        self.max_scored_rows = max_scored_rows
        self._db.executescript(SCHEMA)

    def replace_sources(self, sources: Sequence[str], rows: Iterable[KeywordRow]) -> None:
        """Make these sources' rows exactly `rows`, in the caller's transaction: the one that writes their records."""
        self.delete_sources(sources)
        self._db.executemany("INSERT INTO chunk_text(chunk_id, source, doc_type, text) VALUES (?, ?, ?, ?)", rows)

    def delete_sources(self, sources: Sequence[str]) -> None:
        self._db.executemany("DELETE FROM chunk_text WHERE source = ?", [(s,) for s in sources])

    def rows(self, chunk_ids: Sequence[str]) -> list[KeywordRow]:
        marks = ",".join("?" * len(chunk_ids))
        sql = f"SELECT chunk_id, source, doc_type, text FROM chunk_text WHERE chunk_id IN ({marks})"
        return [KeywordRow._make(row) for row in self._db.execute(sql, list(chunk_ids))] if chunk_ids else []

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM chunk_text").fetchone()[0]

    def search(
        self, query: str, k: int, doc_type: str | None = None, sources: Sequence[str] | None = None
    ) -> list[KeywordHit]:
        terms = self._affordable_terms(query_terms(query))
        if not terms:
            return []
        params: list[object] = [match_expression(terms)]
        if not doc_type and sources is None:
            # Rank inside FTS5 first, then join only the top k: joining every match costs as much as scoring.
            sql = (
                "SELECT c.chunk_id, c.source, -f.score FROM (SELECT rowid, bm25(chunk_fts) AS score FROM chunk_fts "
                "WHERE chunk_fts MATCH ? ORDER BY score LIMIT ?) f JOIN chunk_text c ON c.id = f.rowid ORDER BY f.score"
            )
            return [KeywordHit(*row) for row in self._db.execute(sql, [*params, k])]
        sql = (
            "SELECT c.chunk_id, c.source, -bm25(chunk_fts) AS score FROM chunk_fts "
            "JOIN chunk_text c ON c.id = chunk_fts.rowid WHERE chunk_fts MATCH ?"
        )
        if doc_type:
            sql += " AND c.doc_type = ?"
            params.append(doc_type)
        if sources is not None:
            sql += f" AND c.source IN ({','.join('?' * len(sources))})"
            params.extend(sources)
        sql += " ORDER BY score DESC LIMIT ?"
        params.append(k)
        return [KeywordHit(*row) for row in self._db.execute(sql, params)]

    def _affordable_terms(self, terms: list[str]) -> list[str]:
        """The query's terms, leaving out the most common ones while their rows would exceed the budget.

        FTS5 scores every row that matches any term (about 0.75 us a row), so on a large store one common
        word decides the latency. A word that common carries little BM25 weight (low IDF), so it goes first:
        Lucene's cutoff-frequency idea, applied as a cost budget. Small stores never reach it.
        """
        if not self.max_scored_rows or len(terms) < 2:
            return terms
        counts = {
            t: self._db.execute("SELECT count(*) FROM chunk_fts WHERE chunk_fts MATCH ?", [f'"{t}"']).fetchone()[0]
            for t in terms
        }
        return within_budget(terms, counts, self.max_scored_rows)


def within_budget(terms: list[str], rows: dict[str, int], budget: int) -> list[str]:
    """The terms that match anything, commonest left out first while their rows together exceed `budget`."""
    kept = sorted((t for t in terms if rows.get(t)), key=lambda t: rows[t])
    while len(kept) > 1 and sum(rows[t] for t in kept) > budget:
        kept.pop()
    return kept
