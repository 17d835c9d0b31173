"""Waiting until every worker enforces the state, and the writes from before are done (``--wait``).

After a switch, each serving process sees the new state within its check interval, and requests
that it let in before may still be writing. :func:`wait` reads the stored state's version and
the live heartbeats (:mod:`flask_maintenance.workers`) until every process enforces that version
and, when the state refuses writes, has no unsafe work from before still running. A process that
has been gone or frozen for three intervals no longer counts: it never blocks anyone.
:class:`Display` shows the progress to the operator.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import click

from .backends import Backend
from .cache import state_version
from .model import State
from .workers import MIN_PERIOD, Heartbeat, read_heartbeats

#: The default of ``--wait`` (seconds).
DEFAULT_WAIT = 30.0
#: How often the state and the heartbeats are read while waiting.
POLL = 0.1
#: With no worker seen, look again for this long before concluding that there is none: a
#: worker that could not publish before the switch (the lock file's folder did not exist yet)
#: tries again every ``MIN_PERIOD``.
SETTLE = 4 * MIN_PERIOD


@dataclass(frozen=True)
class Progress:
    """One look at the workers while waiting.

    :param version: the version of the state stored now.
    :param drain: whether unsafe work from before must finish too (the state refuses writes).
    :param workers: the live heartbeats.
    """

    version: str
    drain: bool
    workers: tuple[Heartbeat, ...]

    def enforces(self, worker: Heartbeat) -> bool:
        """Whether ``worker`` enforces the stored state, or reads it before its next request
        (said by a fresh heartbeat: a frozen process acknowledges nothing)."""
        return worker.version == self.version or (worker.rereading and worker.fresh)

    @property
    def switched(self) -> int:
        """How many workers enforce the stored state."""
        return sum(1 for worker in self.workers if self.enforces(worker))

    @property
    def writes(self) -> int:
        """Unsafe work still running that began before the worker saw the state it enforces."""
        return sum(worker.writes_in_flight for worker in self.workers)

    @property
    def waiting_for(self) -> list[Heartbeat]:
        """The workers not done yet."""
        return [
            worker
            for worker in self.workers
            if not self.enforces(worker) or (self.drain and worker.writes_in_flight)
        ]

    @property
    def done(self) -> bool:
        return not self.waiting_for

    def describe(self) -> list[str]:
        """The workers for ``status``: a count, then one line each."""
        if not self.workers:
            return ["  workers:      none seen (a worker publishes once it serves)"]
        behind = len(self.workers) - self.switched
        lines = [f"  workers:      {len(self.workers)}" + (f" ({behind} not switched yet)" if behind else "")]
        for worker in self.workers:
            switched = "" if self.enforces(worker) else " (earlier state)"
            frozen = "" if worker.fresh else " (frozen?)"
            lines.append(
                f"    {worker.name:<24} {worker.kind:<6} {worker.state}{switched}, "
                f"heartbeat {worker.age:.1f} s ago{frozen}, writes in flight {worker.writes_in_flight}"
            )
        return lines

    def what_remains(self) -> str:
        """The workers not done, by ``host:pid``, and what each still had."""
        return "; ".join(f"{worker.name} {self._remains(worker)}" for worker in self.waiting_for)

    def _remains(self, worker: Heartbeat) -> str:
        things = [] if worker.fresh else [f"was frozen (no heartbeat for {worker.age:.0f} s)"]
        if not self.enforces(worker):
            things.append(f"still enforced an earlier state ({worker.state})")
        if self.drain and worker.writes_in_flight:
            plural = "s" if worker.writes_in_flight != 1 else ""
            things.append(f"had {worker.writes_in_flight} write{plural} in flight from before the switch")
        return " and ".join(things)


def progress(backend: Backend, *, drain: bool) -> Progress:
    """Read the stored state's version and the live heartbeats once.

    :raises BackendError: when the backend cannot be read.
    """
    lock, plan = backend.read_many([backend, backend.sibling("plan")])
    return Progress(state_version(lock, plan), drain, tuple(read_heartbeats(backend)))


def wait(
    backend: Backend,
    *,
    drain: bool,
    timeout: float,
    settle: float = SETTLE,
    report: Callable[[Progress, float], None] = lambda progress, elapsed: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Progress:
    """Wait until every live worker enforces the stored state (and, with ``drain``, has no unsafe
    work from before running), or ``timeout`` seconds; return the last look (``.done`` says
    which). The stored state is read again each time: a change meanwhile is waited for too.

    :param settle: with no worker seen, look again for this long before concluding that there
        is none (see :data:`SETTLE`).
    :param report: called with each look and the seconds waited so far.
    :raises BackendError: when the backend cannot be read.
    """
    start = clock()
    while True:
        current = progress(backend, drain=drain)
        elapsed = clock() - start
        report(current, elapsed)
        settled = current.workers or elapsed >= settle
        if (current.done and settled) or elapsed >= timeout:
            return current
        sleep(min(POLL, max(0.0, timeout - elapsed)))


def wait_in_terminal(
    backend: Backend, seconds: float, state: State, say: Callable[[str], None] = click.echo
) -> str | None:
    """``--wait``: show the progress until every worker enforces ``state`` (and, when it refuses
    writes, none from before is running), then ``say`` so and return ``None``; or return what
    remains after ``seconds``.

    :raises BackendError: when the backend cannot be read.
    """
    display = Display()
    try:
        done = wait(backend, drain=state.blocking, timeout=seconds, report=display)
    finally:
        display.close()
    if not done.done:
        return f"gave up waiting after {seconds:g} s: {done.what_remains()}"
    say(display.summary(done))
    return None


class Display:
    """Progress on stderr: a bar redrawn in place on a terminal, else one line per second.

    It remembers the most writes from before it saw, to say at the end that they finished.
    """

    WIDTH = 24

    def __init__(self, terminal: bool | None = None) -> None:
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.most_writes = 0
        #: The seconds waited at the last look.
        self.elapsed = 0.0
        self._next_line = 0.0
        self._drawn = False

    def __call__(self, progress: Progress, elapsed: float) -> None:
        self.most_writes = max(self.most_writes, progress.writes if progress.drain else 0)
        self.elapsed = elapsed
        total = len(progress.workers)
        text = f"workers switched {progress.switched}/{total}"
        if progress.drain:
            text += f", writes in flight {progress.writes}"
        if self.terminal:
            done = (progress.switched if total else 1) / (total or 1)
            if progress.drain and progress.writes:
                done = min(done, (self.WIDTH - 1) / self.WIDTH)
            filled = round(done * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            click.echo(f"\r[{bar}] {text} ({elapsed:.0f} s)\x1b[K", nl=False, err=True)
            self._drawn = True
        elif elapsed >= self._next_line:
            click.echo(f"waiting: {text} ({elapsed:.0f} s)", err=True)
            self._next_line = int(elapsed) + 1.0

    def close(self) -> None:
        """End the bar's line."""
        if self._drawn:
            click.echo("", err=True)
            self._drawn = False

    def summary(self, progress: Progress) -> str:
        """What the wait achieved, for the operator (once it is done)."""
        if not progress.workers:
            return "No worker has published a heartbeat: none to wait for (a worker publishes once it serves)"
        count = len(progress.workers)
        line = f"All {count} worker{'s' if count != 1 else ''} enforce the new state (after {self.elapsed:.1f} s)"
        if self.most_writes:
            plural = "s" if self.most_writes != 1 else ""
            line += (
                f"; waited for {self.most_writes} write{plural} in flight from before the switch to finish"
            )
        elif progress.drain:
            line += "; no write from before the switch was in flight"
        return line
