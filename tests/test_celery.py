"""Celery during maintenance, with a real worker (prefork, two processes) and beat on a real
redis-server: the worker pauses and resumes, tasks finish or wait, exempt work runs, beat skips."""

from __future__ import annotations

import pytest
from queue_support import QueueProject, queue_project, settle
from servers import FLASK, redis_server, wait_until

__all__ = ["queue_project", "redis_server"]  # fixtures

pytestmark = pytest.mark.slow


def test_a_worker_started_by_a_flask_command_does_not_refuse_its_tasks_as_commands(
    queue_project: QueueProject,
) -> None:
    # The app uses the extension but not init_celery: tasks are not paused, and must not fail.
    log = queue_project.start("worker", [FLASK, "worker"])
    queue_project.wait_for_log(log, "ready.")
    queue_project.flask("maintenance", "on")
    result = queue_project.python('print(job.delay("during").get(timeout=10))')
    assert result == "during", queue_project.logs()
    assert "CommandRefused" not in log.read_text()


def send(project: QueueProject, *calls: str) -> list[str]:
    """Send tasks from another process, in one go; their ids."""
    return project.python("\n".join(f"print({call}.id)" for call in calls)).split()


def states(project: QueueProject, *task_ids: str) -> list[str]:
    return project.python(f"for i in {list(task_ids)}: print(celery_app.AsyncResult(i).state)").split()


def results(project: QueueProject, *task_ids: str) -> list[str]:
    return project.python(
        f"for i in {list(task_ids)}: print(celery_app.AsyncResult(i).get(timeout=10))"
    ).split()


def test_workers_pause_during_maintenance_and_every_task_runs_once_after(queue_project: QueueProject) -> None:
    project = queue_project
    project.env.update(SUBJECT_PAUSE="1", MAINTENANCE_CELERY_EXEMPT="urgent")
    worker_log = project.celery_worker()
    beat_log = project.start(
        "beat", project.celery("beat", "--loglevel", "INFO", "-s", str(project.directory / "beat"))
    )
    project.wait_for("end tick")

    # Both pool processes busy, and one more task that the worker has taken but not started.
    *running, behind = send(
        project, 'job.delay("slow-1", -1)', 'job.delay("slow-2", -1)', 'job.delay("behind")'
    )
    project.wait_for("start slow-1")
    project.wait_for("start slow-2")
    switching = project.start_flask("maintenance", "on", "--retry", "1", "--wait", "30")
    project.wait_for_log(worker_log, "this worker stopped taking tasks from celery (still from urgent)")
    *waiting, _ = send(
        project, 'job.delay("a")', 'job.delay("b")', 'job.delay("c")', 'urgent.delay("urgent")'
    )
    # `on --wait` waits for the tasks running when it switched: they finish, with their results.
    settle(1.0)  # four heartbeats of each pool process
    assert switching.poll() is None, switching.communicate()
    assert not {"end slow-1", "end slow-2"} & set(project.lines())
    project.release()
    assert switching.wait(timeout=30) == 0, project.logs()
    assert {"end slow-1", "end slow-2"} <= set(project.lines())
    ticks = project.ended()["tick"]
    assert results(project, *running) == ["slow-1", "slow-2"]
    # Exempt work runs during the window: the paused worker still consumes the exempt queue.
    project.wait_for("end urgent")
    # The task taken before the switch went back to the broker with Retry-After as countdown.
    wait_until(lambda: states(project, behind) == ["RETRY"], "the task taken before the switch to be retried")
    settle(1.5)
    assert not {"start a", "start b", "start c", "start behind"} & set(project.lines()), project.logs()
    assert project.ended()["tick"] == ticks, "beat sent its periodic task during maintenance"

    project.flask("maintenance", "off")
    assert results(project, *waiting, behind) == ["a", "b", "c", "behind"]
    wait_until(lambda: project.ended()["tick"] > ticks, "beat to send its periodic task again")
    settle(0.5)
    names = ("a", "b", "c", "behind", "slow-1", "slow-2", "urgent")
    ended = project.ended()
    assert {name: ended[name] for name in names} == dict.fromkeys(names, 1), project.lines()
    assert not [line for line in project.lines() if line.startswith("retries ")]  # "behind" counted none
    worker_text, beat_text = worker_log.read_text(), beat_log.read_text()
    assert "this worker stopped taking tasks from celery (still from urgent)" in worker_text
    assert "takes tasks from celery again" in worker_text
    assert f"queued_app.job[{behind}] retried in 1 s: maintenance is on (mode full" in worker_text, (
        worker_text
    )
    assert beat_text.count("beat skips periodic tasks until it is off") == 1, beat_text


def test_a_worker_started_during_maintenance_starts_paused_and_does_not_poll(
    queue_project: QueueProject,
) -> None:
    project = queue_project
    project.env.update(SUBJECT_PAUSE="1", MAINTENANCE_BACKEND=project.redis.url)
    project.flask("maintenance", "on", "--mode", "readonly")
    [early] = send(project, 'job.delay("early")')
    log = project.celery_worker()
    assert "this worker stopped taking tasks from celery, urgent" in log.read_text()
    project.redis.reset_calls()
    settle(1.0)
    calls = project.redis.calls()
    # Paused, it asks the broker for no task at all, and reads the state once per check interval
    # (a busy loop would make thousands of calls a second).
    assert "brpop" not in calls and sum(calls.values()) < 150, calls
    assert "start early" not in project.lines(), project.logs()
    # The worker and its two pool processes publish heartbeats, under host:pid, as "tasks".
    status = project.flask("maintenance", "status")
    worker_pid = project.processes[0][0].pid
    assert "  workers:      3\n" in status and status.count(" tasks  readonly") == 3, status
    assert f":{worker_pid} " in status, status

    project.flask("maintenance", "off")
    assert results(project, early) == ["early"]
