"""The knowledge base's state in PostgreSQL: source records, the keyword index and the ingest lock, shared by
every replica and ingester that names the same database (`KBAGENT_DATABASE_URL`).

Each knowledge base (Chroma collection) gets its own schema of that name, so one database holds several.
The keyword index is a BM25 over stored term statistics, computed in SQL exactly as FTS5's `bm25()` does
(k1 = 1.2, b = 0.75, the same idf and its floor) over the terms SQLite's own FTS5 tokenizer produces
(`keyword_index.term_counts`): the two backends rank alike. Postgres' own `ts_rank_cd` ranks differently
(no idf), and its English stemmer is not FTS5's Porter.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from kbagent.errors import ServiceError
from knowledge_base.keyword_index import KeywordHit, KeywordRow, query_terms, term_counts, within_budget
from knowledge_base.records import SourceRecord, record_row, with_ids

if TYPE_CHECKING:
    from psycopg.abc import Params
    from psycopg.rows import TupleRow

log = logging.getLogger(__name__)
K1, B = 1.2, 0.75  # FTS5's bm25() constants
CONNECT_TIMEOUT_S = 5
SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    source       text PRIMARY KEY,
    content_hash text NOT NULL,
    title        text NOT NULL DEFAULT '',
    doc_type     text NOT NULL DEFAULT '',
    kind         text NOT NULL DEFAULT '',
    chunk_ids    jsonb NOT NULL,
    ingested_at  double precision NOT NULL,
    root         text NOT NULL DEFAULT ''
);
ALTER TABLE sources ADD COLUMN IF NOT EXISTS source_id text NOT NULL DEFAULT '';
UPDATE sources SET source_id = left(md5(random()::text || clock_timestamp()::text || source), 16)
    WHERE source_id = '';
CREATE UNIQUE INDEX IF NOT EXISTS sources_by_id ON sources (source_id);
CREATE TABLE IF NOT EXISTS chunks (
    id       bigserial PRIMARY KEY,
    chunk_id text NOT NULL UNIQUE,
    source   text NOT NULL,
    doc_type text NOT NULL DEFAULT '',
    text     text NOT NULL,
    length   integer NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks (source);
CREATE TABLE IF NOT EXISTS terms (
    term   text NOT NULL,
    chunk  bigint NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
    tf     integer NOT NULL,
    length integer NOT NULL,
    PRIMARY KEY (term, chunk) INCLUDE (tf, length)
);
CREATE INDEX IF NOT EXISTS terms_chunk ON terms (chunk);
CREATE TABLE IF NOT EXISTS corpus (
    one    boolean PRIMARY KEY DEFAULT true CHECK (one),
    chunks bigint NOT NULL,
    tokens bigint NOT NULL
);
INSERT INTO corpus VALUES (true, 0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS pending_deletes (chunk_id text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS page_words (
    source text NOT NULL,
    page   integer NOT NULL,
    words  bytea NOT NULL,
    PRIMARY KEY (source, page)
);
"""
KB_TABLES = ("terms", "chunks", "corpus", "pending_deletes", "sources", "page_words")  # what SCHEMA creates
RECORD_COLUMNS = "source, content_hash, title, doc_type, kind, chunk_ids, ingested_at, root, source_id"


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Database:
    """A pool of connections to one knowledge base's schema. `transaction()` makes the calls inside it, from
    this thread, share one connection and commit together (a source's record and its keyword rows)."""

    def __init__(self, url: str, schema: str, max_size: int = 8, schema_sql: str = SCHEMA) -> None:
        """schema_sql: the tables this schema holds (a knowledge base's by default; the catalog's, or none)."""
        self.url = url
        self.schema = schema
        self._schema_sql = schema_sql
        parsed = urlparse(url)
        self.where = f"{parsed.hostname or 'localhost'}:{parsed.port or 5432}"
        self._local = threading.local()
        probe = self.connect()  # one clear line now, rather than a pool that retries in the background
        probe.close()
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=True,
            configure=self._configure,
            check=ConnectionPool.check_connection,  # a server that went away and came back: fresh connections
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S},
            name=f"kbagent-{schema}",
        )
        self._create_schema()

    def extra_pool(self, **kwargs: object) -> ConnectionPool:
        """Another pool on the same schema, its connections made with `kwargs` (LangGraph's checkpointer)."""
        return ConnectionPool(
            self.url,
            min_size=1,
            max_size=4,
            open=True,
            configure=self._configure,
            check=ConnectionPool.check_connection,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S, **kwargs},
        )

    def connect(self, autocommit: bool = False) -> psycopg.Connection[TupleRow]:
        """A connection outside the pool (the lock holds its own), on this knowledge base's schema."""
        try:
            conn = psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=autocommit)
        except psycopg.OperationalError as exc:
            raise self.unreachable(exc) from None
        self._configure(conn)
        return conn

    def unreachable(self, exc: BaseException) -> ServiceError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return ServiceError(f"cannot reach the database at {self.where} ({first[:200]})")

    def _configure(self, conn: psycopg.Connection[TupleRow]) -> None:
        conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self.schema)))
        if not conn.autocommit:
            conn.commit()

    def _create_schema(self) -> None:
        """Created once, by whichever process comes first (concurrent CREATE IF NOT EXISTS can collide)."""
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(f"kbagent-schema:{self.schema}")])
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            if self._schema_sql:
                conn.execute(self._schema_sql)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """This thread's transaction's connection, or a pooled one whose work commits when the block ends."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        try:
            with self.pool.connection(timeout=CONNECT_TIMEOUT_S * 2) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self.unreachable(exc) from None

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """One transaction; nested calls join the outer one."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield conn
            finally:
                self._local.conn = None

    def close(self) -> None:
        self.pool.close()


def drop_knowledge_base(url: str, schema: str) -> None:
    """A deleted knowledge base's tables, then its schema if nothing else is left in it."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
            for table in KB_TABLES:
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}.{} CASCADE").format(sql.Identifier(schema), sql.Identifier(table))
                )
            with contextlib.suppress(psycopg.errors.DependentObjectsStillExist):
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ServiceError(f"cannot reach the database ({first[:200]})") from None


class PostgresRecords:
    """`records.SourceRecords` in PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def _row(row: TupleRow) -> SourceRecord:
        source, content_hash, title, doc_type, kind, chunk_ids, ingested_at, root, source_id = row
        return SourceRecord(source, content_hash, title, doc_type, kind, list(chunk_ids), ingested_at, root, source_id)

    def _rows(self, query: str, params: Params = ()) -> list[TupleRow]:
        with self.db.connection() as conn:
            return conn.execute(query, params).fetchall()

    def get(self, source: str) -> SourceRecord | None:
        rows = self._rows(f"SELECT {RECORD_COLUMNS} FROM sources WHERE source = %s", [source])
        return self._row(rows[0]) if rows else None

    def by_id(self, source_id: str) -> SourceRecord | None:
        if not source_id:
            return None
        rows = self._rows(f"SELECT {RECORD_COLUMNS} FROM sources WHERE source_id = %s", [source_id])
        return self._row(rows[0]) if rows else None

    def source_ids(self, sources: Iterable[str]) -> dict[str, str]:
        return dict(self._rows("SELECT source, source_id FROM sources WHERE source = ANY(%s)", [list(sources)]))

    def roots(self) -> dict[str, str]:
        return dict(self._rows("SELECT source, root FROM sources"))

    def hashes(self) -> dict[str, str]:
        return dict(self._rows("SELECT source, content_hash FROM sources"))

    def all(self, prefix: str | None = None) -> list[SourceRecord]:
        if prefix:
            query = f'SELECT {RECORD_COLUMNS} FROM sources WHERE left(source, %s) = %s ORDER BY source COLLATE "C"'
            return [self._row(r) for r in self._rows(query, [len(prefix), prefix])]
        return [self._row(r) for r in self._rows(f'SELECT {RECORD_COLUMNS} FROM sources ORDER BY source COLLATE "C"')]

    def put_many(self, records: Iterable[SourceRecord]) -> None:
        """As `records.SourceRecords.put_many`: a record without an id keeps its stored one or gets a new one."""
        records = list(records)
        upsert = (
            f"INSERT INTO sources ({RECORD_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (source) "
            "DO UPDATE SET content_hash = EXCLUDED.content_hash, title = EXCLUDED.title, doc_type = EXCLUDED.doc_type, "
            "kind = EXCLUDED.kind, chunk_ids = EXCLUDED.chunk_ids, ingested_at = EXCLUDED.ingested_at, "
            "root = EXCLUDED.root, source_id = EXCLUDED.source_id"
        )
        with self.db.transaction() as conn, conn.cursor() as cur:
            ids = with_ids(records, self.source_ids(r.source for r in records if not r.source_id))
            rows = [record_row(r, i) for r, i in zip(records, ids, strict=True)]
            cur.executemany(upsert, rows)

    def delete_many(self, sources: Iterable[str]) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM sources WHERE source = ANY(%s)", [list(sources)])

    def replace_page_words(self, sources: Sequence[str], rows: Iterable[tuple[str, int, bytes]]) -> None:
        rows = list(rows)
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM page_words WHERE source = ANY(%s)", [list(sources)])
            if rows:
                cur.executemany("INSERT INTO page_words (source, page, words) VALUES (%s, %s, %s)", rows)

    def page_words(self, source: str, page: int) -> bytes | None:
        rows = self._rows("SELECT words FROM page_words WHERE source = %s AND page = %s", [source, page])
        return bytes(rows[0][0]) if rows else None

    def note_pending_deletes(self, chunk_ids: Iterable[str]) -> None:
        """As `records.SourceRecords.note_pending_deletes`: in the transaction that deletes their records."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO pending_deletes (chunk_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                [list(chunk_ids)],
            )

    def pending_deletes(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT chunk_id FROM pending_deletes")]

    def clear_pending_deletes(self, chunk_ids: Iterable[str]) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM pending_deletes WHERE chunk_id = ANY(%s)", [list(chunk_ids)])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.transaction():
            yield


class PostgresKeywordIndex:
    """`keyword_index.KeywordIndex` in PostgreSQL: FTS5's BM25 over a term table (term, chunk, tf, length)."""

    def __init__(self, db: Database, max_scored_rows: int = 0) -> None:
        self.db = db
        self.max_scored_rows = max_scored_rows

    def replace_sources(self, sources: Sequence[str], rows: Iterable[KeywordRow]) -> None:
        rows = list(rows)
        counts = term_counts([r.text for r in rows])
        with self.db.transaction() as conn, conn.cursor() as cur:
            self.delete_sources(sources)
            if not rows:
                return
            cur.execute(
                "INSERT INTO chunks (chunk_id, source, doc_type, text, length) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::int[]) RETURNING id",
                [
                    [r.chunk_id for r in rows],
                    [r.source for r in rows],
                    [r.doc_type for r in rows],
                    [r.text for r in rows],
                    [c.total() for c in counts],
                ],
            )
            ids = [row[0] for row in cur.fetchall()]  # RETURNING follows the order of unnest's rows
            postings = [(t, i, n, c.total()) for i, c in zip(ids, counts, strict=True) for t, n in c.items()]
            with cur.copy("COPY terms (term, chunk, tf, length) FROM STDIN") as copy:
                for posting in postings:
                    copy.write_row(posting)
            cur.execute(
                "UPDATE corpus SET chunks = chunks + %s, tokens = tokens + %s",
                [len(rows), sum(c.total() for c in counts)],
            )

    def delete_sources(self, sources: Sequence[str]) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "WITH gone AS (DELETE FROM chunks WHERE source = ANY(%s) RETURNING length) "
                "UPDATE corpus SET chunks = chunks - (SELECT count(*) FROM gone), "
                "tokens = tokens - (SELECT coalesce(sum(length), 0) FROM gone)",
                [list(sources)],
            )

    def rows(self, chunk_ids: Sequence[str]) -> list[KeywordRow]:
        if not chunk_ids:
            return []
        with self.db.connection() as conn:
            found = conn.execute(
                "SELECT chunk_id, source, doc_type, text FROM chunks WHERE chunk_id = ANY(%s)", [list(chunk_ids)]
            ).fetchall()
        return [KeywordRow._make(row) for row in found]

    def count(self) -> int:
        with self.db.connection() as conn:
            return int(conn.execute("SELECT chunks FROM corpus").fetchone()[0])  # type: ignore[index]

    def search(
        self, query: str, k: int, doc_type: str | None = None, sources: Sequence[str] | None = None
    ) -> list[KeywordHit]:
        weights = self._query_weights(query)
        if not weights:
            return []
        with self.db.connection() as conn:
            chunks, tokens = conn.execute("SELECT chunks, tokens FROM corpus").fetchone()  # type: ignore[misc]
            found = conn.execute(
                "SELECT term, count(*) FROM terms WHERE term = ANY(%s) GROUP BY term", [list(weights)]
            ).fetchall()
            df = dict(found)
            terms = within_budget(list(weights), df, self.max_scored_rows) if self.max_scored_rows else list(df)
            if not terms:
                return []
            # FTS5's idf, floored where a term is in more than half the rows; a query term repeated (two words
            # with one stem) counts as often as FTS5 counts its phrases.
            idf = [weights[t] * max(math.log((chunks - df[t] + 0.5) / (df[t] + 0.5)), 1e-6) for t in terms]
            avgdl = max(tokens / max(chunks, 1), 1e-9)
            filters, params = self._filters(doc_type, sources)
            scored = conn.execute(
                sql.SQL(
                    "WITH q(term, idf) AS (SELECT * FROM unnest(%s::text[], %s::float8[])), "
                    "top AS (SELECT t.chunk, sum(q.idf * t.tf * %s / (t.tf + %s * (1 - %s + %s * t.length / %s))) "
                    "AS score FROM q JOIN terms t ON t.term = q.term {join} GROUP BY t.chunk "
                    "ORDER BY score DESC LIMIT %s) "
                    "SELECT c.chunk_id, c.source, top.score FROM top JOIN chunks c ON c.id = top.chunk "
                    "ORDER BY top.score DESC, c.id"
                ).format(join=filters),
                [terms, idf, K1 + 1, K1, B, B, avgdl, *params, k],
            ).fetchall()
        return [KeywordHit(*row) for row in scored]

    @staticmethod
    def _query_weights(query: str) -> dict[str, int]:
        """The query's words as index terms (each through FTS5's tokenizer), with how often each occurs."""
        weights: Counter[str] = Counter()
        for counts in term_counts(query_terms(query)):
            weights.update(counts.keys())
        return dict(weights)

    @staticmethod
    def _filters(doc_type: str | None, sources: Sequence[str] | None) -> tuple[sql.Composable, list[str | list[str]]]:
        if not doc_type and sources is None:
            return sql.SQL(""), []
        conditions: list[sql.Composable] = []
        params: list[str | list[str]] = []
        if doc_type:
            conditions.append(sql.SQL("f.doc_type = %s"))
            params.append(doc_type)
        if sources is not None:
            conditions.append(sql.SQL("f.source = ANY(%s)"))
            params.append(list(sources))
        return sql.SQL("JOIN chunks f ON f.id = t.chunk AND ") + sql.SQL(" AND ").join(conditions), params


class AdvisoryLock:
    """The ingest lock as a Postgres session-level advisory lock, on a connection of its own: one writer per
    knowledge base across machines, and the server releases it when the holder's connection ends (a killed
    ingester included). Re-entrant within a process, like the file lock it replaces. `purpose`: "ingest", or
    "watch" for the lock a `kbagent watch` holds while it follows the knowledge base."""

    def __init__(self, db: Database, purpose: str = "ingest") -> None:
        self.db = db
        self.key = lock_key(f"kbagent-{purpose}:{db.schema}")
        self._mutex = threading.RLock()
        self._depth = 0
        self._conn: psycopg.Connection[TupleRow] | None = None

    def acquire(self, wait: bool) -> bool:
        if not self._mutex.acquire(blocking=wait):
            return False
        if self._depth == 0:
            try:
                conn = self.db.connect(autocommit=True)
                if wait:
                    conn.execute("SELECT pg_advisory_lock(%s)", [self.key])
                elif not conn.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()[0]:  # type: ignore[index]
                    conn.close()
                    self._mutex.release()
                    return False
            except BaseException:
                self._mutex.release()
                raise
            self._conn = conn
        self._depth += 1
        return True

    def check(self) -> None:
        """The lock's session is still alive, so the lock is still ours: a connection that dropped (a database
        restart, a network cut) took the lock with it, and another ingester may hold it now. Called before
        each commit, so a writer that lost its lock stops instead of writing beside the new holder."""
        conn = self._conn
        if conn is None:
            return
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            raise ServiceError(
                f"lost the ingest lock: the connection to the database at {self.db.where} dropped; "
                "nothing more was written, run the ingest again"
            ) from None

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._conn is not None:
            try:
                self._conn.close()  # ending the session releases its advisory locks
            finally:
                self._conn = None
        self._mutex.release()
