"""A refused request never fails because of the app's other parts: its receivers, its URL
converters, its signal handlers. Every case here gave a 500 before it was guarded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, has_app_context, has_request_context
from werkzeug.routing import BaseConverter

from flask_maintenance import Maintenance, maintenance_enabled, request_blocked

AppFactory = Callable[..., Flask]


class DatabaseDown(Exception):
    pass


class RecordConverter(BaseConverter):
    """A converter that loads the record from the database while the URL is matched."""

    def to_python(self, value: str) -> Any:
        raise DatabaseDown(value)


def failing(*args: Any, **kwargs: Any) -> None:
    raise DatabaseDown("the receiver's database is down")


@pytest.fixture
def receiver_of() -> Iterator[Callable[..., None]]:
    connected: list[Any] = []

    def connect(signal: Any, sender: Any) -> None:
        signal.connect(failing, sender)
        connected.append((signal, sender))

    yield connect
    for signal, _ in connected:
        signal.disconnect(failing)  # from every sender: none may outlive the test
        assert failing not in [ref() for ref in signal.receivers.values()]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "hook-only"])
def test_a_failing_request_blocked_receiver(
    make_app: AppFactory, receiver_of: Callable[..., None], fast_path: bool
) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast_path)
    receiver_of(request_blocked, app)
    app.extensions["maintenance"].enable(app=app)
    response = app.test_client().get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"


def test_a_failing_maintenance_enabled_receiver(
    make_app: AppFactory, receiver_of: Callable[..., None]
) -> None:
    app = make_app()
    receiver_of(maintenance_enabled, app)
    app.extensions["maintenance"].enable(app=app)  # this process notices at once, and sends it
    assert app.test_client().get("/").status_code == 503


def converter_app(make_app: AppFactory, maintenance: Maintenance) -> Flask:
    app = make_app(maintenance)
    app.url_map.converters["record"] = RecordConverter

    @app.get("/orders/<record:order>")
    def order(order: Any) -> str:
        return "an order"

    return app


def test_a_url_converter_that_needs_the_database_never_fails_a_refusal(make_app: AppFactory) -> None:
    maintenance = Maintenance()

    @maintenance.bypass_rule  # a rule: the request is finished in the app's request context
    def nobody() -> bool:
        return False

    app = converter_app(make_app, maintenance)
    maintenance.enable(app=app)
    response = app.test_client().get("/orders/7")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    # Half pushed when the converter failed, the request context did not outlive the request.
    assert not has_app_context() and not has_request_context()


def test_with_a_switched_off_feature_such_a_request_is_left_to_the_app(make_app: AppFactory) -> None:
    # Readonly lets the read through, unless its view belongs to a switched-off feature; the
    # view cannot be known without the converter, so the request goes on as if no feature
    # applied: the app then fails as it would without maintenance.
    maintenance = Maintenance()
    app = converter_app(make_app, maintenance)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    maintenance.enable(mode="readonly", app=app)
    maintenance.enable(feature="reports", app=app)
    assert app.test_client().get("/").status_code == 200
    assert app.test_client().get("/orders/7").status_code == 500  # the app's own failure
