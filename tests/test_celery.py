"""Celery during maintenance, with a real worker (prefork, two processes) and beat on a real
redis-server: the worker pauses and resumes, tasks finish or wait, exempt work runs, beat skips."""

from __future__ import annotations

import pytest

from queue_support import QueueProject, queue_project, settle
from servers import FLASK, redis_server

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
