"""MAINTENANCE_WEBHOOKS against a real receiver on 127.0.0.1: fine, slow, failing, down, hostile.

Each transition is POSTed from the process that made it, in the background: a receiver that is
slow, failing or down never delays or fails the switch, and a window that starts or ends by
itself is announced once for all the processes that see it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import STATUS_KEYS, AppFactory, Clock
from flask import Flask
from receiver import RawReceiver, Receiver, receiver  # noqa: F401 (the fixture)
from servers import HOST, TIMEOUT, free_port, redis_server  # noqa: F401 (the fixture)

from flask_maintenance import Maintenance, webhooks
from flask_maintenance.times import utcnow


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries a few milliseconds apart: how many there are is tested, not how long they wait."""
    monkeypatch.setattr(webhooks, "BACKOFF", 0.005)


def hooked(make_app: AppFactory, *urls: str, **config: object) -> tuple[Flask, Maintenance]:
    extension = Maintenance()
    app = make_app(extension, MAINTENANCE_WEBHOOKS=list(urls), **config)
    return app, extension


class TestDelivery:
    def test_each_transition_is_posted_with_event_status_and_text(
        self, make_app: AppFactory, receiver: Receiver
    ) -> None:
        app, m = hooked(make_app, receiver.url)
        m.enable(message="Upgrading, back soon", app=app)
        m.enable(mode="readonly", app=app)
        m.disable(app=app)
        assert m.wait_for_notifications(TIMEOUT, app=app)
        assert receiver.events() == ["on", "update", "off"]
        on = receiver.received[0]
        assert set(on["status"]) == STATUS_KEYS
        assert on["status"]["active"] is True and on["status"]["mode"] == "full"
        assert on["status"]["message"] == "Upgrading, back soon"
        # A chat service's incoming webhook shows `text` as it is.
        assert on["text"].startswith("Maintenance ON (mode full): Upgrading, back soon (by ")
        assert "from python" in on["text"]
        assert receiver.received[1]["status"]["mode"] == "readonly"
        assert receiver.received[2]["status"]["active"] is False
        assert receiver.headers[0]["Content-Type"] == "application/json"

    def test_schedule_cancel_and_features_are_posted(self, make_app: AppFactory, receiver: Receiver) -> None:
        app, m = hooked(make_app, receiver.url)
        start = utcnow() + timedelta(hours=1)
        m.schedule(start, start + timedelta(hours=1), message="Database upgrade", app=app)
        m.cancel(app=app)
        m.enable(feature="payments", message="Provider down", app=app)
        m.disable(feature="payments", app=app)
        assert m.wait_for_notifications(TIMEOUT, app=app)
        assert receiver.events() == ["schedule", "cancel", "feature-off", "feature-on"]
        assert receiver.received[0]["status"]["scheduled"]["message"] == "Database upgrade"
        assert receiver.received[2]["status"]["features"] == ["payments"]
        assert receiver.received[2]["text"].startswith("Feature payments OFF: Provider down")

    def test_nothing_changed_nothing_posted(self, make_app: AppFactory, receiver: Receiver) -> None:
        app, m = hooked(make_app, receiver.url)
        m.disable(app=app)
        m.cancel(app=app)
        m.enable(message="same", app=app)
        m.enable(message="same", app=app)
        assert m.wait_for_notifications(TIMEOUT, app=app)
        assert receiver.events() == ["on"]

    def test_credentials_in_the_url_are_sent_as_basic_auth(
        self, make_app: AppFactory, receiver: Receiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        receiver.answers = [503]  # one failure, to see what the log says of the URL
        app, m = hooked(make_app, f"http://hook:s%40cret@{HOST}:{receiver.port}/hooks/maintenance")
        with caplog.at_level(logging.INFO, logger="flask_maintenance"):
            m.enable(app=app)
            assert m.wait_for_notifications(TIMEOUT, app=app)
        assert receiver.events() == ["on", "on"]
        assert receiver.headers[-1]["Authorization"] == "Basic " + base64.b64encode(b"hook:s@cret").decode()
        assert "cret" not in caplog.text and "hook:" not in caplog.text

    def test_every_url_gets_every_notification(self, make_app: AppFactory) -> None:
        first, second = Receiver(), Receiver()
        try:
            app, m = hooked(make_app, first.url, second.url)
            m.enable(app=app)
            m.disable(app=app)
            assert m.wait_for_notifications(TIMEOUT, app=app)
            assert first.events() == second.events() == ["on", "off"]
        finally:
            first.close()
            second.close()

    def test_the_bypass_secret_is_never_sent(self, make_app: AppFactory, receiver: Receiver) -> None:
        app, m = hooked(make_app, receiver.url)
        m.enable(secret="the-deploy-secret-token", app=app)
        assert m.wait_for_notifications(TIMEOUT, app=app)
        sent = json.dumps(receiver.received)
        assert "the-deploy-secret-token" not in sent and "token" not in sent


class TestFailingReceivers:
    def test_a_slow_receiver_never_delays_the_switch(self, make_app: AppFactory, receiver: Receiver) -> None:
        receiver.hold_seconds = TIMEOUT  # answers only when released
        app, m = hooked(make_app, receiver.url)
        m.enable(app=app)  # returns while the receiver holds the request...
        receiver.wait_for(1)
        assert m.status(app=app).active
        # ...which times out after 2 s and is sent again; released, the retry is accepted.
        receiver.wait_for(2)
        receiver.released.set()
        assert m.wait_for_notifications(TIMEOUT, app=app)
        assert receiver.events() == ["on", "on"]

    def test_a_failing_receiver_gets_three_retries(self, make_app: AppFactory, receiver: Receiver) -> None:
        receiver.answers = [500, 502, 503, 500, 500]
        app, m = hooked(make_app, receiver.url)
        m.enable(app=app)
        assert m.wait_for_notifications(TIMEOUT, app=app)
        assert receiver.events() == ["on"] * 4  # the first attempt and three retries, no more
        assert receiver.answers == [500]

    def test_a_receiver_that_recovers_gets_it_once(self, make_app: AppFactory, receiver: Receiver) -> None:
        receiver.answers = [503, 429]
        app, m = hooked(make_app, receiver.url)
        m.enable(app=app)
        m.disable(app=app)
        assert m.wait_for_notifications(TIMEOUT, app=app)
        assert receiver.events() == ["on", "on", "on", "off"]  # in order: `off` waits for `on`

    def test_a_refusal_is_not_retried(
        self, make_app: AppFactory, receiver: Receiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        receiver.answers = [404]
        app, m = hooked(make_app, receiver.url)
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            m.enable(app=app)
            assert m.wait_for_notifications(TIMEOUT, app=app)
        assert receiver.events() == ["on"]
        assert "refused the notification (HTTP 404)" in caplog.text
        assert "secret-part" not in caplog.text  # incoming-webhook URLs carry their secret in the path

    def test_a_secret_in_the_query_is_not_logged(
        self, make_app: AppFactory, receiver: Receiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Some incoming webhooks carry their key in the query, with no path before it.
        receiver.answers = [404]
        app, m = hooked(make_app, f"http://{HOST}:{receiver.port}?key=query-secret")
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            m.enable(app=app)
            assert m.wait_for_notifications(TIMEOUT, app=app)
        assert f"maintenance webhook http://{HOST}:{receiver.port} refused" in caplog.text
        assert "query-secret" not in caplog.text

    def test_a_redirect_is_not_followed(self, make_app: AppFactory, receiver: Receiver) -> None:
        elsewhere = Receiver()
        try:
            receiver.answers = [307, 307, 307, 307]
            receiver.answer_headers[307] = {"Location": elsewhere.url}
            app, m = hooked(make_app, receiver.url)
            m.enable(app=app)
            assert m.wait_for_notifications(TIMEOUT, app=app)
            assert elsewhere.received == []
        finally:
            elsewhere.close()

    def test_a_receiver_that_is_down_never_fails_the_switch(
        self, make_app: AppFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        app, m = hooked(make_app, f"http://{HOST}:{free_port()}/hook")
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            assert m.enable(message="on anyway", app=app).active
            assert app.test_client().get("/").status_code == 503
            assert m.wait_for_notifications(TIMEOUT, app=app)
        assert "not delivered after 4 attempts" in caplog.text

    @pytest.mark.parametrize(
        "reply",
        [
            b"garbage, not HTTP\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n" + b"x" * 200_000,
            b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"a" * 100_000 + b"\r\n\r\n",
            b"",
        ],
        ids=["not-http", "endless-body", "huge-header", "hang-up"],
    )
    def test_hostile_answers_never_fail_the_switch(self, make_app: AppFactory, reply: bytes) -> None:
        hostile = RawReceiver(reply)
        try:
            app, m = hooked(make_app, hostile.url)
            assert m.enable(app=app).active
            assert m.wait_for_notifications(TIMEOUT, app=app)
            assert 1 <= hostile.connections <= 1 + webhooks.RETRIES
            assert m.disable(app=app)
        finally:
            hostile.close()


class TestConfiguration:
    @pytest.mark.parametrize(
        "value",
        [
            "ftp://example.test/x",
            "not a url",
            ["http://"],
            [42],
            "http://[::1/hook",
            "http://127.0.0.1:99999/",
        ],
    )
    def test_bad_urls_fail_at_startup(self, make_app: AppFactory, value: object) -> None:
        with pytest.raises(ValueError, match="MAINTENANCE_WEBHOOKS"):
            make_app(MAINTENANCE_WEBHOOKS=value)

    def test_a_comma_separated_string_is_a_list(self, make_app: AppFactory, receiver: Receiver) -> None:
        other = make_app(Maintenance(), MAINTENANCE_WEBHOOKS=f"{receiver.url}, {receiver.url}")
        assert other.extensions["maintenance"].settings(app=other).webhooks == (receiver.url, receiver.url)


class TestWindowsByThemselves:
    """Two apps on one lock file are two workers of a fleet: each sees the window start."""

    def fleet(self, make_app: AppFactory, url: str, **config: object) -> list[tuple[Flask, Maintenance]]:
        return [hooked(make_app, url, **config) for _ in range(3)]

    def test_a_window_that_starts_and_ends_by_itself_is_announced_once(
        self, clock: Clock, make_app: AppFactory, receiver: Receiver, tmp_path: Path
    ) -> None:
        workers = self.fleet(make_app, receiver.url)
        app, m = workers[0]
        start = clock.utcnow() + timedelta(seconds=30)
        m.schedule(
            start, start + timedelta(minutes=10), mode="readonly", message="Planned", auto_off=True, app=app
        )
        for worker, _ in workers:
            assert worker.test_client().get("/").status_code == 200
        clock.advance(31)
        for worker, _ in workers:
            assert worker.test_client().post("/form").status_code == 503
        for worker, extension in workers:
            assert extension.wait_for_notifications(TIMEOUT, app=worker)
        assert receiver.events() == ["schedule", "start"]
        started = receiver.received[1]
        assert started["status"]["active"] and started["status"]["mode"] == "readonly"
        assert started["text"].startswith("Scheduled maintenance started (mode readonly)")
        assert "(by schedule, from schedule)" in started["text"]
        clock.advance(600)
        for worker, extension in workers:
            assert worker.test_client().post("/form").status_code == 200
            assert extension.wait_for_notifications(TIMEOUT, app=worker)
        assert receiver.events() == ["schedule", "start", "end"]
        history = (tmp_path / "instance" / "maintenance.lock.history").read_text().splitlines()
        assert [json.loads(line)["event"] for line in history] == ["schedule", "start", "end"]

    def test_with_redis_too(
        self, clock: Clock, make_app: AppFactory, receiver: Receiver, redis_server: object
    ) -> None:
        url = redis_server.url  # type: ignore[attr-defined]
        workers = self.fleet(make_app, receiver.url, MAINTENANCE_BACKEND=url)
        app, m = workers[0]
        start = clock.utcnow() + timedelta(seconds=30)
        m.schedule(start, start + timedelta(minutes=10), auto_off=True, app=app)
        clock.advance(31)
        for worker, extension in workers:
            assert worker.test_client().get("/").status_code == 503
            assert extension.wait_for_notifications(TIMEOUT, app=worker)
        clock.advance(600)
        for worker, extension in workers:
            assert worker.test_client().get("/").status_code == 200
            assert extension.wait_for_notifications(TIMEOUT, app=worker)
        assert receiver.events() == ["schedule", "start", "end"]
        entries = redis_server.client().xrange("flask-maintenance:state:history")  # type: ignore[attr-defined]
        assert [json.loads(fields[b"entry"])["event"] for _, fields in entries] == [
            "schedule",
            "start",
            "end",
        ]

    def test_an_operator_ending_the_window_is_not_the_window_ending_by_itself(
        self, clock: Clock, make_app: AppFactory, receiver: Receiver
    ) -> None:
        app, m = hooked(make_app, receiver.url)
        start = clock.utcnow() + timedelta(seconds=30)
        m.schedule(start, start + timedelta(minutes=10), auto_off=True, app=app)
        clock.advance(31)
        assert app.test_client().get("/").status_code == 503
        assert m.wait_for_notifications(TIMEOUT, app=app)  # the worker that saw it start told it
        m.disable(app=app)
        assert app.test_client().get("/").status_code == 200
        assert m.wait_for_notifications(TIMEOUT, app=app)
        assert receiver.events() == ["schedule", "start", "off"]


def test_the_refused_port_is_really_closed() -> None:
    """The "down" receiver above relies on a free port refusing connections."""
    with pytest.raises(OSError), socket.create_connection((HOST, free_port()), timeout=TIMEOUT):
        pass


CLI_APP = """
import os

from flask import Flask
from flask_maintenance import Maintenance

app = Flask(__name__, instance_path=os.environ["SUBJECT_INSTANCE"])
app.config["MAINTENANCE_WEBHOOKS"] = os.environ["SUBJECT_WEBHOOKS"]
Maintenance(app)
"""


@pytest.mark.slow
class TestFromTheCommandLine:
    """A `flask` command delivers before it exits, and a dead receiver does not keep it."""

    def flask(self, tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "hooked_app.py").write_text(CLI_APP)
        env = {
            **os.environ,
            "FLASK_APP": "hooked_app",
            "PYTHONPATH": str(tmp_path),
            "SUBJECT_INSTANCE": str(tmp_path / "instance"),
            "SUBJECT_WEBHOOKS": url,
        }
        return subprocess.run(
            [sys.executable, "-m", "flask", "maintenance", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT * 2,
        )

    def test_delivered_before_the_command_exits(self, tmp_path: Path, receiver: Receiver) -> None:
        receiver.hold_seconds = 1.0  # answers after a second: the command waits for it
        result = self.flask(tmp_path, receiver.url, "on", "--message", "From the shell")
        assert result.returncode == 0, result.stderr
        assert receiver.events() == ["on"]
        assert receiver.received[0]["text"].endswith(
            "(by " + receiver.received[0]["history"]["who"] + ", from cli)"
        )
        result = self.flask(tmp_path, receiver.url, "off")
        assert result.returncode == 0 and receiver.events() == ["on", "off"]

    def test_a_dead_receiver_never_fails_the_command(self, tmp_path: Path) -> None:
        result = self.flask(tmp_path, f"http://{HOST}:{free_port()}/hook", "on")
        assert result.returncode == 0
        assert "Maintenance is ON" in result.stdout
        assert "notification not delivered after 4 attempts" in result.stderr
        assert (tmp_path / "instance" / "maintenance.lock").exists()
