"""Races: concurrent writers never leave a half-written lock file, and readers never see one.

Two real ``flask maintenance`` processes race each other, and two processes write the lock file
in a tight loop, while a thread reads it (``FileBackend.read`` + ``State.parse``) as fast as it can.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import pytest

from flask_maintenance.backends import FileBackend
from flask_maintenance.model import State

pytestmark = pytest.mark.slow

#: Every wait in these tests is bounded by this many seconds.
TIMEOUT = 60.0
CLI_ROUNDS = 6


class Reader(threading.Thread):
    """Reads and parses the lock file in a loop; every reading must be OFF or one allowed state."""

    def __init__(self, path: Path, allowed: set[tuple[str, str | None]], pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.pause = pause  # leaves CPU to the processes under test on a small machine
        self.backend = FileBackend(path)
        self.allowed = allowed
        self.stopping = threading.Event()
        self.reads = 0
        self.on = 0
        self.off = 0
        self.problems: list[str] = []

    def run(self) -> None:
        while not self.stopping.wait(self.pause):
            raw: bytes | None = None
            try:
                raw = self.backend.read()
                state, warning = State.parse(raw, 60)
            except Exception as error:  # the promise under test: never an error
                self.problems.append(f"{error!r} reading {raw!r:.80}")
                continue
            self.reads += 1
            if warning is not None:
                self.problems.append(f"{warning}: {raw!r:.80}")
            elif not state.active:
                self.off += 1
            elif (state.mode, state.message) in self.allowed:
                self.on += 1
            else:  # e.g. an empty file read half-way through a non-atomic write
                self.problems.append(f"unexpected {state.mode}/{state.message!r:.40} from {raw!r:.80}")

    def __enter__(self) -> Reader:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stopping.set()
        self.join(timeout=TIMEOUT)
        assert not self.is_alive(), "the reader hung"


def leftover_temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".maintenance-"))


def final_state(path: Path) -> tuple[State, str | None]:
    return State.parse(FileBackend(path).read(), 60)


# -- two real CLI processes --------------------------------------------------------------------


def start_flask(app_module: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "FLASK_APP": app_module.stem, "PYTHONPATH": str(app_module.parent)}
    env.pop("FLASK_MAINTENANCE_FORCE", None)
    env.pop("SUBJECT_LOCK_FILE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "flask", *args],
        cwd=app_module.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, error = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=TIMEOUT)
        raise
    return process.returncode, error


ON_A = ("maintenance", "on", "--mode", "readonly", "--message", "from A")
ON_B = ("maintenance", "on", "--mode", "banner", "--message", "from B " + "b" * 1500)
OFF = ("maintenance", "off")


def test_racing_cli_on_and_off_end_in_one_of_the_two_states_and_readers_never_see_an_error(
    app_module: Path, tmp_path: Path
) -> None:
    lock = tmp_path / "maintenance.lock"
    allowed = {("readonly", "from A"), ("banner", ON_B[-1])}
    outcomes: list[str] = []
    with Reader(lock, allowed, pause=0.0005) as reader:
        for round_ in range(CLI_ROUNDS):
            # Even rounds race `on` against `off`, odd rounds two different `on`s; the order in
            # which the two are started alternates too.
            pair = (ON_A, OFF) if round_ % 2 == 0 else (ON_A, ON_B)
            if round_ % 4 >= 2:
                pair = pair[::-1]
            processes = [start_flask(app_module, *args) for args in pair]
            for process, args in zip(processes, pair, strict=True):
                returncode, error = finish(process)
                assert returncode == 0, (args, error)
            state, warning = final_state(lock)
            assert warning is None
            if not state.active:
                assert OFF in pair
                outcomes.append("off")
            else:
                assert (state.mode, state.message) in allowed, state
                outcomes.append(state.mode)
    assert reader.problems == [], reader.problems[:5]
    assert reader.on > 0 and reader.off > 0, (reader.on, reader.off)
    assert leftover_temp_files(tmp_path) == []
    print(f"\n[races] CLI rounds: {outcomes}; reader: {reader.reads} reads, {reader.on} on, {reader.off} off")


# -- two processes writing in a tight loop -----------------------------------------------------

WRITER = """
import sys, time
from flask_maintenance.backends import FileBackend
from flask_maintenance.model import State

path, label, mode, start_at, seconds = sys.argv[1:6]
backend = FileBackend(path)
# Long enough that a plain write would be seen half-done.
data = State(active=True, mode=mode, message=label * 1500).to_json()
while time.time() < float(start_at):
    time.sleep(0.001)
end = time.time() + float(seconds)
count = 0
while time.time() < end:
    if count % 3 == 2:
        backend.clear()
    else:
        backend.write(data)
    count += 1
print(count)
"""

NAIVE_WRITER = """
import sys, time
from flask_maintenance.model import State

path, label, mode, start_at, seconds = sys.argv[1:6]
data = State(active=True, mode=mode, message=label * 1500).to_json()
while time.time() < float(start_at):
    time.sleep(0.001)
end = time.time() + float(seconds)
count = 0
while time.time() < end:
    with open(path, "wb") as lock:  # what the package must never do
        lock.write(data[:1000])
        lock.flush()
        lock.write(data[1000:])
    count += 1
print(count)
"""


def run_writers(source: str, lock: Path, seconds: float) -> list[int]:
    start_at = time.time() + 1.0  # both start together, after the interpreter has loaded
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", source, str(lock), label, mode, str(start_at), str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for label, mode in (("a", "readonly"), ("b", "banner"))
    ]
    counts = []
    for writer in writers:
        try:
            out, error = writer.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            writer.kill()
            writer.communicate(timeout=TIMEOUT)
            raise
        assert writer.returncode == 0, error
        counts.append(int(out))
    return counts


WRITTEN = {("readonly", "a" * 1500), ("banner", "b" * 1500)}


def test_two_processes_writing_in_a_tight_loop_never_leave_a_half_written_file(tmp_path: Path) -> None:
    lock = tmp_path / "maintenance.lock"
    with Reader(lock, WRITTEN) as reader:
        counts = run_writers(WRITER, lock, seconds=1.5)
    state, warning = final_state(lock)
    assert warning is None
    assert not state.active or (state.mode, state.message) in WRITTEN
    assert reader.problems == [], reader.problems[:5]
    assert reader.reads > 100 and reader.on > 0 and reader.off > 0, vars(reader)
    assert min(counts) > 50, counts
    assert leftover_temp_files(tmp_path) == []
    print(
        f"\n[races] writes+clears per process: {counts}; reader: {reader.reads} reads, {reader.on} on, {reader.off} off"
    )


def test_the_reader_does_catch_a_non_atomic_writer(tmp_path: Path) -> None:
    """The control that shows the race test can fail: a plain ``open(path, "wb")`` writer."""
    lock = tmp_path / "maintenance.lock"
    with Reader(lock, WRITTEN) as reader:
        run_writers(NAIVE_WRITER, lock, seconds=1.0)
    if reader.reads < 100:
        pytest.skip(f"the reader only got {reader.reads} reads in: too busy a machine to tell")
    assert reader.problems, f"{reader.reads} reads and not one half-written file"
