"""File system calls per request, counted with ``strace -c`` on a gunicorn sync worker.

One worker per server, so that one traced process sees every request. For each state (off: no
lock file; on: a lock file) the worker is traced during two windows of the same length, one
with N requests and one with 5N, spread evenly over the window so that the worker is busy from
its start to its end. If the extension touched the lock file per request, the second window
would show five times the calls; what it must show is the same count, at most one state check
per ``MAINTENANCE_CHECK_INTERVAL``.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field

from apps import create_app
from support import Server, get, gunicorn, stop_group, table, verdict

# The calls Python makes to look at a file: open() is openat (+ fstat, read); os.stat and
# os.path.islink are newfstatat or statx depending on the libc. "?" skips names this
# architecture lacks. Sockets use recvfrom/sendto, so `read` here is file reads only.
TRACE = "?open,openat,%%stat,read"
# strace -tt timestamps: lock-file calls less than this apart belong to the same state check.
CHECK_GAP = 0.05

_SUMMARY = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$")
_CALL = re.compile(r'^\d+\s+(\d\d):(\d\d):(\d\d\.\d+)\s+(\w+)\((?:AT_FDCWD, )?"([^"]*)"')


@dataclass
class Window:
    state: str
    requests: int
    seconds: float
    answered: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # from the strace -c summary
    lock_calls: Counter[str] = field(default_factory=Counter)  # calls naming a lock file
    checks: int = 0  # bursts of lock-file calls: state reads


def run(folder: str, requests: int, seconds: float, strace: str, interval: float) -> list[Window]:
    windows = []
    for state in ("off", "on"):
        lock = os.path.join(folder, f"syscalls-{state}.lock")
        if state == "on":
            writer = create_app("ext", lock)
            writer.extensions["maintenance"].enable(app=writer)
        with gunicorn(f"syscalls-{state}", "ext", lock, 1, folder) as server:
            for _ in range(50):  # warm up: imports and first state read happen here, untraced
                get(server.port, "/")
            for n in (requests, 5 * requests):
                window = Window(state, n, seconds)
                _trace(window, server, strace, lock, os.path.join(folder, f"strace-{state}-{n}.txt"))
                windows.append(window)
    return windows


def _trace(window: Window, server: Server, strace: str, lock: str, output: str) -> None:
    command = [strace, "-f", "-C", "-tt", "-o", output, "-e", f"trace={TRACE}", "-p", str(server.pids[0])]
    tracer = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _wait_attached(tracer)
        start = time.monotonic()
        step = window.seconds / window.requests
        expected = 503 if window.state == "on" else 200
        for i in range(window.requests):
            delay = start + i * step - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif time.monotonic() - start > 2 * window.seconds:
                break  # far behind (a very slow machine): stop, the counts say how many were sent
            if get(server.port, "/").status == expected:
                window.answered += 1
        rest = start + window.seconds - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        os.killpg(tracer.pid, signal.SIGINT)  # detach: strace writes its -c summary
        tracer.wait(10)
    finally:
        stop_group(tracer)
    _parse(window, output, lock)


def _wait_attached(tracer: subprocess.Popen[bytes]) -> None:
    assert tracer.stderr is not None
    deadline = time.monotonic() + 10
    seen = b""
    while time.monotonic() < deadline and b"attached" not in seen:
        ready, _, _ = select.select([tracer.stderr], [], [], 0.2)
        if ready:
            chunk = os.read(tracer.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    if b"attached" not in seen:
        raise RuntimeError(f"strace did not attach: {seen.decode(errors='replace')}")


def _parse(window: Window, output: str, lock: str) -> None:
    last = None
    with open(output, encoding="utf-8", errors="replace") as trace:
        for line in trace:
            summary = _SUMMARY.match(line)
            if summary and summary.group(2) != "total":
                window.calls[summary.group(2)] = int(summary.group(1))
                continue
            call = _CALL.match(line)
            if call and call.group(5).startswith(lock):
                hours, minutes, secs, name = call.group(1), call.group(2), call.group(3), call.group(4)
                moment = int(hours) * 3600 + int(minutes) * 60 + float(secs)
                window.lock_calls[name] += 1
                if last is None or moment - last > CHECK_GAP:
                    window.checks += 1
                last = moment


HEADER = ("state", "answered", "window", "state checks", "calls on the lock files", "other calls")


def report(windows: list[Window], interval: float) -> tuple[str, list[str]]:
    names = sorted({name for w in windows for name in w.calls})
    rows = []
    for w in windows:
        lock_calls = ", ".join(f"{n} {c}" for n, c in sorted(w.lock_calls.items())) or "none"
        others = sum(w.calls.values()) - sum(w.lock_calls.values())
        rows.append(
            (
                w.state,
                f"{w.answered}/{w.requests}",
                f"{w.seconds:g} s",
                w.checks,
                lock_calls,
                others,
                *(w.calls.get(name, 0) for name in names),
            )
        )
    bound = int(windows[0].seconds / interval) + 1
    lines = [
        (
            f"Syscalls: strace -f -c -e trace={TRACE} attached to the one gunicorn sync worker;"
            " two windows per state, N and 5N requests spread over the same time"
        ),
        table(rows, (*HEADER, *(f"{name} (-c)" for name in names))),
        "",
    ]
    summary = []
    for state in ("off", "on"):
        small, large = (w for w in windows if w.state == state)
        per_check = [sum(w.lock_calls.values()) / w.checks for w in (small, large) if w.checks]
        other = [sum(w.calls.values()) - sum(w.lock_calls.values()) for w in (small, large)]
        # At least one check per window, or the trace missed the lock file and proves nothing.
        ok = (
            min(small.checks, large.checks) >= 1
            and max(small.checks, large.checks) <= bound
            and other[1] <= other[0]
            and all(w.answered == w.requests for w in (small, large))
        )
        requests = f"{small.requests} → {large.requests} requests"
        checks = f"state checks {small.checks} → {large.checks}"
        lines.append(
            f"  {state}: {requests}: {checks}"
            f" (at most {bound}: {windows[0].seconds:g} s / {interval:g} s + 1),"
            f" {'/'.join(f'{c:g}' for c in per_check)} calls per check,"
            f" other file calls {other[0]} → {other[1]}: {verdict(ok)}"
        )
        summary.append(f"syscalls {state:<3}  {checks} for {requests} (≤ {bound})  {verdict(ok)}")
    return "\n".join(lines), summary
