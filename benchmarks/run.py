"""Run every flask-maintenance benchmark and print medians, ratios and the targets of issue 5.

    python benchmarks/run.py            # about 3 minutes on 2 cores
    python benchmarks/run.py --quick    # about 1 minute, fewer and shorter rounds
    python benchmarks/run.py --only inprocess --only syscalls

Sections: instructions (callgrind counts per request: the noise-free in-process verdict),
in-process (app.wsgi_app in a loop), http (gunicorn + wrk), syscalls (strace -c on a
gunicorn worker), propagation (`flask maintenance on/off` against a running gunicorn), relief
(an overloaded site, maintenance on, how soon answers are fast again: in-process, nginx, HAProxy).
Needs gunicorn (installed with pip when missing), wrk and strace (Debian packages; installed
with apt-get when running as root, else a Python load generator replaces wrk and the syscall
section says what is missing). Servers bind 127.0.0.1 only and are always stopped.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from importlib.metadata import PackageNotFoundError, version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import inprocess
import instructions
import load
import overhttp
import propagation
import relief
import syscalls
from support import Missing, ensure_debian_tool, ensure_gunicorn, workdir

SECTIONS = ("instructions", "inprocess", "http", "syscalls", "propagation", "relief")
# The default of MAINTENANCE_CHECK_INTERVAL, which every app here keeps.
INTERVAL = 1.0
# Requests/s the overloaded site is sent: four times what its two workers can serve.
RELIEF_RATE = 40.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (about 1 minute)")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    parser.add_argument(
        "--load",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator for the HTTP section (default: wrk when available)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers for the HTTP section")
    args = parser.parse_args(argv)
    sections = args.only or list(SECTIONS)
    quick = args.quick

    # SIGTERM unwinds like Ctrl-C, so every `finally` stops the servers it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    started = time.monotonic()
    print(_environment(quick), flush=True)
    summary: list[str] = []
    try:
        ensure_gunicorn()
        with workdir() as folder:
            if "instructions" in sections:
                valgrind = ensure_debian_tool("valgrind", "valgrind")
                if valgrind is None:
                    print("\nInstructions: skipped, valgrind is missing (apt-get install valgrind)")
                    summary.append("instructions                 not measured: valgrind is missing")
                else:
                    requests = 200 if quick else 600
                    counts = instructions.run(folder, valgrind, requests)
                    _section(instructions.report(counts, requests), summary)

            if "inprocess" in sections:
                rounds, batch = (21, 0.03) if quick else (101, 0.04)
                timings = inprocess.run(folder, rounds, batch)
                _section(inprocess.report(timings, rounds), summary)

            if "http" in sections:
                generator = _load_generator(args.load)
                rounds, seconds = (6, 1.0) if quick else (20, 1.0)
                results = overhttp.run(folder, generator, rounds, seconds, args.workers)
                _section(overhttp.report(results, generator, rounds, seconds, args.workers), summary)

            if "syscalls" in sections:
                strace = ensure_debian_tool("strace", "strace")
                if strace is None:
                    print("\nSyscalls: skipped, strace is missing (apt-get install strace)")
                    summary.append("syscalls                     not measured: strace is missing")
                else:
                    requests, window = (30, 2.0) if quick else (60, 3.0)
                    windows = syscalls.run(folder, requests, window, strace, INTERVAL)
                    _section(syscalls.report(windows, INTERVAL), summary)

            if "propagation" in sections:
                trials, workers = (1, 3) if quick else (3, 4)
                trial_results = propagation.run(folder, trials, INTERVAL, workers)
                _section(propagation.report(trial_results, INTERVAL, workers), summary)
            if "relief" in sections:
                tools = {
                    name: path for name in ("nginx", "haproxy") if (path := ensure_debian_tool(name, name))
                }
                seconds, on_at = (12.0, 4.0) if quick else (20.0, 5.0)
                runs = relief.run(RELIEF_RATE, seconds, on_at, tools)
                _section(relief.report(runs, RELIEF_RATE), summary)
    except Missing as error:
        print(f"\nmissing: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # every server was stopped on the way out
        print("\ninterrupted", file=sys.stderr)
        return 130

    print("\nSummary (targets of issue 5)")
    for line in summary:
        print(f"  {line}")
    print(f"\nload average at the end: {_loadavg()}; took {time.monotonic() - started:.0f} s")
    return 0


def _section(report: tuple[str, list[str]], summary: list[str]) -> None:
    text, lines = report
    print(f"\n{text}", flush=True)
    summary.extend(lines)


def _load_generator(choice: str) -> load.Wrk | load.PythonLoad:
    if choice != "python":
        path = ensure_debian_tool("wrk", "wrk")
        if path:
            return load.Wrk(path, connections=8)
        if choice == "wrk":
            raise Missing("wrk (Debian package `wrk`)")
        print("HTTP: wrk is missing; using the Python load generator (4 processes), which is slower")
    return load.PythonLoad(connections=4)


def _environment(quick: bool) -> str:
    versions = ", ".join(
        f"{name} {version(name)}"
        for name in ("flask", "werkzeug", "gunicorn", "cachetools")
        if _installed(name)
    )
    return (
        f"flask-maintenance benchmarks{' (quick)' if quick else ''}: Python {platform.python_version()},"
        f" {versions}; {os.cpu_count()} CPUs; load average {_loadavg()}\n"
        "Ratios compare variants measured side by side in the same run; absolute numbers depend on"
        " the machine and on whatever else runs on it."
    )


def _installed(name: str) -> bool:
    try:
        version(name)
    except PackageNotFoundError:  # gunicorn is installed later when missing
        return False
    return True


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
