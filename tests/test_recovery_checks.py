"""MAINTENANCE_RECOVERY_CHECKS: what the page asks before it reloads itself (the browser tests
watch it do so)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_maintenance.errors import ConfigurationError

AppFactory = Callable[..., Flask]
CHECKS = re.compile(r'<main role="main" data-status-url="([^"]*)"(?: data-checks="([^"]*)")?[ >]')


def page_checks(html: str) -> tuple[str, str | None]:
    found = CHECKS.search(html)
    assert found is not None, html[:400]
    return found.group(1), found.group(2)


class TestConfig:
    def test_none_by_default(self, make_app: AppFactory) -> None:
        app = make_app()
        app.extensions["maintenance"].enable(app=app)
        assert page_checks(app.test_client().get("/").text) == ("/_maintenance", None)

    @pytest.mark.parametrize("value", [["/healthz", "/api/healthz?deep=1"], "/healthz, /api/healthz?deep=1"])
    def test_a_list_or_a_comma_separated_string(self, make_app: AppFactory, value: Any) -> None:
        app = make_app(MAINTENANCE_RECOVERY_CHECKS=value)
        app.extensions["maintenance"].enable(app=app)
        html = app.test_client().get("/").text
        assert page_checks(html) == ("/_maintenance", "/healthz /api/healthz?deep=1")

    def test_escaped_in_the_attribute(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_RECOVERY_CHECKS=["/h?a=1&b=<x>'"])
        app.extensions["maintenance"].enable(app=app)
        html = app.test_client().get("/").text
        assert page_checks(html)[1] == "/h?a=1&amp;b=&lt;x&gt;&#x27;"

    @pytest.mark.parametrize(
        "value",
        [
            ["healthz"],
            ["//evil.example/healthz"],
            ["https://evil.example/healthz"],
            ["/a b"],
            ['/a"onload="x'],
            ["/a\\b"],
            ["/a\x00"],
            ["/\u00e9"],
            ["/" + "a" * 512],
            [f"/{n}" for n in range(9)],
            [1],
        ],
    )
    def test_anything_but_a_few_paths_on_the_site_fails_at_startup(
        self, make_app: AppFactory, value: Any
    ) -> None:
        with pytest.raises(ConfigurationError, match="MAINTENANCE_RECOVERY_CHECKS"):
            make_app(MAINTENANCE_RECOVERY_CHECKS=value)

    def test_the_longest_and_the_most_are_accepted(self, make_app: AppFactory) -> None:
        make_app(MAINTENANCE_RECOVERY_CHECKS=["/" + "a" * 511, *[f"/{n}" for n in range(7)]])


def test_the_static_page_checks_them_too(make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app(MAINTENANCE_RECOVERY_CHECKS=["/healthz"], APPLICATION_ROOT="/shop")
    page = tmp_path / "maintenance.html"
    result = app.test_cli_runner().invoke(args=["maintenance", "render-page", str(page)])
    assert result.exit_code == 0, result.output
    # The status path is the app's (under its root); the checks are the site's, as written.
    assert page_checks(page.read_text()) == ("/shop/_maintenance", "/healthz")


def test_each_page_waits_for_the_modes_that_still_refuse_its_request(
    make_app: AppFactory, tmp_path: Path
) -> None:
    # The page reloads in any mode but these (the browser tests watch it): the full page once
    # reads are served, the read-only page once writes are, and nginx's page, which nginx sends
    # in every mode while the lock file exists, only once maintenance is off (else it would
    # reload every few seconds through a banner window).
    app = make_app()
    app.extensions["maintenance"].enable(mode="readonly", app=app)
    write = app.test_client().post("/form").text
    assert re.search(
        r'<main role="main" data-status-url="/_maintenance" data-refused-in="full readonly"[ >]', write
    )
    page = tmp_path / "maintenance.html"
    result = app.test_cli_runner().invoke(args=["maintenance", "render-page", str(page)])
    assert result.exit_code == 0, result.output
    assert 'data-refused-in="full readonly banner"' in page.read_text()
    app.extensions["maintenance"].enable(app=app)
    assert "data-refused-in" not in app.test_client().get("/").text  # the full page: full only
