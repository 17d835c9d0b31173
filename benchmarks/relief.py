"""Time to relief: an overloaded site, maintenance switched on, and how soon answers are fast again.

The app's page takes 200 ms (``apps`` variant ``slow``) on gunicorn with two sync workers: at most
10 requests/s. Clients send several times that, at a constant rate (open loop: a client does not
wait for the previous answer, as visitors do not), for ``seconds``; maintenance goes on at
``on_at``. Three setups, one after the other:

``in-process``
    the clients talk to gunicorn; the extension's fast path refuses once a worker re-reads the
    lock file (``MAINTENANCE_CHECK_INTERVAL``, 1 s) and the queue in front of the workers drains.
``nginx``
    nginx in front with the ``nginx-config`` snippet: nginx tests the lock file on every request
    and answers from the page file without asking the app.
``haproxy``
    HAProxy in front with the ``haproxy-config`` configuration: it learns maintenance from the
    servers' ``/ready`` health checks, which have to get through the overloaded workers too.

Per second: answers by status (200, 503, failed: connection errors and timeouts), and p50/p99
latency of the requests sent in that second. Then, for each setup, the time from ``on`` until
p99 falls below 50 ms (in steps of 0.25 s).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

from apps import SLOW_SECONDS, create_app
from support import HOST, free_port, gunicorn, stop_group, table

SETUPS = ("in-process", "nginx", "haproxy")
#: Relief is p99 below this (seconds), from some second on, to the end.
FAST = 0.050
#: The resolution of the time to relief (seconds).
STEP = 0.25
#: A client gives up after this long (seconds): it counts as failed.
CLIENT_TIMEOUT = 10.0
WORKERS = 2


@dataclass(frozen=True)
class Sample:
    sent: float  # seconds after the start
    latency: float  # seconds; the time waited when it failed
    status: int  # 0: failed (connection error or timeout)


@dataclass
class Run:
    setup: str
    samples: list[Sample]
    on_at: float
    seconds: float

    def relief(self) -> float | None:
        """Seconds from ``on`` until the p99 of the requests sent in a :data:`STEP` first falls
        below :data:`FAST`; None if it never does."""
        step = self.on_at
        while step < self.seconds:
            batch = sorted(sample.latency for sample in self.samples if step <= sample.sent < step + STEP)
            p99 = _quantile(batch, 0.99)
            if p99 is not None and p99 < FAST:
                return step - self.on_at
            step += STEP
        return None


def per_second(run: Run) -> list[tuple[int, int, int, int, float | None, float | None]]:
    """(second, 200s, 503s, failed, p50, p99) by the second each request was sent in."""
    rows = []
    for second in range(int(run.seconds)):
        batch = [sample for sample in run.samples if second <= sample.sent < second + 1]
        latencies = sorted(sample.latency for sample in batch)
        ok = sum(1 for sample in batch if sample.status == 200)
        refused = sum(1 for sample in batch if sample.status == 503)
        failed = len(batch) - ok - refused
        rows.append((second, ok, refused, failed, _quantile(latencies, 0.5), _quantile(latencies, 0.99)))
    return rows


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


# -- the clients ---------------------------------------------------------------------------------

_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n"


def _one(port: int, start: float) -> Sample:
    begin = time.monotonic()  # when it is really sent: a busy machine can run late
    try:
        with socket.create_connection((HOST, port), timeout=CLIENT_TIMEOUT) as connection:
            connection.settimeout(max(0.1, CLIENT_TIMEOUT - (time.monotonic() - begin)))
            connection.sendall(_REQUEST)
            head = b""
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                head = (head + chunk)[:64]
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    except (OSError, ValueError, IndexError):
        status = 0
    return Sample(begin - start, time.monotonic() - begin, status)


def _clients(port: int, rate: float, seconds: float, start: float) -> list[Sample]:
    """Send ``rate`` requests/s from ``start`` (a monotonic time) for ``seconds``, open loop."""
    total = int(rate * seconds)
    results: list[Sample] = []
    lock = threading.Lock()
    # Enough threads for every request that can be outstanding at once.
    with ThreadPoolExecutor(max_workers=min(total, int(rate * CLIENT_TIMEOUT) + 16)) as pool:
        futures = []
        for index in range(total):
            due = start + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(_one, port, start))
        for future in futures:
            sample = future.result()
            with lock:
                results.append(sample)
    return results


# -- the setups ------------------------------------------------------------------------------------


@contextmanager
def _public_folder() -> Iterator[str]:
    """A folder nginx's unprivileged worker can enter (temporary folders are 0700)."""
    folder = tempfile.mkdtemp(prefix="flask-maintenance-relief-")
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _process(command: list[str], log: str, ready_port: int) -> Iterator[None]:
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                with open(log, errors="replace") as text:
                    raise RuntimeError(f"{command[0]} exited:\n{text.read()[-2000:]}")
            try:
                socket.create_connection((HOST, ready_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not listen on {ready_port}") from None
                time.sleep(0.05)
        yield
    finally:
        stop_group(process)


def _nginx(folder: str, upstream: int, snippet: str, nginx: str) -> tuple[list[str], int]:
    port = free_port()
    prefix = os.path.join(folder, "nginx")
    os.makedirs(prefix)
    temp = " ".join(
        f"{kind}_temp_path {prefix}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    with open(os.path.join(prefix, "snippet.conf"), "w") as file:
        file.write(snippet)
    user = "user nobody nogroup;" if os.geteuid() == 0 else ""
    config = f"""{user}
daemon off;
worker_processes 1;
error_log stderr error;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    {temp}
    proxy_read_timeout 30s;
    server {{
        listen {HOST}:{port} backlog=4096;
        include {prefix}/snippet.conf;
        location / {{ proxy_pass http://{HOST}:{upstream}; }}
    }}
}}
"""
    with open(os.path.join(prefix, "nginx.conf"), "w") as file:
        file.write(config)
    return [nginx, "-e", "stderr", "-p", prefix, "-c", os.path.join(prefix, "nginx.conf")], port


def _cli(app: object, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["maintenance", *args])  # type: ignore[attr-defined]
    if result.exit_code != 0:
        raise RuntimeError(f"flask maintenance {' '.join(args)} failed: {result.output}")
    return str(result.stdout)


def one(setup: str, folder: str, rate: float, seconds: float, on_at: float, tools: dict[str, str]) -> Run:
    """One setup under overload; maintenance on at ``on_at`` seconds."""
    lock = os.path.join(folder, f"{setup}.lock")
    switch = create_app("slow", lock)
    page = os.path.join(folder, f"{setup}-maintenance.html")
    with gunicorn(setup, "slow", lock, WORKERS, folder) as server:
        proxy: AbstractContextManager[None] = nullcontext()
        if setup == "in-process":
            port = server.port
        elif setup == "nginx":
            _cli(switch, "render-page", page)
            command, port = _nginx(
                folder, server.port, _cli(switch, "nginx-config", "--page", page), tools["nginx"]
            )
            proxy = _process(command, os.path.join(folder, "nginx.log"), port)
        else:
            port = free_port()
            page = os.path.join(folder, "haproxy-maintenance.http")
            config = _cli(
                switch,
                "haproxy-config",
                "--bind",
                f"{HOST}:{port}",
                "--server",
                f"{HOST}:{server.port}",
                "--page",
                page,
            )
            path = os.path.join(folder, "haproxy.cfg")
            with open(path, "w") as file:
                file.write(config)
            proxy = _process([tools["haproxy"], "-db", "-f", path], os.path.join(folder, "haproxy.log"), port)
        with proxy:
            context = multiprocessing.get_context("fork")
            with context.Pool(1) as pool:
                pool.apply(time.monotonic)  # forked and running before the clock starts
                start = time.monotonic() + 0.5
                pending = pool.apply_async(_clients, (port, rate, seconds, start))
                time.sleep(max(0.0, start + on_at - time.monotonic()))
                switch.extensions["maintenance"].enable(app=switch)
                samples = pending.get(timeout=seconds + CLIENT_TIMEOUT + 30)
    return Run(setup, samples, on_at, seconds)


def run(rate: float, seconds: float, on_at: float, tools: dict[str, str]) -> list[Run]:
    """Every setup whose proxy is in ``tools`` (``nginx``, ``haproxy``: their paths)."""
    runs = []
    with _public_folder() as public:
        for setup in SETUPS:
            if setup != "in-process" and setup not in tools:
                print(f"Time to relief: {setup} skipped, it is not installed (apt-get install {setup})")
                continue
            folder = os.path.join(public, setup)
            os.mkdir(folder)
            os.chmod(folder, 0o755)  # mkdir applies the umask
            runs.append(one(setup, folder, rate, seconds, on_at, tools))
    return runs


def report(runs: list[Run], rate: float) -> tuple[str, list[str]]:
    on_at = runs[0].on_at if runs else 0.0
    lines = [
        f"Time to relief: / takes {SLOW_SECONDS * 1000:.0f} ms on gunicorn --workers {WORKERS} (sync, at most"
        f" {WORKERS / SLOW_SECONDS:.0f} req/s); clients send {rate:g} req/s (open loop, {CLIENT_TIMEOUT:g} s"
        f" timeout); maintenance on at t = {on_at:g} s. Per second sent: answers by status, latency."
    ]
    summary = []
    for one_run in runs:
        rows = [
            (
                f"{second}{' on' if second == int(one_run.on_at) else ''}",
                ok,
                refused,
                failed,
                "-" if p50 is None else f"{p50 * 1000:.0f}",
                "-" if p99 is None else f"{p99 * 1000:.0f}",
            )
            for second, ok, refused, failed, p50, p99 in per_second(one_run)
        ]
        relief = one_run.relief()
        said = "never (within the run)" if relief is None else f"{relief:.2f} s"
        lines += ["", f"  {one_run.setup}: p99 < {FAST * 1000:.0f} ms {said} after on"]
        lines.append(table(rows, ("t (s)", "200", "503", "failed", "p50 ms", "p99 ms")))
        summary.append(f"relief {one_run.setup:<12} {said}")
    return "\n".join(lines), summary
