"""Real servers for the tests: redis-server, gunicorn and nginx, each on a free loopback port.

Every server is started by a fixture or a ``with`` block, waited for with a bound, and always
stopped (terminate, then kill). A missing program skips the test with the command to install it,
except in CI (the ``CI`` environment variable is set), where it fails: CI must run every test.
"""

from __future__ import annotations

import grp
import http.client
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pytest

HOST = "127.0.0.1"
#: Every wait on a server is bounded by this many seconds.
TIMEOUT = 15.0
# Debian puts nginx in /usr/sbin, which a user's PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
REDIS_PASSWORD = "secret"
# The console scripts installed next to the interpreter running the tests.
FLASK = str(Path(sys.executable).parent / "flask")
GUARD = str(Path(sys.executable).parent / "flask-maintenance-guard")


# -- programs, ports, processes --------------------------------------------------------------


def program(name: str, package: str) -> str:
    """The path of ``name``; skips the test when it is missing (fails in CI)."""
    found = shutil.which(name, path=SEARCH_PATH)
    if found:
        return found
    reason = f"{name} is not installed (apt-get install {package})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run this test")
    pytest.skip(reason)


def require_module(name: str, install: str) -> None:
    """Skip the test when the Python package ``name`` is missing (fail in CI)."""
    if importlib.util.find_spec(name) is not None:
        return
    reason = f"the Python package {name} is not installed ({install})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run this test")
    pytest.skip(reason)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> float:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds. Returns the time taken."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def stop_process(process: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM) -> None:
    """Stop ``process`` (``sig``, then SIGKILL after a few seconds) and reap it."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class Server:
    """One server process with its output in a log file, shown when it fails to start."""

    name = "server"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / f"{self.name}-{self.port}.log"
        self._log: TextIO | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        """Start the server and wait until it answers."""
        self.launch(env, cwd)
        self.wait_ready()

    def launch(self, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        """Start the server without waiting (to start several at once)."""
        self._log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=dict(env or os.environ), cwd=cwd
        )

    def wait_ready(self) -> None:
        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            return self.ready()

        wait_until(up, f"{self.name} on port {self.port}")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def http_get(
    port: int,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Response:
    """One request to ``127.0.0.1:port`` (a GET unless told), with a bounded timeout."""
    connection = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        answer = connection.getresponse()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        connection.close()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def answers_http(port: int) -> bool:
    try:
        http_get(port, "/")
    except OSError:
        return False
    return True


# -- redis -----------------------------------------------------------------------------------


class RedisServer(Server):
    """``redis-server`` without persistence: a restart starts empty, as after a crash."""

    name = "redis"

    def __init__(self, executable: str, directory: Path, password: str | None = REDIS_PASSWORD) -> None:
        super().__init__(directory)
        self.executable = executable
        self.password = password

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{HOST}:{self.port}/0"

    def command(self) -> list[str]:
        command = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.directory),
        ]
        if self.password:
            command += ["--requirepass", self.password]
        return command

    def client(self) -> Any:
        import redis

        return redis.Redis(host=HOST, port=self.port, password=self.password, socket_timeout=TIMEOUT)

    def ready(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:  # any driver error means "not yet"
            return False

    def calls(self) -> dict[str, int]:
        """Commands the server ran since the last :meth:`reset_calls`, by name (INFO commandstats)."""
        stats = self.client().info("commandstats")
        counts = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
        # The test's own, and connection handshakes (redis-py >= 5 greets each new connection
        # with HELLO and CLIENT SETINFO; a client that sends a real command shows it anyway).
        for own in ("info", "config|resetstat", "ping", "hello", "client|setinfo"):
            counts.pop(own, None)
        return counts

    def reset_calls(self) -> None:
        self.client().config_resetstat()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server (password ``secret``) on a free loopback port, for one test."""
    require_module("redis", 'pip install -e ".[test]"')
    server = RedisServer(program("redis-server", "redis-server"), tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


class BlackHole:
    """A port that accepts connections and never answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind((HOST, 0))
        self.socket.listen(128)
        self.port: int = self.socket.getsockname()[1]

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()


# -- the app under gunicorn ------------------------------------------------------------------

APP_MODULE = "served_app"
APP_SOURCE = """
import os

from flask import Flask
from flask_maintenance import Maintenance

app = Flask(__name__, instance_path=os.environ["SUBJECT_INSTANCE"])
app.config["SECRET_KEY"] = "served-app-secret"
for key in (
    "MAINTENANCE_BACKEND", "MAINTENANCE_LOCK_FILE", "MAINTENANCE_CHECK_INTERVAL",
    "MAINTENANCE_ALLOWED_IPS", "MAINTENANCE_ALLOWED_PATHS", "MAINTENANCE_RETRY_AFTER",
):
    if key in os.environ:
        app.config[key] = os.environ[key]
maintenance = Maintenance(app)


@app.get("/")
def index():
    return "home page from the app, pid %d" % os.getpid()


@app.get("/health/live")
def live():
    return "alive"
"""


class AppProject:
    """The app module on disk, and the environment that configures it (``SUBJECT_*``, ``MAINTENANCE_*``)."""

    def __init__(
        self, directory: Path, module: str = APP_MODULE, source: str = APP_SOURCE, **config: str
    ) -> None:
        """:param module: the app module's name, and ``source`` its code (default: the app above)."""
        self.directory = directory
        self.module = module
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{module}.py").write_text(source)
        self.env = {
            **os.environ,
            # gunicorn >= 25.1 opens a control socket in $XDG_RUNTIME_DIR (else ~/.gunicorn).
            "XDG_RUNTIME_DIR": str(directory),
            "PYTHONPATH": str(directory),
            "FLASK_APP": module,
            "SUBJECT_INSTANCE": str(directory / "instance"),
            **config,
        }
        self.env.pop("FLASK_MAINTENANCE_FORCE", None)

    def flask(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the real ``flask`` command against the app."""
        return subprocess.run(
            [FLASK, *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT * 2,
        )

    def gunicorn(self) -> Gunicorn:
        return Gunicorn(self)


class Gunicorn(Server):
    """The app under gunicorn, one sync worker."""

    name = "gunicorn"

    def __init__(self, project: AppProject) -> None:
        super().__init__(project.directory)
        self.project = project

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            "1",
            "--graceful-timeout",
            "2",
            f"{APP_MODULE}:app",
        ]

    def launch(self, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        require_module("gunicorn", 'pip install -e ".[test]"')
        super().launch(env or self.project.env, cwd or self.project.directory)

    def ready(self) -> bool:
        return answers_http(self.port)

    def get(self, path: str = "/") -> Response:
        return http_get(self.port, path)


# -- nginx -----------------------------------------------------------------------------------


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A 0755 folder every user can enter (pytest's own tmp folders are 0700), for nginx's worker."""
    folder = Path(tempfile.mkdtemp(prefix="flask-maintenance-public-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _unprivileged_user() -> str:
    """The ``user`` line when we run as root, so that the worker really is unprivileged."""
    if os.geteuid() != 0:
        return ""
    for group in ("nogroup", "nobody"):
        try:
            grp.getgrnam(group)
        except KeyError:
            continue
        return f"user nobody {group};"
    pytest.fail("running as root but neither group nogroup nor nobody exists for nginx's worker")


TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class Nginx(Server):
    """Debian's nginx run by hand: no daemon, everything (pid, temp files) under ``directory``."""

    name = "nginx"

    def __init__(
        self, directory: Path, *, server_snippet: str, http_snippet: str = "", upstream_port: int
    ) -> None:
        super().__init__(directory)
        self.executable = program("nginx", "nginx")
        self.prefix = directory / f"nginx-{self.port}"
        self.prefix.mkdir()
        (self.prefix / "maintenance-server.conf").write_text(server_snippet)
        (self.prefix / "maintenance-http.conf").write_text(http_snippet)
        self.config = self.prefix / "nginx.conf"
        # Every path nginx writes to is ours: no /var/lib/nginx, /var/log or /run.
        temp_paths = [f"{kind}_temp_path {self.prefix / kind};" for kind in TEMP_PATHS]
        lines = [
            _unprivileged_user(),
            "daemon off;",
            "master_process on;",
            "worker_processes 1;",
            "error_log stderr warn;",
            f"pid {self.prefix / 'nginx.pid'};",
            "events { worker_connections 64; }",
            "http {",
            "    access_log off;",
            "    types { text/html html; }",
            "    default_type application/octet-stream;",
            *(f"    {line}" for line in temp_paths),
            "    proxy_connect_timeout 2s;",
            "    proxy_read_timeout 5s;",
            f"    include {self.prefix / 'maintenance-http.conf'};",
            "    server {",
            f"        listen {HOST}:{self.port};",
            "        server_name localhost;",
            f"        include {self.prefix / 'maintenance-server.conf'};",
            "        location / {",
            f"            proxy_pass http://{HOST}:{upstream_port};",
            "        }",
            "    }",
            "}",
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        # -e: the log for the start-up itself, before error_log is read (the default is /var/log).
        return [self.executable, "-e", "stderr", "-p", str(self.prefix), "-c", str(self.config)]

    def ready(self) -> bool:
        return answers_http(self.port)

    def get(self, path: str = "/", headers: Mapping[str, str] | None = None) -> Response:
        return http_get(self.port, path, headers)

    def post(self, path: str, body: bytes) -> Response:
        return http_get(self.port, path, {"Content-Type": "application/x-www-form-urlencoded"}, "POST", body)

    def check_config(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on this configuration, without starting a server."""
        return subprocess.run([*self.command(), "-t"], capture_output=True, text=True, timeout=TIMEOUT)
