"""A real PostgreSQL server for the tests: Debian's ``postgresql``, run by hand.

``initdb`` into a temporary folder, ``postgres`` on a free 127.0.0.1 port with no Unix socket,
trust authentication on loopback only, durability off (the data is thrown away), and stopped at
the end. PostgreSQL refuses to run as root, so when the tests run as root (CI does) the server
runs as ``nobody``. A missing PostgreSQL skips the tests with the package to install, except in CI,
where it fails.
"""

from __future__ import annotations

import glob
import grp
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import HOST, TIMEOUT, free_port, require_module, wait_until


def bin_dir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are: on PATH, else Debian's newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not candidates:
        return None
    newest = max(candidates, key=lambda path: int(Path(path).parent.parent.name.split(".")[0] or 0))
    return Path(newest).parent


def _server_user() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to ``nobody`` (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return {}
    for group in ("nogroup", "nobody"):
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            continue
        return {"user": pwd.getpwnam("nobody").pw_uid, "group": gid, "extra_groups": []}
    pytest.fail("running as root but neither group nogroup nor nobody exists for PostgreSQL")


class Postgres:
    """One PostgreSQL server; :meth:`new_database` gives each test a database of its own."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.directory = Path(tempfile.mkdtemp(prefix="flask-maintenance-postgres-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._as = _server_user()
        if self._as:
            os.chown(self.directory, self._as["user"], self._as["group"])

    def start(self) -> None:
        initdb = subprocess.run(
            [
                str(self.binaries / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                "postgres",
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT * 4,
            **self._as,
        )
        if initdb.returncode != 0:
            pytest.fail(f"initdb exited with {initdb.returncode}:\n{initdb.stdout}\n{initdb.stderr}")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binaries / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    f"listen_addresses={HOST}",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._as,
            )

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"postgres exited with {self.process.returncode}:\n{self.log()}")
            return self._answers()

        wait_until(up, f"postgres on port {self.port}", timeout=TIMEOUT * 2)

    def _answers(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def dsn(self, database: str) -> str:
        return f"host={HOST} port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3)."""
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"test_{next(self._names)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def query(self, url: str, sql: str) -> Any:
        """The first column of the first row of ``sql``, on a connection of the test's own."""
        import psycopg

        database = url.rsplit("/", 1)[1]
        with psycopg.connect(self.dsn(database)) as connection:
            row = connection.execute(sql).fetchone()
        return None if row is None else row[0]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: ends sessions, then exits
            try:
                self.process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=TIMEOUT)
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for the whole session (each test takes a database of its own)."""
    require_module("psycopg", 'pip install -e ".[test]"')
    binaries = bin_dir()
    if binaries is None:
        reason = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run this test")
        pytest.skip(reason)
    server = Postgres(binaries)
    try:
        server.start()
        yield server
    finally:
        server.stop()
