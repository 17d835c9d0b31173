"""Maintenance in real apps with the extensions and middleware they combine it with (issue 12).

Prefixes (DispatcherMiddleware, ProxyFix, an app's own prefix middleware), Flask-CORS,
``MAINTENANCE_RESPONSE_HEADERS``, prometheus-flask-exporter, OpenTelemetry, Flask-Limiter,
Flask-Admin and pytest-flask's ``live_server``. Each recipe is a file in ``docs/examples/`` that
these tests run with the real extension; where a recipe has one line that matters, a companion
test runs it without that line and shows what goes wrong. Tests with servers and browsers are
marked ``slow``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
import test_docs_examples as docs_examples
from browser_support import Visitor, chromium, foreign
from conftest import Clock
from flask import Flask, Response
from servers import HOST, TIMEOUT
from test_docs_examples import EXAMPLES, LoadExample, extension_of, run_flask, run_pytest_in
from werkzeug.serving import make_server
from werkzeug.test import Client, TestResponse

from flask_maintenance import Maintenance

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from playwright.sync_api import Browser

#: The docs examples, imported from a copy in the test's folder (see test_docs_examples).
load_example = docs_examples.load_example

TOKEN = "a-token-for-the-staff-only"
PREFIX = "/shop"
JSON = {"Accept": "application/json"}


@pytest.fixture
def example_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load_example: LoadExample
) -> Callable[[str, str], ModuleType]:
    """Load a docs example with one of its lines taken out: the recipe minus the line that matters."""

    def load(name: str, line: str) -> ModuleType:
        source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
        assert source.count(line + "\n") == 1, f"{name}.py no longer has the line {line!r}"
        edited = tmp_path / "edited-examples"
        edited.mkdir(exist_ok=True)
        (edited / f"{name}.py").write_text(source.replace(line + "\n", ""), encoding="utf-8")
        monkeypatch.setattr(docs_examples, "EXAMPLES", edited)
        return load_example(name)

    return load


@contextmanager
def serving(wsgi_app: WSGIApplication) -> Iterator[str]:
    """``wsgi_app`` behind Werkzeug's threaded HTTP server on a free loopback port; its origin."""
    server = make_server(HOST, 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the module's browser tests."""
    with chromium(tmp_path_factory.mktemp("chromium")) as running:
        yield running


@pytest.fixture
def visitor(browser: Browser) -> Iterator[Visitor]:
    """A person with a fresh browser context (no cookies, no cache)."""
    context = browser.new_context()
    try:
        yield Visitor(context)
    finally:
        context.close()


# -- apps under a prefix ---------------------------------------------------------------------


class PrefixedWSGI:
    """An app's own middleware that serves it under a prefix by rewriting ``PATH_INFO``.

    ``/shop/cart`` reaches the app as ``/cart`` under ``SCRIPT_NAME`` ``/shop``; anything
    outside the prefix gets the middleware's own 404.
    """

    def __init__(self, app: WSGIApplication, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not (path == self.prefix or path.startswith(self.prefix + "/")):
            start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
            return [b"outside the prefix"]
        return self.app(self.rewrite(environ, path[len(self.prefix) :]), start_response)

    def rewrite(self, environ: WSGIEnvironment, rest: str) -> WSGIEnvironment:
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
        environ["PATH_INFO"] = rest
        return environ


class ForwardingProxy(PrefixedWSGI):
    """What nginx does with ``location /shop/ { proxy_pass http://app/; }`` and the usual headers.

    The browser asks for ``/shop/cart``; the app gets ``/cart`` with ``X-Forwarded-Prefix: /shop``
    (and the client's address in ``X-Forwarded-For``), and no ``SCRIPT_NAME``.
    """

    def rewrite(self, environ: WSGIEnvironment, rest: str) -> WSGIEnvironment:
        return {
            **environ,
            "PATH_INFO": rest or "/",
            "HTTP_X_FORWARDED_PREFIX": self.prefix,
            "HTTP_X_FORWARDED_FOR": environ.get("REMOTE_ADDR", ""),
            "REMOTE_ADDR": HOST,
        }


def own_middleware_app(tmp_path: Path, *, before: bool) -> tuple[WSGIApplication, Flask]:
    """A shop whose own middleware rewrites ``PATH_INFO``, installed before or after ``Maintenance(app)``."""
    app = Flask("own_prefix", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="own-prefix", MAINTENANCE_ALLOWED_PATHS=["/health/live"])

    @app.get("/")
    def index() -> str:
        return "The shop"

    @app.get("/health/live")
    def live() -> str:
        return "alive"

    if before:
        app.wsgi_app = PrefixedWSGI(app.wsgi_app, PREFIX)  # type: ignore[method-assign]
    Maintenance(app)
    if not before:
        app.wsgi_app = PrefixedWSGI(app.wsgi_app, PREFIX)  # type: ignore[method-assign]
    return app.wsgi_app, app


PREFIXED_SETUPS = ("dispatcher", "proxyfix", "own-middleware-first", "own-middleware-last")


@pytest.fixture(params=PREFIXED_SETUPS)
def prefixed(
    request: pytest.FixtureRequest, load_example: LoadExample, tmp_path: Path
) -> tuple[Client, Flask]:
    """A client of the shop served under /shop, each way, and the shop's Flask app."""
    if request.param == "dispatcher":
        mount = load_example("prefix_mount")
        return Client(mount.application), mount.shop
    if request.param == "proxyfix":
        proxied = load_example("prefix_proxy")
        return Client(ForwardingProxy(proxied.app.wsgi_app, PREFIX)), proxied.app
    wsgi_app, app = own_middleware_app(tmp_path, before=request.param == "own-middleware-first")
    return Client(wsgi_app), app


def status_url_of(page: TestResponse) -> str:
    found = re.search(r'data-status-url="([^"]*)"', page.get_data(as_text=True))
    assert found is not None, "the page names no status URL"
    return found.group(1)


class TestUnderAPrefix:
    def test_every_url_the_refusal_names_is_under_the_prefix_and_answers(
        self, prefixed: tuple[Client, Flask]
    ) -> None:
        client, app = prefixed
        assert client.get(f"{PREFIX}/").get_data(as_text=True) == "The shop"
        extension_of(app).enable(app=app)

        page = client.get(f"{PREFIX}/")
        assert page.status_code == 503
        assert status_url_of(page) == f"{PREFIX}/_maintenance"
        problem = client.get(f"{PREFIX}/", headers=JSON)
        assert problem.status_code == 503
        assert problem.json is not None and problem.json["status_url"] == f"{PREFIX}/_maintenance"

        status = client.get(status_url_of(page), headers=JSON)
        assert status.status_code == 200
        assert status.json is not None and status.json["active"] is True
        # Liveness (MAINTENANCE_ALLOWED_PATHS, a path of the app) under the prefix.
        live = client.get(f"{PREFIX}/health/live")
        assert (live.status_code, live.get_data(as_text=True)) == (200, "alive")
        assert client.get("/_maintenance").status_code == 404  # nothing at the host's root

    def test_the_bypass_link_redirects_and_scopes_its_cookie_to_the_prefix(
        self, prefixed: tuple[Client, Flask]
    ) -> None:
        client, app = prefixed
        extension_of(app).enable(secret=TOKEN, app=app)
        assert client.get(f"{PREFIX}/").status_code == 503

        link = client.get(f"{PREFIX}/_maintenance/bypass/{TOKEN}")
        assert link.status_code == 303
        assert link.headers["Location"] == f"{PREFIX}/"
        cookie = link.headers["Set-Cookie"]
        assert "; Path=/shop;" in cookie or cookie.endswith("; Path=/shop")
        admin = client.get(link.headers["Location"])
        assert (admin.status_code, admin.get_data(as_text=True)) == (200, "The shop")
        assert client.get(f"{PREFIX}/", headers=JSON).status_code == 200
        onward = client.get(f"{PREFIX}/_maintenance/bypass/{TOKEN}?next=/health/live")
        assert onward.headers["Location"] == f"{PREFIX}/health/live"

    def test_flask_maintenance_on_secret_prints_the_link_under_application_root(
        self, load_example: LoadExample, tmp_path: Path
    ) -> None:
        shutil.copy(EXAMPLES / "prefix_proxy.py", tmp_path)
        on = run_flask(tmp_path, "--app", "prefix_proxy", "maintenance", "on", "--secret")
        assert on.returncode == 0, on.stderr
        link = bypass_link(on.stdout)
        assert link.startswith(f"{PREFIX}/_maintenance/bypass/")
        assert "(a path: append it to your site's address, or give --base-url)" in on.stdout

        # The link, followed through the proxy, lets its holder in.
        client = Client(ForwardingProxy(load_example("prefix_proxy").app.wsgi_app, PREFIX))
        assert client.get(f"{PREFIX}/").status_code == 503
        assert client.get(link).headers["Location"] == f"{PREFIX}/"
        assert client.get(f"{PREFIX}/").get_data(as_text=True) == "The shop"

    def test_flask_maintenance_on_secret_prints_the_link_under_base_url(self, tmp_path: Path) -> None:
        shutil.copy(EXAMPLES / "prefix_proxy.py", tmp_path)
        on = run_flask(
            tmp_path,
            *("--app", "prefix_proxy", "maintenance", "on", "--secret"),
            *("--base-url", "https://example.com/shop"),
        )
        assert on.returncode == 0, on.stderr
        link = bypass_link(on.stdout)
        assert re.fullmatch(r"https://example\.com/shop/_maintenance/bypass/[A-Za-z0-9_-]{20,}", link), link
        assert "append it" not in on.stdout

    @pytest.mark.slow
    def test_the_page_under_a_prefix_reloads_itself_after_off(
        self, load_example: LoadExample, visitor: Visitor
    ) -> None:
        mount = load_example("prefix_mount")
        maintenance = extension_of(mount.shop)
        maintenance.enable(app=mount.shop)
        with serving(mount.application) as origin:
            answer = visitor.page.goto(f"{origin}{PREFIX}/")
            assert answer is not None and answer.status == 503
            visitor.wait_for("document.getElementById('live').textContent.includes('reloads by itself')")
            maintenance.disable(app=mount.shop)
            # The page polls every 4 to 6 seconds, then reloads itself.
            visitor.wait_for("document.body.innerText.trim() === 'The shop'", timeout=20)
        assert f"{origin}{PREFIX}/_maintenance" in visitor.requested
        assert f"{origin}/_maintenance" not in visitor.requested
        assert foreign(visitor.requested, origin) == []


def bypass_link(output: str) -> str:
    found = re.search(r"^  bypass link: (\S+)$", output, re.MULTILINE)
    assert found is not None, output
    return found.group(1)


# -- Flask-CORS ------------------------------------------------------------------------------

SPA_PAGE = "<!doctype html><html><head><title>The shop's app</title></head><body>app</body></html>"

# What the single-page app does: a simple GET, then a PUT with JSON, which the browser sends only
# after a preflight OPTIONS that the API must answer with its CORS headers.
CALL_THE_API = """async url => {
    const results = {};
    for (const [name, init] of [
        ["get", {}],
        ["put", {method: "PUT", headers: {"Content-Type": "application/json"}, body: "{}"}],
    ]) {
        try {
            const answer = await fetch(url, {cache: "no-store", ...init});
            const problem = await answer.json();
            results[name] = {status: answer.status, retryAfter: answer.headers.get("Retry-After"),
                             title: problem.title};
        } catch (error) {
            results[name] = {error: String(error)};
        }
    }
    return results;
}"""


def static_page(html: str) -> WSGIApplication:
    def page(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return Response(html, mimetype="text/html")(environ, start_response)

    return page


@pytest.mark.slow
class TestCrossOrigin:
    """A single-page app on one origin calls the API (Flask-CORS, maintenance on) on another.

    A script may read a cross-origin answer (its status, and any header beyond the few that are
    always readable, such as ``Retry-After``) only when the answer carries the API's
    ``Access-Control-Allow-Origin`` and names the header in ``Access-Control-Expose-Headers``;
    otherwise ``fetch`` rejects with a network error and the app cannot tell maintenance from an
    outage. A PUT with JSON is preflighted: if the ``OPTIONS`` were refused with a 503 lacking
    those headers, the browser would not send the PUT at all. The fast path answers neither with
    the app's CORS headers, so these reads fail unless the refusal goes through the app's
    ``after_request`` functions and preflights reach the app.
    """

    def test_the_other_origin_reads_the_503_and_retry_after(
        self, load_example: LoadExample, monkeypatch: pytest.MonkeyPatch, visitor: Visitor
    ) -> None:
        with serving(static_page(SPA_PAGE)) as spa_origin:
            monkeypatch.setenv("FLASK_SPA_ORIGIN", spa_origin)
            api = load_example("cors")
            api.maintenance.enable(retry=90, app=api.app)
            with serving(api.app) as api_origin:
                visitor.page.goto(spa_origin + "/")
                results = visitor.page.evaluate(CALL_THE_API, api_origin + "/api/orders")
        expected = {"status": 503, "retryAfter": "90", "title": "Down for maintenance"}
        assert results == {"get": expected, "put": expected}
        assert foreign(visitor.requested, spa_origin) == [api_origin + "/api/orders"] * 2

    def test_an_origin_the_api_does_not_allow_cannot_read_it(
        self, load_example: LoadExample, monkeypatch: pytest.MonkeyPatch, visitor: Visitor
    ) -> None:
        # The same call from an origin Flask-CORS does not name: the reads above depend on the
        # app's CORS headers, and this is what a single-page app sees without them.
        monkeypatch.setenv("FLASK_SPA_ORIGIN", "https://app.example.com")
        api = load_example("cors")
        api.maintenance.enable(retry=90, app=api.app)
        with serving(static_page(SPA_PAGE)) as spa_origin, serving(api.app) as api_origin:
            visitor.page.goto(spa_origin + "/")
            results = visitor.page.evaluate(CALL_THE_API, api_origin + "/api/orders")
        assert results == {
            "get": {"error": "TypeError: Failed to fetch"},
            "put": {"error": "TypeError: Failed to fetch"},
        }


# -- MAINTENANCE_RESPONSE_HEADERS ------------------------------------------------------------


class TestResponseHeaders:
    """The extra headers are on every maintenance answer, whichever part of the code sends it."""

    @pytest.fixture
    def headers_app(self, load_example: LoadExample, tmp_path: Path) -> Callable[..., Flask]:
        """An app with the example's headers and other settings (a template, no fast path ...)."""
        extra = dict(load_example("headers").app.config["MAINTENANCE_RESPONSE_HEADERS"])
        templates = tmp_path / "templates"
        templates.mkdir()
        (templates / "maintenance.html").write_text("<h1>Back soon</h1>", encoding="utf-8")

        def build(rule: bool = False, **config: Any) -> Flask:
            app = Flask(
                "headers_variant", instance_path=str(tmp_path / "instance"), template_folder=str(templates)
            )
            app.config.update(SECRET_KEY="headers", MAINTENANCE_RESPONSE_HEADERS=extra, **config)
            maintenance = Maintenance(app)
            if rule:
                maintenance.bypass_rule(lambda: False)

            @app.get("/")
            def index() -> str:
                return "Hello!"

            return app

        return build

    def test_fast_path_and_app_answers_carry_the_same_extra_headers(
        self, load_example: LoadExample, headers_app: Callable[..., Flask]
    ) -> None:
        example = load_example("headers")
        extra = dict(example.app.config["MAINTENANCE_RESPONSE_HEADERS"])
        assert extra, "the example sets no headers"
        example.maintenance.enable(app=example.app)  # the lock file every variant below shares
        answers = {
            "fast path, page": example.app.test_client().get("/"),
            "fast path, JSON": example.app.test_client().get("/", headers=JSON),
            "fast path, HEAD": example.app.test_client().head("/"),
            "custom template": headers_app(MAINTENANCE_TEMPLATE="maintenance.html").test_client().get("/"),
            "bypass rule refused": headers_app(rule=True).test_client().get("/"),
            "with Origin": headers_app()
            .test_client()
            .get("/", headers={"Origin": "https://elsewhere.example"}),
            "request hook": headers_app(MAINTENANCE_FAST_PATH=False).test_client().get("/"),
        }
        for where, answer in answers.items():
            assert answer.status_code == 503, where
            shown = {name: answer.headers.getlist(name) for name in extra}
            assert shown == {name: [value] for name, value in extra.items()}, where
        assert answers["custom template"].get_data(as_text=True) == "<h1>Back soon</h1>"
        # Built from the same answer: the app's refusal is the fast path's, header for header.
        assert list(answers["bypass rule refused"].headers) == list(answers["fast path, page"].headers)

    def test_the_app_s_own_answers_do_not_get_them(self, load_example: LoadExample) -> None:
        example = load_example("headers")
        client = example.app.test_client()
        for answer in (client.get("/"), client.get("/_maintenance")):
            assert answer.status_code == 200
            assert "Strict-Transport-Security" not in answer.headers


# -- Prometheus and OpenTelemetry ------------------------------------------------------------

# prometheus_client's registry is global to the process, and prometheus-flask-exporter registers
# its metrics there once per app (a second app in the same process is refused): the example runs
# in a process of its own, which also keeps other tests' apps out of the counts.
SCRAPE = """
import json
import sys

sys.path.insert(0, sys.argv[1])
import monitoring

app, maintenance = monitoring.app, monitoring.maintenance
client = app.test_client()
served = client.get("/").status_code
with maintenance.enabled(app=app):
    refused = [client.get("/").status_code for _ in range(3)]
    refused += [client.get("/", headers={"Accept": "application/json"}).status_code for _ in range(2)]
    during = client.get("/metrics")
after = client.get("/metrics")
print(json.dumps({
    "served": served,
    "refused": refused,
    "during": [during.status_code, during.get_data(as_text=True)],
    "after": [after.status_code, after.get_data(as_text=True)],
}))
"""


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


class TestMonitoring:
    def test_metrics_are_served_during_maintenance_and_count_every_refusal(self, tmp_path: Path) -> None:
        shutil.copy(EXAMPLES / "monitoring.py", tmp_path)
        run = subprocess.run(
            [sys.executable, "-c", SCRAPE, str(tmp_path)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        result = json.loads(run.stdout)
        assert result["served"] == 200 and result["refused"] == [503] * 5
        status, exposition = result["during"]
        assert status == 200
        during = samples(exposition)
        page = frozenset({("mode", "full"), ("kind", "page")})
        problem = frozenset({("mode", "full"), ("kind", "json")})
        assert during[("flask_maintenance_refused_total", page)] == 3
        assert during[("flask_maintenance_refused_total", problem)] == 2
        assert during[("flask_maintenance_active", frozenset())] == 1
        # The exporter's own metrics see only what reached Flask: the one served request. Alert
        # on flask_maintenance_refused_total, not on the exporter's 503s.
        seen = {dict(labels).get("status") for (name, labels) in during if name == "flask_http_request_total"}
        assert seen == {"200"}
        status, exposition = result["after"]
        after = samples(exposition)
        assert status == 200
        assert after[("flask_maintenance_active", frozenset())] == 0
        assert after[("flask_maintenance_refused_total", page)] == 3  # a counter never goes back

    def test_refusals_are_counted_per_mode_and_kind(self, make_app: Callable[..., Flask]) -> None:
        app = make_app()
        maintenance = extension_of(app)
        client = app.test_client()
        with maintenance.enabled(mode="readonly", app=app):
            assert client.post("/form").status_code == 503
            assert client.get("/form").status_code == 200
            assert client.post("/api/items", headers=JSON).status_code == 503
        with maintenance.enabled(app=app):
            assert client.get("/", headers=JSON).status_code == 503
            assert client.get("/health/live").status_code == 503  # no allowed paths here
        assert maintenance.refusals(app=app) == {
            ("readonly", "page"): 1,
            ("readonly", "json"): 1,
            ("full", "json"): 1,
            ("full", "page"): 1,
        }


class InMemorySpans:
    """Spans finished by a tracer provider of the test's own (opentelemetry-sdk)."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def statuses(self) -> list[int | None]:
        """The HTTP status of each finished span, in order (either semantic convention)."""
        found = []
        for span in self.exporter.get_finished_spans():
            attributes = dict(span.attributes or {})
            found.append(attributes.get("http.response.status_code", attributes.get("http.status_code")))
        self.exporter.clear()
        return found


@pytest.fixture(scope="module")
def global_spans() -> InMemorySpans:
    """The process's global tracer provider (which the examples use), recording into memory.

    OpenTelemetry sets the global provider once per process: if another test set one, the
    spans are taken from that one.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    spans = InMemorySpans()
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        current.add_span_processor(SimpleSpanProcessor(spans.exporter))
    else:
        trace.set_tracer_provider(spans.provider)
    return spans


@pytest.fixture
def spans(global_spans: InMemorySpans) -> InMemorySpans:
    global_spans.exporter.clear()
    return global_spans


FAST_PATH_DISABLED = "maintenance fast path disabled"


class TestTracing:
    """OpenTelemetry's Flask instrumentation starts a request's span in a ``before_request``
    function, which a refused request never reaches, fast path or not; its WSGI middleware
    makes the span around the whole app, so it sees refusals too."""

    @pytest.mark.parametrize(
        ("example_name", "traced"),
        [("tracing", [200]), ("tracing_wsgi", [200, 503, 503])],
        ids=["flask-instrumentor-traces-served-requests-only", "wsgi-middleware-traces-refusals-too"],
    )
    def test_instrumented_after_maintenance(
        self,
        example_name: str,
        traced: list[int],
        load_example: LoadExample,
        spans: InMemorySpans,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.WARNING, logger="flask_maintenance")
        example = load_example(example_name)
        client = example.app.test_client()
        assert client.get("/").status_code == 200
        with example.maintenance.enabled(app=example.app):
            assert client.get("/").status_code == 503
            assert client.get("/", headers=JSON).status_code == 503
        assert spans.statuses() == traced
        assert FAST_PATH_DISABLED not in caplog.text  # the fast path sits inside the instrumentation

    def test_flask_instrumentor_before_maintenance_costs_the_fast_path(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        caplog.set_level(logging.WARNING)
        # Its wrapper is a closure: no middleware attribute leads to Flask's own wsgi_app.
        app, spans = instrumented_first(
            tmp_path, lambda app, provider: FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
        )
        assert FAST_PATH_DISABLED in caplog.text
        with extension_of(app).enabled(app=app):
            # The request hook, first of the before_request functions, refuses before the
            # instrumentation's own starts a span.
            assert app.test_client().get("/").status_code == 503
        assert spans.statuses() == []

    def test_the_wsgi_middleware_installed_first_keeps_the_fast_path(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

        def wrap(app: Flask, provider: Any) -> None:
            app.wsgi_app = OpenTelemetryMiddleware(app.wsgi_app, tracer_provider=provider)  # type: ignore[method-assign]

        caplog.set_level(logging.WARNING)
        app, spans = instrumented_first(tmp_path, wrap)
        with extension_of(app).enabled(app=app):
            assert app.test_client().get("/").status_code == 503
        assert spans.statuses() == [503]
        assert FAST_PATH_DISABLED not in caplog.text


def instrumented_first(
    tmp_path: Path, instrument: Callable[[Flask, Any], object]
) -> tuple[Flask, InMemorySpans]:
    """An app instrumented by ``instrument(app, tracer_provider)``, then given ``Maintenance(app)``."""
    spans = InMemorySpans()
    app = Flask("instrumented_first", instance_path=str(tmp_path / "instance"))
    app.get("/")(lambda: "Hello!")
    instrument(app, spans.provider)
    Maintenance(app)
    return app, spans


# -- Flask-Limiter ---------------------------------------------------------------------------

#: More polls than the example's limit allows in a minute (the page polls every 4 to 6 s).
POLLS = 15
EXEMPT_STATUS = "limiter.exempt(Maintenance.status_blueprint)"


class TestRateLimits:
    def test_the_page_polls_the_status_path_without_using_up_the_limit(
        self, load_example: LoadExample
    ) -> None:
        example = load_example("ratelimit")
        client = example.app.test_client()
        example.maintenance.enable(app=example.app)
        assert client.get("/").status_code == 503
        assert [client.get("/_maintenance").status_code for _ in range(POLLS)] == [200] * POLLS
        example.maintenance.disable(app=example.app)
        assert client.get("/_maintenance").status_code == 200  # so the page learns it is over
        # The app's own limits still hold.
        assert [client.get("/").status_code for _ in range(11)] == [200] * 10 + [429]

    def test_without_the_exemption_the_polling_page_gets_429(
        self, example_without: Callable[[str, str], ModuleType]
    ) -> None:
        example = example_without("ratelimit", EXEMPT_STATUS)
        client = example.app.test_client()
        example.maintenance.enable(app=example.app)
        polls = [client.get("/_maintenance").status_code for _ in range(POLLS)]
        assert polls == [200] * 10 + [429] * (POLLS - 10)
        example.maintenance.disable(app=example.app)
        # Back, but the page cannot see it before the minute is over.
        assert client.get("/_maintenance").status_code == 429


# -- Flask-Admin -----------------------------------------------------------------------------

ADMIN_PAGES = ("/admin/", "/admin/product/", "/admin/order/", "/admin/product/new/")


class TestAdmin:
    def test_the_admin_feature_switches_off_every_admin_page(
        self, clock: Clock, load_example: LoadExample, tmp_path: Path
    ) -> None:
        example = load_example("admin")
        client = example.app.test_client()
        assert [client.get(path).status_code for path in ADMIN_PAGES] == [200] * len(ADMIN_PAGES)

        on = run_flask(tmp_path, "--app", "admin", "maintenance", "on", "--feature", "admin")
        assert on.returncode == 0, on.stderr
        clock.advance(1.0)  # MAINTENANCE_CHECK_INTERVAL
        assert [client.get(path).status_code for path in ADMIN_PAGES] == [503] * len(ADMIN_PAGES)
        problem = client.post("/admin/product/new/", data={"name": "Teapot"}, headers=JSON)
        assert problem.status_code == 503
        assert problem.json is not None and problem.json["feature"] == "admin"
        assert client.get("/").get_data(as_text=True) == "The shop"
        assert client.get("/administrator").status_code == 404  # a prefix is whole segments

        off = run_flask(tmp_path, "--app", "admin", "maintenance", "off", "--feature", "admin")
        assert off.returncode == 0, off.stderr
        clock.advance(1.0)
        assert [client.get(path).status_code for path in ADMIN_PAGES] == [200] * len(ADMIN_PAGES)

    def test_by_blueprint_name_only_the_admin_index_would_go(
        self, example_without: Callable[[str, str], ModuleType]
    ) -> None:
        example = example_without("admin", 'maintenance.feature("admin", prefix="/admin")')
        client = example.app.test_client()
        example.maintenance.enable(feature="admin", app=example.app)
        assert [client.get(path).status_code for path in ADMIN_PAGES] == [503, 200, 200, 200]


# -- pytest-flask's live_server --------------------------------------------------------------

# Beside the docs' live-server suite (tests/test_docs_examples.py runs it as it is): the
# fixtures the other way round, so that the maintenance fixture is the one that starts the
# server, and readonly mode, which refuses the live server's writes only. pytest-flask sets
# SERVER_NAME to localhost.localdomain:PORT, and Flask before 3.1 routes only requests for that
# host: the requests go to 127.0.0.1 and name it in their Host header.
FIXTURE_FIRST = """
import urllib.error
import urllib.request


def status_of(live_server, path, method):
    request = urllib.request.Request(
        live_server.url(path),
        method=method,
        data=b"" if method == "POST" else None,
        headers={"Host": live_server.app.config["SERVER_NAME"]},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_readonly_reaches_a_server_started_after_the_fixture(maintenance, live_server):
    with maintenance.enabled(mode="readonly"):
        assert status_of(live_server, "/orders", "POST") == 503
        assert status_of(live_server, "/orders", "GET") == 200
    assert status_of(live_server, "/orders", "POST") == 201
"""


@pytest.mark.slow
def test_the_maintenance_fixture_reaches_the_live_server_it_starts(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "testing_live", project)
    shutil.copy(EXAMPLES / "testing" / "orders.py", project)
    (project / "test_fixture_first.py").write_text(FIXTURE_FIRST, encoding="utf-8")
    result = run_pytest_in(project, "--live-server-host", HOST, "test_fixture_first.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
