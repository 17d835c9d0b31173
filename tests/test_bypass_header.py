"""The bypass header: a deploy's own checks pass with the window's secret, everyone else gets 503.

`X-Maintenance-Bypass: <token>` (the name is configurable) carries the same secret as the bypass
link; `flask maintenance run --secret -- CMD` makes one for a window and gives it to CMD only.
The header's value is a stranger's input: everything that is not the secret is refused.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from conftest import AppFactory
from flask import Flask
from servers import AppProject, http_get

from flask_maintenance import Maintenance

TOKEN = "deploy-check-7f3a9c2e5b1d"


@pytest.fixture(params=[True, False], ids=["fast-path", "hook"])
def app(request: pytest.FixtureRequest, make_app: AppFactory) -> Flask:
    return make_app(MAINTENANCE_FAST_PATH=request.param)


@pytest.fixture
def maintenance(app: Flask) -> Maintenance:
    extension: Maintenance = app.extensions["maintenance"]
    return extension


class TestHeader:
    def test_the_secret_passes_every_mode_and_answer_kind(self, app: Flask, maintenance: Maintenance) -> None:
        client = app.test_client()
        maintenance.enable(secret=TOKEN, app=app)
        for path in ("/", "/api/items"):
            assert client.get(path).status_code == 503
            assert client.get(path, headers={"X-Maintenance-Bypass": TOKEN}).status_code == 200
        assert client.post("/form", headers={"x-maintenance-bypass": TOKEN}).status_code == 200
        maintenance.enable(mode="readonly", app=app)
        assert client.post("/form").status_code == 503
        assert client.post("/form", headers={"X-Maintenance-Bypass": f"  {TOKEN} "}).status_code == 200

    @pytest.mark.parametrize(
        "value",
        [
            "",
            " ",
            TOKEN[:-1],
            TOKEN + "x",
            TOKEN.upper(),
            "x" * 10_000,
            TOKEN + "\x00",
            "é" * 50,
            "\udcff",
        ],
        ids=["empty", "blank", "short", "long", "case", "huge", "nul", "latin-1", "surrogate"],
    )
    def test_anything_else_is_refused(self, app: Flask, maintenance: Maintenance, value: str) -> None:
        maintenance.enable(secret=TOKEN, app=app)
        environ = {"HTTP_X_MAINTENANCE_BYPASS": value}
        assert app.test_client().get("/", environ_base=environ).status_code == 503

    def test_the_stored_hash_is_not_the_secret(self, app: Flask, maintenance: Maintenance) -> None:
        state = maintenance.enable(secret=TOKEN, app=app)
        assert state.token_hash
        client = app.test_client()
        assert client.get("/", headers={"X-Maintenance-Bypass": state.token_hash}).status_code == 503

    def test_no_secret_no_bypass(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(app=app)
        assert app.test_client().get("/", headers={"X-Maintenance-Bypass": TOKEN}).status_code == 503

    def test_a_new_secret_revokes_the_old_one(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(secret=TOKEN, app=app)
        maintenance.enable(secret="the-next-one", app=app)
        client = app.test_client()
        assert client.get("/", headers={"X-Maintenance-Bypass": TOKEN}).status_code == 503
        assert client.get("/", headers={"X-Maintenance-Bypass": "the-next-one"}).status_code == 200

    def test_the_header_name_is_configurable(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_BYPASS_HEADER="X-Deploy-Check")
        app.extensions["maintenance"].enable(secret=TOKEN, app=app)
        client = app.test_client()
        assert client.get("/", headers={"X-Deploy-Check": TOKEN}).status_code == 200
        assert client.get("/", headers={"X-Maintenance-Bypass": TOKEN}).status_code == 503

    @pytest.mark.parametrize("name", ["", "X Bypass", "X-Bypass:", "X-B\u00e9", 42])
    def test_a_bad_header_name_fails_at_startup(self, make_app: AppFactory, name: object) -> None:
        with pytest.raises(ValueError, match="MAINTENANCE_BYPASS_HEADER"):
            make_app(MAINTENANCE_BYPASS_HEADER=name)

    def test_the_secret_is_never_in_logs_status_or_history(
        self, app: Flask, maintenance: Maintenance, caplog: pytest.LogCaptureFixture
    ) -> None:
        client = app.test_client()
        with caplog.at_level(logging.DEBUG):
            maintenance.enable(secret=TOKEN, app=app)
            client.get("/", headers={"X-Maintenance-Bypass": TOKEN})
            client.get("/", headers={"X-Maintenance-Bypass": "wrong"})
            status = client.get("/_maintenance").get_data(as_text=True)
            cli = app.test_cli_runner().invoke(args=["maintenance", "status", "--json"]).output
            history = app.test_cli_runner().invoke(args=["maintenance", "history", "--json"]).output
        for text in (
            caplog.text,
            status,
            cli,
            history,
            Path(app.config["MAINTENANCE_LOCK_FILE"]).read_text(),
        ):
            assert TOKEN not in text


class TestRunSecret:
    def test_window_with_a_secret_over_a_stronger_mode_gives_it_all_back(
        self, app: Flask, maintenance: Maintenance
    ) -> None:
        maintenance.enable(message="Already on", app=app)
        client = app.test_client()
        with maintenance.window(mode="readonly", secret=TOKEN, app=app) as state:
            assert state.mode == "full" and state.message == "Already on"
            assert client.get("/", headers={"X-Maintenance-Bypass": TOKEN}).status_code == 200
        after = maintenance.status(app=app)
        assert after.active and after.mode == "full" and after.token_hash is None
        assert client.get("/", headers={"X-Maintenance-Bypass": TOKEN}).status_code == 503

    def test_the_secret_ends_with_the_block_when_the_window_stays(
        self, app: Flask, maintenance: Maintenance
    ) -> None:
        """A failed deploy keeps the window, and a change by somebody else is left as they made
        it; either way the secret made for the block is no longer good (only the block had it)."""
        client = app.test_client()
        with pytest.raises(RuntimeError), maintenance.window(secret=TOKEN, app=app):
            raise RuntimeError("the migration failed")
        assert maintenance.status(app=app).active
        assert client.get("/", headers={"X-Maintenance-Bypass": TOKEN}).status_code == 503
        maintenance.disable(app=app)

        with maintenance.window(secret=TOKEN, app=app):
            maintenance.enable(message="Taking longer", app=app)
        assert maintenance.status(app=app).message == "Taking longer"
        assert client.get("/", headers={"X-Maintenance-Bypass": TOKEN}).status_code == 503


VERIFY = """
import json, os, sys, urllib.error, urllib.request

def status(headers):
    request = urllib.request.Request("http://127.0.0.1:%s/" % sys.argv[1], headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code

name, token = os.environ["MAINTENANCE_BYPASS_HEADER"], os.environ["MAINTENANCE_BYPASS_TOKEN"]
found = {"with": status({name: token}), "without": status({}), "wrong": status({name: token[::-1]})}
with open(sys.argv[2], "w") as out:
    json.dump({**found, "token": token}, out)
sys.exit(0 if found["with"] == 200 else 1)
"""


@pytest.mark.slow
def test_run_secret_lets_the_verify_step_through_a_real_server(tmp_path: Path) -> None:
    project = AppProject(tmp_path / "project", MAINTENANCE_CHECK_INTERVAL="0")
    script = tmp_path / "verify.py"
    script.write_text(VERIFY)
    results = tmp_path / "results.json"
    server = project.gunicorn()
    with server:
        server.start()
        run = project.flask(
            "maintenance",
            "run",
            "--secret",
            "--",
            sys.executable,
            str(script),
            str(server.port),
            str(results),
        )
        assert run.returncode == 0, run.stderr
        found = json.loads(results.read_text())
        assert (found["with"], found["without"], found["wrong"]) == (200, 503, 503)
        # Given back: off again, for everyone, and the secret is gone with the window.
        assert http_get(server.port, "/").status == 200
        project.flask("maintenance", "on")
        assert http_get(server.port, "/", headers={"X-Maintenance-Bypass": found["token"]}).status == 503
        history = project.flask("maintenance", "history", "--json").stdout
    for text in (run.stdout, run.stderr, history, server.log()):
        assert found["token"] not in text
    assert [json.loads(line)["event"] for line in history.splitlines()] == ["on", "off", "on"]
