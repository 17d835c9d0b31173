"""Blinker signals: maintenance seen coming on or going off by this process, and every refusal."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from blinker import Signal
from conftest import Clock
from flask import Blueprint, Flask, request

import flask_maintenance
from flask_maintenance import Maintenance, State, maintenance_disabled, maintenance_enabled, request_blocked

AppFactory = Callable[..., Flask]


class Recorder:
    """A receiver that keeps what it was sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        self.calls.append((sender, kwargs))

    @property
    def states(self) -> list[State]:
        return [kwargs["state"] for _, kwargs in self.calls]

    @property
    def reasons(self) -> list[str]:
        return [kwargs["reason"] for _, kwargs in self.calls]


@contextmanager
def receiving(signal: Signal, sender: Any = None) -> Iterator[Recorder]:
    """Connect a recorder for the block only: signals are global, other tests must not see it."""
    recorder = Recorder()
    with signal.connected_to(recorder, sender=sender if sender is not None else Signal.ANY):
        yield recorder


def ext(app: Flask) -> Maintenance:
    extension: Maintenance = app.extensions["maintenance"]
    return extension


def write_lock(app: Flask, content: str = "") -> None:
    path = Path(app.config["MAINTENANCE_LOCK_FILE"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


def remove_lock(app: Flask) -> None:
    Path(app.config["MAINTENANCE_LOCK_FILE"]).unlink()


def test_the_signals_are_exported_and_on_the_extension() -> None:
    assert (
        Maintenance.maintenance_enabled
        is maintenance_enabled
        is flask_maintenance.signals.maintenance_enabled
    )
    assert Maintenance.maintenance_disabled is maintenance_disabled
    assert Maintenance.request_blocked is request_blocked
    assert len({id(maintenance_enabled), id(maintenance_disabled), id(request_blocked)}) == 3


class TestEnabledAndDisabled:
    def test_enable_and_disable_send_one_signal_each(self, app: Flask) -> None:
        with receiving(maintenance_enabled, app) as on, receiving(maintenance_disabled, app) as off:
            ext(app).enable(mode="readonly", message="Migrating", app=app)
            client = app.test_client()
            for _ in range(3):
                client.get("/")
            assert len(on.calls) == 1 and off.calls == []
            sender, kwargs = on.calls[0]
            assert sender is app
            assert set(kwargs) == {"state"}
            assert (kwargs["state"].active, kwargs["state"].mode, kwargs["state"].message) == (
                True,
                "readonly",
                "Migrating",
            )

            ext(app).disable(app=app)
            client.get("/")
            assert len(on.calls) == 1
            assert len(off.calls) == 1
            sender, kwargs = off.calls[0]
            assert sender is app and kwargs["state"].active is False

    def test_a_change_of_mode_is_sent_as_enabled(self, app: Flask) -> None:
        with receiving(maintenance_enabled, app) as on, receiving(maintenance_disabled, app) as off:
            ext(app).enable(mode="banner", app=app)
            ext(app).enable(mode="full", app=app)
            assert [s.mode for s in on.states] == ["banner", "full"]
            assert off.calls == []

    def test_a_lock_file_written_directly_is_sent_when_the_process_sees_it(self, app: Flask) -> None:
        client = app.test_client()
        client.get("/")  # the process knows maintenance is off
        with receiving(maintenance_enabled, app) as on, receiving(maintenance_disabled, app) as off:
            write_lock(app, '{"mode": "readonly", "message": "by hand"}')
            assert on.calls == [], "nothing is sent before the process looks"
            assert client.post("/form").status_code == 503
            assert [(s.mode, s.message) for s in on.states] == [("readonly", "by hand")]
            assert on.calls[0][0] is app

            write_lock(app)  # `touch`: full maintenance
            client.get("/")
            assert [s.mode for s in on.states] == ["readonly", "full"]

            remove_lock(app)
            assert client.get("/").status_code == 200
            assert len(off.calls) == 1 and off.calls[0][0] is app
            assert off.states[0].active is False

    def test_with_a_check_interval_it_is_sent_after_the_next_read(
        self, clock: Clock, make_app: AppFactory
    ) -> None:
        app = make_app(MAINTENANCE_CHECK_INTERVAL=5)
        client = app.test_client()
        client.get("/")
        with receiving(maintenance_enabled, app) as on:
            write_lock(app)
            clock.advance(4.9)
            assert client.get("/").status_code == 200
            assert on.calls == []
            clock.advance(0.2)
            assert client.get("/").status_code == 503
            assert len(on.calls) == 1

    def test_a_process_that_starts_during_maintenance_sends_enabled_once(self, make_app: AppFactory) -> None:
        app = make_app()
        write_lock(app)
        with receiving(maintenance_enabled, app) as on, receiving(maintenance_disabled, app) as off:
            client = app.test_client()
            client.get("/")
            client.get("/")
            assert len(on.calls) == 1 and off.calls == []

    def test_a_process_that_starts_off_sends_nothing(self, make_app: AppFactory) -> None:
        app = make_app()
        with receiving(maintenance_enabled, app) as on, receiving(maintenance_disabled, app) as off:
            app.test_client().get("/")
            assert on.calls == [] and off.calls == []

    def test_a_scheduled_window_starting_and_ending_by_itself(
        self, clock: Clock, make_app: AppFactory
    ) -> None:
        app = make_app()
        starts = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
        ext(app).schedule(starts, starts + timedelta(hours=1), mode="readonly", auto_off=True, app=app)
        client = app.test_client()
        with receiving(maintenance_enabled, app) as on, receiving(maintenance_disabled, app) as off:
            client.get("/")
            assert on.calls == []
            clock.advance(3600 + 60)
            client.get("/")
            assert [(s.mode, s.started_at) for s in on.states] == [("readonly", starts)]
            clock.advance(3600)
            client.get("/")
            assert len(off.calls) == 1 and len(on.calls) == 1

    def test_receivers_connected_to_one_app_hear_only_that_app(
        self, make_app: AppFactory, tmp_path: Path
    ) -> None:
        first = make_app()
        second = make_app(MAINTENANCE_LOCK_FILE=str(tmp_path / "second.lock"))
        with receiving(maintenance_enabled, first) as on_first, receiving(maintenance_enabled) as on_any:
            ext(second).enable(app=second)
            assert on_first.calls == []
            assert [sender for sender, _ in on_any.calls] == [second]
            ext(first).enable(app=first)
            assert [sender for sender, _ in on_first.calls] == [first]


class TestRequestBlocked:
    @pytest.fixture
    def app(self, make_app: AppFactory) -> Flask:
        extension = Maintenance()
        app = make_app(extension, MAINTENANCE_ALLOWED_IPS=["10.0.0.0/8"])
        shop = Blueprint("shop", __name__, url_prefix="/shop")

        @shop.post("/pay")
        def pay() -> str:
            return "paid"

        app.register_blueprint(shop)
        extension.feature("payments", blueprint=shop)
        return app

    @pytest.mark.parametrize(
        "mode, method, path, reasons",
        [
            ("full", "GET", "/", ["maintenance"]),
            ("full", "POST", "/api/items", ["maintenance"]),
            ("readonly", "POST", "/form", ["readonly"]),
            ("readonly", "GET", "/form", []),
            ("banner", "POST", "/form", []),
        ],
    )
    def test_the_reason(self, app: Flask, mode: str, method: str, path: str, reasons: list[str]) -> None:
        ext(app).enable(mode=mode, app=app)
        with receiving(request_blocked, app) as blocked:
            response = app.test_client().open(path, method=method)
        assert response.status_code == (503 if reasons else 200)
        assert blocked.reasons == reasons
        for sender, kwargs in blocked.calls:
            assert sender is app
            assert set(kwargs) == {"state", "reason"}
            assert kwargs["state"].mode == mode

    def test_a_killed_feature(self, app: Flask) -> None:
        ext(app).enable(feature="payments", app=app)
        with receiving(request_blocked, app) as blocked:
            client = app.test_client()
            assert client.post("/shop/pay").status_code == 503
            assert client.get("/").status_code == 200
        assert blocked.reasons == ["feature:payments"]
        assert "payments" in blocked.states[0].features

    def test_a_blueprint_feature_by_its_own_name(self, app: Flask) -> None:
        ext(app).enable(feature="shop", app=app)
        with receiving(request_blocked, app) as blocked:
            app.test_client().post("/shop/pay")
        assert blocked.reasons == ["feature:shop"]

    def test_requests_let_through_are_not_sent(self, app: Flask) -> None:
        ext(app).enable(app=app)
        with receiving(request_blocked, app) as blocked:
            client = app.test_client()
            assert client.get("/", environ_overrides={"REMOTE_ADDR": "10.2.3.4"}).status_code == 200
            assert client.get("/_maintenance").status_code == 200
        assert blocked.calls == []


def requests_of_every_kind() -> list[tuple[str, str, dict[str, str]]]:
    return [
        ("GET", "/", {}),
        ("GET", "/", {"Accept": "application/json"}),
        ("HEAD", "/", {}),
        ("POST", "/form", {}),
        ("DELETE", "/api/items", {}),
        ("GET", "/no/such/page", {}),
    ]


class TestFastPathDefers:
    """The fast path answers before Flask, where there is no request to send from: while the
    signal has receivers it sends refusals from a request context of its own (still never
    Flask's request cycle), so that they can look at ``request``."""

    def counted(self, app: Flask) -> list[str]:
        """Count the requests that get past the fast path into Flask."""
        calls: list[str] = []
        inner = app.wsgi_app.__self__.wsgi_app  # type: ignore[attr-defined]

        def counting(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            calls.append(environ["PATH_INFO"])
            return inner(environ, start_response)

        app.wsgi_app.__self__.wsgi_app = counting  # type: ignore[attr-defined]
        return calls

    def answers(self, app: Flask) -> list[tuple[int, bytes, str | None, str | None]]:
        client = app.test_client()
        out: list[tuple[int, bytes, str | None, str | None]] = []
        for method, path, headers in requests_of_every_kind():
            response = client.open(path, method=method, headers=headers)
            out.append(
                (
                    response.status_code,
                    response.get_data(),
                    response.headers.get("Retry-After"),
                    response.content_type,
                )
            )
        return out

    @pytest.mark.parametrize("mode", ["full", "readonly"])
    def test_receivers_see_every_refusal_as_with_the_fast_path_off(
        self, make_app: AppFactory, mode: str
    ) -> None:
        fast = make_app(MAINTENANCE_FAST_PATH=True, MAINTENANCE_RETRY_AFTER=30)
        assert type(fast.wsgi_app.__self__).__name__ == "FastPath"  # type: ignore[attr-defined]
        ext(fast).enable(mode=mode, app=fast)
        into_flask = self.counted(fast)

        # Nobody listening: the fast path sheds the refused requests before Flask.
        unheard = self.answers(fast)
        refused = sum(1 for status, *_ in unheard if status == 503)
        assert refused >= 2
        assert len(into_flask) == len(unheard) - refused

        with receiving(request_blocked) as blocked:
            heard = self.answers(fast)
        assert heard == unheard
        assert len(blocked.calls) == refused
        assert set(blocked.reasons) == {"maintenance" if mode == "full" else "readonly"}
        assert all(sender is fast for sender, _ in blocked.calls)

        # The same refusals and the same signals as an app with no fast path at all.
        slow = make_app(MAINTENANCE_FAST_PATH=False, MAINTENANCE_RETRY_AFTER=30)
        with receiving(request_blocked) as blocked_slow:
            assert self.answers(slow) == unheard
        assert blocked_slow.reasons == blocked.reasons

        # Disconnected: the fast path sheds them again.
        before = len(into_flask)
        self.answers(fast)
        assert len(into_flask) - before == len(unheard) - refused

    def test_a_receiver_sees_the_request_and_only_for_its_own_app(self, make_app: AppFactory) -> None:
        app = make_app()
        ext(app).enable(app=app)
        into_flask = self.counted(app)
        seen: list[str] = []

        def record(sender: Flask, **extra: Any) -> None:
            seen.append(request.path)

        with receiving(request_blocked, sender=object()):
            assert app.test_client().get("/form").status_code == 503
        request_blocked.connect(record, app)
        try:
            assert app.test_client().get("/form").status_code == 503
        finally:
            request_blocked.disconnect(record, app)
        assert seen == ["/form"]
        assert into_flask == []  # refused without the app's request cycle, receivers or not
