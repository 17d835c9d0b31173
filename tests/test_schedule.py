"""Scheduled windows: announced before they start, on by themselves at the start, off by
themselves at the end only with ``--auto-off``; the CLI refuses times it cannot be sure of."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import STATUS_KEYS, Clock
from flask import Flask, render_template_string

from flask_maintenance import ConfigurationError, Maintenance
from flask_maintenance.guard import skip_during_maintenance
from flask_maintenance.model import OFF, Plan, Schedule, resolve
from flask_maintenance.times import format_instant

AppFactory = Callable[..., Flask]


@pytest.fixture
def wall(clock: Clock) -> Clock:
    """The ``clock`` fixture, named for what these tests use it for: the time of day.

    ``schedule()`` and ``disable()`` compare with it, and ``Retry-After`` counts down to the end:
    the whole package reads it from ``flask_maintenance.times``, where the fixture moves it.
    """
    return clock


def iso(moment: datetime) -> str:
    return format_instant(moment)


def shown(moment: datetime) -> str:
    """How banners and pages print an instant: minutes, in UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def cli(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["maintenance", *args])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def plan_file(app: Flask) -> Path:
    return Path(app.config["MAINTENANCE_LOCK_FILE"] + ".plan")


def lock_path(app: Flask) -> Path:
    return Path(app.config["MAINTENANCE_LOCK_FILE"])


def add_template_view(app: Flask) -> None:
    @app.get("/page")
    def page() -> str:
        return render_template_string(
            "active={{ maintenance.active }}|banner={{ maintenance.banner }}"
            "|starts={{ maintenance.scheduled.starts_at.isoformat() if maintenance.scheduled else '' }}"
            "|mode={{ maintenance.scheduled.mode if maintenance.scheduled else '' }}"
        )


class TestBeforeTheStart:
    def test_requests_pass_with_the_announcement_in_the_banner_header(
        self, wall: Clock, make_app: AppFactory
    ) -> None:
        app = make_app()
        start, end = wall.utcnow() + timedelta(hours=1), wall.utcnow() + timedelta(hours=3)
        ok(cli(app, "schedule", "--at", iso(start), "--until", iso(end), "--message", "Database upgrade"))
        client = app.test_client()
        for method, path in [("GET", "/"), ("POST", "/form"), ("DELETE", "/api/items")]:
            response = client.open(path, method=method)
            assert response.status_code == 200, (method, path)
            assert response.headers["X-Maintenance-Banner"] == (
                f"Scheduled maintenance at {shown(start)} UTC until {shown(end)} UTC: Database upgrade"
            )
        assert "Retry-After" not in client.get("/").headers

    def test_the_banner_without_an_end_or_message(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        start = wall.utcnow() + timedelta(minutes=30)
        ok(cli(app, "schedule", "--at", iso(start)))
        banner = app.test_client().get("/").headers["X-Maintenance-Banner"]
        assert banner == f"Scheduled maintenance at {shown(start)} UTC"

    def test_the_status_endpoint_has_the_scheduled_object(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        start, end = wall.utcnow() + timedelta(hours=1), wall.utcnow() + timedelta(hours=2)
        ok(
            cli(
                app,
                "schedule",
                "--at",
                iso(start),
                "--for",
                "1h",
                "--mode",
                "readonly",
                "--message",
                "Reindexing",
                "--auto-off",
            )
        )
        status = app.test_client().get("/_maintenance").get_json()
        assert set(status) == STATUS_KEYS
        assert status["active"] is False
        assert status["mode"] is None and status["retry_after"] is None
        assert status["scheduled"] == {
            "starts_at": iso(start),
            "ends_at": iso(end),
            "mode": "readonly",
            "message": "Reindexing",
            "auto_off": True,
        }

    def test_the_template_object_has_banner_and_scheduled(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        add_template_view(app)
        start = wall.utcnow() + timedelta(hours=1)
        ok(cli(app, "schedule", "--at", iso(start), "--mode", "readonly"))
        text = app.test_client().get("/page").get_data(as_text=True)
        assert text == (
            f"active=False|banner=Scheduled maintenance at {shown(start)} UTC"
            f"|starts={start.isoformat()}|mode=readonly"
        )

    def test_nothing_is_announced_without_a_plan(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        add_template_view(app)
        client = app.test_client()
        assert "X-Maintenance-Banner" not in client.get("/").headers
        assert client.get("/page").get_data(as_text=True) == "active=False|banner=None|starts=|mode="
        assert client.get("/_maintenance").get_json()["scheduled"] is None

    def test_cli_status_shows_the_plan(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        start, end = wall.utcnow() + timedelta(hours=1), wall.utcnow() + timedelta(hours=2)
        ok(cli(app, "schedule", "--at", iso(start), "--until", iso(end), "--auto-off"))
        output = ok(cli(app, "status")).output
        assert "Maintenance is OFF" in output
        assert f"scheduled:    {iso(start)} until {iso(end)} (mode full, ends by itself)" in output
        as_json = json.loads(ok(cli(app, "status", "--json")).output)
        assert as_json["active"] is False
        assert as_json["scheduled"]["starts_at"] == iso(start)


class TestAtTheStart:
    def test_the_mode_takes_effect_with_nobody_running_a_command(
        self, wall: Clock, make_app: AppFactory
    ) -> None:
        app = make_app()
        start = wall.utcnow() + timedelta(hours=1)
        ok(cli(app, "schedule", "--at", iso(start), "--for", "2h", "--message", "Moving data centres"))
        client = app.test_client()
        wall.advance(3599)
        assert client.get("/").status_code == 200
        wall.advance(1)
        response = client.get("/")
        assert response.status_code == 503
        assert "Moving data centres" in response.get_data(as_text=True)
        assert response.headers["X-Maintenance-Banner"] == "Moving data centres"
        assert client.get("/api/items").get_json()["detail"] == "Moving data centres"
        # Another process that starts now (a fresh app on the same lock file) agrees.
        other = make_app()
        assert other.test_client().get("/").status_code == 503
        assert not lock_path(app).exists(), "no one wrote the lock file"

    def test_readonly_window_refuses_only_writes(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        ok(cli(app, "schedule", "--at", iso(wall.utcnow() + timedelta(minutes=10)), "--mode", "readonly"))
        client = app.test_client()
        wall.advance(600)
        assert client.get("/form").status_code == 200
        response = client.post("/form")
        assert response.status_code == 503
        assert "Read-only mode" in response.get_data(as_text=True)

    def test_banner_window_refuses_nothing(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        ok(
            cli(
                app,
                "schedule",
                "--at",
                iso(wall.utcnow() + timedelta(minutes=10)),
                "--mode",
                "banner",
                "--message",
                "Slow pages tonight",
            )
        )
        client = app.test_client()
        wall.advance(600)
        response = client.post("/form")
        assert response.status_code == 200
        assert response.headers["X-Maintenance-Banner"] == "Slow pages tonight"
        assert client.get("/_maintenance").get_json()["mode"] == "banner"

    def test_app_commands_and_guarded_functions_stop_too(self, wall: Clock, make_app: AppFactory) -> None:
        extension = Maintenance()
        app = make_app(extension)
        ran: list[str] = []

        @app.cli.command("report")
        def report() -> None:
            ran.append("report")

        @extension.guard
        def nightly() -> str:
            ran.append("nightly")
            return "done"

        ok(cli(app, "schedule", "--at", iso(wall.utcnow() + timedelta(minutes=5))))
        wall.advance(300)
        result = app.test_cli_runner().invoke(args=["report"])
        assert result.exit_code == 75, result.output
        assert nightly() is None
        assert ran == []

    def test_the_status_endpoint_and_cli_show_the_window_as_on(
        self, wall: Clock, make_app: AppFactory
    ) -> None:
        app = make_app()
        start, end = wall.utcnow() + timedelta(hours=1), wall.utcnow() + timedelta(hours=3)
        ok(cli(app, "schedule", "--at", iso(start), "--until", iso(end), "--mode", "readonly"))
        wall.advance(3600)
        status = app.test_client().get("/_maintenance").get_json()
        assert status["active"] is True
        assert status["mode"] == "readonly"
        assert status["started_at"] == iso(start)
        assert status["ends_at"] == iso(end)
        assert status["retry_after"] == 7200
        output = ok(cli(app, "status")).output
        assert "Maintenance is ON (mode readonly)" in output
        assert f"expected end: {iso(end)}" in output


class TestTheEnd:
    def test_the_end_time_drives_retry_after(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_RETRY_AFTER=45)
        start, end = wall.utcnow() + timedelta(hours=1), wall.utcnow() + timedelta(hours=3)
        ok(cli(app, "schedule", "--at", iso(start), "--until", iso(end)))
        client = app.test_client()
        wall.advance(3600)
        html = client.get("/")
        assert html.headers["Retry-After"] == "7200"
        api = client.get("/api/items")
        assert api.headers["Retry-After"] == "7200"
        assert api.get_json()["retry_after"] == 7200
        assert api.get_json()["ends_at"] == iso(end)
        wall.advance(1800)
        assert client.get("/").headers["Retry-After"] == "5400"
        assert client.get("/_maintenance").get_json()["retry_after"] == 5400

    def test_without_an_end_the_configured_retry_applies(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_RETRY_AFTER=45)
        ok(cli(app, "schedule", "--at", iso(wall.utcnow() + timedelta(minutes=1))))
        wall.advance(60)
        client = app.test_client()
        response = client.get("/")
        assert response.status_code == 503
        assert client.get("/_maintenance").get_json()["retry_after"] == 45
        assert response.headers["Retry-After"] == "45"

    def test_resolve_gives_a_started_window_without_an_end_the_default_retry(self, wall: Clock) -> None:
        now = wall.utcnow()
        plan = Plan(schedule=Schedule(starts_at=now - timedelta(seconds=1)))
        state = resolve(OFF, plan, now, default_retry=45)
        assert state.active and state.retry_after(now) == 45
        # Not started yet: still off, with the window announced.
        later = Plan(schedule=Schedule(starts_at=now + timedelta(seconds=1)))
        assert resolve(OFF, later, now, default_retry=45).active is False

    def test_the_page_shows_the_end_in_utc_and_converts_it_in_the_browser(
        self, wall: Clock, make_app: AppFactory
    ) -> None:
        app = make_app()
        # Given with an offset: shown in UTC.
        start = wall.utcnow() + timedelta(hours=1)
        end = (wall.utcnow() + timedelta(hours=2)).astimezone(timezone(timedelta(hours=5, minutes=30)))
        ok(cli(app, "schedule", "--at", iso(start), "--until", end.isoformat()))
        wall.advance(3600)
        page = app.test_client().get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
        assert f'<time datetime="{iso(end)}" data-local>{shown(end)} UTC</time>' in page
        script = page[page.index("<script>") : page.index("</script>")]
        # The browser rewrites the <time> element's instant in the reader's own zone.
        assert 'querySelector("time[data-local]")' in script
        assert 'getAttribute("datetime")' in script
        assert "toLocaleString(" in script and 'data-your-time="({time} your time)"' in page
        assert "<script src" not in page

    def test_without_auto_off_it_stays_on_past_the_end(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        start, end = wall.utcnow() + timedelta(hours=1), wall.utcnow() + timedelta(hours=2)
        ok(cli(app, "schedule", "--at", iso(start), "--until", iso(end)))
        client = app.test_client()
        wall.advance(2 * 3600 + 60)
        response = client.get("/")
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
        status = client.get("/_maintenance").get_json()
        assert status["active"] is True and status["ends_at"] == iso(end)
        assert "Maintenance is ON" in ok(cli(app, "status")).output
        wall.advance(7 * 86400)
        assert client.get("/").status_code == 503

    def test_with_auto_off_it_is_off_for_every_reader_past_the_end(
        self, wall: Clock, make_app: AppFactory
    ) -> None:
        extension = Maintenance()
        app = make_app(extension)
        add_template_view(app)
        ran: list[str] = []

        @extension.guard
        def nightly() -> None:
            ran.append("nightly")

        @app.cli.command("report")
        def report() -> None:
            ran.append("report")

        start = wall.utcnow() + timedelta(hours=1)
        ok(cli(app, "schedule", "--at", iso(start), "--for", "1h", "--auto-off"))
        client = app.test_client()
        wall.advance(3600 + 3599)
        assert client.get("/").status_code == 503
        wall.advance(1)

        # The plan is still on disk: no process ran to remove it.
        stored = json.loads(plan_file(app).read_text())
        assert stored["schedule"]["auto_off"] is True
        assert not lock_path(app).exists()

        response = client.get("/")
        assert response.status_code == 200
        assert "X-Maintenance-Banner" not in response.headers
        assert client.post("/form").status_code == 200
        assert client.get("/page").get_data(as_text=True) == "active=False|banner=None|starts=|mode="
        status = client.get("/_maintenance").get_json()
        assert status["active"] is False and status["scheduled"] is None
        output = ok(cli(app, "status")).output
        assert "Maintenance is OFF" in output and "scheduled:" not in output
        ok(app.test_cli_runner().invoke(args=["report"]))
        nightly()
        assert ran == ["report", "nightly"]
        # A process started long after the window agrees.
        wall.advance(30 * 86400)
        assert make_app().test_client().get("/").status_code == 200

    def test_off_during_a_started_window_ends_it(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        ok(cli(app, "schedule", "--at", iso(wall.utcnow() + timedelta(minutes=10)), "--for", "1h"))
        client = app.test_client()
        wall.advance(900)
        assert client.get("/").status_code == 503
        output = ok(cli(app, "off")).output
        assert "Maintenance is OFF" in output
        assert client.get("/").status_code == 200
        assert not plan_file(app).exists()
        wall.advance(86400)
        assert client.get("/").status_code == 200

    def test_off_before_the_start_leaves_the_window_planned(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        ok(cli(app, "schedule", "--at", iso(wall.utcnow() + timedelta(minutes=10))))
        ok(cli(app, "off"))
        client = app.test_client()
        assert "X-Maintenance-Banner" in client.get("/").headers
        wall.advance(600)
        assert client.get("/").status_code == 503


class TestCancel:
    def test_cancel_before_the_start(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        ok(cli(app, "schedule", "--at", iso(wall.utcnow() + timedelta(minutes=10))))
        output = ok(cli(app, "cancel")).output
        assert "Cancelled the window planned at" in output
        # Twice: it says there was nothing to cancel, and writes nothing.
        again = ok(cli(app, "cancel")).output
        assert again.startswith("Nothing was scheduled; nothing changed")
        assert not plan_file(app).exists()
        client = app.test_client()
        assert "X-Maintenance-Banner" not in client.get("/").headers
        assert client.get("/_maintenance").get_json()["scheduled"] is None
        assert not plan_file(app).exists()
        wall.advance(3600)
        assert client.get("/").status_code == 200

    def test_cancel_during_the_window(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        ok(cli(app, "schedule", "--at", iso(wall.utcnow() + timedelta(minutes=10)), "--for", "1h"))
        client = app.test_client()
        wall.advance(660)
        assert client.get("/").status_code == 503
        ok(cli(app, "cancel"))
        assert client.get("/").status_code == 200

    def test_cancel_leaves_the_main_switch_and_features_alone(
        self, wall: Clock, make_app: AppFactory
    ) -> None:
        app = make_app()
        ok(cli(app, "on", "--feature", "payments", "--force"))
        ok(cli(app, "schedule", "--at", iso(wall.utcnow() + timedelta(minutes=10))))
        ok(cli(app, "on", "--mode", "readonly"))
        ok(cli(app, "cancel"))
        status = app.test_client().get("/_maintenance").get_json()
        assert status["active"] is True and status["mode"] == "readonly"
        assert status["features"] == ["payments"]
        assert status["scheduled"] is None

    def test_cancel_with_nothing_planned_is_not_an_error(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        ok(cli(app, "cancel"))
        assert not plan_file(app).exists()


class TestTimes:
    @pytest.mark.parametrize(
        "zone",
        [timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))],
        ids=["Z", "+02:00", "-05:30"],
    )
    def test_zulu_and_offsets_are_accepted_and_stored_in_utc(
        self, wall: Clock, make_app: AppFactory, zone: timezone
    ) -> None:
        app = make_app()
        start = (wall.utcnow() + timedelta(days=2)).astimezone(zone)
        end = start + timedelta(hours=1)
        text = iso(start) if zone is timezone.utc else start.isoformat()
        assert text.endswith("Z") or re.search(r"[+-]\d\d:\d\d$", text), text
        ok(cli(app, "schedule", "--at", text, "--until", end.isoformat()))
        scheduled = app.test_client().get("/_maintenance").get_json()["scheduled"]
        assert scheduled["starts_at"] == iso(start)
        assert scheduled["ends_at"] == iso(end)
        assert scheduled["starts_at"].endswith("Z")

    def test_for_is_counted_from_the_start(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        start = wall.utcnow() + timedelta(days=1)
        ok(cli(app, "schedule", "--at", iso(start), "--for", "1h30m"))
        scheduled = app.test_client().get("/_maintenance").get_json()["scheduled"]
        assert scheduled["ends_at"] == iso(start + timedelta(minutes=90))

    def test_the_api_rejects_naive_datetimes(self, wall: Clock, app: Flask) -> None:
        extension: Maintenance = app.extensions["maintenance"]
        naive = (wall.utcnow() + timedelta(hours=1)).replace(tzinfo=None)
        with pytest.raises(ConfigurationError, match="timezone-aware"):
            extension.schedule(naive, app=app)
        with pytest.raises(ConfigurationError, match="timezone-aware"):
            extension.schedule(wall.utcnow() + timedelta(hours=1), naive + timedelta(hours=1), app=app)
        assert not plan_file(app).exists()


def rejections(now: datetime) -> list[Any]:
    later = now + timedelta(days=1)
    naive = later.replace(tzinfo=None).isoformat()
    return [
        pytest.param(["--at", naive], "has no timezone: end it with Z or an offset", id="naive --at"),
        pytest.param(
            ["--at", iso(later), "--until", (later + timedelta(hours=1)).replace(tzinfo=None).isoformat()],
            "has no timezone",
            id="naive --until",
        ),
        pytest.param(["--at", "tomorrow at ten"], "invalid time", id="not ISO 8601"),
        pytest.param(["--at", iso(now - timedelta(minutes=1))], "in the past", id="past --at"),
        pytest.param(
            ["--at", iso(later), "--for", "1h", "--until", iso(later + timedelta(hours=2))],
            "either --until or --for",
            id="--for and --until",
        ),
        pytest.param(
            ["--at", iso(later), "--auto-off"], "--auto-off needs --for or --until", id="--auto-off alone"
        ),
        pytest.param(
            ["--at", iso(later), "--until", iso(later - timedelta(hours=1))],
            "after the start",
            id="end before start",
        ),
        pytest.param(["--at", iso(later), "--for", "soon"], "invalid duration", id="bad --for"),
        pytest.param(["--at", iso(later), "--mode", "partial"], "--mode must be one of", id="bad --mode"),
    ]


class TestRejectedInput:
    @pytest.mark.parametrize("args, says", rejections(datetime.now(timezone.utc).replace(microsecond=0)))
    @pytest.mark.parametrize("before", ["nothing", "a plan"])
    def test_is_refused_with_a_clear_message_and_changes_nothing(
        self, wall: Clock, make_app: AppFactory, args: list[str], says: str, before: str
    ) -> None:
        app = make_app()
        if before == "a plan":
            ok(cli(app, "on", "--feature", "payments", "--force"))
            ok(cli(app, "schedule", "--at", iso(wall.utcnow() + timedelta(hours=5)), "--for", "1h"))
        plan_before = plan_file(app).read_bytes() if plan_file(app).exists() else None
        status_before = app.test_client().get("/_maintenance").get_json()

        result = cli(app, "schedule", *args)

        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
        assert says in lines[0]
        assert "Traceback" not in result.output
        assert result.stdout == ""
        assert (plan_file(app).read_bytes() if plan_file(app).exists() else None) == plan_before
        assert not lock_path(app).exists()
        assert app.test_client().get("/_maintenance").get_json() == status_before


class TestOtherReaders:
    def test_a_damaged_plan_means_full_maintenance_with_one_warning_and_is_never_overwritten(
        self, wall: Clock, make_app: AppFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = make_app()
        plan_file(app).parent.mkdir(parents=True, exist_ok=True)
        damaged = '{"schedule": {"starts_at": "yesterday"}, "features": {"pay ments": {}, "ok": {}}}'
        plan_file(app).write_text(damaged)
        client = app.test_client()
        # Nobody can tell which features are off or when the window starts: fail closed.
        for _ in range(3):
            assert client.get("/").status_code == 503
        assert client.get("/_maintenance").get_json()["mode"] == "full"
        warnings = [r for r in caplog.records if r.name == "flask_maintenance" and "plan" in r.getMessage()]
        assert len(warnings) == 1, warnings
        # Every writer of the plan refuses, in one line, and the plan is kept byte for byte.
        for args in (
            ["on", "--feature", "ok", "--force"],
            ["off", "--feature", "ok"],
            ["cancel"],
            ["off"],
            ["schedule", "--at", iso(wall.utcnow() + timedelta(hours=1))],
        ):
            result = cli(app, *args)
            assert result.exit_code == 1, (args, result.output)
            assert result.output.startswith("Error: the maintenance plan has an invalid entry"), result.output
            assert "nothing was changed" in result.output and len(result.output.splitlines()) == 1
            assert plan_file(app).read_text() == damaged
        # Removing it, as the message says, ends it.
        plan_file(app).unlink()
        assert client.get("/").status_code == 200

    def test_the_lock_file_guard_sees_a_started_window(self, wall: Clock, make_app: AppFactory) -> None:
        app = make_app()
        ok(cli(app, "schedule", "--at", iso(wall.utcnow() + timedelta(minutes=1))))
        # Written as if the window had started: the console script reads the real clock.
        plan = json.loads(plan_file(app).read_text())
        plan["schedule"]["starts_at"] = iso(datetime.now(timezone.utc) - timedelta(minutes=1))
        plan_file(app).write_text(json.dumps(plan))
        assert make_app().test_client().get("/").status_code == 503

        @skip_during_maintenance(lock_file=lock_path(app))
        def nightly() -> str:
            return "ran"

        assert nightly() is None


def test_schedule_with_a_real_flask_command(
    run_flask: Callable[..., Any], app_module: Path, tmp_path: Path
) -> None:
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    done = run_flask("maintenance", "schedule", "--at", iso(start), "--for", "30m", "--auto-off")
    assert done.returncode == 0, done.stderr
    assert f"scheduled:    {iso(start)} until {iso(start + timedelta(minutes=30))}" in done.stdout
    stored = json.loads((tmp_path / "maintenance.lock.plan").read_text())
    assert stored["schedule"]["starts_at"] == iso(start)
    assert not (tmp_path / "maintenance.lock").exists()

    naive = run_flask("maintenance", "schedule", "--at", start.replace(tzinfo=None).isoformat())
    assert naive.returncode == 2
    assert naive.stderr.strip().startswith("Error:") and "no timezone" in naive.stderr
    assert json.loads((tmp_path / "maintenance.lock.plan").read_text()) == stored

    done = run_flask("maintenance", "cancel")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "maintenance.lock.plan").exists()
