"""The operator's mistakes at 3 a.m., through the real ``flask`` command: each gets one clear line,
a sensible exit status, and leaves the state as it was (or says that nothing changed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask

AppFactory = Callable[..., Flask]

pytestmark = pytest.mark.slow  # a real `flask` process per command

SHOP = """
from flask import Blueprint, Flask
from flask_maintenance import Maintenance

app = Flask(__name__, instance_path={instance!r})
app.config["SECRET_KEY"] = "shop-secret"
app.config["MAINTENANCE_LOCK_FILE"] = {lock!r}
maintenance = Maintenance(app)
guestbook = Blueprint("guestbook", __name__)


@guestbook.post("/guestbook")
def sign():
    return "signed"


app.register_blueprint(guestbook)


@app.get("/")
def index():
    return "home page"
"""


class Shop:
    """A real app module on disk, and the real ``flask`` command run against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock_file = root / "maintenance.lock"
        self.plan_file = root / "maintenance.lock.plan"
        (root / "shop.py").write_text(SHOP.format(instance=str(root / "instance"), lock=str(self.lock_file)))

    def flask(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if key != "FLASK_MAINTENANCE_FORCE"}
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "shop", "maintenance", *args],
            cwd=self.root,
            env={**env, "PYTHONPATH": str(self.root)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        done = self.flask(*args)
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr
        return done.stdout

    def lock(self) -> dict[str, object]:
        return json.loads(self.lock_file.read_text())  # type: ignore[no-any-return]


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path)


def one_line(done: subprocess.CompletedProcess[str], status: int) -> str:
    assert done.returncode == status, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


def test_a_typo_in_a_feature_name_is_refused_with_a_suggestion(shop: Shop) -> None:
    line = one_line(shop.flask("on", "--feature", "guestbok"), 2)
    assert "no feature 'guestbok'" in line and "did you mean 'guestbook'?" in line
    assert "--force" in line
    assert not shop.plan_file.exists()
    assert "Feature guestbook is OFF" in shop.ok("on", "--feature", "guestbook")
    # A feature the app does not know yet (another app of the fleet, a later release): --force.
    assert "Feature payments is OFF" in shop.ok("on", "--feature", "payments", "--force")
    assert sorted(json.loads(shop.plan_file.read_text())["features"]) == ["guestbook", "payments"]


def test_on_while_on_changes_only_what_it_names_and_says_so(shop: Shop) -> None:
    shop.ok("on", "--message", "Moving the database", "--retry", "5m")
    first = shop.lock()
    assert first["retry"] == 300  # units, like --for
    changed = shop.ok("on", "--mode", "readonly")
    assert changed.splitlines()[0] == "Maintenance was already ON: changed mode full -> readonly"
    second = shop.lock()
    assert (second["mode"], second["message"], second["retry"]) == ("readonly", "Moving the database", 300)
    assert (second["started_at"], second["window"]) == (first["started_at"], first["window"])

    before = shop.lock_file.stat()
    assert shop.ok("on").splitlines()[0] == "Maintenance was already ON: nothing changed"
    after = shop.lock_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not written

    removed = shop.ok("on", "--message", "")
    assert "changed message 'Moving the database' -> (default)" in removed
    assert "message" not in shop.lock()


def test_a_new_secret_revokes_the_old_link(shop: Shop) -> None:
    def link(output: str) -> str:
        return next(line.split()[-1] for line in output.splitlines() if "bypass link:" in line)

    first = link(shop.ok("on", "--secret"))
    rotated = shop.ok("on", "--secret")
    assert "new bypass link (the earlier link and cookies no longer work)" in rotated
    second = link(rotated)
    assert first != second
    sys.path.insert(0, str(shop.root))
    try:
        from shop import app  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(shop.root))
        sys.modules.pop("shop", None)
    client = app.test_client()
    assert client.get(first).status_code == 403
    assert client.get(second).status_code == 303


def test_an_explicit_retry_wins_over_the_end_and_status_shows_what_is_sent(shop: Shop) -> None:
    shop.ok("on", "--retry", "30", "--for", "2h")
    status = json.loads(shop.ok("status", "--json"))
    assert (status["retry"], status["retry_after"], status["overdue"]) == (30, 30, False)


def test_an_overdue_window_says_so_and_retries_at_the_configured_pace(shop: Shop) -> None:
    past = (datetime.now(timezone.utc) - timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    shop.lock_file.write_text(json.dumps({"mode": "full", "ends_at": past}))
    text = shop.ok("status")
    assert f"expected end: {past} (OVERDUE by 1:30:" in text
    status = json.loads(shop.ok("status", "--json"))
    assert (status["retry_after"], status["overdue"]) == (60, True)


def test_off_and_cancel_that_change_nothing_say_so_and_write_nothing(shop: Shop) -> None:
    assert shop.ok("off").splitlines()[0] == "Maintenance was already OFF; nothing changed"
    assert shop.ok("off", "--feature", "guestbook").splitlines()[0] == (
        "Feature guestbook was not OFF; nothing changed"
    )
    assert shop.ok("cancel").splitlines()[0] == "Nothing was scheduled; nothing changed"
    assert sorted(path.name for path in shop.root.iterdir() if path.name.startswith("maintenance")) == [
        "maintenance.lock.flock"
    ]


def test_a_second_schedule_says_what_it_replaced(shop: Shop) -> None:
    first = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    second = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "Replaced" not in shop.ok("schedule", "--at", first)
    assert shop.ok("schedule", "--at", second).splitlines()[0] == f"Replaced the window planned at {first}"


def test_a_blank_message_is_no_message(shop: Shop) -> None:
    shop.ok("on", "--message", "   ")
    assert "message" not in shop.lock()
    assert "message:      (default)" in shop.ok("status")


def test_a_bad_bypass_link_gets_a_page_or_problem_json(make_app: AppFactory) -> None:
    app = make_app()
    app.extensions["maintenance"].enable(secret="the-real-secret-123", app=app)
    client = app.test_client()
    page = client.get("/_maintenance/bypass/a-guess", headers={"Accept": "text/html"})
    assert page.status_code == 403 and page.mimetype == "text/html"
    assert "This link does not work" in page.get_data(as_text=True)
    problem = client.get("/_maintenance/bypass/a-guess", headers={"Accept": "application/json"})
    assert problem.status_code == 403 and problem.mimetype == "application/problem+json"
    assert problem.get_json()["type"] == "urn:flask-maintenance:problem:bypass-link"
    assert client.get_cookie("maintenance_bypass") is None


def test_the_link_carries_application_root_or_base_url(shop: Shop) -> None:
    source = (shop.root / "shop.py").read_text()
    (shop.root / "shop.py").write_text(source + '\napp.config["APPLICATION_ROOT"] = "/shop"\n')
    assert "bypass link: /shop/_maintenance/bypass/" in shop.ok("on", "--secret")
    out = shop.ok("on", "--secret", "--base-url", "https://example.com/shop/")
    assert "bypass link: https://example.com/shop/_maintenance/bypass/" in out
    line = one_line(shop.flask("on", "--secret", "--base-url", "example.com"), 2)
    assert "--base-url must be the site's address" in line
