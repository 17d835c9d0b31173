"""What the fast path remembers to refuse cheaply: each language's answers (and banner header)
by the raw ``Accept-Language``, and the reading of each request path.

Every answer it remembers must be the one the hook alone sends (the same bytes), for every visitor
in any order; a new state must forget the old answers; and whatever strangers send, the memory
stays bounded (how much each kind of request costs is measured in ``benchmarks/``, not here).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from conftest import AppFactory
from flask import Flask
from werkzeug.test import TestResponse

from flask_maintenance import Maintenance
from flask_maintenance.gate import (
    LANGUAGE_HEADERS,
    PATHS_REMEMBERED,
    REMEMBERED_PATH_LENGTH,
    Gate,
)
from flask_maintenance.languages import ACCEPT_LANGUAGE_PREFIX

JSON = "application/json"
#: A long check interval: one State object, so one memory, until our own switch clears the cache.
KEEP = {"MAINTENANCE_CHECK_INTERVAL": 3600}
GERMAN = "de-DE,de;q=0.9"
FRENCH = "fr-CA,fr;q=0.9,en;q=0.5"


def gate_of(app: Flask) -> Gate:
    gate: Gate = app.wsgi_app.__self__.gate  # type: ignore[attr-defined]
    return gate


def seen(response: TestResponse) -> tuple[int, list[tuple[str, str]], bytes]:
    """What a client sees of an answer: status, headers and body."""
    return response.status_code, sorted(response.headers.items()), response.get_data()


@pytest.fixture
def apps(make_app: AppFactory) -> tuple[Flask, Flask]:
    """The same site with and without the fast path (one instance folder: one lock file); the
    fast one is switched (its own switch clears its cache), the other reads on every request."""
    return make_app(MAINTENANCE_FAST_PATH=True, **KEEP), make_app(MAINTENANCE_FAST_PATH=False)


def extension(app: Flask) -> Maintenance:
    m: Maintenance = app.extensions["maintenance"]
    return m


def test_languages_alternating_get_the_hooks_answers_byte_for_byte(apps: tuple[Flask, Flask]) -> None:
    fast, hook = apps
    extension(fast).enable(message="Upgrading", translations={"de": "Wartung"}, app=fast)
    fast_client, hook_client = fast.test_client(), hook.test_client()
    requests: list[dict[str, object]] = []
    for language in (GERMAN, FRENCH, None, "", "x" * 300 + ", de"):
        headers = {} if language is None else {"Accept-Language": language}
        requests += [
            {"method": "GET", "headers": headers},
            {"method": "GET", "headers": {**headers, "Accept": JSON}},
            {"method": "POST", "headers": headers},  # the page says nothing was saved
            {"method": "POST", "headers": {**headers, "Accept": JSON}},
            {"method": "HEAD", "headers": headers},
            {"method": "DELETE", "path": "/api/items", "headers": headers},
        ]
    for _ in range(3):  # the first round fills the memory, the next two read it
        for request in requests:
            path = str(request.get("path", "/"))
            method, headers = str(request["method"]), request["headers"]
            answer = fast_client.open(path, method=method, headers=headers)  # type: ignore[arg-type]
            assert answer.status_code == 503
            assert seen(answer) == seen(hook_client.open(path, method=method, headers=headers)), request  # type: ignore[arg-type]
    assert gate_of(fast).refusal_counts() == {("full", "page"): 3 * 15, ("full", "json"): 3 * 15}
    german = fast_client.get("/", headers={"Accept-Language": GERMAN})
    french = fast_client.get("/", headers={"Accept-Language": FRENCH})
    assert (german.headers["Content-Language"], french.headers["Content-Language"]) == ("de", "fr")
    assert b"Wartung" in german.get_data() and b"Upgrading" in french.get_data()


def test_a_new_state_forgets_the_answers_of_the_old_one(apps: tuple[Flask, Flask]) -> None:
    fast, hook = apps
    m = extension(fast)
    client = fast.test_client()
    m.enable(message="First", translations={"de": "Erste"}, app=fast)
    assert b"Erste" in client.get("/", headers={"Accept-Language": GERMAN}).get_data()
    m.enable(message="Second", translations={"de": "Zweite"}, app=fast)
    page = client.get("/", headers={"Accept-Language": GERMAN})
    assert b"Zweite" in page.get_data() and b"Erste" not in page.get_data()
    assert b"Second" in client.get("/", headers={"Accept-Language": FRENCH}).get_data()
    m.enable(mode="readonly", message="Second", app=fast)
    assert client.get("/", headers={"Accept-Language": GERMAN}).status_code == 200
    write = client.post("/form", headers={"Accept-Language": GERMAN})
    assert seen(write) == seen(hook.test_client().post("/form", headers={"Accept-Language": GERMAN}))
    assert write.status_code == 503 and write.headers["X-Maintenance"] == "readonly"
    m.disable(app=fast)
    assert client.get("/", headers={"Accept-Language": GERMAN}).status_code == 200


def test_an_unchanged_state_keeps_its_answers_from_one_reading_to_the_next(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Interval 0: the lock file is read again before every request. Nothing changed, so the page
    # is built once, not once per reading (which would be once per second per worker).
    from flask_maintenance import responses

    app = make_app()
    extension(app).enable(message="Upgrading", app=app)
    built: list[bool] = []
    real = responses.blocked
    monkeypatch.setattr(responses, "blocked", lambda *a, **k: built.append(True) or real(*a, **k))
    client = app.test_client()
    pages = {client.get("/", headers={"Accept-Language": GERMAN}).get_data() for _ in range(5)}
    assert len(pages) == 1 and b"Upgrading" in pages.pop()
    assert len(built) == 1
    extension(app).enable(message="Nearly done", app=app)
    assert b"Nearly done" in client.get("/", headers={"Accept-Language": GERMAN}).get_data()
    assert len(built) == 2


def test_a_countdown_is_never_answered_from_memory(apps: tuple[Flask, Flask]) -> None:
    fast = apps[0]
    ends_at = datetime.now(timezone.utc) + timedelta(hours=2)
    extension(fast).enable(ends_at=ends_at, app=fast)
    for _ in range(3):
        answer = fast.test_client().get("/", headers={"Accept-Language": GERMAN})
        assert answer.status_code == 503
        assert 7000 < int(answer.headers["Retry-After"]) <= 7200
    # Retry-After changes every second: no answer is remembered, only that there is none.
    assert set(gate_of(fast).current.by_header.values()) == {(None, None, None, None)}
    assert gate_of(fast).current.plain == {}


def test_strangers_accept_language_headers_keep_the_memory_bounded(make_app: AppFactory) -> None:
    app = make_app(**KEEP)
    extension(app).enable(app=app)
    client = app.test_client()
    for number in range(LANGUAGE_HEADERS + 50):
        language = ("de", "fr")[number % 2]
        page = client.get("/", headers={"Accept-Language": f"x{number}, {language}"})
        assert page.headers["Content-Language"] == language
    prepared = gate_of(app).current
    assert 0 < len(prepared.by_header) <= LANGUAGE_HEADERS
    assert set(prepared.plain) == {("de", None), ("fr", None)}  # one list of answers per language
    # A huge header is read, and remembered, as its first ACCEPT_LANGUAGE_PREFIX characters.
    huge = "de, " + "x" * 100_000 + ", fr;q=1"
    for _ in range(2):
        assert client.get("/", headers={"Accept-Language": huge}).headers["Content-Language"] == "de"
    assert max(len(key) for key in prepared.by_header) <= ACCEPT_LANGUAGE_PREFIX


def test_banner_headers_by_language_match_the_hooks_and_stay_bounded(apps: tuple[Flask, Flask]) -> None:
    fast, hook = apps
    extension(fast).enable(mode="banner", message="Upgrading", translations={"de": "Wartung"}, app=fast)
    fast_client, hook_client = fast.test_client(), hook.test_client()
    for _ in range(2):
        for language in (GERMAN, FRENCH, None, "de, " + "x" * 10_000):
            headers = {} if language is None else {"Accept-Language": language}
            served = fast_client.get("/", headers=headers)
            assert served.status_code == 200
            assert seen(served) == seen(hook_client.get("/", headers=headers)), language
    assert (
        fast_client.get("/", headers={"Accept-Language": GERMAN}).headers["X-Maintenance-Banner"] == "Wartung"
    )
    for number in range(LANGUAGE_HEADERS + 50):
        banner = fast_client.get("/", headers={"Accept-Language": f"x{number}, de"}).headers
        assert banner["X-Maintenance-Banner"] == "Wartung"
    prepared = gate_of(fast).current
    assert 0 < len(prepared.banner_by_header) <= LANGUAGE_HEADERS
    assert max(len(key) for key in prepared.banner_by_header) <= ACCEPT_LANGUAGE_PREFIX
    extension(fast).enable(mode="banner", message="Nearly done", app=fast)
    assert (
        fast_client.get("/", headers={"Accept-Language": GERMAN}).headers["X-Maintenance-Banner"]
        == "Nearly done"
    )


def test_strangers_paths_keep_the_memory_bounded(make_app: AppFactory) -> None:
    app = make_app(MAINTENANCE_ALLOWED_PATHS=["/open"], **KEEP)
    extension(app).enable(app=app)
    client = app.test_client()
    for number in range(PATHS_REMEMBERED + 50):
        assert client.get(f"/page/{number}").status_code == 503
        assert client.get(f"/open/{number}").status_code == 404  # served: the app has no such page
    long_path = "/open/" + "a" * REMEMBERED_PATH_LENGTH
    for _ in range(2):
        assert client.get(long_path).status_code == 404
        assert client.get(long_path.replace("/open/", "/page/")).status_code == 503
    memory = gate_of(app)._paths
    assert 0 < len(memory) <= PATHS_REMEMBERED
    assert max(len(path) for path in memory) <= REMEMBERED_PATH_LENGTH


def test_an_open_endpoint_added_later_is_served_from_the_next_state(make_app: AppFactory) -> None:
    app = make_app(**KEEP)
    m = extension(app)
    m.enable(app=app)
    client = app.test_client()
    assert client.get("/metrics").status_code == 503  # remembered as a refused path

    @app.get("/metrics", endpoint="prometheus_metrics")
    def metrics() -> str:
        return "up 1"

    m.enable(message="Still upgrading", app=app)
    assert client.get("/metrics").get_data() == b"up 1"


def test_refusals_from_many_threads_are_each_counted(make_app: AppFactory) -> None:
    app = make_app(**KEEP)
    extension(app).enable(app=app)
    failures: list[int] = []

    def refuse() -> None:
        client = app.test_client()
        for _ in range(150):
            status = client.get("/", headers={"Accept-Language": FRENCH}).status_code
            if status != 503:
                failures.append(status)

    threads = [threading.Thread(target=refuse) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert extension(app).refusals(app=app) == {("full", "page"): 8 * 150}
