"""A real PostgreSQL server for the tests: Debian's `postgresql` package, a fresh cluster in a temp dir, trust
auth on 127.0.0.1, a free port. Run as the `postgres` user when the tests run as root (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pg_bin() -> Path | None:
    """The newest installed server's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PostgresServer:
    """A cluster in a temp dir, started and stopped at will (a replica must survive its database restarting)."""

    def __init__(self, port: int) -> None:
        binary = pg_bin()
        if binary is None:
            raise RuntimeError("PostgreSQL is missing (apt-get install postgresql)")
        self.bin, self.port = binary, port
        self.root = Path(tempfile.mkdtemp(prefix="kbagent-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(_as_owner([str(self.bin / tool), *args]), check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server(port: int) -> Iterator[PostgresServer]:
    """A running server, removed afterwards."""
    server = PostgresServer(port)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def new_database(server_url: str) -> str:
    """A fresh empty database on the server, its URL."""
    import psycopg

    name = f"t{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # a generated identifier, never user input
    return server_url.rsplit("/", 1)[0] + f"/{name}"
