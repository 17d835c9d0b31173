"""Read-only at the database while maintenance is on (``MAINTENANCE_PROTECT_DATABASE``,
``m.protect_database``), against real SQLite files and real PostgreSQL and MariaDB servers."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from database_app import Visit, create_app, db
from database_servers import DatabaseServer, Postgres
from database_servers import mariadb as mariadb  # the session's servers
from database_servers import postgres as postgres
from flask import Flask, request
from servers import FLASK, RedisServer
from servers import redis_server as redis_server
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.pool import NullPool

from flask_maintenance import ConfigurationError, Maintenance, MaintenanceActive
from flask_maintenance.backends import FileBackend

DbApp = Callable[..., Flask]
HERE = Path(__file__).parent


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    server: DatabaseServer = request.getfixturevalue(request.param)
    return server.new_database()


@pytest.fixture
def make_db_app(tmp_path: Path, database_url: str) -> Iterator[DbApp]:
    """The app of :mod:`database_app` on a database of the test's own, its tables created."""
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        settings = {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "MAINTENANCE_LOCK_FILE": str(tmp_path / "maintenance.lock"),
            **config,
        }
        app = create_app(**settings)
        with app.app_context():
            db.create_all()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


def rows(url: str) -> int:
    """The visits in the database, counted on a connection of the test's own (not the app's)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(Visit)) or 0)
    finally:
        engine.dispose()


def maintenance_of(app: Flask) -> Maintenance:
    extension: Maintenance = app.extensions["maintenance"]
    return extension


def readonly_engine(make_db_app: DbApp) -> tuple[Flask, Maintenance, Engine]:
    """A new app in readonly, its extension, and its engine (to use outside the app)."""
    app = make_db_app()
    maintenance = maintenance_of(app)
    with app.app_context():
        engine: Engine = db.engine
    maintenance.enable(mode="readonly", app=app)
    return app, maintenance, engine


def cli(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


class TestRequests:
    def test_a_get_that_writes_gets_the_read_only_503_and_changes_no_row(
        self, make_db_app: DbApp, database_url: str
    ) -> None:
        app = make_db_app()
        client = app.test_client()
        assert client.get("/").text == "1 visits"
        maintenance_of(app).enable(mode="readonly", retry=30, app=app)

        page = client.get("/")
        assert page.status_code == 503
        assert page.headers["Retry-After"] == "30"
        assert page.mimetype == "text/html"
        assert "read-only" in page.text.lower()
        assert rows(database_url) == 1
        # The read-only page, as for a refused POST (which the gate refuses before the view);
        # only the POST's says its change was not saved (the GET's may reload itself safely).
        posted = client.post("/visits")
        assert posted.status_code == 503
        assert "<title>Read-only mode</title>" in page.text and "<title>Read-only mode</title>" in posted.text
        assert "Your change was not saved" in posted.text and "Your change was not saved" not in page.text

        api = client.get("/api/visits")
        assert api.status_code == 503
        assert api.mimetype == "application/problem+json"
        assert api.json is not None and api.json["type"].endswith(":read-only")
        assert api.headers["Retry-After"] == "30"
        assert client.get("/", headers={"Accept": "application/json"}).mimetype == "application/problem+json"

        read = client.get("/visits/count")
        assert (read.status_code, read.json) == (200, {"visits": 1})
        assert rows(database_url) == 1

        maintenance_of(app).disable(app=app)
        assert client.get("/").text == "2 visits"
        assert rows(database_url) == 2

    def test_maintenance_work_in_a_view_writes_inside_writable(
        self, make_db_app: DbApp, database_url: str
    ) -> None:
        app = make_db_app()
        maintenance_of(app).enable(mode="readonly", app=app)
        response = app.test_client().get("/admin/fix")
        assert (response.status_code, response.text) == (200, "fixed")
        assert rows(database_url) == 1

    def test_a_write_after_the_view_gets_the_503_too(self, make_db_app: DbApp, database_url: str) -> None:
        app = make_db_app()

        @app.after_request
        def audit(response: Any) -> Any:  # an audit row written once the view has answered
            if "boom" in request.args:
                raise RuntimeError("the app's own error")
            if request.path == "/visits/count":
                db.session.add(Visit(page="audit"))
                db.session.commit()
            return response

        maintenance_of(app).enable(mode="readonly", retry=30, app=app)
        page = app.test_client().get("/visits/count")
        assert page.status_code == 503
        assert (page.headers["Retry-After"], page.mimetype) == ("30", "text/html")
        api = app.test_client().get("/visits/count", headers={"Accept": "application/json"})
        assert (api.status_code, api.mimetype) == (503, "application/problem+json")
        assert rows(database_url) == 0
        # The app's other errors there are still its own 500.
        assert app.test_client().get("/?boom=1").status_code == 500

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
    def test_banner_mode_leaves_writes_alone(self, make_db_app: DbApp, database_url: str) -> None:
        app = make_db_app()
        maintenance_of(app).enable(mode="banner", app=app)
        assert app.test_client().get("/").status_code == 200
        assert rows(database_url) == 1

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
    def test_a_refusal_counts_and_is_signalled_like_the_gates(self, make_db_app: DbApp) -> None:
        app = make_db_app()
        maintenance = maintenance_of(app)
        seen: list[str] = []

        def receiver(sender: Flask, state: Any, reason: str) -> None:
            seen.append(reason)

        maintenance.request_blocked.connect(receiver, app)
        try:
            maintenance.enable(mode="readonly", app=app)
            assert app.test_client().get("/").status_code == 503
        finally:
            maintenance.request_blocked.disconnect(receiver, app)
        assert seen == ["readonly"]
        assert maintenance.refusals(app=app)[("readonly", "page")] == 1

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
    def test_hostile_headers_still_get_the_503(self, make_db_app: DbApp, database_url: str) -> None:
        app = make_db_app()
        maintenance_of(app).enable(mode="readonly", app=app)
        response = app.test_client().get(
            "/?" + "x=%00&" * 2000,
            headers={
                "Accept": "application/json;q=0.1, " * 800 + "text/html",
                "Cookie": "a=" + "\x7f" * 8000,
            },
        )
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "60"
        assert rows(database_url) == 0


class TestPythonCode:
    @pytest.mark.parametrize("mode", ["readonly", "full"])
    def test_a_write_raises_maintenance_active_chained_to_the_driver(
        self, make_db_app: DbApp, database_url: str, mode: str
    ) -> None:
        app = make_db_app()
        maintenance_of(app).enable(mode=mode, app=app)
        with app.app_context():
            db.session.add(Visit(page="script"))
            with pytest.raises(MaintenanceActive) as raised:
                db.session.commit()
            db.session.rollback()
            assert db.session.scalar(select(func.count()).select_from(Visit)) == 0  # reads work
        assert raised.value.state.mode == mode
        assert "read-only" in str(raised.value) and "Visit".lower() in str(raised.value).lower()
        driver_error = raised.value.__cause__
        if database_url.startswith("sqlite"):
            assert isinstance(driver_error, sqlite3.OperationalError)
        elif database_url.startswith("postgresql"):
            import psycopg

            assert isinstance(driver_error, psycopg.errors.ReadOnlySqlTransaction)
        else:
            import pymysql

            assert isinstance(driver_error, pymysql.err.OperationalError)
            assert driver_error.args[0] == 1792
        assert rows(database_url) == 0

    def test_writable_lets_maintenance_work_write(self, make_db_app: DbApp, database_url: str) -> None:
        app = make_db_app()
        maintenance = maintenance_of(app)
        maintenance.enable(mode="readonly", app=app)
        with app.app_context():
            with maintenance.writable():
                db.session.add(Visit(page="fix"))
                db.session.commit()
            db.session.add(Visit(page="after the block"))
            with pytest.raises(MaintenanceActive):
                db.session.commit()
            db.session.rollback()
        assert rows(database_url) == 1

    def test_a_transaction_begun_before_the_switch_finishes_and_off_needs_no_reconnect(
        self, make_db_app: DbApp, database_url: str
    ) -> None:
        app = make_db_app()
        maintenance = maintenance_of(app)
        with app.app_context():
            engine = db.engine
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            with connection.begin():
                connection.execute(insert(Visit).values(page="before"))
                maintenance.enable(mode="readonly", app=app)
                # Already running: it drains, writable to its end.
                connection.execute(insert(Visit).values(page="during"))
            transaction = connection.begin()
            with pytest.raises(MaintenanceActive):
                connection.execute(insert(Visit).values(page="refused"))
            transaction.rollback()

            maintenance.disable(app=app)
            with connection.begin():
                connection.execute(insert(Visit).values(page="after"))
            # The very same database connection: no reconnect was needed.
            assert connection.connection.dbapi_connection is raw
        assert rows(database_url) == 3

    def test_an_autocommit_connection_is_read_only_too_and_writable_after(
        self, make_db_app: DbApp, database_url: str
    ) -> None:
        app, maintenance, engine = readonly_engine(make_db_app)
        # Each statement is its own transaction: the database must refuse it all the same.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            raw = connection.connection.dbapi_connection
            with pytest.raises(MaintenanceActive):
                connection.execute(insert(Visit).values(page="autocommit"))
        assert rows(database_url) == 0

        maintenance.disable(app=app)
        # The same pooled connection, back in transactions, then in autocommit again.
        with engine.begin() as connection:
            assert connection.connection.dbapi_connection is raw
            connection.execute(insert(Visit).values(page="after"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(insert(Visit).values(page="after, autocommit"))
        assert rows(database_url) == 2

    @pytest.mark.parametrize("database_url", ["postgres", "mariadb"], indirect=True)  # no 2PC in SQLite
    def test_a_two_phase_transaction_is_read_only_too_and_writable_after(
        self, make_db_app: DbApp, database_url: str
    ) -> None:
        app, maintenance, engine = readonly_engine(make_db_app)
        with engine.connect() as connection:
            transaction = connection.begin_twophase()
            with pytest.raises(MaintenanceActive):
                connection.execute(insert(Visit).values(page="two-phase"))
            transaction.rollback()

            maintenance.disable(app=app)
            with connection.begin():
                connection.execute(insert(Visit).values(page="after"))
            transaction = connection.begin_twophase()
            connection.execute(insert(Visit).values(page="two-phase, after"))  # accepted
            transaction.rollback()  # (preparing it needs max_prepared_transactions)
        assert rows(database_url) == 1

    def test_a_plain_engine_is_protected_too(self, tmp_path: Path, database_url: str) -> None:
        app = Flask(__name__, instance_path=str(tmp_path / "instance"))
        app.config["MAINTENANCE_CHECK_INTERVAL"] = 0
        maintenance = Maintenance(app)
        engine = create_engine(database_url)
        try:
            with engine.begin() as connection:
                connection.execute(text("CREATE TABLE notes (body VARCHAR(20))"))
            maintenance.protect_database(engine, app=app)
            maintenance.protect_database(engine, app=app)  # twice changes nothing
            maintenance.enable(mode="readonly", app=app)
            with pytest.raises(MaintenanceActive, match="INSERT on notes"), engine.begin() as connection:
                connection.execute(text("INSERT INTO notes VALUES ('x')"))
            maintenance.disable(app=app)
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO notes VALUES ('y')"))
                assert connection.scalar(text("SELECT count(*) FROM notes")) == 1
        finally:
            engine.dispose()


class TestCommands:
    def test_a_command_that_writes_is_one_line_and_exit_75(
        self, make_db_app: DbApp, database_url: str
    ) -> None:
        app = make_db_app()
        maintenance_of(app).enable(mode="readonly", app=app)
        result = cli(app, "record-visit")
        assert result.exit_code == 75
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("Error: maintenance is on (mode readonly")
        assert "`record-visit` could not write (INSERT on visit)" in lines[0]
        assert "FLASK_MAINTENANCE_FORCE=1" in lines[0]
        assert "Traceback" not in result.output
        assert rows(database_url) == 0

    def test_exempt_and_forced_commands_write(
        self, make_db_app: DbApp, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        app = make_db_app()
        maintenance_of(app).enable(mode="readonly", app=app)
        upgraded = cli(app, "db", "upgrade")  # in MAINTENANCE_CLI_EXEMPT
        assert (upgraded.exit_code, upgraded.stdout) == (0, "upgraded: 1 visits\n")
        monkeypatch.setenv("FLASK_MAINTENANCE_FORCE", "1")
        forced = cli(app, "record-visit")
        assert (forced.exit_code, forced.stdout) == (0, "recorded: 2 visits\n")
        assert rows(database_url) == 2

    def test_a_command_marked_exempt_writes(self, make_db_app: DbApp, database_url: str) -> None:
        app = make_db_app(MAINTENANCE_CLI_EXEMPT=())
        maintenance = maintenance_of(app)

        @app.cli.command("backfill")
        @maintenance.exempt
        def backfill() -> None:
            db.session.add(Visit(page="backfill"))
            db.session.commit()

        maintenance.enable(mode="readonly", app=app)
        assert cli(app, "backfill").exit_code == 0
        assert cli(app, "db", "upgrade").exit_code == 75  # no longer exempt: refused by the database
        assert rows(database_url) == 1


@pytest.mark.slow
def test_the_real_flask_command(tmp_path: Path, postgres: Postgres) -> None:
    """`flask db upgrade` exempt, another command refused, and `run -- CMD`, on PostgreSQL."""
    url = postgres.new_database()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "FLASK_APP": "database_app:create_app()",
        "SUBJECT_DATABASE_URL": url,
        "SUBJECT_LOCK_FILE": str(tmp_path / "maintenance.lock"),
        "SUBJECT_INSTANCE": str(tmp_path / "instance"),
    }
    env.pop("FLASK_MAINTENANCE_FORCE", None)

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flask", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert flask("maintenance", "on", "--mode", "readonly").returncode == 0
    upgraded = flask("db", "upgrade")
    assert (upgraded.returncode, upgraded.stdout) == (0, "upgraded: 1 visits\n"), upgraded.stderr

    refused = flask("record-visit")
    assert refused.returncode == 75
    assert len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "the database is read-only, so `record-visit` could not write" in refused.stderr

    ran = flask("maintenance", "run", "--mode", "readonly", "--", FLASK, "record-visit")
    assert ran.returncode == 0, ran.stderr
    assert "recorded: 2 visits" in ran.stdout
    assert postgres.query(url, "SELECT count(*) FROM visit") == 2
    assert (tmp_path / "maintenance.lock").exists()  # run left the window there was as it was


class TestDryRun:
    def test_writes_go_through_and_are_logged_once_per_call_site(
        self, make_db_app: DbApp, database_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = make_db_app(MAINTENANCE_PROTECT_DATABASE="log")
        client = app.test_client()
        maintenance = maintenance_of(app)
        assert client.get("/").status_code == 200  # off: not logged
        maintenance.enable(mode="readonly", app=app)
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            for _ in range(3):
                assert client.get("/").status_code == 200
            assert cli(app, "record-visit").exit_code == 0
            assert cli(app, "db", "upgrade").exit_code == 0  # maintenance work: not logged
        assert rows(database_url) == 6
        logged = [record.getMessage() for record in caplog.records]
        app_file = HERE / "database_app.py"
        home_line = _line_of('db.session.add(Visit(page="/"))') + 1  # the commit that flushes
        command_line = _line_of('db.session.add(Visit(page="cli"))') + 1
        tail = (
            'while maintenance is on (mode readonly): let through because MAINTENANCE_PROTECT_DATABASE = "log"; '
            "it will be refused when protection is on"
        )
        assert logged == [
            f"INSERT on visit from view home at {app_file}:{home_line} {tail}",
            f'INSERT on visit from command "flask record-visit" at {app_file}:{command_line} {tail}',
        ]

        report = cli(app, "maintenance", "report-writes")
        assert report.exit_code == 0
        lines = report.stdout.splitlines()
        assert lines[0] == "2 writes seen during maintenance:"
        assert lines[1].startswith("  INSERT on visit from view home at ")
        assert f"database_app.py:{home_line} (mode readonly, first seen " in lines[1]
        assert lines[2].startswith('  INSERT on visit from command "flask record-visit" at ')

        as_json = json.loads(cli(app, "maintenance", "report-writes", "--json").stdout)
        assert [(w["kind"], w["table"], w["source"], w["mode"]) for w in as_json["writes"]] == [
            ("INSERT", "visit", "view home", "readonly"),
            ("INSERT", "visit", 'command "flask record-visit"', "readonly"),
        ]
        cleared = cli(app, "maintenance", "report-writes", "--clear")
        assert cleared.stdout.splitlines()[-1] == "Cleared: the next report starts empty."
        assert cli(app, "maintenance", "report-writes").stdout == "No writes seen during maintenance.\n"

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
    def test_the_report_is_shared_by_every_process_on_the_backend(
        self, make_db_app: DbApp, tmp_path: Path
    ) -> None:
        web = make_db_app(MAINTENANCE_PROTECT_DATABASE="log")
        maintenance_of(web).enable(mode="full", app=web)
        with web.app_context():
            db.session.add(Visit(page="job"))
            db.session.commit()
        # Another app (another process) on the same lock file sees it.
        operator = make_db_app(MAINTENANCE_PROTECT_DATABASE=False)
        report = cli(operator, "maintenance", "report-writes")
        lines = report.stdout.splitlines()
        assert lines[:2] == [
            'Protection is not in dry run here (MAINTENANCE_PROTECT_DATABASE is not "log"): '
            "the processes that run it add to this report.",
            "1 write seen during maintenance:",
        ]
        job_line = _line_of("db.session.commit()", Path(__file__), after='page="job"')
        assert lines[2].startswith("  INSERT on visit from code outside requests and commands at ")
        assert f"{Path(__file__).name}:{job_line} (mode full, first seen " in lines[2]
        assert len(lines) == 3

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
    def test_the_report_lives_in_redis_with_the_state(
        self, make_db_app: DbApp, redis_server: RedisServer
    ) -> None:
        web = make_db_app(MAINTENANCE_PROTECT_DATABASE="log", MAINTENANCE_BACKEND=redis_server.url)
        maintenance_of(web).enable(mode="readonly", app=web)
        assert web.test_client().get("/").status_code == 200
        stored = json.loads(redis_server.client().get("flask-maintenance:state:writes"))
        assert [(w["kind"], w["table"], w["source"]) for w in stored["writes"]] == [
            ("INSERT", "visit", "view home")
        ]
        operator = make_db_app(MAINTENANCE_BACKEND=redis_server.url)
        lines = cli(operator, "maintenance", "report-writes").stdout.splitlines()
        assert lines[1:2] == ["1 write seen during maintenance:"]
        assert lines[2].startswith("  INSERT on visit from view home at ")

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
    def test_a_report_that_cannot_be_written_never_fails_the_write(
        self, make_db_app: DbApp, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        (tmp_path / "maintenance.lock.writes.flock").mkdir()  # the report's update lock cannot be taken
        app = make_db_app(MAINTENANCE_PROTECT_DATABASE="log")
        maintenance_of(app).enable(mode="readonly", app=app)
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            assert app.test_client().get("/").status_code == 200
        assert rows(database_url) == 1
        assert any(
            record.getMessage().startswith("cannot keep the write for report-writes")
            for record in caplog.records
        )

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
    def test_a_damaged_or_hostile_report_is_shown_safely(self, make_db_app: DbApp, tmp_path: Path) -> None:
        app = make_db_app(MAINTENANCE_PROTECT_DATABASE="log")
        document = FileBackend(str(tmp_path / "maintenance.lock")).sibling("writes")
        document.write(b"\x00not json")
        assert cli(app, "maintenance", "report-writes").stdout == "No writes seen during maintenance.\n"
        hostile = {
            "kind": "INSERT\n\x1b[31mFAKE",
            "table": "t" * 5000,
            "source": "view x\r\nforged line",
            "site": "a.py:1",
            "mode": "readonly",
            "seen_at": "now",
        }
        document.write(json.dumps({"writes": [hostile] * 3 + [{"kind": 1}]}).encode())
        report = cli(app, "maintenance", "report-writes")
        assert report.exit_code == 0
        lines = report.stdout.splitlines()
        assert len(lines) == 4  # the heading and three entries, each on one line
        assert "\x1b" not in report.stdout and "\r" not in report.stdout
        assert all(len(line) < 1200 for line in lines)

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
    def test_a_deeply_nested_report_neither_fails_the_write_nor_the_command(
        self, make_db_app: DbApp, database_url: str, tmp_path: Path
    ) -> None:
        app = make_db_app(MAINTENANCE_PROTECT_DATABASE="log")
        document = FileBackend(str(tmp_path / "maintenance.lock")).sibling("writes")
        document.write(b"[" * 60_000)  # within the size bound, deeper than json can recurse
        maintenance_of(app).enable(mode="readonly", app=app)
        assert app.test_client().get("/").status_code == 200
        assert rows(database_url) == 1
        report = cli(app, "maintenance", "report-writes")
        assert report.exit_code == 0, report.output
        assert "1 write seen during maintenance:" in report.stdout


def _line_of(fragment: str, path: Path = HERE / "database_app.py", after: str | None = None) -> int:
    """The number of the first line of ``path`` holding ``fragment`` (after a line holding ``after``)."""
    lines = path.read_text().splitlines()
    start = 0
    if after is not None:
        start = next(number for number, line in enumerate(lines) if after in line)
    return next(number for number, line in enumerate(lines[start:], start + 1) if fragment in line)


class TestConfiguration:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (True, True),
            ("1", True),
            ("on", True),
            (False, False),
            ("off", False),
            ("log", "log"),
            ("LOG", "log"),
        ],
    )
    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
    def test_accepted_values(self, make_db_app: DbApp, value: Any, expected: Any) -> None:
        app = make_db_app(MAINTENANCE_PROTECT_DATABASE=value)
        assert maintenance_of(app).settings(app=app).protect_database == expected

    def test_a_bad_value_names_the_key(self, make_app: Callable[..., Flask]) -> None:
        with pytest.raises(
            ConfigurationError, match='MAINTENANCE_PROTECT_DATABASE must be True, False or "log"'
        ):
            make_app(MAINTENANCE_PROTECT_DATABASE="sometimes")

    @pytest.mark.parametrize("value", [True, "log"])
    def test_protection_without_flask_sqlalchemy_is_a_clear_error(
        self, make_app: Callable[..., Flask], value: Any
    ) -> None:
        with pytest.raises(ConfigurationError, match="the app has no Flask-SQLAlchemy extension"):
            make_app(MAINTENANCE_PROTECT_DATABASE=value)

    def test_a_flask_sqlalchemy_instance_of_another_app_is_refused(self, app: Flask) -> None:
        with pytest.raises(ConfigurationError, match=r"not set up on the app: call db.init_app\(app\) first"):
            maintenance_of(app).protect_database(db, app=app)

    def test_an_engine_protected_for_another_app_is_refused(self, make_app: Callable[..., Flask]) -> None:
        engine = create_engine("sqlite://")
        first, second = make_app(), make_app()
        maintenance_of(first).protect_database(engine, app=first)
        with pytest.raises(ConfigurationError, match="already protected for another app"):
            maintenance_of(second).protect_database(engine, app=second)

    def test_other_targets_are_refused(self, app: Flask) -> None:
        with pytest.raises(ConfigurationError, match="takes a SQLAlchemy Engine or a Flask-SQLAlchemy"):
            maintenance_of(app).protect_database("sqlite://", app=app)

    def test_without_sqlalchemy_the_error_names_the_extra(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "sqlalchemy.engine", None)
        with pytest.raises(ConfigurationError, match=r'pip install "flask-maintenance-mode\[sqlalchemy\]"'):
            maintenance_of(app).protect_database(object(), app=app)

    def test_nothing_is_imported_or_installed_without_protection(self, tmp_path: Path) -> None:
        script = (
            "import sys\n"
            "from flask import Flask\n"
            "from flask_maintenance import Maintenance\n"
            f"app = Flask('x', instance_path={str(tmp_path)!r})\n"
            "Maintenance(app)\n"
            "app.test_client().get('/')\n"
            "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'flask_sqlalchemy',"
            " 'flask_maintenance.database', 'flask_maintenance.writelog'))))\n"
        )
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr


def test_the_docs_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/examples/protected.py: the hidden write in a GET is refused; an admin's maintenance
    work inside writable() is not."""
    source = tmp_path / "protected.py"
    shutil.copy(HERE.parent / "docs" / "examples" / "protected.py", source)
    spec = importlib.util.spec_from_file_location("protected", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "protected", module)  # Flask finds the instance folder by it
    spec.loader.exec_module(module)
    app, example_db, maintenance = module.app, module.db, module.maintenance
    app.config["SECRET_KEY"] = "docs-example-secret"
    try:
        with app.app_context():
            example_db.create_all()
            example_db.session.add(module.Product(name="Lamp"))
            example_db.session.commit()
        client = app.test_client()
        assert client.get("/products/1").json == {"name": "Lamp"}
        maintenance.enable(mode="readonly", secret="admin-token", app=app)
        assert client.get("/products/1").status_code == 503
        assert client.post("/admin/products/1/rename").status_code == 503  # not an admin
        admin = app.test_client()
        admin.get("/_maintenance/bypass/admin-token")
        assert admin.post("/admin/products/1/rename").json == {"renamed": 1}
        assert admin.get("/products/1").status_code == 503  # the bypass alone does not write
        maintenance.disable(app=app)
        assert client.get("/products/1").json == {"name": "Renamed"}
    finally:
        with app.app_context():
            example_db.engine.dispose()


@pytest.mark.parametrize(
    ("statement", "described"),
    [
        ('INSERT INTO "visit" (page) VALUES (?)', ("INSERT", "visit")),
        ("insert or ignore into Visits values (1)", ("INSERT", "Visits")),
        ("-- a comment\n/* another */ UPDATE users SET seen = now()", ("UPDATE", "users")),
        ("DELETE FROM ONLY public.sessions WHERE id = 1", ("DELETE", "public.sessions")),
        ("WITH gone AS (SELECT id FROM carts) DELETE FROM carts USING gone", ("DELETE", "carts")),
        ("CREATE UNIQUE INDEX IF NOT EXISTS ix ON t (a)", ("CREATE", "ix")),
        ("ALTER TABLE `orders` ADD COLUMN note TEXT", ("ALTER", "orders")),
        ("TRUNCATE audit", ("TRUNCATE", "audit")),
        ("DROP TABLE", ("DROP", "?")),
        ("SELECT * FROM users FOR UPDATE", None),
        ("WITH x AS (SELECT 1) SELECT * FROM x FOR UPDATE", None),
        ("SET TRANSACTION READ ONLY", None),
        ("  ", None),
        ("INSERT INTO " + "t" * 10_000, ("INSERT", "t" * 300)),
        ("INSERT INTO \x1b[31mred", ("INSERT", "?")),
    ],
)
def test_statements_are_described_by_kind_and_table(
    statement: str, described: tuple[str, str] | None
) -> None:
    from flask_maintenance.writelog import describe_statement

    assert describe_statement(statement) == described
