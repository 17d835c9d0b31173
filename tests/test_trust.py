"""The regression tests of issue 11 ("Trust at 3 a.m."): one or more per defect found under attack.

Each test reproduces its defect as a user or an attacker meets it (a status code, a header, a file's
mode, an exit status, a command that hangs) and failed on the code before the fix (commit 9b62757);
the two marked "companion" check a promise that the fix must keep and the old code kept too.
They use only public behaviour: ``Maintenance``, HTTP through the test client or a real server,
the real ``flask`` and ``flask-maintenance-guard`` commands, and files on disk. A defect that made
something hang is tested with a bound, so that it fails by timeout instead of hanging the suite.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import pytest
import werkzeug.http
from cli_support import FLASK, make_project
from click.testing import Result
from flask import Blueprint, Flask
from flask.sessions import SecureCookieSessionInterface
from jinja2 import DictLoader
from servers import (  # noqa: F401 (fixtures)
    AppProject,
    Nginx,
    RedisServer,
    public_dir,
    redis_server,
    require_module,
)
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder

import flask_maintenance.responses
from flask_maintenance import ConfigurationError, Maintenance, State
from flask_maintenance.accept import prefers_json

AppFactory = Callable[..., Flask]
T = TypeVar("T")

#: A call that should return at once but might hang (a FIFO) gets this long before it fails.
HANG_LIMIT = 10.0
#: Every other wait in these tests is bounded by this many seconds.
TIMEOUT = 30.0
PROBLEM_TYPE = "urn:flask-maintenance:problem:maintenance"


def within(seconds: float, what: str, call: Callable[[], T]) -> T:
    """``call()``'s result, or a failure when it has not returned after ``seconds`` (a hang).

    It runs in a daemon thread: a call that hangs for good stays blocked there without holding
    up the rest of the suite.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the test below
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"{what} did not return within {seconds:.0f} s: it hangs")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def run_bounded(argv: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A real command that must finish within :data:`HANG_LIMIT` seconds."""
    try:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=HANG_LIMIT,
            **kwargs,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} did not finish within {HANG_LIMIT:.0f} s: it hangs")


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def lock_path(app: Flask) -> Path:
    return Path(app.config["MAINTENANCE_LOCK_FILE"])


def plan_path(app: Flask) -> Path:
    return Path(f"{app.config['MAINTENANCE_LOCK_FILE']}.plan")


def extension_of(app: Flask) -> Maintenance:
    extension: Maintenance = app.extensions["maintenance"]
    return extension


def cli(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


# -- 1. the temp file's mode is set on its descriptor, never through a path ------------------------


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A private file (0600) that an attacker would like to make world-readable."""
    path = tmp_path / "victim-secret"
    path.write_text("root's secret\n")
    path.chmod(0o600)
    return path


def swap_temp_file_for_symlink_before_fsync(monkeypatch: pytest.MonkeyPatch, victim: Path) -> list[str]:
    """Play the attacker: between writing the temp file and renaming it, swap it for a symlink.

    The swap happens when the temp file is synced, which is after its content is written and
    before the rename. Returns the swapped paths, so that a test knows the attack took place.
    """
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to find the temp file's path from its descriptor")
    real_fsync = os.fsync
    swapped: list[str] = []

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if not swapped and os.path.basename(path).startswith(".maintenance-") and os.path.isfile(path):
            os.remove(path)
            os.symlink(victim, path)
            swapped.append(path)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return swapped


def test_switching_on_never_changes_the_mode_of_a_file_swapped_in_for_the_temp_file(
    app: Flask, maintenance: Maintenance, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swapped = swap_temp_file_for_symlink_before_fsync(monkeypatch, victim)
    maintenance.enable(app=app)
    assert swapped, "the attack never took place: the lock file was written without a temp file"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert victim.read_text() == "root's secret\n"


def test_render_page_never_changes_the_mode_of_a_file_swapped_in_for_the_temp_file(
    app: Flask, victim: Path, public_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swapped = swap_temp_file_for_symlink_before_fsync(monkeypatch, victim)
    result = cli(app, "maintenance", "render-page", str(public_dir / "maintenance.html"))
    assert result.exit_code == 0, result.output
    assert swapped, "the attack never took place: the page was written without a temp file"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600


# -- 2. a FIFO at the lock or plan path never hangs anything --------------------------------------


@pytest.fixture
def release_fifos() -> Iterator[list[Path]]:
    """FIFOs a test makes; afterwards each is opened for writing once, so that a reader blocked
    on it (the old code) gets end-of-file and its thread ends."""
    fifos: list[Path] = []
    yield fifos
    for fifo in fifos:
        for _ in range(8):  # each open wakes the readers blocked at that moment
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody is reading it (any more)
                break
            os.close(fd)
            time.sleep(0.05)


@pytest.mark.parametrize("which", ["lock", "plan"])
def test_a_fifo_at_the_state_path_never_hangs_a_request(
    make_app: AppFactory, tmp_path: Path, which: str, release_fifos: list[Path]
) -> None:
    lock = tmp_path / "maintenance.lock"
    fifo = lock if which == "lock" else Path(f"{lock}.plan")
    os.mkfifo(fifo)
    release_fifos.append(fifo)
    app = make_app(MAINTENANCE_LOCK_FILE=str(lock))
    client = app.test_client()

    page = within(HANG_LIMIT, f"a request with a FIFO at the {which} path", lambda: client.get("/"))
    assert page.status_code == 503  # damaged: full maintenance with the defaults
    assert page.headers["Retry-After"] == "60"
    api = within(HANG_LIMIT, "a second request", lambda: client.get("/api/items"))
    assert (api.status_code, api.json["type"], api.json["retry_after"]) == (503, PROBLEM_TYPE, 60)


@pytest.mark.parametrize("which", ["lock", "plan"])
def test_a_fifo_at_the_state_path_never_hangs_status_the_guard_or_a_gated_command(
    tmp_path: Path, which: str, release_fifos: list[Path]
) -> None:
    project = make_project(tmp_path / "project")
    fifo = project.lock_file if which == "lock" else Path(f"{project.lock_file}.plan")
    os.mkfifo(fifo)
    release_fifos.append(fifo)
    env = project.env()
    where = {"cwd": project.root, "env": env}

    status = run_bounded([FLASK, "maintenance", "status"], "flask maintenance status", **where)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("Maintenance is ON (mode full)"), status.stdout

    guard = run_bounded(
        [
            str(Path(FLASK).parent / "flask-maintenance-guard"),
            "--lock-file",
            str(project.lock_file),
            "--",
            "true",
        ],
        "flask-maintenance-guard",
        **where,
    )
    assert guard.returncode == 75, guard.stderr
    assert "skipped: true" in guard.stderr

    command = run_bounded([FLASK, "hello"], "an app command under the command gate", **where)
    assert command.returncode == 75, command.stderr
    assert "maintenance is on (mode full" in command.stderr
    assert project.ran("hello") == 0


# -- 3. a hostile Accept header costs no more than a browser's -----------------------------------


def test_only_a_bounded_prefix_of_the_accept_header_decides_json_or_html(
    app: Flask, maintenance: Maintenance
) -> None:
    maintenance.enable(app=app)
    filler = ", ".join(f"application/x-filler-{i:03d};q=0.1" for i in range(40))
    assert len(filler) > 1100
    # A client that prefers JSON, but says so only after 1,100 characters and 40 entries.
    accept = f"text/html;q=0.9, {filler}, application/json"
    refused = app.test_client().get("/", headers={"Accept": accept})
    assert refused.status_code == 503
    assert refused.content_type == "text/html; charset=utf-8"
    # Said early, it counts.
    early = app.test_client().get("/", headers={"Accept": "text/html;q=0.9, application/json"})
    assert early.content_type == "application/problem+json"


@pytest.mark.parametrize("size", [8 * 1024, 1024 * 1024])
def test_a_hostile_accept_header_gets_the_503_without_a_full_parse(
    app: Flask, maintenance: Maintenance, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    maintenance.enable(app=app)
    parses: list[str] = []
    real_parse = werkzeug.http.parse_accept_header

    def counting_parse(value: Any, *args: Any, **kwargs: Any) -> Any:
        parses.append(value)
        return real_parse(value, *args, **kwargs)

    monkeypatch.setattr(werkzeug.http, "parse_accept_header", counting_parse)
    # The code before the fix imported the function into its own namespace.
    monkeypatch.setattr(flask_maintenance.responses, "parse_accept_header", counting_parse, raising=False)
    unit = "application/json;q=0.5, text/x-junk;q=0.7, "
    hostile = (unit * (size // len(unit) + 1))[:size]
    assert prefers_json(hostile) is True  # it says JSON (q=0.5) and never HTML
    refused = app.test_client().get("/", headers={"Accept": hostile})
    assert refused.status_code == 503
    assert refused.content_type == "application/problem+json"
    assert refused.headers["Retry-After"] == "60"
    assert parses == []


# -- 4. a plan larger than 64 KiB is damaged: never truncated, never overwritten ------------------


def oversized_plan() -> bytes:
    features = {
        f"feature-{number:04d}": {"message": "x" * 100, "started_at": "2026-12-01T00:00:00Z"}
        for number in range(700)
    }
    data = (json.dumps({"features": features}, indent=2, sort_keys=True) + "\n").encode()
    assert len(data) > 64 * 1024
    return data


def test_a_plan_larger_than_64_kib_fails_closed(app: Flask) -> None:
    plan_path(app).parent.mkdir(parents=True, exist_ok=True)
    plan_path(app).write_bytes(oversized_plan())
    # The home page belongs to none of the features: only failing closed refuses it.
    refused = app.test_client().get("/")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "60"


def test_a_plan_larger_than_64_kib_is_never_rewritten(run_flask: Callable[..., Any], tmp_path: Path) -> None:
    plan = tmp_path / "maintenance.lock.plan"
    plan.write_bytes(oversized_plan())
    result = run_flask("maintenance", "on", "--feature", "search", "--force")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "maintenance plan" in one_line(result.stderr)
    assert plan.read_bytes() == oversized_plan()


def test_a_write_that_would_make_the_plan_larger_than_64_kib_is_refused_in_one_line(app: Flask) -> None:
    message = "m" * 2000  # the longest message there may be
    refused = None
    for number in range(60):  # 60 such features would make about 120 KiB
        before = plan_path(app).read_bytes() if plan_path(app).exists() else None
        result = cli(
            app, "maintenance", "on", "--feature", f"feature-{number:02d}", "--force", "--message", message
        )
        if result.exit_code != 0:
            refused = number
            break
    assert refused is not None, "every write went through: the plan grew past 64 KiB"
    assert refused > 20  # the limit is the plan's size, not a number of features
    assert "64 KiB" in one_line(result.stderr)
    assert plan_path(app).read_bytes() == before
    assert len(extension_of(app).status(fresh=True, app=app).features) == refused


# -- 5. concurrent plan updates lose nothing ------------------------------------------------------

WORKER_SOURCE = """
import os
import sys

from flask import Flask
from flask_maintenance import Maintenance

backend, lock_file, action, rounds, folder, go = sys.argv[1:]
app = Flask("worker", instance_path=folder)
app.config.update(
    MAINTENANCE_BACKEND=backend, MAINTENANCE_LOCK_FILE=lock_file, MAINTENANCE_CHECK_INTERVAL=0
)
maintenance = Maintenance(app)
for number in range(int(rounds)):
    open(os.path.join(folder, f"ready-{number}-{action}"), "w").close()
    if not os.read(int(go), 1):  # the start: the test writes to every worker's pipe at once
        sys.exit("the test went away")
    if action == "off":
        maintenance.disable(app=app)
    else:
        maintenance.enable(feature=action, app=app)
    open(os.path.join(folder, f"done-{number}-{action}"), "w").close()
"""


def wait_for_files(paths: list[Path], workers: list[subprocess.Popen[bytes]], what: str) -> None:
    """Wait until every worker wrote its file in ``paths`` (one per worker, in their order).

    A worker that exited before writing its file crashed; one that wrote it may exit (after its
    last round it does, while the others may still be writing theirs).
    """
    deadline = time.monotonic() + TIMEOUT
    while not all(path.exists() for path in paths):
        crashed = [
            worker.args[4]
            for worker, path in zip(workers, paths, strict=True)
            if worker.poll() is not None and not path.exists()
        ]
        assert not crashed, f"workers {crashed} exited while the test waited for {what} (see their logs)"
        assert time.monotonic() < deadline, f"{what} did not happen within {TIMEOUT:.0f} s"
        time.sleep(0.005)


def race_rounds(
    folder: Path,
    app: Flask,
    actions: list[str],
    rounds: int,
    before_each_round: Callable[[], None],
) -> list[set[str]]:
    """Run ``actions`` in real processes, all released at the same instant, ``rounds`` times.

    Each action is ``"off"`` or the name of a feature to switch off. Returns the features
    switched off after each round.
    """
    folder = folder / f"race-{'-'.join(actions)}"
    folder.mkdir()
    script = folder / "plan_worker.py"
    script.write_text(WORKER_SOURCE)
    settings = extension_of(app).settings(app=app)
    Path(settings.lock_file).parent.mkdir(parents=True, exist_ok=True)  # a deployed app's folder
    workers: list[subprocess.Popen[bytes]] = []
    starts: list[int] = []  # the write end of each worker's start pipe
    outcomes: list[set[str]] = []
    try:
        for action in actions:
            read_end, write_end = os.pipe()
            starts.append(write_end)
            argv = [sys.executable, str(script), settings.backend, settings.lock_file, action]
            with open(folder / f"worker-{action}.log", "wb") as log:
                workers.append(
                    subprocess.Popen(
                        [*argv, str(rounds), str(folder), str(read_end)],
                        pass_fds=(read_end,),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            os.close(read_end)
        for number in range(rounds):
            before_each_round()
            ready = [folder / f"ready-{number}-{action}" for action in actions]
            wait_for_files(ready, workers, f"every worker ready for round {number}")
            time.sleep(0.02)  # from writing its ready file to waiting on its pipe
            for start in starts:
                os.write(start, b"g")
            done = [folder / f"done-{number}-{action}" for action in actions]
            wait_for_files(done, workers, f"round {number}")
            outcomes.append(set(extension_of(app).status(fresh=True, app=app).features))
        for worker in workers:
            assert worker.wait(timeout=TIMEOUT) == 0
    finally:
        for start in starts:
            os.close(start)
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=TIMEOUT)
    return outcomes


FEATURES = ["alpha", "bravo", "charlie", "delta"]


def four_features_switched_off_at_once(folder: Path, app: Flask) -> None:
    maintenance = extension_of(app)

    def nothing_off() -> None:
        for name in FEATURES:
            maintenance.disable(feature=name, app=app)

    outcomes = race_rounds(folder, app, FEATURES, 20, nothing_off)
    lost = [
        (number, sorted(set(FEATURES) - off)) for number, off in enumerate(outcomes) if off != set(FEATURES)
    ]
    assert lost == [], f"rounds that lost a feature: {lost}"


def off_racing_a_feature_switch(folder: Path, app: Flask) -> None:
    maintenance = extension_of(app)

    def on_with_one_feature_off() -> None:
        for name in FEATURES:
            maintenance.disable(feature=name, app=app)
        maintenance.enable(app=app)
        maintenance.enable(feature="alpha", app=app)

    outcomes = race_rounds(folder, app, ["off", "bravo"], 20, on_with_one_feature_off)
    lost = [(number, sorted(off)) for number, off in enumerate(outcomes) if off != {"alpha", "bravo"}]
    assert lost == [], f"rounds in which `off` lost a feature switched off at the same time: {lost}"
    assert not maintenance.status(fresh=True, app=app).active


@pytest.mark.slow
def test_four_processes_switching_off_four_features_at_once_lose_none(
    make_app: AppFactory, tmp_path: Path
) -> None:
    four_features_switched_off_at_once(tmp_path, make_app())


@pytest.mark.slow
def test_off_racing_a_feature_switch_never_loses_the_feature(make_app: AppFactory, tmp_path: Path) -> None:
    off_racing_a_feature_switch(tmp_path, make_app())


@pytest.mark.slow
def test_four_processes_switching_off_four_features_in_redis_at_once_lose_none(
    make_app: AppFactory, tmp_path: Path, redis_server: RedisServer
) -> None:
    four_features_switched_off_at_once(tmp_path, make_app(MAINTENANCE_BACKEND=redis_server.url))


@pytest.mark.slow
def test_off_racing_a_feature_switch_in_redis_never_loses_the_feature(
    make_app: AppFactory, tmp_path: Path, redis_server: RedisServer
) -> None:
    off_racing_a_feature_switch(tmp_path, make_app(MAINTENANCE_BACKEND=redis_server.url))


# -- 6. the banner header stays small enough for every proxy --------------------------------------

KOREAN_BANNER = ("서버 점검 중입니다. 잠시 후 다시 시도해 주세요. " * 80)[:2000]


def test_a_long_non_ascii_banner_is_cut_to_1024_bytes_on_a_character_boundary(
    app: Flask, maintenance: Maintenance
) -> None:
    assert len(KOREAN_BANNER) == 2000
    maintenance.enable(mode="banner", message=KOREAN_BANNER, app=app)
    page = app.test_client().get("/")
    assert page.status_code == 200
    header = page.headers["X-Maintenance-Banner"]
    assert len(header.encode("latin-1")) <= 1024
    assert re.fullmatch(r"(?:[^%]|%[0-9A-F]{2})*", header), "a percent escape was cut in two"
    text = unquote(header, errors="strict")
    assert text.endswith("…")
    shown = text[:-1]
    assert len(shown) > 50 and " ".join(KOREAN_BANNER.split()).startswith(shown)


@pytest.mark.slow
def test_a_long_non_ascii_banner_passes_a_real_nginx(public_dir: Path, tmp_path: Path) -> None:
    lock = public_dir / "maintenance.lock"
    project = AppProject(tmp_path / "site", MAINTENANCE_LOCK_FILE=str(lock), MAINTENANCE_CHECK_INTERVAL="0")
    switched = project.flask("maintenance", "on", "--mode", "banner", "--message", KOREAN_BANNER)
    assert switched.returncode == 0, switched.stderr
    with project.gunicorn() as upstream:
        nginx = Nginx(public_dir, server_snippet="", upstream_port=upstream.port)
        with nginx:
            upstream.launch()
            nginx.launch()
            upstream.wait_ready()
            nginx.wait_ready()
            page = nginx.get("/")
    assert page.status == 200, page.text[:200]
    assert page.text.startswith("home page from the app")
    assert 0 < len(page.headers["x-maintenance-banner"]) <= 1024


# -- 7. a bypass cookie is verified where it is seen ----------------------------------------------


class FailingSessionStore(SecureCookieSessionInterface):
    """A server-side session store that is down: opening a session raises."""

    down = True

    def open_session(self, app: Flask, request: Any) -> Any:
        if self.down:
            raise ConnectionError("the session store is down")
        return super().open_session(app, request)


def test_a_forged_bypass_cookie_gets_the_503_even_when_the_session_store_is_down(
    app: Flask, maintenance: Maintenance, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingSessionStore()
    app.session_interface = store
    maintenance.enable(secret="the-admins-token", app=app)
    caplog.set_level(logging.CRITICAL, logger=app.logger.name)  # the 500's traceback, if any
    # Without a cookie jar, which would replace the Cookie header with its own (empty) one.
    raw = app.test_client(use_cookies=False)
    assert raw.get("/_maintenance").status_code == 500  # the store really is down for the app
    for value in ("forged", "", "a.b.c", "x" * 5000):
        refused = raw.get("/", headers={"Cookie": f"theme=dark; maintenance_bypass={value}"})
        assert refused.status_code == 503, value
    # The admin's real cookie still passes (once the store is back).
    store.down = False
    client = app.test_client()
    link = client.get("/_maintenance/bypass/the-admins-token")
    assert link.status_code == 303
    assert client.get("/").status_code == 200


# -- 8. `run` and `window` hold the requested mode, then give back exactly what was there ---------

DURING_SOURCE = """
import sys

from subject_app import app

answer = app.test_client().post("/")
with open(sys.argv[1], "w") as out:
    out.write(str(answer.status_code))
"""


def test_run_raises_banner_to_full_for_the_command_then_restores_the_banner(
    run_flask: Callable[..., Any], tmp_path: Path
) -> None:
    lock = tmp_path / "maintenance.lock"
    assert run_flask("maintenance", "on", "--mode", "banner", "--message", "Deploying").returncode == 0
    before = lock.read_bytes()
    during = tmp_path / "during"
    seen_lock = tmp_path / "lock-during"
    script = tmp_path / "during.py"
    script.write_text(DURING_SOURCE)
    command = f"cp {lock} {seen_lock} && {sys.executable} {script} {during}"
    result = run_flask("maintenance", "run", "--mode", "full", "--", "sh", "-c", command)
    assert result.returncode == 0, result.stderr
    assert json.loads(seen_lock.read_text())["mode"] == "full"
    assert during.read_text() == "503"  # a write during the command is refused
    assert lock.read_bytes() == before
    assert "raised from mode banner to full" in result.stderr
    assert "back to mode banner" in result.stderr


def test_window_raises_banner_to_full_for_the_block_then_restores_the_banner(
    app: Flask, maintenance: Maintenance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flask_maintenance")
    maintenance.enable(mode="banner", message="Deploying", app=app)
    before = lock_path(app).read_bytes()
    client = app.test_client()
    assert client.post("/form").status_code == 200
    with maintenance.window(mode="full", app=app):
        assert maintenance.status(fresh=True, app=app).mode == "full"
        assert client.post("/form").status_code == 503
    assert lock_path(app).read_bytes() == before
    assert client.post("/form").status_code == 200
    assert "raised from mode banner to full" in caplog.text
    assert "back to mode banner" in caplog.text


def test_window_leaves_a_change_made_during_it_as_it_was_made(app: Flask, maintenance: Maintenance) -> None:
    # Companion: giving the state back must never undo somebody else's change.
    maintenance.enable(mode="banner", app=app)
    with maintenance.window(mode="full", app=app):
        theirs = maintenance.enable(mode="readonly", message="Theirs", app=app)
    after = maintenance.status(fresh=True, app=app)
    assert (after.mode, after.message, after.window) == ("readonly", "Theirs", theirs.window)


# -- 9. the fast path decides on the request as the app sees it -----------------------------------


class PrefixStrip:
    """Serves the app under ``prefix``: moves it from PATH_INFO to SCRIPT_NAME."""

    def __init__(self, app: Any, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix) :]
        return self.app(environ, start_response)


class Opaque:
    """A middleware that keeps the app it wraps where nobody can find it."""

    def __init__(self, app: Any) -> None:
        self._hidden = (app,)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._hidden[0](environ, start_response)


def wrapped_app(tmp_path: Path, wrap: Callable[[Any], Any], **config: Any) -> Flask:
    """An app whose ``wsgi_app`` is wrapped BEFORE ``Maintenance(app)``."""
    app = Flask("wrapped", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="test-secret", MAINTENANCE_CHECK_INTERVAL=0, **config)

    @app.get("/")
    def index() -> str:
        return "home page"

    @app.get("/health")
    def health() -> str:
        return "healthy"

    app.wsgi_app = wrap(app.wsgi_app)  # type: ignore[method-assign]
    Maintenance(app)
    return app


def test_allowed_paths_and_the_status_path_pass_behind_a_prefix_stripping_middleware(tmp_path: Path) -> None:
    app = wrapped_app(
        tmp_path, lambda inner: PrefixStrip(inner, "/shop"), MAINTENANCE_ALLOWED_PATHS=["/health"]
    )
    extension_of(app).enable(app=app)
    client = app.test_client()
    health = client.get("/shop/health")
    assert (health.status_code, health.text) == (200, "healthy")
    status = client.get("/shop/_maintenance")
    assert status.status_code == 200 and status.json["active"] is True
    assert client.get("/shop/").status_code == 503


def test_an_allowlisted_admin_passes_behind_whitenoise_around_proxy_fix(tmp_path: Path) -> None:
    require_module("whitenoise", 'pip install -e ".[test]"')
    from werkzeug.middleware.proxy_fix import ProxyFix
    from whitenoise import WhiteNoise

    app = wrapped_app(
        tmp_path, lambda inner: WhiteNoise(ProxyFix(inner, x_for=1)), MAINTENANCE_ALLOWED_IPS=["10.1.2.3"]
    )
    extension_of(app).enable(app=app)
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    admin = client.get("/", headers={"X-Forwarded-For": "10.1.2.3"}, environ_overrides=proxy)
    assert (admin.status_code, admin.text) == (200, "home page")
    assert (
        client.get("/", headers={"X-Forwarded-For": "10.9.9.9"}, environ_overrides=proxy).status_code == 503
    )
    assert client.get("/", environ_overrides=proxy).status_code == 503


def test_behind_a_middleware_that_hides_the_app_the_fast_path_steps_aside_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_maintenance")
    app = wrapped_app(
        tmp_path, lambda inner: Opaque(PrefixStrip(inner, "/shop")), MAINTENANCE_ALLOWED_PATHS=["/health"]
    )
    said = [record for record in caplog.records if "fast path" in record.getMessage()]
    assert len(said) == 1, caplog.text
    extension_of(app).enable(app=app)
    client = app.test_client()
    assert client.get("/shop/health").status_code == 200
    assert client.get("/shop/_maintenance").status_code == 200
    assert client.get("/shop/").status_code == 503
    assert [record for record in caplog.records if "fast path" in record.getMessage()] == said


# -- 10. a Redis key of the wrong type fails closed -----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["hash", "list", "set"])
def test_a_redis_key_of_the_wrong_type_means_maintenance(
    make_app: AppFactory, redis_server: RedisServer, tmp_path: Path, kind: str
) -> None:
    client = redis_server.client()
    key = "flask-maintenance:state"
    if kind == "hash":
        client.hset(key, "mode", "full")
    elif kind == "list":
        client.lpush(key, "full")
    else:
        client.sadd(key, "full")
    app = make_app(MAINTENANCE_BACKEND=redis_server.url)
    assert app.test_client().get("/").status_code == 503

    project = AppProject(tmp_path / "site", MAINTENANCE_BACKEND=redis_server.url)
    status = project.flask("maintenance", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("Maintenance is ON (mode full)"), status.stdout

    guard = subprocess.run(
        [str(Path(FLASK).parent / "flask-maintenance-guard"), "--backend", redis_server.url, "--", "true"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert guard.returncode == 75, guard.stderr


# -- 11. no message about a backend URL shows its password ----------------------------------------


def test_an_upper_case_redis_scheme_is_accepted(make_app: AppFactory) -> None:
    pytest.importorskip("redis")
    app = make_app(MAINTENANCE_BACKEND="REDIS://:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in extension_of(app).backend(app=app).describe()


@pytest.mark.parametrize(
    "url",
    [
        " redis://:hunter2@127.0.0.1:6379/0",
        "redis+sentinel://:hunter2@127.0.0.1:26379/0",
        "redis://:hunter2@127.0.0.1:99999/0",
        "redis://:hunter2@127.0.0.1:port/0",
    ],
)
def test_a_bad_redis_url_is_a_configuration_error_without_the_password(
    make_app: AppFactory, url: str
) -> None:
    pytest.importorskip("redis")
    with pytest.raises(ConfigurationError) as raised:
        make_app(MAINTENANCE_BACKEND=url)
    message = str(raised.value)
    assert "MAINTENANCE_BACKEND" in message
    assert "hunter2" not in message and "hunter2" not in repr(raised.value)


BAD_URLS_FOR_THE_CLI = [" redis://:hunter2@127.0.0.1:6379/0", "redis://:hunter2@127.0.0.1:99999/0"]


def real_status_with_backend(folder: Path, url: str) -> subprocess.CompletedProcess[str]:
    """``flask maintenance status`` run for an app whose MAINTENANCE_BACKEND is ``url``."""
    require_module("redis", 'pip install -e ".[test]"')
    result = AppProject(folder, MAINTENANCE_BACKEND=url).flask("maintenance", "status")
    assert result.returncode != 0
    return result


@pytest.mark.parametrize("url", BAD_URLS_FOR_THE_CLI)
def test_the_real_cli_never_shows_the_password_of_a_bad_redis_url(tmp_path: Path, url: str) -> None:
    result = real_status_with_backend(tmp_path / "site", url)
    assert "hunter2" not in result.stdout + result.stderr
    assert "MAINTENANCE_BACKEND" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("url", BAD_URLS_FOR_THE_CLI)
def test_the_real_cli_reports_a_bad_redis_url_in_one_line(tmp_path: Path, url: str) -> None:
    result = real_status_with_backend(tmp_path / "site", url)
    assert "Traceback" not in result.stderr
    assert "MAINTENANCE_BACKEND" in one_line(result.stderr)


# -- 12. methods compare case-insensitively -------------------------------------------------------


def test_readonly_serves_lower_case_safe_methods_with_and_without_the_fast_path(make_app: AppFactory) -> None:
    for fast_path in (True, False):
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)
        extension_of(app).enable(mode="readonly", app=app)
        client = app.test_client()
        for method in ("get", "head", "options"):
            answer = client.open("/", method=method.upper(), environ_overrides={"REQUEST_METHOD": method})
            assert answer.status_code == 200, (fast_path, method)
        refused = client.open("/form", method="POST", environ_overrides={"REQUEST_METHOD": "post"})
        assert refused.status_code == 503, fast_path
        extension_of(app).disable(app=app)


def test_a_refusal_to_a_lower_case_head_is_framed_as_the_server_sends_it(make_app: AppFactory) -> None:
    # Servers and Flask leave out the body for HEAD only ("head" is another method): a refusal
    # that left it out too would promise Content-Length bytes that never come.
    for fast_path in (True, False):
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)
        extension_of(app).enable(app=app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            connection.request("head", "/")
            answer = connection.getresponse()
            body = answer.read()  # IncompleteRead when the body is short of Content-Length
            connection.close()
        finally:
            server.shutdown()
            server.server_close()
            thread.join(10)
        assert answer.status == 503, fast_path
        assert len(body) == int(answer.headers["Content-Length"]) > 0, fast_path
        assert body == app.test_client().get("/").get_data(), fast_path
        extension_of(app).disable(app=app)


# -- 13. feature names are matched whole ----------------------------------------------------------


def test_a_feature_name_with_a_trailing_newline_is_refused_by_the_api(
    app: Flask, maintenance: Maintenance
) -> None:
    with pytest.raises(ConfigurationError):
        maintenance.enable(feature="payments\n", app=app)
    with pytest.raises(ConfigurationError):
        maintenance.disable(feature="payments\n", app=app)
    with pytest.raises(ConfigurationError):
        maintenance.feature("payments\n")
    assert not plan_path(app).exists()


def test_the_cli_refuses_invalid_feature_names_for_on_and_off(
    run_flask: Callable[..., Any], tmp_path: Path
) -> None:
    on = run_flask("maintenance", "on", "--feature", "payments\n")
    assert on.returncode == 2, (on.stdout, on.stderr)
    assert "feature" in one_line(on.stderr)
    assert not (tmp_path / "maintenance.lock.plan").exists()
    off = run_flask("maintenance", "off", "--feature", "no such/feature!")
    assert off.returncode == 2, (off.stdout, off.stderr)
    assert "no such/feature!" in one_line(off.stderr)


# -- 14. caches shared between threads are thread-safe --------------------------------------------


def hammer(app: Flask, threads: int, per_thread: int, allowed: Callable[[int], bool]) -> list[str]:
    """Send ``threads * per_thread`` requests from as many client addresses, ``threads`` at a time.

    Request ``n`` comes from the ``n``-th address of 198.18.0.0/15 and should pass when
    ``allowed(n)``. Returns the wrong answers.
    """
    base = EnvironBuilder(path="/").get_environ()
    start = threading.Barrier(threads)
    wrong: list[str] = []

    def record(statuses: list[str], status: str, *headers: Any) -> None:
        statuses.append(status)

    def load(worker: int) -> None:
        start.wait(TIMEOUT)
        for number in range(per_thread):
            index = worker * per_thread + number
            address = f"198.18.{index // 256}.{index % 256}"
            expected = "200 OK" if allowed(index) else "503 SERVICE UNAVAILABLE"
            statuses: list[str] = []
            try:
                body = app({**base, "REMOTE_ADDR": address}, functools.partial(record, statuses))
                b"".join(body)
            except Exception as error:  # what a WSGI server turns into a 500
                statuses.append(f"500 ({error!r})")
            if statuses != [expected]:
                wrong.append(f"{address}: {statuses} (expected {expected})")

    pool = [threading.Thread(target=load, args=(worker,)) for worker in range(threads)]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, as a busy multi-threaded server does
    try:
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(TIMEOUT * 4)
    finally:
        sys.setswitchinterval(previous)
    assert not any(thread.is_alive() for thread in pool)
    return wrong


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fast_path", "per_thread"),
    # 48,000 and 16,000 distinct addresses (the hook is slower): the allowlist remembers 4,096
    # answers. Enough load that the code before the fix failed every time of several runs.
    [(True, 6000), (False, 2000)],
)
def test_eight_threads_and_thousands_of_client_addresses_never_get_a_500(
    make_app: AppFactory, fast_path: bool, per_thread: int
) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast_path, MAINTENANCE_ALLOWED_IPS=["198.18.0.0/24"])
    extension_of(app).enable(app=app)
    app.test_client().get("/")  # the first request reads the state; the rest run from memory
    wrong = hammer(app, threads=8, per_thread=per_thread, allowed=lambda index: index < 256)
    assert wrong == [], f"{len(wrong)} wrong answers, e.g. {wrong[:3]}"


# -- 15. a custom page gets the Retry-After the header says ---------------------------------------


def test_the_template_of_a_feature_refusal_gets_the_retry_after_of_the_header(make_app: AppFactory) -> None:
    app = make_app(MAINTENANCE_TEMPLATE="maintenance.html", MAINTENANCE_RETRY_AFTER=120)
    app.jinja_loader = DictLoader({"maintenance.html": "<p id=retry>{{ retry_after }}</p>"})  # type: ignore[method-assign,assignment]
    payments = Blueprint("payments", __name__)

    @payments.get("/pay")
    def pay() -> str:
        return "paid"

    app.register_blueprint(payments)
    extension_of(app).enable(feature="payments", app=app)
    refused = app.test_client().get("/pay")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "120"
    assert refused.text == "<p id=retry>120</p>"


# -- 16. a command shared by two apps obeys the app it runs in ------------------------------------


def test_a_blueprint_command_registered_on_two_apps_obeys_each_apps_own_state(
    make_app: AppFactory, tmp_path: Path
) -> None:
    ran: list[str] = []
    reports = Blueprint("reports", __name__)

    @reports.cli.command("build")
    def build() -> None:
        ran.append("build")

    first = make_app(MAINTENANCE_LOCK_FILE=str(tmp_path / "first.lock"))
    second = make_app(MAINTENANCE_LOCK_FILE=str(tmp_path / "second.lock"))
    first.register_blueprint(reports)
    second.register_blueprint(reports)
    extension_of(first).enable(app=first)

    refused = cli(first, "reports", "build")
    assert refused.exit_code == 75, refused.output
    assert ran == []
    served = cli(second, "reports", "build")
    assert served.exit_code == 0, served.output
    assert ran == ["build"]
    assert cli(first, "reports", "build").exit_code == 75
    assert ran == ["build"]


# -- 17. the status says what its attributes say --------------------------------------------------


def as_json_value(value: Any) -> Any:
    """An attribute of a State as ``to_dict()`` should show it."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "keys"):  # the features: their names
        return sorted(value)
    return value


def assert_agrees(state: State) -> None:
    shown = state.to_dict()
    assert shown, state
    for key, value in shown.items():
        expected = dict(state.messages) if key == "messages" else as_json_value(getattr(state, key))
        assert value == expected, (key, value, getattr(state, key))


def test_status_while_off_has_no_mode(app: Flask, maintenance: Maintenance) -> None:
    state = maintenance.status(app=app)
    assert state.active is False
    assert state.mode is None
    assert state.to_dict()["mode"] is None
    assert_agrees(state)


def test_status_to_dict_agrees_with_the_attributes_in_every_state(
    app: Flask, maintenance: Maintenance
) -> None:
    soon = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    assert_agrees(maintenance.status(fresh=True, app=app))
    for mode in ("full", "readonly", "banner"):
        assert_agrees(maintenance.enable(mode=mode, message="m", ends_at=soon, app=app))
        assert_agrees(maintenance.status(fresh=True, app=app))
    maintenance.disable(app=app)
    assert_agrees(maintenance.schedule(soon, soon + timedelta(hours=1), mode="readonly", app=app))
    maintenance.enable(feature="payments", message="Card payments are paused", app=app)
    state = maintenance.status(fresh=True, app=app)
    assert state.mode is None and state.to_dict()["features"] == ["payments"]
    assert_agrees(state)


# -- 18. async bypass rules are awaited -----------------------------------------------------------


@pytest.mark.parametrize("verdict", [False, True])
def test_an_async_bypass_rule_is_awaited(make_app: AppFactory, verdict: bool) -> None:
    require_module("asgiref", 'pip install -e ".[test]"')
    extension = Maintenance()

    @extension.bypass_rule
    async def admins_only() -> bool:
        return verdict

    app = make_app(extension)
    extension.enable(app=app)
    assert app.test_client().get("/").status_code == (200 if verdict else 503)


def test_a_sync_bypass_rule_returning_false_refuses(make_app: AppFactory) -> None:
    # Companion: awaiting async rules must not change how sync rules count.
    extension = Maintenance()
    extension.bypass_rule(lambda: False)
    app = make_app(extension)
    extension.enable(app=app)
    assert app.test_client().get("/").status_code == 503


# -- decide once ----------------------------------------------------------------------------------


def test_the_hook_never_decides_again_what_the_fast_path_decided(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_maintenance.gate import Gate

    calls: list[str] = []
    real_decide = Gate.decide

    def counting_decide(self: Gate, state: Any, environ: Any) -> Any:
        calls.append(environ.get("PATH_INFO", ""))
        return real_decide(self, state, environ)

    monkeypatch.setattr(Gate, "decide", counting_decide)
    for fast_path in (True, False):
        extension = Maintenance()
        extension.bypass_rule(lambda: False)  # makes the fast path defer refusals to the hook
        app = make_app(extension, MAINTENANCE_FAST_PATH=fast_path, MAINTENANCE_ALLOWED_PATHS=["/health"])
        extension.enable(app=app)
        client = app.test_client()
        for path, status in (("/", 503), ("/health/live", 200), ("/api/items", 503)):
            calls.clear()
            assert client.get(path).status_code == status
            assert calls == [path], (fast_path, path)
