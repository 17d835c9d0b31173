"""RQ during maintenance, with a real ``rq worker -w flask_maintenance.rq.MaintenanceWorker`` on a
real redis-server: no job is taken while on, the running one finishes, exempt queues go on."""

from __future__ import annotations

import pytest
from queue_support import QueueProject, queue_project, settle
from servers import redis_server, wait_until

__all__ = ["queue_project", "redis_server"]  # fixtures

pytestmark = pytest.mark.slow

# RQ waits for a job one second at a time (whole seconds), then looks at the state again.
NOTICED = 1.5


def test_the_worker_takes_no_job_during_maintenance_and_each_runs_once_after(
    queue_project: QueueProject,
) -> None:
    project = queue_project
    project.env.update(MAINTENANCE_BACKEND=project.redis.url, MAINTENANCE_RQ_EXEMPT_QUEUES="urgent")
    log = project.rq_worker("default", "urgent")

    [slow] = project.enqueue(("default", "slow"))  # it runs until released
    project.wait_for("start slow")
    switching = project.start_flask("maintenance", "on", "--wait", "30")
    wait_until(lambda: "Maintenance is ON" in project.flask("maintenance", "status"), "maintenance to be on")
    project.enqueue(("default", "a"), ("default", "b"), ("urgent", "urgent"))
    # `on --wait` waits for the job running when it switched: it finishes, with its result.
    settle(1.0)  # four heartbeats
    assert switching.poll() is None, switching.communicate()
    assert "end slow" not in project.lines()
    project.release()
    assert switching.wait(timeout=30) == 0, project.logs()
    assert "end slow" in project.lines()
    wait_until(lambda: project.rq_result(slow) == "slow", "the result of the job running at the switch")
    project.wait_for("end urgent")  # an exempt queue is worked on during the window
    settle(NOTICED)
    assert not {"start a", "start b"} & set(project.lines()), project.logs()

    project.flask("maintenance", "off")
    project.wait_for("end a")
    project.wait_for("end b")
    settle(0.5)
    ended = project.ended()
    assert {name: ended[name] for name in ("slow", "a", "b", "urgent")} == dict.fromkeys(
        ("slow", "a", "b", "urgent"), 1
    )
    text = log.read_text()
    assert "takes no jobs except from urgent" in text and "takes jobs again" in text, text


def test_a_worker_without_an_app_reads_the_lock_file_and_starts_paused(queue_project: QueueProject) -> None:
    project = queue_project
    project.flask("maintenance", "on", "--mode", "readonly")
    lock_file = project.directory / "instance" / "maintenance.lock"
    assert lock_file.exists()
    del project.env["FLASK_APP"]
    project.env["MAINTENANCE_LOCK_FILE"] = str(lock_file)
    project.rq_worker("default")
    project.enqueue(("default", "early"))
    settle(NOTICED)
    assert "start early" not in project.lines(), project.logs()
    lock_file.unlink()  # what `flask maintenance off` does to the file backend
    project.wait_for("end early")
