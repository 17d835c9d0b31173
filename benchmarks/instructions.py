"""Instructions per request, counted by valgrind's callgrind: the in-process cost without noise.

CPU time on a shared 2-core machine moves by ±30 % from round to round, far more than the 2 %
the "off" target allows. Instruction counts are repeatable whatever else the machine does, so
this section is the one that decides "off/bare ≥ 0.98". Each variant runs twice under callgrind,
once with N requests and once with none; the difference over N is the cost of one request
(interpreter start-up, imports and warm-up cancel out).

It also prices the refusal counter behind ``flask_maintenance_refused_total``, which must cost
less than 2 % of a refusal (issue 12). A variant without the counter would differ from ``fast``
by a few hundred instructions, less than what two runs of N requests differ by anyway (memory
layout moves a refusal's count by a few hundred); so the counter's line is priced on its own: in
the ``fast`` app after its warm-up, N times ``next(answer.counter)`` on the answer the fast path sends
(the very line it runs per refusal) minus N times an empty loop.

It also prices the heartbeat that each serving process publishes once per check interval for
``--wait`` (issue 14): N calls of ``Worker.publish()`` in the ``off`` app (one small file written
beside the lock) minus N times an empty loop, so that its cost per interval can be set against
the requests a worker serves in that interval.

Run as a script it is the child: ``instructions.py VARIANT LOCK N [count|idle|heartbeat]``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from support import table

#: name: (apps variant, lock file present, description), as in the in-process section.
VARIANTS = {
    "bare": ("bare", False, "hello-world app, no extension"),
    "off": ("ext", False, "Maintenance(app), no lock file"),
    "fast": ("ext", True, "on, refused by the fast path"),
}
WARM_UP = 50
#: The counter's budget, a fraction of a refusal's instructions (issue 12), and how many calls
#: price it (its runs differ only by their loop's body, so the figure repeats exactly).
COUNT_BUDGET = 0.02
COUNT_CALLS = 20_000
#: How many heartbeats price one (each writes a file: fewer than the counter's calls).
HEARTBEAT_CALLS = 2_000
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def run(folder: str, valgrind: str, requests: int) -> dict[str, float]:
    """Instructions per request for each variant."""
    per_request = {}
    for name, (variant, locked, _) in VARIANTS.items():
        lock = os.path.join(folder, f"instructions-{name}.lock")
        if locked:
            open(lock, "w").close()
        counts = [_count(valgrind, variant, lock, n) for n in (0, requests)]
        per_request[name] = (counts[1] - counts[0]) / requests
        if name == "fast":
            loops = [_count(valgrind, variant, lock, COUNT_CALLS, loop) for loop in ("idle", "count")]
            per_request["counting"] = (loops[1] - loops[0]) / COUNT_CALLS
        if name == "off":
            loops = [_count(valgrind, variant, lock, HEARTBEAT_CALLS, loop) for loop in ("idle", "heartbeat")]
            per_request["heartbeat"] = (loops[1] - loops[0]) / HEARTBEAT_CALLS
        if locked:
            os.remove(lock)
    return per_request


def report(per_request: dict[str, float], requests: int) -> tuple[str, list[str]]:
    rows = [[name, VARIANTS[name][2], f"{per_request[name] / 1000:,.1f}k"] for name in VARIANTS]
    off_bare = per_request["bare"] / per_request["off"]
    hello_fast = per_request["bare"] / per_request["fast"]
    counting = per_request["counting"] / per_request["fast"]
    counting_ok = "ok" if counting < COUNT_BUDGET else "MISSED"
    text = "\n".join(
        [
            f"Instructions per request (valgrind callgrind, {requests} requests minus none; repeatable)",
            table(rows, ["variant", "", "instructions"], left=2),
            "",
            f"  off/bare throughput        {off_bare:.3f}  (+{(per_request['off'] - per_request['bare']) / 1000:.1f}k"
            f" instructions/req)   target ≥ 0.98: {'ok' if off_bare >= 0.98 else 'MISSED'}",
            f"  hello / fast-path 503      {hello_fast:.1f}×   target ≥ 10×: {'ok' if hello_fast >= 10 else 'MISSED'}",
            f"  counting / fast-path 503   {counting:.2%}  ({per_request['counting']:,.0f} instructions per"
            f" next(answer.counter))   target < {COUNT_BUDGET:.0%}: {counting_ok}",
            f"  heartbeat per interval     {per_request['heartbeat'] / 1000:,.1f}k instructions"
            f" (= {per_request['heartbeat'] / per_request['off']:.2f} requests while off; one small file"
            " written per check interval)",
        ]
    )
    summary = [
        f"instructions off/bare        {off_bare:.3f}    (≥ 0.98)  {'ok' if off_bare >= 0.98 else 'MISSED'}",
        f"instructions hello / 503     {hello_fast:.1f}×    (≥ 10×)   {'ok' if hello_fast >= 10 else 'MISSED'}",
        f"instructions counting / 503  {counting:.2%}    (< {COUNT_BUDGET:.0%})    {counting_ok}",
        f"instructions heartbeat       {per_request['heartbeat'] / 1000:,.1f}k per check interval",
    ]
    return text, summary


def _count(valgrind: str, variant: str, lock: str, requests: int, loop: str | None = None) -> int:
    command = [
        valgrind,
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        os.path.abspath(__file__),
        variant,
        lock,
        str(requests),
        *([loop] if loop else []),
    ]
    # A fixed hash seed: dict and set layouts, and so the count, are the same from run to run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True, env=env)
    match = _COLLECTED.search(done.stderr)
    if match is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def _child(variant: str, lock: str, requests: int, loop: str | None) -> None:
    from apps import create_app
    from inprocess import make_call

    # Pricing the counter, the state is read once: a second reading during the warm-up (the lock
    # file's interval is a second, a varying number of requests under valgrind) rebuilds the page.
    app = create_app(variant, lock_file=lock, check_interval=None if loop is None else 3600)
    call = make_call(app)
    for _ in range(WARM_UP):
        call()
    # The heartbeat is a cost per interval, priced on its own (the "heartbeat" loop): under
    # valgrind an interval's beat would fall on some fifty times fewer requests than in real
    # time, so its thread (started by the first request) ends before the counted ones.
    gate = getattr(app.wsgi_app, "gate", None)
    if gate is not None:
        gate.worker.stop()  # and waits for its thread to end
    if loop is None:
        for _ in range(requests):
            call()
        return
    if loop == "idle":
        for _ in range(requests):
            pass
        return
    if loop == "heartbeat":
        for _ in range(requests):
            gate.worker.publish()
        gate.worker.stop()  # removes the record
        return
    answer = gate.answer(gate.cache.get(), False)
    before = gate.refusal_counts()
    for _ in range(requests):
        next(answer.counter)
    if sum(gate.refusal_counts().values()) - sum(before.values()) != requests:
        raise RuntimeError("next(answer.counter) did not count the refusals")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
