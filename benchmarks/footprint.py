"""What the operator's commands and the web worker's imports cost (issue 18).

``startup``
    ``flask-maintenance-guard --quiet --lock-file PATH -- true`` against ``python -c pass``, with
    maintenance on, so that the guard reads the state and exits 75 instead of replacing itself
    with ``true`` (valgrind would lose its count at the ``exec``): instructions (callgrind) and
    wall time, median of interleaved runs. Target: at most 2x. The instructions of
    ``flask-maintenance on --lock-file PATH`` and ``off`` too, against the same target: on a
    2-core machine with both cores busy the switch gets about 2/3 of a CPU, so it finishes within
    the ``switch`` section's 0.1 s only if it costs about what two ``python -c pass`` cost.
``rss``
    A gunicorn-like worker: the hello app built and 50 requests served, once without the
    extension and once with it (off). Its resident memory (VmRSS) and modules, median of 5
    processes each (one process's figure moves by about 50 KiB from run to run). The optional
    metrics extra (prometheus_client) is kept out of both, because an app that installs it
    imports it anyway. Target: at most 1 MiB more, and none of the CLI-only modules.
``switch``
    The switch on a drowning machine: one busy loop per CPU runs throughout, and each trial runs
    ``flask maintenance on`` / ``off`` (which imports Flask and the app) and
    ``flask-maintenance on`` / ``off --lock-file`` (which imports neither), interleaved, from
    the start of the process to its exit (by then the lock file is written or removed). The
    child's own CPU time is shown too, which does not depend on how the machine is shared.
    Target: the new switch within 0.1 s.

``startup``, ``rss`` and ``switch`` first compile the package's bytecode (``compileall``), as
installing it with pip does: the interpreter's own modules and Flask's are compiled, and a
checkout run with ``PYTHONDONTWRITEBYTECODE`` would otherwise compile this package's modules on
every run, measuring the compiler instead of the commands (and, in a worker, its leftovers).

The worker of ``rss`` is ``worker_rss.py``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from support import BENCH_DIR, median, stop_group, table, verdict

STARTUP_TARGET = 2.0
RSS_TARGET_KIB = 1024
SWITCH_TARGET = 0.1
#: What only the command line needs; a web worker must not import any of it.
CLI_ONLY = (
    "subprocess",
    "argparse",
    "getpass",
    "shlex",
    "flask_maintenance.cli",
    "flask_maintenance.console",
)
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _script(name: str) -> str:
    """A console script installed beside this interpreter."""
    return os.path.join(os.path.dirname(sys.executable), name)


def compile_package() -> None:
    """Compile the package's bytecode, as ``pip install`` does (see the module's docstring)."""
    spec = importlib.util.find_spec("flask_maintenance")
    if spec is None or spec.origin is None:
        raise RuntimeError("flask_maintenance is not installed")
    package = os.path.dirname(spec.origin)
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True, timeout=120)


def _instructions(valgrind: str, name: str, command: list[str], status: int) -> int:
    """The instructions ``command`` runs, counted by callgrind; it must exit with ``status``."""
    done = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != status:
        raise RuntimeError(f"{name} exited with {done.returncode}:\n{done.stderr[-2000:]}")
    match = _COLLECTED.search(done.stderr)
    if match is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(match.group(1))


# -- start-up of the guard and the switch ------------------------------------------------------


#: The switch's commands, measured in this order: ``on`` finds no lock and writes it, ``off``
#: removes it.
SWITCH_COMMANDS = ("on", "off")


def startup(folder: str, valgrind: str | None, rounds: int) -> dict[str, float]:
    compile_package()
    lock = os.path.join(folder, "startup.lock")
    open(lock, "w").close()  # on: the guard skips `true` and exits 75
    guard = [sys.executable, _script("flask-maintenance-guard"), "--quiet", "--lock-file", lock, "--", "true"]
    commands = {"python -c pass": [sys.executable, "-c", "pass"], "guard": guard}
    statuses = {"python -c pass": 0, "guard": 75}
    results: dict[str, float] = {}
    if valgrind:
        for name, command in commands.items():
            results[f"{name} instructions"] = _instructions(valgrind, name, command, statuses[name])
        switched = os.path.join(folder, "startup-switch.lock")
        for verb in SWITCH_COMMANDS:
            command = [sys.executable, _script("flask-maintenance"), verb, "--lock-file", switched]
            results[f"switch {verb} instructions"] = _instructions(valgrind, f"switch {verb}", command, 0)
            if os.path.exists(switched) != (verb == "on"):
                raise RuntimeError(f"flask-maintenance {verb} did not leave the lock file as it should")
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            started = time.perf_counter()
            if subprocess.run(command, check=False, timeout=60).returncode != statuses[name]:
                raise RuntimeError(f"{name} did not exit as expected")
            walls[name].append(time.perf_counter() - started)
    for name in commands:
        results[f"{name} wall"] = median(walls[name])
    return results


def startup_report(results: dict[str, float]) -> tuple[str, list[str]]:
    lines = [
        "Start-up: flask-maintenance-guard --lock-file PATH -- true (maintenance on), against python -c pass"
    ]
    summary = []
    if "guard instructions" in results:
        base = results["python -c pass instructions"]
        ratio = results["guard instructions"] / base
        lines.append(
            f"  instructions   {results['guard instructions'] / 1e6:.1f}M vs"
            f" {base / 1e6:.1f}M: {ratio:.2f}×"
            f"   target ≤ {STARTUP_TARGET:.0f}×: {verdict(ratio <= STARTUP_TARGET)}"
        )
        summary.append(
            f"guard start-up instructions  {ratio:.2f}×    (≤ {STARTUP_TARGET:.0f}×)    {verdict(ratio <= STARTUP_TARGET)}"
        )
        for verb in SWITCH_COMMANDS:
            count = results[f"switch {verb} instructions"]
            ratio = count / base
            lines.append(
                f"  flask-maintenance {verb:<3} --lock-file PATH: {count / 1e6:.1f}M vs {base / 1e6:.1f}M:"
                f" {ratio:.2f}×   target ≤ {STARTUP_TARGET:.0f}×: {verdict(ratio <= STARTUP_TARGET)}"
            )
            summary.append(
                f"{f'switch {verb} instructions':<29}{ratio:.2f}×    (≤ {STARTUP_TARGET:.0f}×)    {verdict(ratio <= STARTUP_TARGET)}"
            )
    wall = results["guard wall"] / results["python -c pass wall"]
    lines.append(
        f"  wall (median)  {results['guard wall'] * 1e3:.1f} ms vs {results['python -c pass wall'] * 1e3:.1f} ms:"
        f" {wall:.2f}×   timed, noisy on a shared machine"
    )
    summary.append(f"guard start-up timed         {wall:.2f}×    (timed, noisy; see instructions)")
    return "\n".join(lines), summary


# -- the web worker's memory -------------------------------------------------------------------


def rss(folder: str) -> dict[str, tuple[int, int, list[str]]]:
    """(VmRSS KiB, modules, CLI-only modules loaded) per variant, median of 5 processes.

    The package's bytecode is compiled first (see the module's docstring): compiled from source
    in each worker instead, the compiler's leftovers would count as the extension's, about 1 MiB.
    """
    compile_package()
    lock = os.path.join(folder, "rss-absent.lock")
    results = {}
    for variant in ("bare", "ext"):
        runs = []
        for _ in range(5):
            done = subprocess.run(
                [sys.executable, os.path.join(BENCH_DIR, "worker_rss.py"), variant, lock, *CLI_ONLY],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
                cwd=BENCH_DIR,
            )
            kib, modules, *cli_only = done.stdout.split()
            runs.append((int(kib), int(modules), cli_only))
        runs.sort()
        results[variant] = runs[len(runs) // 2]
    return results


def rss_report(results: dict[str, tuple[int, int, list[str]]]) -> tuple[str, list[str]]:
    (bare_kib, bare_modules, _), (ext_kib, ext_modules, cli_only) = results["bare"], results["ext"]
    added = ext_kib - bare_kib
    ok = added <= RSS_TARGET_KIB and not cli_only
    text = "\n".join(
        [
            "Worker memory: the hello app after 50 requests (VmRSS, median of 5 processes; without the"
            " optional prometheus_client)",
            table(
                [
                    ("bare", f"{bare_kib:,}", bare_modules),
                    ("with the extension, off", f"{ext_kib:,}", ext_modules),
                ],
                ("worker", "KiB", "modules"),
            ),
            f"  added: {added:+,} KiB, {ext_modules - bare_modules:+} modules; CLI-only modules imported:"
            f" {', '.join(cli_only) or 'none'}   target ≤ {RSS_TARGET_KIB} KiB and none: {verdict(ok)}",
        ]
    )
    return text, [
        f"worker RSS added             {added:+,} KiB (≤ {RSS_TARGET_KIB:,}; no CLI modules)  {verdict(ok)}"
    ]


# -- the switch on a drowning machine ----------------------------------------------------------


@contextmanager
def busy_loops() -> Iterator[None]:
    """One busy loop per CPU, like ``stress --cpu N``, always stopped."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        time.sleep(0.5)  # let the scheduler see them
        yield
    finally:
        for loop in loops:
            stop_group(loop, signal.SIGTERM, wait=2.0)  # SIGINT would print a traceback


def switch(folder: str, trials: int) -> dict[str, list[tuple[float, float]]]:
    """(wall s, child CPU s) per command, from the start of the process to its exit."""
    compile_package()
    lock = os.path.join(folder, "switch.lock")
    app = ["-m", "flask", "--app", 'apps:create_app("ext")', "maintenance"]
    commands = {
        "flask maintenance on": [sys.executable, *app, "on"],
        "flask maintenance off": [sys.executable, *app, "off"],
        "flask-maintenance on": [sys.executable, _script("flask-maintenance"), "on", "--lock-file", lock],
        "flask-maintenance off": [sys.executable, _script("flask-maintenance"), "off", "--lock-file", lock],
    }
    env = {**os.environ, "BENCH_LOCK_FILE": lock}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    with busy_loops():
        for _ in range(trials):
            for name, command in commands.items():
                started = time.perf_counter()
                process = subprocess.Popen(
                    command, env=env, cwd=BENCH_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
                _, status, usage = os.wait4(process.pid, 0)
                wall = time.perf_counter() - started
                process.returncode = os.waitstatus_to_exitcode(status)
                if process.returncode != 0:
                    raise RuntimeError(f"{name} failed: {process.stderr.read() if process.stderr else ''}")
                if process.stderr is not None:
                    process.stderr.close()
                if os.path.exists(lock) != name.endswith(" on"):
                    raise RuntimeError(f"{name} did not leave the lock file as it should")
                results[name].append((wall, usage.ru_utime + usage.ru_stime))
    return results


def switch_report(results: dict[str, list[tuple[float, float]]], trials: int) -> tuple[str, list[str]]:
    rows = []
    for name, samples in results.items():
        walls = [wall for wall, _ in samples]
        rows.append(
            (
                name,
                f"{median(walls) * 1e3:,.0f}",
                f"{max(walls) * 1e3:,.0f}",
                f"{median([cpu for _, cpu in samples]) * 1e3:,.0f}",
            )
        )
    worst = max(
        max(wall for wall, _ in results[name]) for name in ("flask-maintenance on", "flask-maintenance off")
    )
    typical = max(
        median([wall for wall, _ in results[name]])
        for name in ("flask-maintenance on", "flask-maintenance off")
    )
    text = "\n".join(
        [
            f"Switch latency with a busy loop on each of the {os.cpu_count()} CPUs: process start → exit"
            f" (lock written or removed), {trials} interleaved trials",
            table(rows, ("command", "median ms", "max ms", "child CPU ms"), left=1),
            f"  flask-maintenance, median of the slower of on/off: {typical * 1e3:.0f} ms (worst {worst * 1e3:.0f} ms)"
            f"   target ≤ {SWITCH_TARGET * 1e3:.0f} ms: {verdict(typical <= SWITCH_TARGET)}",
        ]
    )
    return text, [
        f"switch latency, loaded       {typical * 1e3:.0f} ms   (≤ {SWITCH_TARGET * 1e3:.0f} ms)  {verdict(typical <= SWITCH_TARGET)}"
    ]
