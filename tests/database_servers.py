"""Real database servers for the tests: Debian's PostgreSQL and MariaDB, run by hand.

Each starts in a temporary folder of its own on a free 127.0.0.1 port, with no Unix socket anyone
else would use, no passwords (loopback only, thrown away after), durability off, and is stopped at
the end. Neither runs as root, so when the tests run as root (CI does) the server runs as
``nobody``. A missing server skips its tests with the package to install, except in CI, where it
fails. Each test takes a database of its own with :meth:`DatabaseServer.new_database`.
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
from servers import HOST, SEARCH_PATH, TIMEOUT, free_port, require_module, wait_until


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run this test")
    pytest.skip(reason)


def _server_user() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to ``nobody`` (database servers refuse root)."""
    if os.geteuid() != 0:
        return {}
    for group in ("nogroup", "nobody"):
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            continue
        return {"user": pwd.getpwnam("nobody").pw_uid, "group": gid, "extra_groups": []}
    pytest.fail("running as root but neither group nogroup nor nobody exists for the database server")


class DatabaseServer:
    """One server process; subclasses say how to set it up, start it and talk to it."""

    name = "database"
    #: The database that always exists, to create the tests' databases from.
    admin_database = ""
    stop_signal = signal.SIGTERM

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=f"flask-maintenance-{self.name}-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / f"{self.name}.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self.run_as = _server_user()
        if self.run_as:
            os.chown(self.directory, self.run_as["user"], self.run_as["group"])

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Make the data folder (before the server starts)."""

    def connect(self, database: str) -> Any:
        """A DBAPI connection to ``database``, in autocommit."""
        raise NotImplementedError

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database``."""
        raise NotImplementedError

    def start(self) -> None:
        self.prepare()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, **self.run_as
            )

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                self.connect(self.admin_database).close()
            except Exception:  # any driver error means "not yet"
                return False
            return True

        wait_until(up, f"{self.name} on port {self.port}", timeout=TIMEOUT * 2)

    def new_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"test_{next(self._names)}"
        connection = self.connect(self.admin_database)
        try:
            connection.cursor().execute(f"CREATE DATABASE {name}")
        finally:
            connection.close()
        return self.url(name)

    def query(self, url: str, sql: str) -> Any:
        """The first column of the first row of ``sql``, on a connection of the test's own."""
        connection = self.connect(url.rsplit("/", 1)[1])
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            row = cursor.fetchone()
        finally:
            connection.close()
        return None if row is None else row[0]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
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


class Postgres(DatabaseServer):
    """``initdb`` with trust authentication, then ``postgres`` without a Unix socket."""

    name = "postgres"
    admin_database = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: ends the sessions, then exits

    def __init__(self, binaries: Path) -> None:
        super().__init__()
        self.binaries = binaries

    def prepare(self) -> None:
        initdb = subprocess.run(
            [
                str(self.binaries / "initdb"),
                *("--pgdata", str(self.data), "--username", "postgres", "--auth", "trust"),
                *("--encoding", "UTF8", "--locale", "C", "--no-sync"),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT * 4,
            **self.run_as,
        )
        if initdb.returncode != 0:
            pytest.fail(f"initdb exited with {initdb.returncode}:\n{initdb.stdout}\n{initdb.stderr}")

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        options = [part for name, value in settings.items() for part in ("-c", f"{name}={value}")]
        return [str(self.binaries / "postgres"), "-D", str(self.data), "-p", str(self.port), *options]

    def connect(self, database: str) -> Any:
        import psycopg

        return psycopg.connect(
            f"host={HOST} port={self.port} user=postgres dbname={database}",
            connect_timeout=2,
            autocommit=True,
        )

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"


def postgres_bin_dir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are: on PATH, else Debian's newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not candidates:
        return None
    return Path(max(candidates, key=lambda path: int(Path(path).parent.parent.name.split(".")[0]))).parent


class MariaDB(DatabaseServer):
    """``mariadbd`` on an empty data folder without privilege tables (``--skip-grant-tables``:
    anyone on loopback is root, which is all a throw-away test server needs)."""

    name = "mariadb"

    def __init__(self, executable: str) -> None:
        super().__init__()
        self.executable = executable

    def prepare(self) -> None:
        self.data.mkdir()
        if self.run_as:
            os.chown(self.data, self.run_as["user"], self.run_as["group"])

    def command(self) -> list[str]:
        return [
            self.executable,
            "--no-defaults",
            f"--datadir={self.data}",
            f"--port={self.port}",
            f"--bind-address={HOST}",
            f"--socket={self.directory / 'mariadb.sock'}",
            f"--pid-file={self.directory / 'mariadb.pid'}",
            "--skip-grant-tables",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=0",
        ]

    def connect(self, database: str) -> Any:
        import pymysql

        return pymysql.connect(
            host=HOST,
            port=self.port,
            user="root",
            database=database or None,
            connect_timeout=2,
            autocommit=True,
        )

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@{HOST}:{self.port}/{database}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for the whole session."""
    require_module("psycopg", 'pip install -e ".[test]"')
    binaries = postgres_bin_dir()
    if binaries is None:
        _missing("PostgreSQL is not installed (apt-get install postgresql)")
    assert binaries is not None
    server = Postgres(binaries)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    """A MariaDB server for the whole session."""
    require_module("pymysql", 'pip install -e ".[test]"')
    executable = shutil.which("mariadbd", path=SEARCH_PATH)
    if executable is None:
        _missing("MariaDB is not installed (apt-get install mariadb-server-core)")
    assert executable is not None
    server = MariaDB(executable)
    try:
        server.start()
        yield server
    finally:
        server.stop()
