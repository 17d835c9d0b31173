"""What every benchmark needs: tools, gunicorn servers on loopback ports, clean-up, statistics."""

from __future__ import annotations

import http.client
import importlib.util
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"


class Missing(Exception):
    """A tool the benchmark needs is not installed; the message says exactly what to install."""


# -- tools -----------------------------------------------------------------------------------


def ensure_gunicorn() -> None:
    """Install gunicorn into this interpreter when it is missing (the only thing pip installs)."""
    if importlib.util.find_spec("gunicorn") is not None:
        return
    print(f"gunicorn is missing: installing it with {sys.executable} -m pip install gunicorn", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "gunicorn"], timeout=300, check=False
    )
    if result.returncode != 0 or importlib.util.find_spec("gunicorn") is None:
        raise Missing(f"gunicorn: `{sys.executable} -m pip install gunicorn` failed")


def ensure_debian_tool(command: str, package: str) -> str | None:
    """The path of ``command``; installs Debian's ``package`` when missing and we are root.

    Returns None (after saying why) when it cannot be had, so the caller can fall back.
    """
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"{command} is missing and we are not root: install it with `apt-get install {package}`")
        return None
    print(f"{command} is missing: apt-get install -y -qq {package}", flush=True)
    install = ["apt-get", "install", "-y", "-qq", package]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, timeout=300, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=300, check=False)
        subprocess.run(install, env=env, timeout=300, check=False)
    found = shutil.which(command)
    if not found:
        print(f"{command} is still missing: `apt-get install {package}` failed")
    return found


# -- processes -------------------------------------------------------------------------------


def stop_group(process: subprocess.Popen[Any], signum: int = signal.SIGINT, wait: float = 10.0) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        with suppress(subprocess.TimeoutExpired):
            process.wait(wait)
    # The leader may be gone while its children live on: SIGKILL the group either way.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(5)


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time used so far by ``pids`` (from /proc; 10 ms resolution)."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running gunicorn (sync workers) serving one variant of ``apps.create_app``."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: str
    workers: int
    pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"


def pinned(command: list[str], role: str) -> list[str]:
    """``command`` kept on its own cores: the server on the last CPU, load generators on the rest.

    Sharing 2 cores, a load generator steals time from the server and dilutes every ratio
    towards 1 (the server would be 1.6x cheaper per request yet serve only 1.3x more). Pinned
    apart, requests/s measures what the server can do. Without taskset or with 1 CPU: unpinned.
    """
    cpus = os.cpu_count() or 1
    taskset = shutil.which("taskset")
    if cpus < 2 or taskset is None:
        return command
    chosen = str(cpus - 1) if role == "server" else f"0-{cpus - 2}"
    return [taskset, "-c", chosen, *command]


@contextmanager
def gunicorn(name: str, variant: str, lock_file: str | None, workers: int, workdir: str) -> Iterator[Server]:
    """Start gunicorn on a free loopback port, wait until every worker is up, always stop it."""
    log = os.path.join(workdir, f"gunicorn-{name}.log")
    # XDG_RUNTIME_DIR: gunicorn >= 25.1 puts a control socket there (else in ~/.gunicorn).
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_RUNTIME_DIR": workdir}
    env.pop("BENCH_LOCK_FILE", None)
    if lock_file:
        env["BENCH_LOCK_FILE"] = lock_file
    for _ in range(3):  # another process may take the free port before gunicorn binds it
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--chdir",
            BENCH_DIR,
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"{HOST}:{port}",
            "--error-logfile",
            log,
            "--log-level",
            "warning",
            "apps:ceiling" if variant == "ceiling" else f'apps:create_app("{variant}")',
        ]
        process = subprocess.Popen(
            pinned(command, "server"),
            env=env,
            cwd=workdir,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            server = Server(name, port, process, log, workers)
            if _wait_ready(server):
                yield server
                return
        finally:
            stop_group(process)
    raise RuntimeError(f"gunicorn for {name} did not start; see {log}:\n{_tail(log)}")


def _wait_ready(server: Server, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        server.pids = children(server.process.pid)
        if len(server.pids) >= server.workers:
            try:
                get(server.port, "/")
                return True
            except OSError:
                pass
        time.sleep(0.05)
    return False


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def get(port: int, path: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> Reply:
    """One GET on a new connection (like browsers behind a proxy, and what sync workers serve)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close", **(headers or {})})
        response = connection.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


@contextmanager
def workdir() -> Iterator[str]:
    """A temporary folder for lock files and logs (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="flask-maintenance-bench-") as folder:
        yield folder


# -- numbers ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of the ratios within each round: robust to load that comes and goes."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def spread(values: Sequence[float]) -> str:
    """min–max of a sample, for judging how far a median can be trusted."""
    return f"{min(values):.3g}–{max(values):.3g}"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def rotate(items: Sequence[str], round_number: int) -> list[str]:
    """The variants in a different order each round, so that none always runs first or last."""
    shift = round_number % len(items)
    return [*items[shift:], *items[:shift]]


def table(rows: Sequence[Sequence[object]], header: Sequence[str], left: int = 1) -> str:
    """Rows as aligned columns: the first ``left`` columns text, the others numbers."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for index, row in enumerate(cells):
        lines.append(
            "  "
            + "  ".join(
                cell.ljust(widths[i]) if i < left else cell.rjust(widths[i]) for i, cell in enumerate(row)
            ).rstrip()
        )
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)
