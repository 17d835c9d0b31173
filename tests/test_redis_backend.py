"""The state backends: one contract for the lock file and Redis, and Redis failing under load.

Redis is a real redis-server started on a free loopback port (password ``secret``); the fleet is
two real gunicorn servers switched by a real ``flask`` subprocess.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Clock
from flask import Flask
from servers import (  # noqa: F401 (fixtures)
    GUARD,
    REDIS_PASSWORD,
    TIMEOUT,
    AppProject,
    BlackHole,
    RedisServer,
    black_hole,
    free_port,
    redis_server,
    require_module,
    wait_until,
)

from flask_maintenance import ConfigurationError, Maintenance
from flask_maintenance.backends import FileBackend, backend_from_url

AppFactory = Callable[..., Flask]

# Time a request may take while Redis is down or hangs: the socket timeout (0.25 s) and slack.
BOUNDED = 1.0
UNAVAILABLE = "maintenance state unavailable"


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.slow)])
def backend_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The config that puts an app on one backend; apps built with it share the state."""
    if request.param == "file":
        return {"MAINTENANCE_BACKEND": "file", "MAINTENANCE_LOCK_FILE": str(tmp_path / "maintenance.lock")}
    server: RedisServer = request.getfixturevalue("redis_server")
    return {"MAINTENANCE_BACKEND": server.url}


def warnings_about_the_backend(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "flask_maintenance"
        and record.levelno == logging.WARNING
        and UNAVAILABLE in record.getMessage()
    ]


def run_guard(*args: str, marker: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('ran\\n')"]
    return subprocess.run([GUARD, *args, "--", *command], capture_output=True, text=True, timeout=TIMEOUT)


class TestBackendContract:
    """What every backend does, the same way: run once with the lock file and once with Redis."""

    def test_off_until_switched_on(self, make_app: AppFactory, backend_config: dict[str, Any]) -> None:
        app = make_app(**backend_config)
        extension: Maintenance = app.extensions["maintenance"]
        assert not extension.is_active(app=app)
        assert extension.backend(app=app).read() is None
        assert app.test_client().get("/").status_code == 200

    def test_enable_status_disable(self, make_app: AppFactory, backend_config: dict[str, Any]) -> None:
        app = make_app(**backend_config)
        extension: Maintenance = app.extensions["maintenance"]

        extension.enable(mode="readonly", retry=30, message="Moving to new disks", app=app)
        state = extension.status(app=app)
        assert (state.active, state.mode, state.retry, state.message) == (
            True,
            "readonly",
            30,
            "Moving to new disks",
        )
        assert extension.is_active(app=app)

        extension.disable(app=app)
        assert not extension.is_active(app=app)
        extension.disable(app=app)  # already off: not an error
        assert not extension.is_active(app=app)

    def test_write_read_clear(self, make_app: AppFactory, backend_config: dict[str, Any]) -> None:
        app = make_app(**backend_config)
        backend = app.extensions["maintenance"].backend(app=app)
        backend.write(b'{"mode": "full"}')
        assert backend.read() == b'{"mode": "full"}'
        backend.write(b'{"mode": "banner"}')
        assert backend.read() == b'{"mode": "banner"}'
        backend.clear()
        assert backend.read() is None
        backend.clear()
        assert backend.read() is None

    def test_requests_follow_the_switch(self, make_app: AppFactory, backend_config: dict[str, Any]) -> None:
        app = make_app(**backend_config)
        extension: Maintenance = app.extensions["maintenance"]
        client = app.test_client()

        extension.enable(retry=120, app=app)
        response = client.get("/")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "120"
        assert client.get("/api/items").mimetype == "application/problem+json"

        extension.disable(app=app)
        assert client.get("/").status_code == 200

    def test_apps_sharing_the_backend_see_each_others_switch(
        self, make_app: AppFactory, backend_config: dict[str, Any]
    ) -> None:
        first, second = make_app(**backend_config), make_app(**backend_config)
        first.extensions["maintenance"].enable(message="From the first app", app=first)
        assert second.extensions["maintenance"].status(app=second).message == "From the first app"
        assert second.test_client().get("/").status_code == 503

        second.extensions["maintenance"].disable(app=second)
        assert first.test_client().get("/").status_code == 200

    def test_damaged_state_fails_closed(
        self, make_app: AppFactory, backend_config: dict[str, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        app = make_app(**backend_config)
        app.extensions["maintenance"].backend(app=app).write(b"{not json")
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            response = app.test_client().get("/")
        assert response.status_code == 503
        assert "not valid JSON" in caplog.text

    def test_cli_on_status_off_name_the_backend(
        self, make_app: AppFactory, backend_config: dict[str, Any]
    ) -> None:
        app = make_app(**backend_config)
        runner = app.test_cli_runner()
        where = app.extensions["maintenance"].backend(app=app).describe()
        if backend_config["MAINTENANCE_BACKEND"] == "file":
            assert where == f"file {backend_config['MAINTENANCE_LOCK_FILE']}"
        else:
            assert where.startswith("redis redis://127.0.0.1:") and where.endswith(
                " key flask-maintenance:state"
            )

        on = runner.invoke(args=["maintenance", "on", "--retry", "30", "--message", "Upgrading"])
        assert on.exit_code == 0, on.output
        assert "Maintenance is ON (mode full)" in on.output
        assert app.test_client().get("/").status_code == 503

        status = runner.invoke(args=["maintenance", "status"])
        assert status.exit_code == 0
        assert "message:      Upgrading" in status.output
        assert f"backend:      {where}" in status.output
        as_json = runner.invoke(args=["maintenance", "status", "--json"])
        assert f'"backend": "{where}"' in as_json.output

        off = runner.invoke(args=["maintenance", "off"])
        assert off.exit_code == 0
        assert "Maintenance is OFF" in off.output
        status = runner.invoke(args=["maintenance", "status"])
        assert "Maintenance is OFF" in status.output
        assert f"backend:      {where}" in status.output
        for result in (on, status, as_json, off):
            assert REDIS_PASSWORD not in result.output

    def test_guard_script_skips_while_on_and_runs_when_off(
        self, make_app: AppFactory, backend_config: dict[str, Any], tmp_path: Path
    ) -> None:
        app = make_app(**backend_config)
        extension: Maintenance = app.extensions["maintenance"]
        backend = extension.backend(app=app)
        where = (
            ["--lock-file", backend.path]
            if isinstance(backend, FileBackend)
            else ["--backend", backend_config["MAINTENANCE_BACKEND"]]
        )
        marker = tmp_path / "job-ran"

        extension.enable(app=app)
        skipped = run_guard(*where, marker=marker)
        assert skipped.returncode == 75, skipped.stderr
        assert "maintenance is on (mode full" in skipped.stderr
        assert not marker.exists()

        extension.disable(app=app)
        ran = run_guard(*where, marker=marker)
        assert ran.returncode == 0, ran.stderr
        assert marker.read_text() == "ran\n"


class TestConfiguration:
    def test_missing_redis_package_names_the_extra(
        self, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` now raises ImportError
        with pytest.raises(ConfigurationError, match=r'pip install "flask-maintenance-mode\[redis\]"'):
            make_app(MAINTENANCE_BACKEND="redis://127.0.0.1:6379/0")

    @pytest.mark.parametrize(
        "value", ["redis", "File", "memcached://127.0.0.1:11211", "/var/run/app.lock", ""]
    )
    def test_invalid_backend_is_a_configuration_error(self, make_app: AppFactory, value: str) -> None:
        with pytest.raises(ConfigurationError, match="MAINTENANCE_BACKEND"):
            make_app(MAINTENANCE_BACKEND=value)

    @pytest.mark.parametrize(
        "url", ["redis://127.0.0.1:6379/0", "rediss://cache.internal:6380/2", "unix:///run/redis.sock?db=1"]
    )
    def test_redis_urls_are_accepted_without_connecting(self, make_app: AppFactory, url: str) -> None:
        require_module("redis", 'pip install -e ".[test]"')
        app = make_app(MAINTENANCE_BACKEND=url, MAINTENANCE_REDIS_KEY="shop:maintenance")
        assert app.extensions["maintenance"].backend(app=app).describe().endswith(" key shop:maintenance")

    def test_password_never_shown(self) -> None:
        require_module("redis", 'pip install -e ".[test]"')
        backend = backend_from_url("redis://:hunter2@127.0.0.1:6379/3")
        assert backend.describe() == "redis redis://127.0.0.1:6379/3 key flask-maintenance:state"


@pytest.mark.slow
class TestRedisCache:
    """At most one Redis round trip per check interval per process, whatever the request rate."""

    def reads(self, server: RedisServer) -> int:
        """Round trips that read the state: one ``MULTI``/``EXEC`` of ``TYPE`` and ``GETRANGE``
        for the lock and the plan together."""
        return server.calls().get("exec", 0)

    def test_reads_do_not_grow_with_the_request_rate(
        self, clock: Clock, make_app: AppFactory, redis_server: RedisServer
    ) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url, MAINTENANCE_CHECK_INTERVAL=5)
        client = app.test_client()
        redis_server.reset_calls()

        assert client.get("/").status_code == 200
        per_interval = self.reads(redis_server)
        assert per_interval >= 1
        for _ in range(50):
            assert client.get("/").status_code == 200
        clock.advance(4.9)
        client.get("/")
        assert self.reads(redis_server) == per_interval

        clock.advance(0.2)
        for _ in range(20):
            client.get("/")
        assert self.reads(redis_server) == 2 * per_interval

    def test_one_round_trip_per_interval(
        self, clock: Clock, make_app: AppFactory, redis_server: RedisServer
    ) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url, MAINTENANCE_CHECK_INTERVAL=5)
        client = app.test_client()
        redis_server.reset_calls()
        for _ in range(50):
            client.get("/")
        assert self.reads(redis_server) == 1

    def test_reads_do_not_grow_with_threads(
        self, clock: Clock, make_app: AppFactory, redis_server: RedisServer
    ) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url, MAINTENANCE_CHECK_INTERVAL=5)
        app.test_client().get("/")
        redis_server.reset_calls()
        clock.advance(5.1)  # every thread below arrives when the last read is stale
        statuses: list[int] = []
        start = threading.Barrier(8)

        def hammer() -> None:
            client = app.test_client()
            start.wait(TIMEOUT)
            statuses.extend(client.get("/").status_code for _ in range(25))

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert statuses == [200] * 200
        calls = redis_server.calls()
        # One read of the state (one interval's worth) and nothing else per request: only the
        # set-up of a connection besides it.
        assert calls.get("exec", 0) <= 2, calls
        assert set(calls) <= {"multi", "type", "getrange", "exec", "auth", "client|setinfo", "hello"}, calls

    def test_own_switch_is_seen_at_once(
        self, clock: Clock, make_app: AppFactory, redis_server: RedisServer
    ) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url, MAINTENANCE_CHECK_INTERVAL=60)
        client = app.test_client()
        assert client.get("/").status_code == 200
        app.extensions["maintenance"].enable(app=app)
        assert client.get("/").status_code == 503

    def test_interval_zero_reads_every_time(self, make_app: AppFactory, redis_server: RedisServer) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url, MAINTENANCE_CHECK_INTERVAL=0)
        client = app.test_client()
        redis_server.reset_calls()
        for _ in range(5):
            client.get("/")
        assert self.reads(redis_server) >= 5


class TestRedisFailures:
    """Redis unreachable, hanging, stopped or restarted: never a 500, never a request that hangs."""

    def timed_get(self, app: Flask, path: str = "/") -> tuple[int, float]:
        start = time.monotonic()
        status = app.test_client().get(path).status_code
        elapsed = time.monotonic() - start
        assert elapsed < BOUNDED, f"a request took {elapsed:.2f} s"
        return status, elapsed

    def test_unreachable_with_no_known_state_serves_normally(
        self, clock: Clock, make_app: AppFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        require_module("redis", 'pip install -e ".[test]"')
        app = make_app(
            MAINTENANCE_BACKEND=f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0",
            MAINTENANCE_CHECK_INTERVAL=2,
        )
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            assert [self.timed_get(app)[0] for _ in range(30)] == [200] * 30
            assert self.timed_get(app, "/api/items")[0] == 200
            assert len(warnings_about_the_backend(caplog)) == 1

            clock.advance(2.1)
            assert [self.timed_get(app)[0] for _ in range(10)] == [200] * 10
            assert len(warnings_about_the_backend(caplog)) == 2
        assert REDIS_PASSWORD not in caplog.text
        assert "Connection refused" in warnings_about_the_backend(caplog)[0]

    def test_hanging_redis_times_out_quickly(
        self, clock: Clock, make_app: AppFactory, black_hole: BlackHole, caplog: pytest.LogCaptureFixture
    ) -> None:
        require_module("redis", 'pip install -e ".[test]"')
        app = make_app(
            MAINTENANCE_BACKEND=f"redis://127.0.0.1:{black_hole.port}/0", MAINTENANCE_CHECK_INTERVAL=2
        )
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            status, first = self.timed_get(app)
            assert status == 200
            assert first >= 0.2  # it really waited for the socket timeout, once
            for _ in range(20):  # within the interval: no more waiting
                assert self.timed_get(app)[1] < 0.1
        assert len(warnings_about_the_backend(caplog)) == 1
        assert "Timeout" in warnings_about_the_backend(caplog)[0]

    @pytest.mark.slow
    def test_paused_redis_keeps_the_last_known_state(
        self, clock: Clock, make_app: AppFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url, MAINTENANCE_CHECK_INTERVAL=1)
        app.extensions["maintenance"].enable(app=app)
        assert self.timed_get(app)[0] == 503

        # CLIENT PAUSE: the server holds every client's commands for 0.8 s: a Redis that hangs.
        paused = redis_server.client()
        paused.execute_command("CLIENT", "PAUSE", "800", "ALL")
        clock.advance(1.1)
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            assert [self.timed_get(app)[0] for _ in range(10)] == [503] * 10
        assert len(warnings_about_the_backend(caplog)) == 1
        assert "Timeout" in warnings_about_the_backend(caplog)[0]
        paused.ping()  # answered once the pause is over

        redis_server.client().delete("flask-maintenance:state")  # switched off elsewhere
        clock.advance(1.1)
        assert self.timed_get(app)[0] == 200

    @pytest.mark.slow
    def test_redis_stopped_mid_run_then_restarted(
        self, clock: Clock, make_app: AppFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url, MAINTENANCE_CHECK_INTERVAL=1)
        extension: Maintenance = app.extensions["maintenance"]
        extension.enable(message="Migrating", app=app)
        assert self.timed_get(app)[0] == 503

        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            for _ in range(3):  # three intervals without Redis: the last state, one warning each
                clock.advance(1.1)
                assert [self.timed_get(app)[0] for _ in range(5)] == [503] * 5
            assert extension.status(app=app).message == "Migrating"
        assert len(warnings_about_the_backend(caplog)) == 3

        # The operator's view while Redis is down: one line, no traceback, no password.
        off = app.test_cli_runner().invoke(args=["maintenance", "off"])
        assert off.exit_code == 1
        assert off.output.startswith("Error: cannot write the state in redis redis://127.0.0.1:")
        assert off.output.count("\n") == 1 and REDIS_PASSWORD not in off.output

        # Restarted without persistence, Redis is empty: the switch is off until set again.
        redis_server.start()
        statuses = []
        for _ in range(3):  # a connection broken by the restart may fail once more, then reconnects
            clock.advance(1.1)
            statuses.append(self.timed_get(app)[0])
        assert statuses[-1] == 200, statuses
        redis_server.client().set("flask-maintenance:state", b'{"mode": "full", "message": "Again"}')
        clock.advance(1.1)
        assert self.timed_get(app)[0] == 503
        assert extension.status(app=app).message == "Again"

    def test_status_while_redis_is_down_does_not_claim_off(self, make_app: AppFactory) -> None:
        require_module("redis", 'pip install -e ".[test]"')
        app = make_app(MAINTENANCE_BACKEND=f"redis://127.0.0.1:{free_port()}/0")
        status = app.test_cli_runner().invoke(args=["maintenance", "status"])
        assert "Maintenance is OFF" not in status.output
        assert status.exit_code == 1
        assert "cannot read the state in redis redis://127.0.0.1:" in status.output

    def test_guard_skips_when_redis_is_unreachable(self, tmp_path: Path) -> None:
        require_module("redis", 'pip install -e ".[test]"')
        marker = tmp_path / "job-ran"
        url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"
        result = run_guard("--backend", url, marker=marker)
        assert result.returncode == 75
        assert not marker.exists()
        assert "cannot read the state in redis redis://127.0.0.1:" in result.stderr
        assert REDIS_PASSWORD not in result.stderr

    @pytest.mark.slow
    def test_guard_with_a_wrong_password_skips(self, redis_server: RedisServer, tmp_path: Path) -> None:
        marker = tmp_path / "job-ran"
        result = run_guard(
            "--backend", redis_server.url.replace(REDIS_PASSWORD, "not-the-password"), marker=marker
        )
        assert result.returncode == 75
        assert not marker.exists()
        assert "cannot read the state in redis redis://127.0.0.1:" in result.stderr
        assert "not-the-password" not in result.stderr


@pytest.mark.slow
class TestFleet:
    """Two gunicorn servers (one process each) sharing one Redis, switched by a real `flask`."""

    INTERVAL = 0.5

    def test_both_servers_switch_within_the_interval(self, redis_server: RedisServer, tmp_path: Path) -> None:
        project = AppProject(
            tmp_path / "fleet",
            MAINTENANCE_BACKEND=redis_server.url,
            MAINTENANCE_CHECK_INTERVAL=str(self.INTERVAL),
        )
        with project.gunicorn() as first, project.gunicorn() as second:
            first.launch()
            second.launch()
            first.wait_ready()
            second.wait_ready()
            servers = (first, second)
            pages = [server.get("/") for server in servers]
            assert [page.status for page in pages] == [200, 200]
            assert pages[0].text != pages[1].text  # "pid N": two processes

            def switched_within_the_interval(status: int) -> None:
                start = time.monotonic()
                taken: dict[int, float] = {}

                def both_switched() -> bool:
                    for server in servers:
                        if server.port not in taken and server.get("/").status == status:
                            taken[server.port] = time.monotonic() - start
                    return len(taken) == len(servers)

                wait_until(both_switched, f"both servers to answer {status}")
                # The interval, plus slack for the requests themselves on a busy machine.
                assert max(taken.values()) < self.INTERVAL + 0.75, taken

            on = project.flask("maintenance", "on", "--message", "Fleet upgrade")
            assert on.returncode == 0, on.stderr
            switched_within_the_interval(503)
            assert "Fleet upgrade" in second.get("/").text

            status = project.flask("maintenance", "status")
            assert "Maintenance is ON" in status.stdout
            assert f"redis redis://127.0.0.1:{redis_server.port}/0" in status.stdout
            assert REDIS_PASSWORD not in status.stdout + status.stderr

            off = project.flask("maintenance", "off")
            assert off.returncode == 0, off.stderr
            switched_within_the_interval(200)
