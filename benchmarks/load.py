"""Load generators: wrk when it is installed, else a bounded Python one with several processes."""

from __future__ import annotations

import multiprocessing
import re
import socket
import subprocess
import time
from dataclasses import dataclass

from support import HOST, pinned, stop_group


@dataclass
class Load:
    requests_per_second: float
    requests: int
    unexpected: int  # answers whose status is not the one expected, plus socket errors


class Wrk:
    """``wrk -t1 -cN -dS``: one thread leaves the other core to the server."""

    name = "wrk"

    def __init__(self, path: str, connections: int) -> None:
        self.path = path
        self.connections = connections

    def describe(self) -> str:
        return f"wrk -t1 -c{self.connections}"

    def run(self, port: int, seconds: float, expect_status: int) -> Load:
        command = [
            self.path,
            "-t1",
            f"-c{self.connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "5s",
            f"http://{HOST}:{port}/",
        ]
        process = subprocess.Popen(
            pinned(command, "load"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            out, _ = process.communicate(timeout=seconds + 30)
        finally:
            stop_group(process)
        text = out.decode(errors="replace")
        rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
        total = re.search(r"(\d+) requests in", text)
        if process.returncode != 0 or not rate or not total:
            raise RuntimeError(f"wrk failed:\n{text}")
        # wrk counts statuses >= 400 as "Non-2xx or 3xx"; a 503 run expects all of them to be.
        non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
        wrong = int(non_2xx.group(1)) if non_2xx else 0
        if expect_status >= 400:
            wrong = int(total.group(1)) - wrong
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        if errors:
            # Sync workers close every connection after answering; wrk may count a few reads
            # on closed sockets. Connect errors and timeouts are real failures.
            wrong += int(errors.group(1)) + int(errors.group(4))
        return Load(float(rate.group(1)), int(total.group(1)), wrong)


class PythonLoad:
    """``connections`` processes, each sending GETs back to back for ``seconds``, then stopping."""

    name = "python"

    def __init__(self, connections: int) -> None:
        self.connections = connections

    def describe(self) -> str:
        return f"Python load generator, {self.connections} processes"

    def run(self, port: int, seconds: float, expect_status: int) -> Load:
        context = multiprocessing.get_context("fork")
        with context.Pool(self.connections) as pool:
            results = pool.starmap(_hammer, [(port, seconds, expect_status)] * self.connections, chunksize=1)
        done = sum(r[0] for r in results)
        elapsed = max(r[2] for r in results)
        return Load(done / elapsed, done, sum(r[1] for r in results))


_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def _hammer(port: int, seconds: float, expect_status: int) -> tuple[int, int, float]:
    """Requests on new connections until the deadline: (answered, unexpected, elapsed)."""
    expected = b" %d " % expect_status
    done = wrong = 0
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=5) as connection:
                connection.sendall(_REQUEST)
                chunks = []
                while True:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except OSError:
            wrong += 1
            continue
        head = b"".join(chunks)[:32]
        done += 1
        if expected not in head:
            wrong += 1
    return done, wrong, time.monotonic() - start
