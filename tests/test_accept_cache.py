"""The fast path's reading of ``Accept``: cached, and bounded whatever a client sends."""

from __future__ import annotations

from flask import Flask

from flask_maintenance import Maintenance
from flask_maintenance.accept import ACCEPT_CACHE_SIZE, ACCEPT_PREFIX, accepts_json, prefers_json

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
JSON = "application/json"


def kind(app: Flask, accept: str, path: str = "/") -> str:
    response = app.test_client().get(path, headers={"Accept": accept})
    assert response.status_code == 503
    return response.headers["Content-Type"].split(";")[0]


def test_a_client_that_varies_its_header_always_gets_its_own_kind(
    app: Flask, maintenance: Maintenance
) -> None:
    maintenance.enable(app=app)
    # More distinct headers than the cache holds, each preference alternating: no header may get
    # the answer cached for another.
    for number in range(ACCEPT_CACHE_SIZE + 50):
        if number % 2:
            accept, expected = f"{JSON};q=0.9;n={number}, text/html;q=0.5", "application/problem+json"
        else:
            accept, expected = f"text/html;n={number}, {JSON};q=0.5", "text/html"
        assert kind(app, accept) == expected, accept
    assert accepts_json.cache_info().currsize <= ACCEPT_CACHE_SIZE


def test_only_the_first_characters_of_a_huge_header_are_read(app: Flask, maintenance: Maintenance) -> None:
    maintenance.enable(app=app)
    prefix = f"{JSON}, " + ", ".join(f"x/y{i}" for i in range(200))
    prefix = prefix[:ACCEPT_PREFIX]
    huge = prefix + ", text/html;q=1, " * 4000  # what follows the prefix would prefer HTML
    assert len(huge) > 64_000
    assert prefers_json(prefix)
    for _ in range(3):  # the second and third come from the cache: the same answer
        assert kind(app, huge) == "application/problem+json"
    assert kind(app, HTML) == "text/html"
    assert kind(app, JSON) == "application/problem+json"
    assert kind(app, "") == "text/html"
