"""Requests per second over HTTP: gunicorn sync workers on 127.0.0.1, one server per variant.

All four servers run at once, idle but for the one under load; each round loads every server
in turn for the same short time, in a different order each round. The servers are pinned to the
last CPU and the load generator to the others (``support.pinned``), so that requests/s measures
the server rather than how the scheduler shares two cores. The workers' CPU per request (from
/proc) is shown too, as it suffers less from other load.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Protocol

from apps import create_app
from load import Load
from support import Server, cpu_seconds, get, gunicorn, median, paired, rotate, spread, table, verdict

VARIANTS = {
    "bare": ("bare", False, 200, "hello-world app, no extension"),
    "off": ("ext", False, 200, "Maintenance(app), no lock file"),
    "fast": ("ext", True, 503, "on, refused by the fast path"),
    "hook": ("hook", True, 503, "on, refused by the hook (fast path off)"),
    "ceiling": ("ceiling", False, 503, "raw WSGI 503, no Flask: the upper bound"),
}


class LoadGenerator(Protocol):
    def describe(self) -> str: ...
    def run(self, port: int, seconds: float, expect_status: int) -> Load: ...


@dataclass
class Round:
    rate: float  # requests per second
    server_cpu: float  # CPU seconds the workers spent per request
    unexpected: int


def _measure(server: Server, load: LoadGenerator, seconds: float, status: int) -> Round:
    before = cpu_seconds(server.pids)
    result: Load = load.run(server.port, seconds, status)
    used = cpu_seconds(server.pids) - before
    return Round(result.requests_per_second, used / max(result.requests, 1), result.unexpected)


def run(
    folder: str, load: LoadGenerator, rounds: int, seconds: float, workers: int
) -> dict[str, list[Round]]:
    off_lock = os.path.join(folder, "http-off.lock")  # never created
    on_lock = os.path.join(folder, "http-on.lock")
    writer = create_app("ext", on_lock)
    writer.extensions["maintenance"].enable(app=writer)
    results: dict[str, list[Round]] = {name: [] for name in VARIANTS}
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(gunicorn(name, variant, on_lock if on else off_lock, workers, folder))
            for name, (variant, on, _, _) in VARIANTS.items()
        }
        bodies = {}
        for name, server in servers.items():
            reply = get(server.port, "/")
            if reply.status != VARIANTS[name][2]:
                raise RuntimeError(f"HTTP {name}: expected {VARIANTS[name][2]}, got {reply.status}")
            bodies[name] = reply.body
            load.run(server.port, min(1.0, seconds), VARIANTS[name][2])  # warm up
        if bodies["fast"] != bodies["hook"]:  # (the ceiling's body only has the same size)
            raise RuntimeError("HTTP: the fast path's 503 differs from the hook's")
        for round_number in range(rounds):
            for name in rotate(list(servers), round_number):
                results[name].append(_measure(servers[name], load, seconds, VARIANTS[name][2]))
    return results


def report(
    results: dict[str, list[Round]], load: LoadGenerator, rounds: int, seconds: float, workers: int
) -> tuple[str, list[str]]:
    rows = []
    for name, (_, _, status, description) in VARIANTS.items():
        rates = [r.rate for r in results[name]]
        cpu_us = median([r.server_cpu for r in results[name]]) * 1e6
        unexpected = sum(r.unexpected for r in results[name])
        rows.append(
            (name, description, status, f"{median(rates):,.0f}", spread(rates), f"{cpu_us:.0f}", unexpected)
        )
    rate = {name: [r.rate for r in rounds_] for name, rounds_ in results.items()}
    cpu = {name: [r.server_cpu for r in rounds_] for name, rounds_ in results.items()}

    def ratios(name: str) -> tuple[float, str]:
        """The per-round median ratio to bare, and how it reads with other statistics."""
        ratio = paired(rate[name], rate["bare"])
        of_medians = median(rate[name]) / median(rate["bare"])
        cpu_ratio = paired(cpu["bare"], cpu[name])
        return ratio, f"({of_medians:.3f}; server CPU {cpu_ratio:.3f})"

    off_ratio, off_more = ratios("off")
    fast_ratio, fast_more = ratios("fast")
    hook_ratio, hook_more = ratios("hook")
    ceiling_ratio, ceiling_more = ratios("ceiling")
    of_ceiling = paired(rate["fast"], rate["ceiling"])
    lines = [
        (
            f"Over HTTP: gunicorn --workers {workers} (sync) on 127.0.0.1, {load.describe()},"
            f" {rounds} interleaved rounds of {seconds:g} s"
        ),
        table(rows, ("variant", "", "status", "req/s", "range", "server CPU µs/req", "unexpected"), left=2),
        "",
        "  req/s ratios: median of the per-round ratios (ratio of the medians; server CPU/req ratio)",
        f"  off/bare              {off_ratio:.3f}  {off_more}   target ≥ 0.98: {verdict(off_ratio >= 0.98)}",
        f"  on fast path / hello  {fast_ratio:.3f}  {fast_more}   target ≥ 1.5: {verdict(fast_ratio >= 1.5)}",
        f"  on hook only / hello  {hook_ratio:.3f}  {hook_more}   for comparison",
        f"  raw WSGI 503 / hello  {ceiling_ratio:.3f}  {ceiling_more}   the most any 503 could give here",
        f"  fast path / raw 503   {of_ceiling:.3f}   how close the fast path comes to that bound",
    ]
    summary = [
        f"HTTP off/bare                {off_ratio:.3f}    (≥ 0.98)  {verdict(off_ratio >= 0.98)}",
        f"HTTP 503 fast path / hello   {fast_ratio:.2f}×    (≥ 1.5×)  {verdict(fast_ratio >= 1.5)}",
    ]
    return "\n".join(lines), summary
