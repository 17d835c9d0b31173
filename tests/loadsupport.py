"""A real gunicorn serving a small SQLite app, a real `flask maintenance` CLI, and a load client.

Used by ``test_load.py``. Everything binds 127.0.0.1, every wait is bounded, and every process
started here is stopped by the code that started it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flask_maintenance.responses import PROBLEM_TYPE, READONLY_PROBLEM_TYPE

#: Every wait here is bounded by this many seconds.
TIMEOUT = 20.0
#: How often each worker re-reads the lock file in the served app.
CHECK_INTERVAL = 0.25
WORKERS = 2
#: ``flask maintenance`` processes the switcher lets run at once.
MAX_SWITCHES_IN_FLIGHT = 3
APP_MODULE = "load_subject"

APP_SOURCE = """
import os
import sqlite3
from contextlib import closing

from flask import Flask, request

from flask_maintenance import Maintenance

HERE = os.path.dirname(os.path.abspath(__file__))
DATABASE = os.path.join(HERE, "guestbook.sqlite3")

app = Flask(__name__, instance_path=os.path.join(HERE, "instance"))
app.config.update(
    SECRET_KEY="load-subject-secret",
    MAINTENANCE_LOCK_FILE=os.path.join(HERE, "maintenance.lock"),
    MAINTENANCE_CHECK_INTERVAL=float(os.environ.get("SUBJECT_CHECK_INTERVAL", "0.25")),
    MAINTENANCE_ALLOWED_PATHS=["/whoami"],
)
maintenance = Maintenance(app)


def insert(body):
    with closing(sqlite3.connect(DATABASE, timeout=30)) as db:
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable enough, and no fsync per request
        with db:
            db.execute("INSERT INTO entries (body) VALUES (?)", (body,))


@app.get("/")
def index():
    return "home page"


@app.get("/api/items")
def items():
    return {"items": ["a", "b"]}


@app.post("/entries")
def add_entry():
    insert(request.form.get("body", ""))
    return "saved"


@app.post("/api/entries")
def add_entry_json():
    insert((request.get_json(silent=True) or {}).get("body", ""))
    return {"saved": True}


@app.get("/whoami")
def whoami():
    # An allowed path: always served, so it tells which worker answered and, through the
    # banner header the extension adds while maintenance is on, what that worker believes.
    return str(os.getpid())
"""

SCHEMA = "CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)"


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    finished: float  # time.monotonic() when the body was read


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """One request on a fresh connection (sync workers close every connection anyway)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        # Header names are case-insensitive; one value per name is all these tests look at.
        received = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, received, data, time.monotonic())
    finally:
        connection.close()


class Project:
    """The app module, its SQLite database, its lock file, and the real CLI against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / f"{APP_MODULE}.py").write_text(APP_SOURCE)
        self.database = root / "guestbook.sqlite3"
        self.lock_file = root / "maintenance.lock"
        db = sqlite3.connect(self.database)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
            db.commit()
        finally:
            db.close()
        # gunicorn >= 25.1 opens a control socket in $XDG_RUNTIME_DIR (else ~/.gunicorn).
        self.env = {
            **os.environ,
            "FLASK_APP": APP_MODULE,
            "PYTHONPATH": str(root),
            "XDG_RUNTIME_DIR": str(root),
        }
        self.env.pop("FLASK_MAINTENANCE_FORCE", None)
        self.env["SUBJECT_CHECK_INTERVAL"] = str(CHECK_INTERVAL)

    def rows(self) -> int:
        db = sqlite3.connect(self.database, timeout=30)
        try:
            return int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
        finally:
            db.close()

    def flask(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the real ``flask`` command (``flask maintenance on --mode full``, ...)."""
        return subprocess.run(
            [sys.executable, "-m", "flask", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    def switch(self, *args: str) -> None:
        """``flask maintenance <args>``, failing loudly when the command fails."""
        result = self.flask("maintenance", *args)
        if result.returncode != 0:
            raise AssertionError(f"flask maintenance {' '.join(args)} failed: {result.stderr}")


class Server:
    """gunicorn with ``WORKERS`` sync workers on a free 127.0.0.1 port."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.port = free_port()
        self.log_path = project.root / "gunicorn.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(WORKERS),
                "--worker-class",
                "sync",
                "--timeout",
                "30",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
                f"{APP_MODULE}:app",
            ],
            cwd=project.root,
            env=project.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pids: set[int] = set()

    def wait_until_ready(self) -> None:
        """Until every worker has answered (each has its own copy of the state).

        Requests go four at a time, so that one busy worker leaves the next to another.
        """
        deadline = time.monotonic() + TIMEOUT
        lock = threading.Lock()

        def ask() -> None:
            try:
                pid = int(request(self.port, "GET", "/whoami").body)
            except (OSError, ValueError, http.client.HTTPException):
                return
            with lock:
                self.pids.add(pid)

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited early:\n{self.log()}")
            askers = [threading.Thread(target=ask) for _ in range(4)]
            for asker in askers:
                asker.start()
            for asker in askers:
                asker.join(timeout=TIMEOUT)
            if len(self.pids) >= WORKERS:
                return
            time.sleep(0.05)
        raise AssertionError(f"gunicorn did not start {WORKERS} workers in {TIMEOUT} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
        finally:
            self._log.close()


# -- the requests of the load, and what a correct answer to each is ------------------------


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def writes(self) -> bool:
        return self.method == "POST"

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")


PROBES = (
    Probe("GET", "/"),
    Probe("GET", "/api/items"),
    Probe("POST", "/entries", b"body=hello", (("Content-Type", "application/x-www-form-urlencoded"),)),
    Probe("POST", "/api/entries", b'{"body": "hello"}', (("Content-Type", "application/json"),)),
)

NORMAL_BODIES = {
    ("GET", "/"): lambda body: body == b"home page",
    ("GET", "/api/items"): lambda body: json.loads(body) == {"items": ["a", "b"]},
    ("POST", "/entries"): lambda body: body == b"saved",
    ("POST", "/api/entries"): lambda body: json.loads(body) == {"saved": True},
}

_SECONDS = re.compile(r"\A[0-9]+\Z")


def check(mode: str, probe: Probe, reply: Reply) -> str:
    """Classify one reply for ``mode`` as ``"200"``, ``"200+banner"`` or ``"503"``.

    :raises AssertionError: when the reply is not a correct answer in that mode (any 500, a
        503 where the mode lets the request through, a 503 without its headers, a wrong body).
    """
    where = f"{probe.method} {probe.path} in mode {mode}"
    if reply.status == 200:
        try:
            normal = NORMAL_BODIES[probe.method, probe.path](reply.body)
        except ValueError:
            normal = False
        assert normal, f"{where}: 200 with an unexpected body {reply.body[:200]!r}"
        return "200+banner" if "x-maintenance-banner" in reply.headers else "200"
    assert reply.status == 503, f"{where}: status {reply.status}, body {reply.body[:300]!r}"
    refusable = mode == "full" or (mode == "readonly" and probe.writes)
    assert refusable, f"{where}: refused, but this mode lets it through"
    headers = reply.headers
    assert _SECONDS.match(headers.get("retry-after", "")), (
        f"{where}: Retry-After {headers.get('retry-after')!r}"
    )
    assert headers.get("cache-control") == "no-store", (
        f"{where}: Cache-Control {headers.get('cache-control')!r}"
    )
    if probe.api:
        assert headers.get("content-type") == "application/problem+json", (
            f"{where}: {headers.get('content-type')!r}"
        )
        problem = json.loads(reply.body)
        expected_type = READONLY_PROBLEM_TYPE if mode == "readonly" else PROBLEM_TYPE
        assert problem["status"] == 503 and problem["type"] == expected_type, f"{where}: {problem!r}"
        assert problem["retry_after"] == int(headers["retry-after"]), f"{where}: {problem!r}"
    else:
        assert headers.get("content-type") == "text/html; charset=utf-8", (
            f"{where}: {headers.get('content-type')!r}"
        )
        title = "Read-only mode" if mode == "readonly" else "Down for maintenance"
        assert f"<title>{title}</title>".encode() in reply.body, f"{where}: {reply.body[:300]!r}"
    return "503"


@dataclass
class Tally:
    """What a load run saw; shared by the client threads under a lock."""

    sent: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    per_probe: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    wrong_count: int = 0
    server_errors: int = 0  # 500 and the like (also counted as wrong)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def figures(self) -> dict[str, int]:
        return {
            "requests": self.sent,
            "ok_200": self.kinds["200"] + self.kinds["200+banner"],
            "ok_200_with_banner": self.kinds["200+banner"],
            "unavailable_503": self.kinds["503"],
            "wrong_answers": self.wrong_count,
            "server_errors_5xx": self.server_errors,
            "connection_errors": sum(self.errors.values()),
        }


def hammer(port: int, mode: str, seconds: float, clients: int, probes: Sequence[Probe] = PROBES) -> Tally:
    """``clients`` threads sending ``probes`` round-robin for ``seconds``, each reply checked."""
    tally = Tally()
    stop_at = time.monotonic() + seconds

    def client(offset: int) -> None:
        turn = offset
        while time.monotonic() < stop_at:
            probe = probes[turn % len(probes)]
            turn += 1
            try:
                reply = request(port, probe.method, probe.path, probe.body, dict(probe.headers))
            except (OSError, http.client.HTTPException) as error:
                with tally.lock:
                    tally.sent += 1
                    tally.errors[type(error).__name__] += 1
                continue
            try:
                kind = check(mode, probe, reply)
            except (AssertionError, ValueError, KeyError) as error:
                with tally.lock:
                    tally.sent += 1
                    tally.wrong_count += 1
                    tally.server_errors += reply.status >= 500 and reply.status != 503
                    if len(tally.wrong) < 10:
                        tally.wrong.append(str(error))
                continue
            with tally.lock:
                tally.sent += 1
                tally.kinds[kind] += 1
                tally.per_probe[probe.method, probe.path, kind] += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a load client hung"
    return tally


@dataclass
class Switching:
    """What the switching thread did: how many CLI commands it started, and which failed."""

    switches: int = 0
    completed: int = 0
    failures: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)


@contextmanager
def toggling(project: Project, mode: str, period: float = 0.5) -> Iterator[Switching]:
    """Start ``flask maintenance on --mode <mode>`` / ``off`` alternately every ``period`` s.

    Each switch is its own process, started on a fixed beat; on a busy machine a command can
    take longer than the beat, so up to ``MAX_SWITCHES_IN_FLIGHT`` may run at once (a beat is
    skipped beyond that). The state is left off afterwards.
    """
    switching = Switching()
    stop = threading.Event()
    commands = (("on", "--mode", mode), ("off",))

    def reap(running: list[tuple[subprocess.Popen[bytes], float, tuple[str, ...]]], wait: bool) -> None:
        for entry in list(running):
            process, started, args = entry
            if wait:
                try:
                    process.wait(timeout=TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=TIMEOUT)
            if process.poll() is None:
                continue
            running.remove(entry)
            switching.completed += 1
            switching.durations.append(time.monotonic() - started)
            error = b""
            if process.stderr is not None:
                error = process.stderr.read()
                process.stderr.close()
            if process.returncode != 0:
                switching.failures.append(f"flask maintenance {' '.join(args)}: {error!r}")

    def toggle() -> None:
        running: list[tuple[subprocess.Popen[bytes], float, tuple[str, ...]]] = []
        beat = time.monotonic()
        try:
            while not stop.is_set():
                reap(running, wait=False)
                if len(running) < MAX_SWITCHES_IN_FLIGHT:
                    args = commands[switching.switches % 2]
                    process = subprocess.Popen(
                        [sys.executable, "-m", "flask", "maintenance", *args],
                        cwd=project.root,
                        env=project.env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )
                    running.append((process, time.monotonic(), args))
                    switching.switches += 1
                beat += period
                stop.wait(max(0.0, beat - time.monotonic()))
        finally:
            reap(running, wait=True)

    thread = threading.Thread(target=toggle, daemon=True)
    thread.start()
    try:
        yield switching
    finally:
        stop.set()
        thread.join(timeout=2 * TIMEOUT)
        project.switch("off")


def report(section: str, figures: dict[str, object]) -> None:
    """Print the figures (``pytest -s``) and merge them into ``$MAINTENANCE_REPORT`` if set."""
    print(f"\n[load figures] {section}: {json.dumps(figures, sort_keys=True)}")
    path = os.environ.get("MAINTENANCE_REPORT")
    if not path:
        return
    try:
        with open(path, encoding="utf-8") as existing:
            data = json.load(existing)
    except (FileNotFoundError, ValueError):
        data = {}
    data[section] = figures
    with open(path, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2, sort_keys=True)
        out.write("\n")
