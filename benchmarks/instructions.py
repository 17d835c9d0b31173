"""Instructions per request, counted by valgrind's callgrind: the in-process cost without noise.

CPU time on a shared 2-core machine moves by ±30 % from round to round, far more than the 1 %
the "off" target allows. Instruction counts are repeatable whatever else the machine does, so
this section is the one that decides "off/bare ≥ 0.99". Each variant runs twice under callgrind,
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

import gc
import os
import re
import subprocess
import sys

from support import table, verdict

#: name: (apps variant, the lock file's content (None: no lock file), Accept, description).
#: ``banner`` and ``readonly`` GETs pass: they are compared with ``off``, the same GET.
VARIANTS = {
    "bare": ("bare", None, None, "hello-world app, no extension"),
    "off": ("ext", None, None, "Maintenance(app), no lock file"),
    "fast": ("ext", "", None, "on, browser Accept, refused by the fast path"),
    "json": ("ext", "", "application/json", "on, Accept: application/json outside /api"),
    "banner": ("ext", '{"mode": "banner"}', None, "banner mode: the GET is served, with the header"),
    "readonly": ("ext", '{"mode": "readonly"}', None, "readonly mode: the GET is served"),
}
WARM_UP = 50
#: ``MAINTENANCE_CHECK_INTERVAL`` in every child: valgrind runs ~50x slower, and a state read
#: during the N requests (but not during none) would be counted as part of a request.
CHECK_INTERVAL = 3600
#: The counter's budget, a fraction of a refusal's instructions (issue 12), and how many calls
#: price it (its runs differ only by their loop's body, so the figure repeats exactly).
COUNT_BUDGET = 0.02
COUNT_CALLS = 20_000
#: How many heartbeats price one (each writes a file: fewer than the counter's calls).
HEARTBEAT_CALLS = 2_000
#: Targets of issue 18 (off/bare; hello / refusal, browser and JSON Accept; banner and readonly
#: GET overhead over the same GET off).
OFF_TARGET = 0.99
REFUSAL_TARGET = 25.0
SERVED_OVERHEAD_TARGET = 0.03
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def run(folder: str, valgrind: str, requests: int) -> dict[str, float]:
    """Instructions per request for each variant."""
    per_request = {}
    for name, (variant, content, accept, _) in VARIANTS.items():
        lock = os.path.join(folder, f"instructions-{name}.lock")
        if content is not None:
            with open(lock, "w") as file:
                file.write(content)
        counts = [_count(valgrind, variant, lock, n, accept) for n in (0, requests)]
        per_request[name] = (counts[1] - counts[0]) / requests
        if name == "fast":
            loops = [_count(valgrind, variant, lock, COUNT_CALLS, accept, loop) for loop in ("idle", "count")]
            per_request["counting"] = (loops[1] - loops[0]) / COUNT_CALLS
        if name == "off":
            loops = [
                _count(valgrind, variant, lock, HEARTBEAT_CALLS, accept, loop)
                for loop in ("idle", "heartbeat")
            ]
            per_request["heartbeat"] = (loops[1] - loops[0]) / HEARTBEAT_CALLS
        if content is not None:
            os.remove(lock)
    return per_request


def report(per_request: dict[str, float], requests: int) -> tuple[str, list[str]]:
    rows = [[name, VARIANTS[name][3], f"{per_request[name] / 1000:,.1f}k"] for name in VARIANTS]
    bare, off = per_request["bare"], per_request["off"]
    off_bare = bare / off
    hello_fast = bare / per_request["fast"]
    hello_json = bare / per_request["json"]
    banner = per_request["banner"] / off - 1
    readonly = per_request["readonly"] / off - 1
    counting = per_request["counting"] / per_request["fast"]
    checks = {
        "off": off_bare >= OFF_TARGET,
        "fast": hello_fast >= REFUSAL_TARGET,
        "json": hello_json >= REFUSAL_TARGET,
        "banner": banner <= SERVED_OVERHEAD_TARGET,
        "readonly": readonly <= SERVED_OVERHEAD_TARGET,
        "counting": counting < COUNT_BUDGET,
    }
    ok = {name: verdict(passed) for name, passed in checks.items()}
    text = "\n".join(
        [
            f"Instructions per request (valgrind callgrind, {requests} requests minus none,"
            f" MAINTENANCE_CHECK_INTERVAL={CHECK_INTERVAL}; repeatable)",
            table(rows, ["variant", "", "instructions"], left=2),
            "",
            f"  off/bare throughput        {off_bare:.3f}  ({(off - bare) / 1000:+.1f}k instructions/req)"
            f"   target ≥ {OFF_TARGET}: {ok['off']}",
            f"  hello / fast-path 503      {hello_fast:.1f}×   target ≥ {REFUSAL_TARGET:.0f}×: {ok['fast']}",
            f"  hello / JSON-Accept 503    {hello_json:.1f}×   target ≥ {REFUSAL_TARGET:.0f}×: {ok['json']}",
            f"  banner GET overhead        {banner:+.1%}  vs the same GET off   target ≤ {SERVED_OVERHEAD_TARGET:.0%}:"
            f" {ok['banner']}",
            f"  readonly GET overhead      {readonly:+.1%}  vs the same GET off   target ≤"
            f" {SERVED_OVERHEAD_TARGET:.0%}: {ok['readonly']}",
            f"  counting / fast-path 503   {counting:.2%}  ({per_request['counting']:,.0f} instructions per"
            f" next(answer.counter))   target < {COUNT_BUDGET:.0%}: {ok['counting']}",
            f"  heartbeat per interval     {per_request['heartbeat'] / 1000:,.1f}k instructions"
            f" (= {per_request['heartbeat'] / off:.2f} requests while off; one small file"
            " written per check interval)",
        ]
    )
    summary = [
        f"instructions off/bare        {off_bare:.3f}    (≥ {OFF_TARGET})  {ok['off']}",
        f"instructions hello / 503     {hello_fast:.1f}×    (≥ {REFUSAL_TARGET:.0f}×)   {ok['fast']}",
        f"instructions hello / JSON 503 {hello_json:.1f}×   (≥ {REFUSAL_TARGET:.0f}×)   {ok['json']}",
        f"instructions banner GET      {banner:+.1%}    (≤ {SERVED_OVERHEAD_TARGET:.0%})    {ok['banner']}",
        f"instructions readonly GET    {readonly:+.1%}    (≤ {SERVED_OVERHEAD_TARGET:.0%})    {ok['readonly']}",
        f"instructions counting / 503  {counting:.2%}    (< {COUNT_BUDGET:.0%})    {ok['counting']}",
        f"instructions heartbeat       {per_request['heartbeat'] / 1000:,.1f}k per check interval",
    ]
    return text, summary


def _count(
    valgrind: str, variant: str, lock: str, requests: int, accept: str | None, loop: str | None = None
) -> int:
    command = [
        valgrind,
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        os.path.abspath(__file__),
        variant,
        lock,
        str(requests),
        accept or "",
        *([loop] if loop else []),
    ]
    # A fixed hash seed: dict and set layouts, and so the count, are the same from run to run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True, env=env)
    match = _COLLECTED.search(done.stderr)
    if match is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def _child(variant: str, lock: str, requests: int, accept: str | None, loop: str | None) -> None:
    from apps import create_app
    from inprocess import make_call

    app = create_app(variant, lock_file=lock, check_interval=None if variant == "bare" else CHECK_INTERVAL)
    call = make_call(app, accept=accept)
    for _ in range(WARM_UP):
        call()
    # The heartbeat is a cost per interval, priced on its own (the "heartbeat" loop): under
    # valgrind an interval's beat would fall on some fifty times fewer requests than in real
    # time, so its thread (started by the first request) ends before the counted ones.
    gate = getattr(getattr(app.wsgi_app, "__self__", None), "gate", None)  # the FastPath's
    if gate is not None:
        gate.worker.stop()  # and waits for its thread to end
    # Every variant starts counting from the same collector state: what start-up left in the
    # young generations would otherwise be walked by whichever older-generation collection
    # falls among the counted requests (up to ~9k instructions per request over 300 requests,
    # in one variant and not in another). Per-request garbage is still collected, and counted,
    # as in production.
    gc.collect()
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
    _child(
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        sys.argv[4] or None,
        sys.argv[5] if len(sys.argv) > 5 else None,
    )
