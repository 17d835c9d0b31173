"""Acknowledged switching and the drain (issue 14): heartbeats, ``--wait``, ``status``, ``m.workers()``.

The in-process tests publish heartbeats by calling ``Worker.publish()`` (the thread would do the
same once per interval) and plant records by hand where a test needs another process's. The
slow tests run the real thing: gunicorn with two sync workers (two servers sharing a Redis),
a POST that sleeps 2 s while ``flask maintenance on --mode readonly --wait`` runs, a worker
frozen with SIGSTOP, one killed.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import AppFactory
from flask import Flask, request
from servers import (  # noqa: F401 (fixtures)
    HOST,
    AppProject,
    RedisServer,
    Server,
    answers_http,
    http_get,
    redis_server,
    require_module,
    wait_until,
)

from flask_maintenance import Maintenance
from flask_maintenance.backends import backend_from_url
from flask_maintenance.drain import Display, Progress
from flask_maintenance.workers import FORGET_AFTER, Heartbeat, read_heartbeats

OTHER_HOST = "web-2.example"


def ext(app: Flask) -> Maintenance:
    extension: Maintenance = app.extensions["maintenance"]
    return extension


def cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["maintenance", *args])


def heartbeat(
    version: str = "000000000000",
    *,
    host: str = OTHER_HOST,
    pid: int = 4242,
    state: str = "off",
    writes: int = 0,
    interval: float = 1.0,
) -> bytes:
    return Heartbeat(host, pid, "web", state, version, datetime.now(timezone.utc), writes, interval).to_json()


def plant(app: Flask, name: str, record: bytes, age: float = 0.0) -> Path:
    """A heartbeat file as another process would leave it, ``age`` seconds old."""
    lock_file = Path(app.config["MAINTENANCE_LOCK_FILE"])
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    path = lock_file.parent / f"{lock_file.name}.worker.{name}"
    path.write_bytes(record)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def current_version(app: Flask) -> str:
    data = json.loads(cli(app, "status", "--json").stdout)
    version: str = data["version"]
    return version


@pytest.fixture
def served(make_app: AppFactory) -> Flask:
    """An app (check interval 60 s: a state read stays fresh) whose lock folder exists."""
    app = make_app(MAINTENANCE_CHECK_INTERVAL=60)
    Path(app.config["MAINTENANCE_LOCK_FILE"]).parent.mkdir(parents=True, exist_ok=True)
    return app


# -- what a worker publishes -----------------------------------------------------------------


class TestHeartbeat:
    def test_a_serving_process_lists_itself_with_the_state_it_enforces(self, served: Flask) -> None:
        client = served.test_client()
        assert client.get("/").status_code == 200
        worker = ext(served).worker(app=served)
        worker.publish()
        (me,) = ext(served).workers(app=served)
        assert (me.host, me.pid, me.kind, me.state, me.writes_in_flight) == (
            socket.gethostname(),
            os.getpid(),
            "web",
            "off",
            0,
        )
        assert me.version == current_version(served)

        ext(served).enable(mode="readonly", app=served)
        worker.publish()
        (me,) = ext(served).workers(app=served)
        assert me.state == "readonly" and me.version == current_version(served)
        worker.stop()  # what a clean exit does
        assert ext(served).workers(app=served) == []

    def test_every_write_changes_the_version(self, served: Flask) -> None:
        seen = [current_version(served)]
        for args in (
            ("on",),
            ("on", "--message", "Back soon"),
            ("on", "--feature", "x", "--force"),
            ("off", "--feature", "x"),
            ("off",),
        ):
            assert cli(served, *args).exit_code == 0
            seen.append(current_version(served))
        assert all(before != after for before, after in itertools.pairwise(seen))
        assert seen[0] == seen[-1] and seen[2] == seen[4]  # the same stored state, the same version

    @pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "hook"])
    def test_an_unsafe_request_in_flight_at_the_switch_is_counted_until_it_ends(
        self, make_app: AppFactory, fast_path: bool
    ) -> None:
        app = make_app(MAINTENANCE_CHECK_INTERVAL=60, MAINTENANCE_FAST_PATH=fast_path)
        Path(app.config["MAINTENANCE_LOCK_FILE"]).parent.mkdir(parents=True, exist_ok=True)
        seen: dict[str, Heartbeat] = {}

        @app.route("/switch", methods=["GET", "POST"])
        def switch_while_in_flight() -> str:
            # The operator switches while this request is running; the worker then publishes.
            ext(app).enable(mode="readonly", app=app)
            ext(app).worker(app=app).publish()
            (seen[request.method],) = ext(app).workers(app=app)
            ext(app).disable(app=app)
            return "done"

        client = app.test_client()
        assert client.post("/switch").status_code == 200
        assert seen["POST"].writes_in_flight == 1 and seen["POST"].state == "readonly"
        ext(app).worker(app=app).publish()
        assert ext(app).workers(app=app)[0].writes_in_flight == 0  # it ended

        assert client.get("/switch").status_code == 200
        assert seen["GET"].writes_in_flight == 0  # a safe request writes nothing

    def test_an_idle_process_counts_as_switched(self, make_app: AppFactory) -> None:
        # Interval 0: every request reads the state first, so whatever is stored is enforced.
        app = make_app()
        Path(app.config["MAINTENANCE_LOCK_FILE"]).parent.mkdir(parents=True, exist_ok=True)
        app.test_client().get("/")
        ext(app).enable(mode="readonly", app=app)
        ext(app).worker(app=app).publish()
        result = cli(app, "on", "--wait", "1")
        assert result.exit_code == 0, result.output
        assert "All 1 worker enforce the new state" in result.stdout

    def test_an_app_in_testing_mode_publishes_nothing(self, make_app: AppFactory) -> None:
        app = make_app(TESTING=True)
        before = _heartbeat_threads()
        assert app.test_client().post("/form").status_code == 200
        assert _heartbeat_threads() == before


def _heartbeat_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "flask-maintenance-heartbeat")


class TestRecordsFromOthers:
    """Heartbeat files sit beside the lock, where others may write: only valid, live ones count."""

    def test_hostile_and_broken_records_are_skipped(self, served: Flask, tmp_path: Path) -> None:
        good = plant(served, "good", heartbeat())
        plant(served, "garbage", b"\x00\xff not json")
        plant(served, "list", b"[1, 2]")
        plant(served, "huge", heartbeat()[:-1] + b', "pad": "' + b"x" * 8000 + b'"}')
        plant(served, "negative", heartbeat(pid=-1))
        plant(served, "evil-state", heartbeat().replace(b'"off"', b'"evil"'))
        plant(served, "newline", heartbeat(host="a\nb"))
        plant(served, "interval", heartbeat().replace(b'"interval": 1.0', b'"interval": true'))
        plant(served, "deep", b"[" * 100_000)
        secret = tmp_path / "secret.json"
        secret.write_bytes(heartbeat(host="via-symlink"))
        (good.parent / f"{good.name[: -len('good')]}symlink").symlink_to(secret)
        os.mkfifo(good.parent / f"{good.name[: -len('good')]}fifo")
        (good.parent / f"{good.name[: -len('good')]}folder").mkdir()

        assert [worker.name for worker in ext(served).workers(app=served)] == [f"{OTHER_HOST}:4242"]
        result = cli(served, "status")
        assert result.exit_code == 0
        assert f"{OTHER_HOST}:4242" in result.stdout and "via-symlink" not in result.stdout

    def test_a_record_older_than_three_intervals_is_from_a_process_gone(self, served: Flask) -> None:
        plant(served, "fresh", heartbeat(pid=1, interval=1.0), age=2.5)
        plant(served, "stale", heartbeat(pid=2, interval=1.0), age=3.5)
        plant(served, "slow", heartbeat(pid=3, interval=10.0), age=20)
        assert [worker.pid for worker in ext(served).workers(app=served)] == [1, 3]

    def test_a_stale_record_of_a_process_that_still_runs_here_is_frozen(self, served: Flask) -> None:
        here = socket.gethostname()
        alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        try:
            plant(served, "alive", heartbeat(host=here, pid=alive.pid), age=10)
            plant(served, "dead", heartbeat(host=here, pid=dead.pid), age=10)
            (frozen,) = ext(served).workers(app=served)
            assert frozen.pid == alive.pid and not frozen.fresh
            result = cli(served, "on", "--wait", "0")
            assert result.exit_code == 1
            assert f"{here}:{alive.pid} was frozen (no heartbeat for 10 s)" in result.stderr
            assert str(dead.pid) not in result.stderr
        finally:
            alive.kill()
            alive.wait()

    def test_records_dead_for_an_hour_are_removed(self, served: Flask) -> None:
        old = plant(served, "old", heartbeat(pid=1), age=FORGET_AFTER + 60)
        recent = plant(served, "recent", heartbeat(pid=2), age=60)
        assert ext(served).workers(app=served) == []
        assert not old.exists() and recent.exists()


# -- --wait ----------------------------------------------------------------------------------


class TestWait:
    def test_with_no_worker_it_says_so_and_returns(self, served: Flask) -> None:
        result = cli(served, "on", "--wait", "--mode", "readonly")  # --wait takes no value here
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Maintenance is ON (mode readonly)")
        assert "No worker has published a heartbeat" in result.stdout

    def test_a_worker_on_the_earlier_state_makes_it_time_out_naming_it(self, served: Flask) -> None:
        plant(served, "other", heartbeat(current_version(served)))
        result = cli(served, "on", "--mode", "readonly", "--wait", "0")
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines()[-1] == (
            f"Error: gave up waiting after 0 s: {OTHER_HOST}:4242 still enforced an earlier state "
            "(off); maintenance is ON (mode readonly) all the same"
        )
        assert "waiting: workers switched 0/1, writes in flight 0" in result.stderr  # not a terminal
        assert ext(served).status(app=served, fresh=True).mode == "readonly"

    def test_writes_from_before_keep_it_waiting(self, served: Flask) -> None:
        assert cli(served, "on", "--mode", "readonly").exit_code == 0
        plant(served, "other", heartbeat(current_version(served), state="readonly", writes=2))
        result = cli(served, "on", "--wait", "0")
        assert result.exit_code == 1
        assert f"{OTHER_HOST}:4242 had 2 writes in flight from before the switch" in result.stderr

    def test_off_waits_for_workers_to_serve_normally_but_not_for_writes(self, served: Flask) -> None:
        assert cli(served, "on", "--mode", "readonly").exit_code == 0
        plant(served, "other", heartbeat(current_version(served), state="readonly", writes=3))
        result = cli(served, "off", "--wait", "0")
        assert result.exit_code == 1
        assert "still enforced an earlier state (readonly); maintenance is OFF all the same" in result.stderr
        plant(served, "other", heartbeat(current_version(served), writes=3))
        result = cli(served, "off", "--wait", "0")
        assert result.exit_code == 0, result.output
        assert "All 1 worker enforce the new state" in result.stdout

    @pytest.mark.parametrize("value", ["abc", "1e3", "99999999"])
    def test_a_bad_wait_is_one_line_and_changes_nothing(self, served: Flask, value: str) -> None:
        result = cli(served, "on", "--wait", value)
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and "--wait" in result.stderr
        assert not ext(served).status(app=served, fresh=True).active

    def test_run_does_not_start_the_command_while_a_worker_lags(self, served: Flask, tmp_path: Path) -> None:
        plant(served, "other", heartbeat(current_version(served)))
        marker = tmp_path / "migrated"
        command = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
        result = cli(served, "run", "--mode", "readonly", "--wait", "0", "--", *command)
        assert result.exit_code == 1
        assert f"{OTHER_HOST}:4242 still enforced an earlier state (off); {sys.executable} did not start" in (
            result.stderr
        )
        assert not marker.exists()
        assert (
            not ext(served).status(app=served, fresh=True).active
        )  # given back, like a command that cannot start

        result = cli(served, "run", "--mode", "readonly", "--no-wait", "--", *command)
        assert result.exit_code == 0, result.output
        assert marker.exists()

    def test_the_progress_bar_on_a_terminal(self, capsys: pytest.CaptureFixture[str]) -> None:
        workers = (
            Heartbeat("a", 1, "web", "readonly", "v2", datetime.now(timezone.utc), 1, 1.0),
            Heartbeat("b", 2, "web", "off", "v1", datetime.now(timezone.utc), 0, 1.0),
        )
        display = Display(terminal=True)
        display(Progress("v2", True, workers), 1.2)
        display.close()
        err = capsys.readouterr().err
        assert err.startswith("\r[############------------] workers switched 1/2, writes in flight 1 (1 s)")
        assert err.endswith("\n")


class TestStatus:
    def test_status_lists_the_workers_in_text_and_json(self, served: Flask) -> None:
        plant(served, "other", heartbeat(writes=1))
        text = cli(served, "status")
        assert text.exit_code == 0
        assert "  workers:      1 (1 not switched yet)" in text.stdout
        assert f"    {OTHER_HOST}:4242" in text.stdout and "writes in flight 1" in text.stdout

        data = json.loads(cli(served, "status", "--json").stdout)
        (worker,) = data["workers"]
        assert {
            key: worker[key] for key in ("host", "pid", "kind", "state", "writes_in_flight", "fresh")
        } == {
            "host": OTHER_HOST,
            "pid": 4242,
            "kind": "web",
            "state": "off",
            "writes_in_flight": 1,
            "fresh": True,
        }
        assert datetime.fromisoformat(worker["last_heartbeat"].replace("Z", "+00:00"))


# -- Redis -----------------------------------------------------------------------------------


class TestRedis:
    def test_one_hash_beside_the_state_key_aged_by_the_servers_clock(
        self, make_app: AppFactory, redis_server: RedisServer
    ) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url, MAINTENANCE_CHECK_INTERVAL=60)
        app.test_client().get("/")
        worker = ext(app).worker(app=app)
        worker.publish()
        client = redis_server.client()
        me = f"{socket.gethostname()}:{os.getpid()}"
        assert list(client.hkeys("flask-maintenance:state:workers")) == [me.encode()]

        seconds, _ = client.time()
        client.hset(
            "flask-maintenance:state:workers", "old:1", f"{seconds - 10}.000000 ".encode() + heartbeat()
        )
        client.hset(
            "flask-maintenance:state:workers", "now:2", f"{seconds}.000000 ".encode() + heartbeat(pid=2)
        )
        client.hset("flask-maintenance:state:workers", "junk:3", b"no stamp at all")
        client.hset("flask-maintenance:state:workers", "junk:4", b"12.5 " + b"{" * 5000)
        assert {w.pid for w in ext(app).workers(app=app)} == {os.getpid(), 2}

        worker.stop()
        assert me.encode() not in client.hkeys("flask-maintenance:state:workers")


# -- real servers ----------------------------------------------------------------------------

SUBJECT = "drain_subject"
SUBJECT_SOURCE = """
import os
import sqlite3
import time
from contextlib import closing

from flask import Flask, request

from flask_maintenance import Maintenance

HERE = os.path.dirname(os.path.abspath(__file__))
app = Flask(__name__, instance_path=os.path.join(HERE, "instance"))
app.config.update(
    SECRET_KEY="drain-subject",
    MAINTENANCE_LOCK_FILE=os.path.join(HERE, "maintenance.lock"),
    MAINTENANCE_CHECK_INTERVAL=float(os.environ["SUBJECT_CHECK_INTERVAL"]),
)
if os.environ.get("SUBJECT_REDIS_URL"):
    app.config["MAINTENANCE_BACKEND"] = os.environ["SUBJECT_REDIS_URL"]
maintenance = Maintenance(app)


def save(name):
    with closing(sqlite3.connect(os.path.join(HERE, "orders.sqlite3"), timeout=10)) as db:
        db.execute("CREATE TABLE IF NOT EXISTS orders (name TEXT)")
        db.execute("INSERT INTO orders VALUES (?)", (name,))
        db.commit()


@app.get("/")
def index():
    return str(os.getpid())


@app.post("/orders")
def order():
    save(request.form["name"])
    return "saved"


@app.post("/orders/slow")
def slow_order():
    # Tells the test it is in flight; once the switch is made (however long the `flask`
    # command takes to start on a busy machine), it takes 2 s more before writing.
    open(os.path.join(HERE, "in-flight"), "w").close()
    deadline = time.monotonic() + 30
    while not maintenance.status(fresh=True).active and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2)
    save(request.form["name"])
    return "saved"
"""


class Subject(AppProject):
    """The app module on disk, its gunicorn servers, and the real ``flask`` command."""

    def __init__(self, directory: Path, check_interval: float, redis_url: str = "") -> None:
        require_module("gunicorn", 'pip install -e ".[test]"')
        super().__init__(
            directory,
            SUBJECT,
            SUBJECT_SOURCE,
            SUBJECT_CHECK_INTERVAL=str(check_interval),
            SUBJECT_REDIS_URL=redis_url,
        )

    def maintenance(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.flask("maintenance", *args)

    def workers(self) -> list[Heartbeat]:
        """The live heartbeats, read here (``status --json`` shows the same, a subprocess each)."""
        url = self.env["SUBJECT_REDIS_URL"]
        lock_file = self.directory / "maintenance.lock"
        return read_heartbeats(backend_from_url(url or "file", lock_file=lock_file))

    def workers_in_status(self) -> list[dict[str, Any]]:
        result = self.maintenance("status", "--json")
        assert result.returncode == 0, result.stderr
        workers: list[dict[str, Any]] = json.loads(result.stdout)["workers"]
        return workers

    def orders(self) -> list[str]:
        with closing(sqlite3.connect(self.directory / "orders.sqlite3")) as db:
            return [name for (name,) in db.execute("SELECT name FROM orders")]

    @contextmanager
    def serving(self, workers: int = 2) -> Iterator[GunicornServer]:
        server = GunicornServer(self, workers)
        try:
            server.start(self.env, self.directory)
            yield server
        finally:
            server.stop()


class GunicornServer(Server):
    name = "gunicorn"

    def __init__(self, subject: Subject, workers: int) -> None:
        super().__init__(subject.directory)
        self.workers = workers

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{self.port}", "--workers", str(self.workers),
            "--graceful-timeout", "5", f"{SUBJECT}:app",
        ]  # fmt: skip

    def ready(self) -> bool:
        return answers_http(self.port)

    def post(self, path: str, name: str) -> int:
        return http_get(
            self.port,
            path,
            method="POST",
            body=f"name={name}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).status


@contextmanager
def load(*servers: GunicornServer) -> Iterator[None]:
    """GET requests to every server from a few threads until the block ends (bounded anyway)."""
    stop = threading.Event()

    def hammer(server: GunicornServer) -> None:
        for _ in range(20_000):
            if stop.is_set():
                return
            try:
                http_get(server.port, "/")
            except (OSError, http.client.HTTPException):
                pass  # a worker killed on purpose

    threads = [threading.Thread(target=hammer, args=(s,), daemon=True) for s in servers for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``call`` in a thread; the dict gets its result and the monotonic time it returned."""
    out: dict[str, Any] = {}

    def run() -> None:
        out["result"] = call()
        out["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def every_worker_listed(subject: Subject, count: int) -> Callable[[], bool]:
    return lambda: len(subject.workers()) == count


def readonly_with_a_write_in_flight(subject: Subject, server: GunicornServer, workers: int) -> None:
    """The issue's scenario: a POST that takes 2 s is in flight on ``server`` when ``flask
    maintenance on --mode readonly --wait`` runs; the command returns only after its write."""
    wait_until(every_worker_listed(subject, workers), f"{workers} workers' heartbeats")
    post, posted = in_background(lambda: server.post("/orders/slow", "before-the-switch"))
    wait_until((subject.directory / "in-flight").exists, "the slow POST to be in flight")

    on = subject.maintenance("on", "--mode", "readonly", "--wait")
    returned_at = time.monotonic()
    post.join(timeout=20)
    assert on.returncode == 0, on.stderr
    assert f"All {workers} workers enforce the new state" in on.stdout
    assert "waited for 1 write in flight from before the switch to finish" in on.stdout
    assert posted["result"] == 200 and posted["at"] <= returned_at
    assert subject.orders() == ["before-the-switch"]  # the write landed before `on` returned


@pytest.mark.slow
class TestUnderGunicorn:
    def test_readonly_wait_returns_once_the_post_in_flight_has_written(self, tmp_path: Path) -> None:
        subject = Subject(tmp_path / "site", check_interval=0.25)
        with subject.serving() as server, load(server):
            readonly_with_a_write_in_flight(subject, server, workers=2)
            assert server.post("/orders", "after-the-switch") == 503

            off = subject.maintenance("off", "--wait")
            assert off.returncode == 0, off.stderr
            assert "All 2 workers enforce the new state" in off.stdout
            assert server.post("/orders", "after-off") == 200
            assert subject.orders() == ["before-the-switch", "after-off"]

    def test_a_frozen_worker_times_out_the_wait_and_a_killed_one_stops_counting(self, tmp_path: Path) -> None:
        subject = Subject(tmp_path / "site", check_interval=1.0)
        with subject.serving() as server, load(server):
            wait_until(every_worker_listed(subject, 2), "both workers' heartbeats")
            frozen = subject.workers()[0]
            os.kill(frozen.pid, signal.SIGSTOP)
            try:
                # Frozen shows once its heartbeat is three intervals late; till then it may be idle.
                wait_until(
                    lambda: not next(w for w in subject.workers() if w.pid == frozen.pid).fresh,
                    "the frozen worker's heartbeat to be late",
                )
                on = subject.maintenance("on", "--mode", "readonly", "--wait", "2")
                assert on.returncode == 1
                assert f"gave up waiting after 2 s: {frozen.name} was frozen (no heartbeat for " in on.stderr
                assert "still enforced an earlier state (off)" in on.stderr
                listed = [worker["pid"] for worker in subject.workers_in_status()]
                assert frozen.pid in listed  # frozen: still counted, for as long as it lives
            finally:
                os.kill(frozen.pid, signal.SIGKILL)
            again = subject.maintenance("on", "--wait", "10")
            assert again.returncode == 0, again.stderr
            assert frozen.name not in again.stdout + again.stderr
            assert frozen.pid not in [worker.pid for worker in subject.workers()]

    def test_two_servers_on_one_redis(self, tmp_path: Path, redis_server: RedisServer) -> None:
        subject = Subject(tmp_path / "site", check_interval=0.25, redis_url=redis_server.url)
        with subject.serving() as first, subject.serving() as second, load(first, second):
            readonly_with_a_write_in_flight(subject, second, workers=4)
            assert {worker.state for worker in subject.workers()} == {"readonly"}
            assert first.post("/orders", "x") == 503 and second.post("/orders", "y") == 503
