"""Real task queue workers for the tests: an app with Celery (Flask's "Celery pattern") and RQ
jobs, and the worker, beat and RQ processes started against a real redis-server.

Every task writes a line to the record file when it starts and when it ends, so a test reads
what ran, how often, and whether it overlapped a switch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import FLASK, TIMEOUT, RedisServer, require_module, stop_process, wait_until

QUEUED_MODULE = "queued_app"
QUEUED_SOURCE = """
import os
import time
from pathlib import Path

from celery import Celery, Task
from flask import Flask

from flask_maintenance import Maintenance

maintenance = Maintenance()
RECORD = Path(os.environ["SUBJECT_RECORD"])


def record(line):
    # One small O_APPEND write per line: lines from several processes never mix.
    with RECORD.open("a") as out:
        out.write(line + "\\n")


def celery_init_app(app):
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    if os.environ.get("SUBJECT_PAUSE") == "1":
        maintenance.init_celery(celery_app)
    return celery_app


def create_app():
    app = Flask(__name__, instance_path=os.environ["SUBJECT_INSTANCE"])
    for key, value in os.environ.items():
        if key.startswith("MAINTENANCE_"):
            app.config[key] = value
    broker = os.environ["SUBJECT_BROKER"]
    app.config["CELERY"] = {
        "broker_url": broker,
        "result_backend": broker,
        "task_routes": {"queued_app.urgent": {"queue": "urgent"}},
        "beat_schedule": {
            "tick": {"task": "queued_app.tick", "schedule": float(os.environ.get("SUBJECT_BEAT", "0.5"))},
        },
        "worker_hijack_root_logger": False,
    }
    maintenance.init_app(app)
    celery_init_app(app)
    return app


flask_app = create_app()
celery_app = flask_app.extensions["celery"]


@celery_app.task
def job(name, seconds=0.0):
    record(f"start {name}")
    if seconds < 0:  # until the test releases it (at most 30 s): a task running across a switch
        deadline = time.monotonic() + 30
        while not RECORD.with_name("release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(max(seconds, 0))
    if job.request.retries:  # maintenance's retries must not count (max_retries is the task's own)
        record(f"retries {name} {job.request.retries}")
    record(f"end {name}")
    return name


@maintenance.exempt
@celery_app.task
def exempt_above(name):
    record(f"end {name}")
    return name


@celery_app.task
@maintenance.exempt
def exempt_below(name):
    record(f"end {name}")
    return name


@celery_app.task
def listed(name):
    record(f"end {name}")
    return name


@celery_app.task
def urgent(name):
    record(f"end {name}")
    return name


@celery_app.task
def tick():
    record("end tick")


@flask_app.cli.command("worker")
def worker():
    "Start a Celery worker from a flask command, as some apps do."
    celery_app.worker_main(WORKER_ARGS)


def rq_job(name, seconds=0.0):
    return job.run(name, seconds)  # the same body, as a plain function for RQ


WORKER_ARGS = [
    "worker", "--pool", "prefork", "--concurrency", "2", "--queues", "celery,urgent",
    "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel", "INFO",
]
"""


class QueueProject:
    """The app module on disk, its environment, and the record of what its tasks ran."""

    def __init__(self, directory: Path, redis: RedisServer, **config: str) -> None:
        require_module("celery", 'pip install -e ".[test]"')
        self.directory = directory
        self.redis = redis
        (directory / f"{QUEUED_MODULE}.py").write_text(QUEUED_SOURCE)
        self.record = directory / "record.txt"
        self.record.touch()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(directory),
            "FLASK_APP": QUEUED_MODULE,
            "SUBJECT_INSTANCE": str(directory / "instance"),
            "SUBJECT_RECORD": str(self.record),
            "SUBJECT_BROKER": redis.url,
            "MAINTENANCE_CHECK_INTERVAL": "0.2",
            **config,
        }
        self.env.pop("FLASK_MAINTENANCE_FORCE", None)
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    # -- what ran ----------------------------------------------------------------------------

    def lines(self) -> list[str]:
        return self.record.read_text().splitlines()

    def ended(self) -> Counter[str]:
        """How many times each task name ended."""
        return Counter(line.split(" ", 1)[1] for line in self.lines() if line.startswith("end "))

    def release(self) -> None:
        """Let the tasks sent with ``seconds=-1`` finish."""
        (self.directory / "release").touch()

    def wait_for(self, line: str, timeout: float = TIMEOUT) -> None:
        wait_until(lambda: line in self.lines(), f"{line!r} in the record; logs:\n{self.logs()}", timeout)

    # -- processes ---------------------------------------------------------------------------

    def run(self, *command: str) -> str:
        """Run ``command`` in the project's folder and environment; it must succeed. Its output."""
        result = subprocess.run(
            command, cwd=self.directory, env=self.env, capture_output=True, text=True, timeout=TIMEOUT * 2
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def flask(self, *args: str) -> str:
        return self.run(FLASK, *args)

    def python(self, code: str) -> str:
        """Run ``code`` in a fresh interpreter that imports the app (to send tasks, read results)."""
        return self.run(sys.executable, "-c", f"from {QUEUED_MODULE} import *\n{code}")

    def start_flask(self, *args: str) -> subprocess.Popen[bytes]:
        """Start a ``flask`` command without waiting for it; its output goes to ``flask.log``."""
        self.start("flask", [FLASK, *args])
        return self.processes[-1][0]

    def start(self, name: str, command: list[str]) -> Path:
        """Start a long-running process; its output goes to ``<name>.log``."""
        log = self.directory / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, cwd=self.directory, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.processes.append((process, log))
        return log

    def celery(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", f"{QUEUED_MODULE}.celery_app", *args]

    def celery_worker(self) -> Path:
        """``celery worker``, prefork with two processes, on the queues ``celery`` and ``urgent``."""
        log = self.start(
            "worker",
            self.celery(
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "2",
                "--queues",
                "celery,urgent",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ),
        )
        self.wait_for_log(log, "ready.")
        return log

    def wait_for_log(self, log: Path, text: str) -> None:
        wait_until(lambda: text in log.read_text(errors="replace"), f"{text!r} in {log.name}:\n{self.logs()}")

    def rq_worker(self, *queues: str) -> Path:
        """``rq worker`` with flask_maintenance's worker class, on ``queues``."""
        require_module("rq", 'pip install -e ".[test]"')
        rq = str(Path(sys.executable).parent / "rq")
        command = [
            rq,
            "worker",
            "-w",
            "flask_maintenance.rq.MaintenanceWorker",
            "--url",
            self.redis.url,
            *queues,
        ]
        log = self.start("rq", command)
        self.wait_for_log(log, "Listening on")
        return log

    def enqueue(self, *jobs: tuple[str, str]) -> list[str]:
        """Enqueue ``rq_job(name)`` for each ``(queue, name)`` from another process; the jobs' ids."""
        return self.python(
            "from redis import Redis\nfrom rq import Queue\n"
            f"connection = Redis.from_url({self.redis.url!r})\n"
            f"for queue, name in {list(jobs)!r}:\n"
            "    print(Queue(queue, connection=connection).enqueue(rq_job, name, -1 if name == 'slow' else 0).id)"
        ).split()

    def rq_result(self, job_id: str) -> str:
        return self.python(
            "from redis import Redis\nfrom rq.job import Job\n"
            f"print(Job.fetch({job_id!r}, connection=Redis.from_url({self.redis.url!r})).return_value())"
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for _, log in self.processes
        )

    def stop(self) -> None:
        for process, _ in reversed(self.processes):
            # Celery's warm shutdown: running tasks finish first.
            stop_process(process, signal.SIGTERM)
        self.processes.clear()


def settle(seconds: float) -> None:
    """Give the workers a few check intervals to act on a switch (bounded, as every wait here)."""
    time.sleep(seconds)


@pytest.fixture
def queue_project(tmp_path: Path, redis_server: RedisServer) -> Iterator[QueueProject]:
    project = QueueProject(tmp_path, redis_server)
    try:
        yield project
    finally:
        project.stop()
