"""What a web worker imports while maintenance is off: only what serving needs (issue 18).

Each check runs a worker-like child process (as ``benchmarks/worker_rss.py`` does): a Flask app
with the extension, not in testing mode (so its heartbeat runs), that serves requests while off;
then it reports which of the modules below it imported. Each of them is imported by what uses
it (a switch, a guard, the calendar, a backend failure, a command line) and only then.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: What serving while off never needs.
NOT_WHILE_OFF = (
    # writing the state, and telling of writes
    "flask_maintenance.writes",
    "flask_maintenance.history",
    "flask_maintenance.notify",
    "flask_maintenance.webhooks",
    # the page and the problem JSON, built once a state refuses
    "flask_maintenance.responses",
    # the command line, the operator's switch and what only they use
    "flask_maintenance.cli",
    "flask_maintenance.console",
    "flask_maintenance.switch",
    "flask_maintenance.drain",
    "flask_maintenance.proxy",
    "flask_maintenance.haproxy",
    "flask_maintenance.edge",
    # guarded functions, task queues, sockets and databases the app did not set up
    "flask_maintenance.guard",
    "flask_maintenance.workgate",
    "flask_maintenance.celery",
    "flask_maintenance.rq",
    "flask_maintenance.realtime",
    "flask_maintenance.database",
    "flask_maintenance.writelog",
    # the built-in page (built once a state refuses), the calendar feed, and the cache of
    # backend failures already warned about
    "flask_maintenance.page",
    "flask_maintenance.ics",
    "cachetools",
    # package data read at import (banner.js, through importlib.resources' reader)
    "importlib.readers",
    # the command line's standard library
    "subprocess",
    "argparse",
    "getpass",
    "shlex",
)

#: The worker: argv is the instance folder, the fast path setting, then the modules to look for.
WORKER = """
import sys
from flask import Flask
from werkzeug.test import EnvironBuilder

folder, fast_path, names = sys.argv[1], sys.argv[2], sys.argv[3:]
app = Flask("worker", instance_path=folder)
app.get("/")(lambda: "hello")
if fast_path != "flask-alone":
    from flask_maintenance import Maintenance

    app.config["MAINTENANCE_FAST_PATH"] = fast_path == "fast"
    Maintenance(app)
for _ in range(3):
    seen = []
    body = b"".join(app.wsgi_app(EnvironBuilder("/").get_environ(), lambda s, h: seen.append(s)))
    assert seen == ["200 OK"] and body == b"hello", (seen, body)
print(" ".join(sorted(name for name in names if name in sys.modules)))
"""


def imported(folder: Path, variant: str) -> set[str]:
    """Which of :data:`NOT_WHILE_OFF` a worker of ``variant`` imported after serving."""
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(folder), variant, *NOT_WHILE_OFF],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("variant", ["fast", "hook"])
def test_a_worker_imports_only_what_serving_needs_while_off(tmp_path: Path, variant: str) -> None:
    # Compared with Flask alone: some Flask and Werkzeug releases import a few of the standard
    # library's modules themselves (Flask 2.3 loads subprocess), which is not ours to avoid.
    flask_alone = imported(tmp_path, "flask-alone")
    added = imported(tmp_path, variant) - flask_alone
    assert not added, f"a web worker that serves while off imported {sorted(added)}"
