"""In-process cost of one request: ``app.wsgi_app(environ, start_response)`` in a timed loop.

No server and no socket: this is the CPU the app itself spends per request, the number the
extension can change. Each variant lives in its own Python process, so that the bare app
shares nothing with the others (blinker signal receivers, for one, are global); the processes
take turns, one batch at a time, in a different order each round, and every batch lasts about
the same time whatever the variant.
"""

from __future__ import annotations

import gc
import hashlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from apps import create_app
from flask import Flask
from support import median, paired, rotate, spread, stop_group, table, verdict
from werkzeug.test import EnvironBuilder

#: name: (apps variant, mode switched on (None: off), expected status, description), in the
#: order shown.
VARIANTS = {
    "bare": ("bare", None, "200", "hello-world app, no extension"),
    "off": ("ext", None, "200", "Maintenance(app), no lock file"),
    "fast": ("ext", "full", "503", "on, refused by the fast path"),
    "json": ("ext", "full", "503", "on, fast path, Accept: application/json outside /api"),
    "banner": ("ext", "banner", "200", "banner mode: the GET is served, with the header"),
    "readonly": ("ext", "readonly", "200", "readonly mode: the GET is served"),
    "hook": ("hook", "full", "503", "on, refused by the hook (fast path off)"),
    "rule": ("rule", "full", "503", "on, a bypass rule run in the fast path"),
    "hostile": ("ext", "full", "503", "on, fast path, an 8 KB hostile Accept header"),
}
#: Variants whose requests carry another Accept than a browser's ("hostile": HOSTILE_ACCEPT).
ACCEPTS = {"hostile": "hostile", "json": "application/json"}
# 8 KB of media ranges that all mention JSON, so no cheap first look can skip them.
HOSTILE_ACCEPT = ",".join(f"application/json;q=0.{i % 10};level={i}" for i in range(400))[:8192]

# What a browser sends; the fast path reads Accept and Cookie, Flask parses more.
BROWSER_HEADERS = {
    "Host": "example.com",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Accept-Encoding": "gzip, deflate, br",
    "Connection": "keep-alive",
    "Upgrade-Insecure-Requests": "1",
}


@dataclass
class Timing:
    wall: list[float]  # seconds per request, one value per round
    cpu: list[float]


def make_call(
    app: Flask, hostile: bool = False, accept: str | None = None
) -> Callable[[], tuple[str, bytes]]:
    """One request through ``app.wsgi_app``: a fresh environ, the body consumed, close() called.

    :param accept: the ``Accept`` header instead of a browser's (``hostile``: an 8 KB one).
    """
    accept = HOSTILE_ACCEPT if hostile else accept
    headers = {**BROWSER_HEADERS, **({"Accept": accept} if accept else {})}
    template = EnvironBuilder(
        path="/", headers=list(headers.items()), environ_base={"REMOTE_ADDR": "203.0.113.7"}
    ).get_environ()
    wsgi_app = app.wsgi_app
    seen: list[str] = [""]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen[0] = status
        return _write

    def call() -> tuple[str, bytes]:
        iterable: Iterable[bytes] = wsgi_app(template.copy(), start_response)
        body = b""
        for chunk in iterable:
            body = chunk
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
        return seen[0], body

    return call


def _write(data: bytes) -> None:
    pass


def _batch(call: Callable[[], object], number: int) -> tuple[float, float]:
    """Seconds per call (wall, CPU) over ``number`` calls; the GC stays on, as in production."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(number):
        call()
    return (time.perf_counter() - wall) / number, (time.process_time() - cpu) / number


def serve(variant: str, lock_file: str, accept: str) -> None:
    """The child: build one app, then time a batch for every number read from stdin."""
    app = create_app(variant, lock_file or None)
    call = make_call(app, hostile=accept == "hostile", accept=None if accept in ("", "hostile") else accept)
    for _ in range(200):  # warm up: first state read, first 503 built, caches filled
        status, body = call()
    print("ready", status.split()[0], hashlib.sha256(body).hexdigest(), flush=True)
    for line in sys.stdin:
        wall, cpu = _batch(call, int(line))
        print(wall, cpu, flush=True)


class Child:
    """One variant's process, answering one line per request line (bounded by a timeout)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def read(self, timeout: float = 120.0) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"in-process child {self.process.args!r} did not answer")
        return line

    def batch(self, number: int) -> tuple[float, float]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{number}\n")
        self.process.stdin.flush()
        wall, cpu = self.read().split()
        return float(wall), float(cpu)


@contextmanager
def _child(variant: str, lock_file: str, accept: str) -> Iterator[Child]:
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", variant, lock_file, accept],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield Child(process)
    finally:
        if process.stdin is not None:
            process.stdin.close()  # end of input: the child exits by itself
        with suppress(subprocess.TimeoutExpired):
            process.wait(10)
        stop_group(process)


def run(folder: str, rounds: int, batch_seconds: float) -> dict[str, Timing]:
    locks = {None: os.path.join(folder, "inprocess-off.lock")}  # never created
    for mode in ("full", "banner", "readonly"):
        locks[mode] = os.path.join(folder, f"inprocess-{mode}.lock")
        writer = create_app("ext", locks[mode])
        writer.extensions["maintenance"].enable(mode=mode, app=writer)  # as `flask maintenance on` does
    with ExitStack() as stack:
        children = {
            name: stack.enter_context(_child(variant, locks[mode], ACCEPTS.get(name, "")))
            for name, (variant, mode, _, _) in VARIANTS.items()
        }
        bodies = {}
        for name, child in children.items():
            _, status, bodies[name] = child.read().split()
            if status != VARIANTS[name][2]:
                raise RuntimeError(f"in-process {name}: expected {VARIANTS[name][2]}, got {status}")
        if not bodies["fast"] == bodies["hook"] == bodies["rule"]:
            raise RuntimeError("in-process: the fast path's 503 differs from the hook's")

        # Calibrate: every batch of every variant lasts about batch_seconds.
        numbers = {}
        for name, child in children.items():
            _, per_call = child.batch(200)
            numbers[name] = max(100, int(batch_seconds / per_call))
        timings = {name: Timing([], []) for name in children}
        for round_number in range(rounds):
            for name in rotate(list(children), round_number):
                wall, cpu = children[name].batch(numbers[name])
                timings[name].wall.append(wall)
                timings[name].cpu.append(cpu)
    return timings


def report(timings: dict[str, Timing], rounds: int) -> tuple[str, list[str]]:
    us = 1e6
    rows = []
    for name, (_, _, _, description) in VARIANTS.items():
        t = timings[name]
        rows.append(
            (
                name,
                description,
                f"{median(t.cpu) * us:.2f}",
                spread([c * us for c in t.cpu]),
                f"{median(t.wall) * us:.2f}",
                f"{1 / median(t.cpu):,.0f}",
            )
        )
    bare, off, fast, hook, hostile = (timings[n] for n in ("bare", "off", "fast", "hook", "hostile"))
    # CPU time, not wall time, and ratios within each round: what else runs on a shared
    # machine then counts far less. Throughput of this single-threaded loop is 1 / CPU time.
    off_ratio = paired(bare.cpu, off.cpu)
    cpu_ratio = paired(bare.cpu, fast.cpu)
    hook_ratio = paired(bare.cpu, hook.cpu)
    rule_ratio = paired(bare.cpu, timings["rule"].cpu)
    hostile_ratio = paired(bare.cpu, hostile.cpu)
    json_ratio = paired(bare.cpu, timings["json"].cpu)
    banner_overhead = paired(timings["banner"].cpu, off.cpu) - 1
    readonly_overhead = paired(timings["readonly"].cpu, off.cpu) - 1
    hostile_cost = paired(hostile.cpu, fast.cpu)
    overhead = (median(off.cpu) - median(bare.cpu)) * us
    lines = [
        (
            "In-process: app.wsgi_app(environ, start_response), one process per variant,"
            f" {rounds} interleaved rounds"
        ),
        table(rows, ("variant", "", "µs/req CPU", "CPU range", "µs/req wall", "req/s"), left=2),
        "",
        "  median of the per-round ratios (ratio of the medians)",
        (
            f"  off/bare throughput        {off_ratio:.3f}  ({median(bare.cpu) / median(off.cpu):.3f};"
            f" {overhead:+.2f} µs/req)   timed, so ±several % of noise: the instruction count decides"
        ),
        (
            f"  hello CPU / fast-path 503  {cpu_ratio:.1f}×  ({median(bare.cpu) / median(fast.cpu):.1f}×)"
            f"   target ≥ 25×: {verdict(cpu_ratio >= 25)}"
        ),
        (f"  hello CPU / JSON-Accept 503 {json_ratio:.1f}×   target ≥ 25×: {verdict(json_ratio >= 25)}"),
        (
            f"  banner / readonly GET CPU over off  {banner_overhead:+.1%} / {readonly_overhead:+.1%}"
            "   timed, so ±several % of noise: the instruction count decides"
        ),
        (
            f"  hello CPU / hook-only 503  {hook_ratio:.2f}× ({median(bare.cpu) / median(hook.cpu):.2f}×)"
            "   for comparison: a before_request hook alone sheds no load"
        ),
        (
            f"  hello CPU / bypass-rule 503 {rule_ratio:.1f}×"
            "   a rule that refuses, run in the fast path's own request context"
        ),
        (
            f"  hello CPU / hostile 503    {hostile_ratio:.1f}×  (an 8 KB Accept costs"
            f" {hostile_cost:.2f}× a plain refusal)   target: still far cheaper than the page"
        ),
    ]
    summary = [
        f"in-process off/bare          {off_ratio:.3f}    (timed, noisy; see instructions)",
        f"in-process hello / 503 CPU   {cpu_ratio:.1f}×    (≥ 25×)   {verdict(cpu_ratio >= 25)}",
        f"in-process hello / JSON 503  {json_ratio:.1f}×    (≥ 25×)   {verdict(json_ratio >= 25)}",
        f"in-process banner / readonly GET {banner_overhead:+.1%} / {readonly_overhead:+.1%}   (timed, noisy)",
        f"in-process hello / hostile   {hostile_ratio:.1f}×    (≥ 10×)   {verdict(hostile_ratio >= 10)}",
    ]
    return "\n".join(lines), summary


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    serve(sys.argv[2], sys.argv[3], sys.argv[4])
