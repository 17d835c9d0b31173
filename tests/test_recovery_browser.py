"""The page's recovery polling in a real Chromium: it reloads only once the status path and every
MAINTENANCE_RECOVERY_CHECKS URL answer OK, asks them in parallel, and reloads with ``v=``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import DESKTOP, Visitor, chromium
from servers import APP_MODULE, HOST, AppProject, Gunicorn

from flask_maintenance.backends import FileBackend

#: The app: health checks that answer 503 while a file named after them is in the instance folder.
HEALTH_SOURCE = """
import os

from flask import Flask, request
from flask_maintenance import Maintenance

app = Flask(__name__, instance_path=os.environ["SUBJECT_INSTANCE"])
app.config.update(
    MAINTENANCE_LOCK_FILE=os.environ["MAINTENANCE_LOCK_FILE"],
    MAINTENANCE_CHECK_INTERVAL=0,
    MAINTENANCE_ALLOWED_PATHS=["/healthz", "/api/healthz"],
    MAINTENANCE_RECOVERY_CHECKS=["/healthz", "/api/healthz"],
)
Maintenance(app)


@app.get("/")
def index():
    return "home page from the app"


@app.get("/healthz")
@app.get("/api/healthz")
def healthz():
    sick = os.path.join(app.instance_path, request.path.strip("/").replace("/", "-") + ".sick")
    return ("sick", 503) if os.path.exists(sick) else "ok"
"""

CHECKS = ("/_maintenance", "/healthz", "/api/healthz")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Gunicorn, Path, Visitor, Path]]:
    with chromium(tmp_path / "chromium") as browser:
        lock = tmp_path / "maintenance.lock"
        project = AppProject(tmp_path / "site", MAINTENANCE_LOCK_FILE=str(lock))
        (project.directory / f"{APP_MODULE}.py").write_text(HEALTH_SOURCE)
        instance = project.directory / "instance"
        instance.mkdir()
        with project.gunicorn() as server:
            server.start()
            context = browser.new_context(viewport=DESKTOP, locale="en-US")
            try:
                yield server, instance, Visitor(context), lock
            finally:
                context.close()


@pytest.mark.slow
def test_reloads_only_when_every_check_is_ok(site: tuple[Gunicorn, Path, Visitor, Path]) -> None:
    server, instance, visitor, lock = site
    origin = f"http://{HOST}:{server.port}"
    FileBackend(str(lock)).write(b"")  # maintenance on, as `touch` does
    events: list[tuple[str, str]] = []
    visitor.context.on("request", lambda request: events.append(("request", request.url)))
    visitor.context.on("requestfinished", lambda request: events.append(("done", request.url)))
    response = visitor.page.goto(f"{origin}/?page=2")
    assert response is not None and response.status == 503
    visitor.page.evaluate("window.stillTheMaintenancePage = true")

    # Maintenance ends, but one health check still fails: the page keeps waiting.
    (instance / "api-healthz.sick").touch()
    lock.unlink()
    sick_round = [f"{origin}{path}" for path in CHECKS]
    deadline_rounds = 0
    while events.count(("done", sick_round[2])) < 2 and deadline_rounds < 200:
        visitor.page.wait_for_timeout(100)  # two polls that saw /api/healthz fail
        deadline_rounds += 1
    assert events.count(("done", sick_round[2])) >= 2, events
    assert visitor.page.evaluate("window.stillTheMaintenancePage === true")

    # Each poll asks all three at once: every request goes out before any answer is back.
    first = [event for event in events if event[1] in sick_round][:6]
    assert sorted(first[:3]) == sorted(("request", url) for url in sick_round), first

    (instance / "api-healthz.sick").unlink()
    visitor.wait_for(
        "!window.stillTheMaintenancePage && document.readyState === 'complete'"
        " && document.body.innerText.startsWith('home page from the app')"
    )
    # Reloaded in place, with the visitor's own query kept and a cache-busting v= added.
    assert re.fullmatch(re.escape(origin) + r"/\?page=2&v=\d{13}", visitor.page.url), visitor.page.url


@pytest.mark.slow
def test_the_full_page_comes_back_once_reads_are_served(site: tuple[Gunicorn, Path, Visitor, Path]) -> None:
    # Full maintenance for a migration, then readonly while it is checked (or a proxy's page
    # while every server was down, in a readonly window): reads are served again, so a visitor
    # left on the full page must not wait for the whole window to end.
    server, _, visitor, lock = site
    origin = f"http://{HOST}:{server.port}"
    FileBackend(str(lock)).write(b"")
    response = visitor.page.goto(f"{origin}/")
    assert response is not None and response.status == 503
    visitor.page.evaluate("window.stillTheMaintenancePage = true")
    FileBackend(str(lock)).write(b'{"mode": "readonly"}')
    home = (
        "!window.stillTheMaintenancePage && document.readyState === 'complete'"
        " && document.body.innerText.startsWith('home page from the app')"
    )
    visitor.wait_for(home, timeout=20)

    # The read-only page, which refused a write, waits for writes, not for reads.
    polls: list[str] = []
    visitor.context.on("requestfinished", lambda request: polls.append(request.url))
    visitor.page.evaluate(
        "() => { const form = document.createElement('form'); form.method = 'post';"
        " document.body.append(form); form.submit(); }"
    )
    visitor.wait_for("document.title === 'Read-only mode' && document.readyState === 'complete'")
    visitor.page.evaluate("window.stillTheMaintenancePage = true")
    rounds = 0
    while polls.count(f"{origin}/_maintenance") < 2 and rounds < 200:
        visitor.page.wait_for_timeout(100)
        rounds += 1
    assert polls.count(f"{origin}/_maintenance") >= 2, polls
    assert visitor.page.evaluate("window.stillTheMaintenancePage === true")
    lock.unlink()
    # Writes work again: the page says so and stays (reloading would turn the POST into a GET).
    visitor.wait_for("document.getElementById('live').textContent.startsWith('We are back')", timeout=20)
    assert visitor.page.evaluate("window.stillTheMaintenancePage === true")
