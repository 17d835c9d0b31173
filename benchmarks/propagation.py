"""How long after ``flask maintenance on``/``off`` returns every gunicorn worker answers in the new state.

Pollers keep every worker busy through the whole trial, as under real load (an idle worker
would re-read the state on its next request and hide the worst case). The ``probe`` app adds
``X-Worker-Pid`` to every answer, the fast path's 503s included, and holds each request a few
milliseconds so that the concurrent pollers reach every worker. The command is a real
``python -m flask`` subprocess on the same app module and lock file. A worker has switched at
the first answer in the new state after its last answer in the old one (arrival times on the
client, so an upper bound).
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from support import BENCH_DIR, Server, get, gunicorn, median, table, verdict

#: Margin over the check interval allowed for "within the interval": polling granularity,
#: the scheduler, and a worker busy with the request it was serving when the interval ran out.
MARGIN = 0.25


@dataclass
class Trial:
    command: str  # "on" or "off"
    command_seconds: float  # how long the subprocess took
    switched: dict[int, float]  # worker pid -> seconds after the command returned
    last_old: float  # the last answer in the old state, seconds after the command returned
    unseen: list[int]  # workers never seen in the new state (should be empty)
    poll_gap: float  # the longest a worker went unpolled during the trial (the resolution)

    @property
    def worst(self) -> float:
        return max(self.switched.values()) if self.switched else float("inf")


class Poller:
    """Threads sending GET / back to back, recording (arrival time, worker pid, status)."""

    def __init__(self, port: int, threads: int) -> None:
        self.port = port
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Poller:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                reply = get(self.port, "/", timeout=2)
            except OSError:
                continue
            sample = (time.monotonic(), int(reply.headers.get("x-worker-pid", "0")), reply.status)
            with self._lock:
                self.samples.append(sample)

    def since(self, moment: float) -> list[tuple[float, int, int]]:
        with self._lock:
            return [s for s in self.samples if s[0] >= moment]


def run(folder: str, trials: int, interval: float, workers: int) -> list[Trial]:
    lock = os.path.join(folder, "propagation.lock")
    env = {**os.environ, "BENCH_LOCK_FILE": lock}
    results = []
    with (
        gunicorn("propagation", "probe", lock, workers, folder) as server,
        Poller(server.port, threads=2 * workers) as poller,
    ):
        time.sleep(interval + 0.5)  # every worker has read the (off) state at least once
        for _ in range(trials):
            for command, new_status in (("on", 503), ("off", 200)):
                results.append(_switch(server, poller, command, new_status, env, interval))
    return results


def _switch(
    server: Server, poller: Poller, command: str, new_status: int, env: dict[str, str], interval: float
) -> Trial:
    # Start at a random moment relative to the workers' reads, like an operator would.
    time.sleep(random.uniform(0.3, 0.3 + interval))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", 'apps:create_app("probe")', "maintenance", command],
        cwd=BENCH_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    returned = time.monotonic()
    if result.returncode != 0:
        raise RuntimeError(f"flask maintenance {command} failed ({result.returncode}):\n{result.stderr}")
    time.sleep(interval + 1.0)
    samples = poller.since(started)
    switched: dict[int, float] = {}
    last_old = float("-inf")
    poll_gap = 0.0
    for pid in server.pids:
        mine = [(t, status) for t, p, status in samples if p == pid]
        times = [started] + [t for t, _ in mine]
        poll_gap = max([poll_gap] + [b - a for a, b in itertools.pairwise(times)])
        old = [t for t, status in mine if status != new_status]
        last = max(old, default=started)
        last_old = max(last_old, last)
        first_new = [t for t, status in mine if status == new_status and t >= last]
        if first_new:
            switched[pid] = min(first_new) - returned
    unseen = [pid for pid in server.pids if pid not in switched]
    return Trial(command, returned - started, switched, last_old - returned, unseen, poll_gap)


HEADER = (
    "command",
    "command took",
    "each worker switched at",
    "last old answer",
    "max poll gap",
    "all switched",
)


def report(results: list[Trial], interval: float, workers: int) -> tuple[str, list[str]]:
    rows = []
    for trial in results:
        per_worker = " ".join(f"{t:+.3f}" for _, t in sorted(trial.switched.items()))
        rows.append(
            (
                f"flask maintenance {trial.command}",
                f"{trial.command_seconds:.2f} s",
                per_worker + (f" (never: {trial.unseen})" if trial.unseen else ""),
                f"{trial.last_old:+.3f}",
                f"{trial.poll_gap:.3f}",
                f"{trial.worst:.3f}",
            )
        )
    worst = max(trial.worst for trial in results)
    bound = interval + MARGIN
    lines = [
        (
            f"Propagation: gunicorn --workers {workers} (sync), every worker polled; times in seconds"
            f" after the command returned; MAINTENANCE_CHECK_INTERVAL={interval:g}"
        ),
        table(rows, HEADER),
        "",
        (
            f"  worst case {worst:.3f} s, median {median([t.worst for t in results]):.3f} s;"
            f" target ≤ interval + {MARGIN:g} s = {bound:g} s: {verdict(worst <= bound)}"
        ),
    ]
    summary = [f"propagation worst case       {worst:.3f} s  (≤ {bound:g} s)  {verdict(worst <= bound)}"]
    return "\n".join(lines), summary
