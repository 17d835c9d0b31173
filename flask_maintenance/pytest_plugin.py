"""A pytest plugin for apps that use flask-maintenance (loaded through the ``pytest11`` entry point).

It provides the ``maintenance`` fixture. It needs the app's own ``app`` fixture (the pytest-flask
convention) and keeps the state in the test's temporary folder, so tests never touch the real
lock file or Redis::

    def test_orders_are_refused_while_readonly(client, maintenance):
        with maintenance.enabled(mode="readonly"):
            assert client.post("/orders").status_code == 503
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from .backends import FileBackend
from .extension import EXTENSION_KEY, Maintenance
from .model import State


class MaintenanceFixture:
    """The extension's API bound to the test's app (no ``app=`` needed)."""

    def __init__(self, app: Flask, extension: Maintenance, lock_file: Path) -> None:
        self.app = app
        self.extension = extension
        #: Where the state lives during this test.
        self.lock_file = lock_file

    def enable(self, **options: Any) -> State:
        return self.extension.enable(app=self.app, **options)

    def disable(self, **options: Any) -> None:
        self.extension.disable(app=self.app, **options)

    def enabled(self, **options: Any) -> AbstractContextManager[State]:
        return self.extension.enabled(app=self.app, **options)

    def schedule(self, starts_at: datetime, ends_at: datetime | None = None, **options: Any) -> State:
        return self.extension.schedule(starts_at, ends_at, app=self.app, **options)

    def status(self) -> State:
        return self.extension.status(app=self.app)

    def is_active(self) -> bool:
        return self.extension.is_active(app=self.app)


@pytest.fixture
def maintenance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MaintenanceFixture]:
    """Switch maintenance on and off in a test; the state starts off and is thrown away after.

    With pytest-flask's ``live_server`` in the same test, the server process reads the same
    temporary lock file (it is restarted for the test, and again after it), on every request.
    """
    app: Flask = request.getfixturevalue("app")
    extension = app.extensions.get(EXTENSION_KEY)
    if not isinstance(extension, Maintenance):
        pytest.fail("the `app` fixture's app has no Maintenance extension: call Maintenance(app)")
    lock_file = tmp_path / "maintenance.lock"
    live_server = request.getfixturevalue("live_server") if "live_server" in request.fixturenames else None
    with extension.isolated(FileBackend(lock_file), check_interval=0, app=app):
        # The live server is a fork of this process: fork it again so that it has the swap.
        _restart(live_server)
        yield MaintenanceFixture(app, extension, lock_file)
    _restart(live_server)  # back to the configured state, for the tests that share the server


def _restart(live_server: Any) -> None:
    """Stop pytest-flask's live server, wait until its port is closed, and start it again."""
    if live_server is None:
        return
    live_server.stop()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex((live_server.host, live_server.port)) != 0:
                break
        time.sleep(0.05)
    live_server.start()
