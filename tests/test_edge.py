"""Maintenance at the edge: the Worker `flask maintenance edge-worker` writes, run in Cloudflare's
own runtime (workerd, through Miniflare from .ci/node_modules) in front of a real gunicorn.

Workers run side by side (tests/edge_runner.mjs): one reading KV, some reading the app's
status path, and two in front of origins that fail (a server answering with errors, and a port
nothing listens on). Whether the origin saw a request is read from gunicorn's access log.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import Result
from flask import Flask
from servers import (
    HOST,
    TIMEOUT,
    AppProject,
    Gunicorn,
    Response,
    free_port,
    http_get,
    stop_process,
    wait_until,
)

from flask_maintenance import Maintenance
from flask_maintenance.accept import prefers_json
from flask_maintenance.times import format_instant

CI_FOLDER = Path(__file__).resolve().parent.parent / ".ci"
RUNNER = Path(__file__).resolve().parent / "edge_runner.mjs"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CONFIG = {
    "MAINTENANCE_RETRY_AFTER": "90",
    "MAINTENANCE_ALLOWED_PATHS": "/health/live",
    "MAINTENANCE_ALLOWED_IPS": "203.0.113.0/24,2001:db8::/32",
    "MAINTENANCE_CHECK_INTERVAL": "0",
}
#: How often the status-reading Worker reads the app's status path.
INTERVAL = 1
#: MAINTENANCE_RESPONSE_HEADERS of the app the Workers are written from.
EXTRA_HEADERS = {"Strict-Transport-Security": "max-age=600"}


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["maintenance", *args])


class LoggedGunicorn(Gunicorn):
    """The app under gunicorn, with an access log: which requests reached the origin."""

    def command(self) -> list[str]:
        return [*super().command(), "--access-logfile", str(self.directory / "access.log")]

    def hits(self, path: str) -> int:
        try:
            lines = (self.directory / "access.log").read_text().splitlines()
        except FileNotFoundError:
            return 0
        return sum(f'"GET {path} HTTP' in line or f'"POST {path} HTTP' in line for line in lines)


class FailingOrigin(BaseHTTPRequestHandler):
    """An origin that answers ``/fail/<status>`` with that status (``503-ours`` is the app's),
    and holds its status path until :attr:`status_released` is set (a busy origin)."""

    status_released = threading.Event()
    #: ``/drop-once/...``: the first request for each such path and method is dropped
    #: unanswered (a pooled connection the origin closed), the next ones answered.
    requests_seen: ClassVar[Counter[str]] = Counter()

    def do_GET(self) -> None:
        if self.path == "/_maintenance":
            self.status_released.wait(TIMEOUT * 2)
            return  # closed unanswered
        if self.path.startswith("/drop-once/"):
            self.requests_seen[f"{self.command} {self.path}"] += 1
            if self.requests_seen[f"{self.command} {self.path}"] == 1:
                self.close_connection = True
                return  # closed unanswered
        match = re.fullmatch(r"(?:/api)?/fail/([0-9]{3})(-ours)?", self.path)
        status = int(match.group(1)) if match else 200
        body = b"origin's own answer" if match is None or match.group(2) else b"bare error from a server"
        self.send_response(status)
        if match is not None and match.group(2):
            self.send_header("X-Maintenance", "full")
            self.send_header("Retry-After", "5")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Edge:
    """The running Workers, the origin behind them, and an app sharing the origin's lock file."""

    urls: dict[str, int]
    runner: subprocess.Popen[str]
    origin: LoggedGunicorn
    app: Flask
    worker: str

    def get(
        self, site: str, path: str = "/", headers: dict[str, str] | None = None, method: str = "GET"
    ) -> Response:
        return http_get(self.urls[site], path, headers={"Accept": BROWSER, **(headers or {})}, method=method)

    def put(self, site: str, state: str | None) -> None:
        """Set (or delete, with ``None``) the site's KV key ``state``."""
        assert self.runner.stdin is not None and self.runner.stdout is not None
        self.runner.stdin.write(json.dumps({"site": site, "state": state}) + "\n")
        self.runner.stdin.flush()
        assert _read_line(self.runner, "the KV write") == "ok"

    @property
    def maintenance(self) -> Maintenance:
        extension: Maintenance = self.app.extensions["maintenance"]
        return extension


def _read_line(process: subprocess.Popen[str], what: str) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], TIMEOUT * 2)
    if not ready:
        pytest.fail(f"timed out waiting for {what} from {RUNNER.name}")
    line = process.stdout.readline()
    if not line:
        pytest.fail(f"{RUNNER.name} exited with {process.wait(5)} before {what}")
    return line.strip()


def _miniflare() -> str:
    node = shutil.which("node")
    if node is None:
        reason = "node is not installed (apt-get install nodejs npm), so workerd cannot run the Worker"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run this test")
        pytest.skip(reason)
    if not (CI_FOLDER / "node_modules" / "miniflare").is_dir():
        reason = "miniflare is not installed: run `npm ci --prefix .ci` (as .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run this test")
        pytest.skip(reason)
    return node


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    node = _miniflare()
    root = tmp_path_factory.mktemp("edge")
    lock = root / "maintenance.lock"
    config = {**CONFIG, "MAINTENANCE_LOCK_FILE": str(lock)}
    app = Flask("edgeapp", instance_path=str(root / "instance"))
    app.config.update(SECRET_KEY="edge-secret", MAINTENANCE_RESPONSE_HEADERS=EXTRA_HEADERS, **config)
    Maintenance(app)
    workers = {}
    for name, interval in (
        ("worker.js", "10"),
        ("worker-status.js", str(INTERVAL)),
        ("worker-slow.js", "600"),
    ):
        result = run(app, "edge-worker", "--out", str(root / name), "--interval", interval)
        assert result.exit_code == 0, result.output
        workers[name] = str(root / name)

    failing = ThreadingHTTPServer((HOST, 0), FailingOrigin)
    threading.Thread(target=failing.serve_forever, daemon=True).start()
    origin = LoggedGunicorn(AppProject(root / "site", **config))
    runner = None
    try:
        origin.start()
        upstream = f"http://{HOST}:{origin.port}"
        sites = [
            {"name": "kv", "script": workers["worker.js"], "upstream": upstream, "kv": True},
            {"name": "status", "script": workers["worker-status.js"], "upstream": upstream, "kv": False},
            {"name": "status-slow", "script": workers["worker-slow.js"], "upstream": upstream, "kv": False},
            {
                "name": "failing",
                "script": workers["worker.js"],
                "upstream": f"http://{HOST}:{failing.server_port}",
                "kv": True,
            },
            {
                "name": "failing-status",
                "script": workers["worker-status.js"],
                "upstream": f"http://{HOST}:{failing.server_port}",
                "kv": False,
            },
            {
                "name": "dead",
                "script": workers["worker.js"],
                "upstream": f"http://{HOST}:{free_port()}",
                "kv": True,
            },
        ]
        runner = subprocess.Popen(
            [node, str(RUNNER), json.dumps({"ci": str(CI_FOLDER), "sites": sites})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        urls = {
            name: int(url.rsplit(":", 1)[1].strip("/"))
            for name, url in json.loads(_read_line(runner, "the URLs")).items()
        }
        yield Edge(urls, runner, origin, app, workers["worker.js"])
    finally:
        if runner is not None:
            if runner.stdin is not None:
                runner.stdin.close()
            stop_process(runner)
            if runner.stdout is not None:
                runner.stdout.close()
        origin.stop()
        FailingOrigin.status_released.set()
        failing.shutdown()
        failing.server_close()


@pytest.fixture
def edge_off(edge: Edge) -> Iterator[Edge]:
    """The edge with maintenance off everywhere, before and after the test."""
    edge.maintenance.disable(app=edge.app)
    for site in ("kv", "failing", "dead"):
        edge.put(site, None)
    yield edge
    edge.maintenance.disable(app=edge.app)
    edge.put("kv", None)


def lock_document(**fields: Any) -> str:
    return json.dumps(fields)


def in_seconds(seconds: float) -> str:
    return format_instant(datetime.now(timezone.utc) + timedelta(seconds=seconds))


def from_origin(answer: Response) -> bool:
    """Whether gunicorn answered (the Worker passes its ``Server`` header on; its own has none)."""
    return "gunicorn" in answer.headers.get("server", "")


def assert_edge_page(answer: Response, retry_after: int, kind: str = "full") -> None:
    assert answer.status == 503 and not from_origin(answer)
    assert answer.headers["retry-after"] == str(retry_after)
    assert answer.headers["x-maintenance"] == kind
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["strict-transport-security"] == EXTRA_HEADERS["Strict-Transport-Security"]
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "<!doctype html>" in answer.text and 'data-status-url="/_maintenance"' in answer.text


def assert_edge_json(answer: Response, retry_after: int, kind: str = "full") -> dict[str, Any]:
    assert answer.status == 503 and not from_origin(answer)
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == str(retry_after)
    assert answer.headers["x-maintenance"] == kind
    problem: dict[str, Any] = json.loads(answer.body)
    assert problem["status"] == 503 and problem["retry_after"] == retry_after
    return problem


# -- the command ------------------------------------------------------------------------------


def worker_settings(source: str) -> dict[str, Any]:
    """The settings a Worker's source embeds."""
    start = source.index("const SETTINGS = ") + len("const SETTINGS = ")
    settings: dict[str, Any] = json.JSONDecoder().raw_decode(source, start)[0]
    return settings


class TestSource:
    """What the Worker is told, from the app's own objects (no runtime needed)."""

    def test_paths_are_the_sites_under_the_apps_root(self, make_app: Callable[..., Flask]) -> None:
        app = make_app(
            APPLICATION_ROOT="/shop/",
            MAINTENANCE_ALLOWED_PATHS=["/health"],
            MAINTENANCE_API_PREFIXES=["/api", "/v2"],
        )

        @app.get("/metrics", endpoint="prometheus_metrics")
        def metrics() -> str:
            return "metrics"

        settings = worker_settings(run(app, "edge-worker", "--out", "-").stdout)
        assert settings["statusPath"] == "/shop/_maintenance"
        assert settings["openPaths"] == {
            "exact": [
                "/shop/_maintenance",
                "/shop/_maintenance/banner.js",
                "/shop/_maintenance/bypass",
                "/shop/_maintenance/calendar.ics",
                "/shop/health",
                "/shop/metrics",
                "/shop/robots.txt",
            ],
            "under": ["/shop/_maintenance/bypass/", "/shop/health/", "/shop/metrics/"],
        }
        assert settings["apiPaths"] == {
            "exact": ["/shop/api", "/shop/v2"],
            "under": ["/shop/api/", "/shop/v2/"],
        }
        page = settings["answers"]["full"]["page"]["body"]
        assert 'data-status-url="/shop/_maintenance"' in page

    def test_the_current_message_and_retry_go_into_the_answers(self, make_app: Callable[..., Flask]) -> None:
        app = make_app(MAINTENANCE_ALLOWED_IPS=["10.0.0.0/8", "2001:db8::/32"])
        app.extensions["maintenance"].enable(retry=42, message="Back <soon>", app=app)
        settings = worker_settings(run(app, "edge-worker", "--out", "-").stdout)
        full, readonly = settings["answers"]["full"], settings["answers"]["readonly"]
        assert "Back &lt;soon&gt;" in full["page"]["body"] and "Read-only mode" in readonly["page"]["body"]
        problem = json.loads(full["json"]["body"])
        assert (problem["detail"], problem["retry_after"]) == ("Back <soon>", 42)
        assert ["X-Maintenance", "readonly"] in readonly["json"]["headers"]
        assert settings["allowedNetworks"] == [
            [4, str(10 << 24), 8],
            [6, str(0x20010DB8 << 96), 32],
        ]


@pytest.mark.slow
class TestCommands:
    def test_the_worker_embeds_the_apps_answers(self, edge: Edge) -> None:
        source = Path(edge.worker).read_text()
        assert source.isascii()
        assert "export default" in source and "__SETTINGS__" not in source
        result = subprocess.run(
            ["node", "--check", "--input-type=module"], input=source, text=True, capture_output=True
        )
        assert result.returncode == 0, result.stderr

    def test_dash_prints_the_worker(self, edge: Edge) -> None:
        result = run(edge.app, "edge-worker", "--out", "-", "--interval", "3")
        assert result.exit_code == 0 and result.stderr == ""
        assert result.stdout.startswith("// flask-maintenance at the edge")
        assert '"interval": 3' in result.stdout

    def test_a_bad_interval_is_one_line(self, edge: Edge) -> None:
        result = run(edge.app, "edge-worker", "--interval", "soon")
        assert result.exit_code == 2 and "--interval" in result.stderr and result.stderr.count("\n") == 1

    def test_edge_state_follows_the_lock_and_the_plan(self, edge_off: Edge) -> None:
        app = edge_off.app
        assert json.loads(run(app, "edge-state").stdout) == {"active": False}
        edge_off.maintenance.enable(mode="readonly", retry=77, message="Moving house", app=app)
        document = json.loads(run(app, "edge-state").stdout)
        assert document["active"] is True
        assert (document["mode"], document["retry"], document["message"]) == ("readonly", 77, "Moving house")
        assert "token_hash" not in document and "window" not in document
        edge_off.maintenance.disable(app=app)
        starts = datetime.now(timezone.utc) + timedelta(hours=1)
        assert run(app, "schedule", "--at", format_instant(starts), "--for", "30m").exit_code == 0
        try:
            document = json.loads(run(app, "edge-state").stdout)
            assert document["active"] is False
            assert document["scheduled"]["starts_at"] == format_instant(starts)
        finally:
            assert run(app, "cancel").exit_code == 0

    def test_edge_state_fails_closed_on_a_damaged_plan(self, edge_off: Edge) -> None:
        plan = Path(edge_off.app.config["MAINTENANCE_LOCK_FILE"] + ".plan")
        plan.write_text("{damaged")
        try:
            result = run(edge_off.app, "edge-state")
            assert result.exit_code == 0
            assert json.loads(result.stdout)["active"] is True
            assert json.loads(result.stdout)["mode"] == "full"
            assert "warning: the maintenance plan" in result.stderr
        finally:
            plan.unlink()

    def test_a_folder_that_does_not_exist_is_one_line(self, edge: Edge, tmp_path: Path) -> None:
        result = run(edge.app, "edge-worker", "--out", str(tmp_path / "missing" / "worker.js"))
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: cannot write the Worker") and result.stderr.count("\n") == 1


# -- the state from KV -----------------------------------------------------------------------


@pytest.mark.slow
class TestKV:
    def test_off_forwards_everything(self, edge_off: Edge) -> None:
        home = edge_off.get("kv", "/?probe=off")
        assert (home.status, home.text[:22]) == (200, "home page from the app")

    def test_on_answers_at_the_edge_without_the_origin(self, edge_off: Edge) -> None:
        edge_off.put("kv", lock_document(mode="full", retry=120))
        assert_edge_page(edge_off.get("kv", "/?probe=on"), 120)
        assert_edge_page(edge_off.get("kv", "/?probe=on", method="POST"), 120)
        assert edge_off.origin.hits("/?probe=on") == 0

    def test_the_lock_files_own_document_and_an_empty_one(self, edge_off: Edge) -> None:
        edge_off.maintenance.enable(retry=44, app=edge_off.app)
        edge_off.put("kv", Path(edge_off.app.config["MAINTENANCE_LOCK_FILE"]).read_text())
        assert_edge_page(edge_off.get("kv"), 44)
        edge_off.put("kv", "")
        assert_edge_page(edge_off.get("kv"), 90)

    def test_json_for_api_paths_and_json_clients(self, edge_off: Edge) -> None:
        edge_off.put("kv", lock_document(retry=30, message="Back soon"))
        problem = assert_edge_json(edge_off.get("kv", "/api/orders"), 30)
        assert problem["type"] == "urn:flask-maintenance:problem:maintenance"
        assert problem["status_url"] == "/_maintenance"
        assert_edge_json(edge_off.get("kv", "/api"), 30)
        assert_edge_json(edge_off.get("kv", "/", {"Accept": "application/json"}), 30)
        assert_edge_page(edge_off.get("kv", "/apiary"), 30)

    @pytest.mark.parametrize(
        "accept",
        [
            "",
            "*/*",
            "application/json;q=0.5, text/html;q=0.4",
            "text/html;q=0.4, application/problem+json;q=0.5",
            "application/*",
            "application/json;q=abc",
            "application/json;q=1.0001",
            "application/jsonx, text/html;q=0.1",
            "Application/JSON",
            "text/*;q=0.2, application/json;q=0.1",
            ",,,;;;=====application/json",
            "application/json-patch, " * 40 + "application/json",
            "text/html;q=0.1, " + "x" * 600 + ", application/json",
            "application/json;" + ";" * 5000,
        ],
    )
    def test_odd_accept_headers_read_as_the_app_reads_them(self, edge_off: Edge, accept: str) -> None:
        edge_off.put("kv", lock_document(retry=30))
        answer = edge_off.get("kv", "/", {"Accept": accept})
        assert answer.status == 503
        expected = "application/problem+json" if prefers_json(accept) else "text/html; charset=utf-8"
        assert answer.headers["content-type"] == expected

    def test_allowed_paths_and_the_status_path_reach_the_origin(self, edge_off: Edge) -> None:
        edge_off.put("kv", lock_document())
        live = edge_off.get("kv", "/health/live")
        assert (live.status, live.text) == (200, "alive")
        status = edge_off.get("kv", "/_maintenance", {"Accept": "application/json"})
        assert status.status == 200 and json.loads(status.body)["active"] is False  # the origin's own
        link = edge_off.get("kv", "/_maintenance/bypass/wrong-token")
        assert link.status == 403  # the origin judged the link
        assert_edge_page(edge_off.get("kv", "/health/lively"), 90)
        assert_edge_page(edge_off.get("kv", "/_maintenance/other"), 90)
        assert_edge_page(edge_off.get("kv", "//health//live"), 90)  # one leading slash: /health//live

    def test_percent_encoded_paths_are_decoded_first(self, edge_off: Edge) -> None:
        edge_off.put("kv", lock_document())
        assert edge_off.get("kv", "/health/%6Cive").text == "alive"
        assert_edge_json(edge_off.get("kv", "/%61pi/x"), 90)
        assert_edge_page(edge_off.get("kv", "/%ff%fe"), 90)  # not UTF-8: refused, not an error

    @pytest.mark.parametrize(
        ("address", "passes"),
        [
            ("203.0.113.7", True),
            ("2001:db8::1", True),
            ("2001:DB8:0:0:0:0:0:abcd", True),
            ("::ffff:203.0.113.9", True),
            ("198.51.100.1", False),
            ("203.0.113.256", False),
            ("203.0.113.07", False),
            ("203.0.113.7, 198.51.100.1", False),
            ("2001:db9::1", False),
            ("2001:db8::1::2", False),
            ("::", False),
            ("2001:db8:" + "0:" * 40 + "1", False),
            ("x" * 5000, False),
        ],
    )
    def test_allowlisted_addresses_from_cf_connecting_ip(
        self, edge_off: Edge, address: str, passes: bool
    ) -> None:
        edge_off.put("kv", lock_document())
        answer = edge_off.get("kv", "/", {"CF-Connecting-IP": address})
        if passes:
            assert (answer.status, answer.text[:22]) == (200, "home page from the app")
        else:
            assert_edge_page(answer, 90)

    def test_a_bypass_cookie_reaches_the_origin_which_verifies_it(self, edge_off: Edge) -> None:
        app = edge_off.app
        result = run(app, "on", "--secret", "--message", "Said by the origin", "--retry", "33")
        assert result.exit_code == 0, result.output
        edge_off.put("kv", run(app, "edge-state").stdout)
        link = re.search(r"(/_maintenance/bypass/\S+)", result.output)
        assert link is not None
        issued = http_get(edge_off.origin.port, link.group(1))
        cookie = issued.headers["set-cookie"].split(";", 1)[0]
        assert cookie.startswith("maintenance_bypass=")

        admin = edge_off.get("kv", "/?probe=admin", {"Cookie": f"theme=dark; {cookie}"})
        assert (admin.status, admin.text[:22]) == (200, "home page from the app")

        # A forged cookie gets through the edge; the origin refuses it with its own 503, which
        # passes unchanged (its message, its marker).
        forged = edge_off.get("kv", "/?probe=forged", {"Cookie": "maintenance_bypass=forged"})
        assert forged.status == 503 and "Said by the origin" in forged.text
        assert forged.headers["x-maintenance"] == "full" and forged.headers["retry-after"] == "33"
        assert from_origin(forged)

        empty = edge_off.get(
            "kv", "/?probe=empty", {"Cookie": "maintenance_bypass=; other=maintenance_bypass"}
        )
        assert_edge_page(empty, 33)
        assert edge_off.origin.hits("/?probe=empty") == 0

    def test_the_bypass_header_reaches_the_origin_which_verifies_it(self, edge_off: Edge) -> None:
        """A deploy's verify step (``run --secret``) sends the secret in a header, not a cookie."""
        app = edge_off.app
        result = run(app, "on", "--secret", "--message", "Said by the origin")
        assert result.exit_code == 0, result.output
        edge_off.put("kv", run(app, "edge-state").stdout)
        link = re.search(r"/_maintenance/bypass/(\S+)", result.output)
        assert link is not None
        verify = edge_off.get("kv", "/?probe=verify", {"X-Maintenance-Bypass": link.group(1)})
        assert (verify.status, verify.text[:22]) == (200, "home page from the app")
        wrong = edge_off.get("kv", "/?probe=wrong", {"X-Maintenance-Bypass": "wrong"})
        assert wrong.status == 503 and "Said by the origin" in wrong.text and from_origin(wrong)
        assert_edge_page(edge_off.get("kv", "/?probe=blank", {"X-Maintenance-Bypass": " "}), 90)
        assert edge_off.origin.hits("/?probe=blank") == 0

    def test_huge_cookies(self, edge_off: Edge) -> None:
        edge_off.put("kv", lock_document())
        junk = "; ".join(f"c{i}={'x' * 60}" for i in range(120))  # ~8 KB, without our cookie
        assert_edge_page(edge_off.get("kv", "/?probe=junk", {"Cookie": junk}), 90)
        assert_edge_page(edge_off.get("kv", "/", {"Cookie": "maintenance_bypass" * 400}), 90)
        assert edge_off.origin.hits("/?probe=junk") == 0
        # Our cookie after the junk is still found, and left to the origin.
        late = edge_off.get("kv", "/?probe=late", {"Cookie": junk[:7000] + "; maintenance_bypass=x"})
        assert late.status == 200 and from_origin(late)  # the origin is not in maintenance: it serves

    def test_readonly_lets_safe_methods_through(self, edge_off: Edge) -> None:
        edge_off.put("kv", lock_document(mode="readonly", retry=15))
        assert edge_off.get("kv", "/").status == 200
        assert edge_off.get("kv", "/", method="HEAD").status == 200
        page = edge_off.get("kv", "/?probe=write", method="POST")
        assert_edge_page(page, 15, kind="readonly")
        assert "Read-only mode" in page.text
        problem = assert_edge_json(edge_off.get("kv", "/api/x", method="DELETE"), 15, kind="readonly")
        assert problem["type"] == "urn:flask-maintenance:problem:read-only"
        assert edge_off.origin.hits("/?probe=write") == 0

    def test_banner_mode_passes(self, edge_off: Edge) -> None:
        edge_off.put("kv", lock_document(mode="banner"))
        assert edge_off.get("kv", "/", method="POST").status == 405  # the app's own answer

    def test_a_cors_preflight_passes_as_in_the_app(self, edge_off: Edge) -> None:
        edge_off.put("kv", lock_document())
        headers = {"Origin": "https://other.example", "Access-Control-Request-Method": "POST"}
        assert edge_off.get("kv", "/", headers, method="OPTIONS").status == 200

    def test_a_planned_window_starts_and_ends_as_in_the_app(self, edge_off: Edge) -> None:
        window = {"starts_at": in_seconds(-60), "ends_at": in_seconds(600), "mode": "full"}
        edge_off.put("kv", lock_document(active=False, scheduled=window))
        answer = edge_off.get("kv")
        assert answer.status == 503 and 590 <= int(answer.headers["retry-after"]) <= 600

        edge_off.put("kv", lock_document(active=False, scheduled={**window, "starts_at": in_seconds(3600)}))
        assert edge_off.get("kv").status == 200
        over = {**window, "starts_at": in_seconds(-600), "ends_at": in_seconds(-60)}
        edge_off.put("kv", lock_document(active=False, scheduled={**over, "auto_off": True}))
        assert edge_off.get("kv").status == 200
        # Without auto_off the window stays on past its end, overdue, as in the app.
        edge_off.put("kv", lock_document(active=False, scheduled=over))
        assert_edge_page(edge_off.get("kv"), 90)
        readonly = {**window, "mode": "readonly", "starts_at": "2020-01-01T01:00:00+01:00"}
        edge_off.put("kv", lock_document(active=False, scheduled=readonly))
        assert edge_off.get("kv").status == 200
        assert edge_off.get("kv", method="POST").headers["x-maintenance"] == "readonly"

    def test_the_window_the_app_schedules(self, edge_off: Edge) -> None:
        app = edge_off.app
        starts = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=3)
        assert run(app, "schedule", "--at", format_instant(starts), "--for", "1h").exit_code == 0
        edge_off.put("kv", run(app, "edge-state").stdout)
        assert edge_off.get("kv").status == 200
        wait_until(lambda: datetime.now(timezone.utc) > starts + timedelta(seconds=1), "the window")
        assert edge_off.get("kv").status == 503
        assert http_get(edge_off.origin.port, "/").status == 503  # the origin agrees
        assert run(app, "cancel").exit_code == 0

    @pytest.mark.parametrize(
        ("document", "retry_after"),
        [
            ("{damaged", 90),
            ("[]", 90),
            ('"on"', 90),
            ("null", 90),
            ('{"mode": "bogus", "retry": -5, "ends_at": "tomorrow"}', 90),
            ('{"retry": 12, "scheduled": "soon"}', 12),
            ('{"active": false, "scheduled": {"starts_at": "tomorrow"}}', 90),
            ('{"active": false, "scheduled": {"starts_at": "2099-01-01T00:00:00Z", "mode": "off"}}', 90),
            ('{"active": false, "scheduled": {"starts_at": "2099-01-01T00:00:00Z", "auto_off": "yes"}}', 90),
            ('{"active": false, "scheduled": {"starts_at": "2099-02-30T00:00:00Z"}}', 90),
            ('{"active": false, "scheduled": {"starts_at": "2099-01-01T00:00:00"}}', 90),
            ("[" * 100000, 90),
        ],
    )
    def test_a_damaged_document_fails_closed(self, edge_off: Edge, document: str, retry_after: int) -> None:
        edge_off.put("kv", document)
        assert_edge_page(edge_off.get("kv", "/?probe=damaged"), retry_after)
        assert edge_off.origin.hits("/?probe=damaged") == 0

    def test_the_origins_own_503_passes_through(self, edge_off: Edge) -> None:
        # Off in KV, on at the origin: the app's answer, with its message, reaches the visitor.
        edge_off.maintenance.enable(retry=21, message="Only the origin knows", app=edge_off.app)
        answer = edge_off.get("kv", "/?probe=ours")
        assert answer.status == 503 and "Only the origin knows" in answer.text
        assert answer.headers["retry-after"] == "21" and from_origin(answer)


# -- an origin that cannot answer ------------------------------------------------------------


@pytest.mark.slow
class TestFailingOrigin:
    @pytest.mark.parametrize("status", [502, 503, 504, 520, 522, 524])
    def test_errors_become_the_page(self, edge_off: Edge, status: int) -> None:
        assert_edge_page(edge_off.get("failing", f"/fail/{status}"), 90)
        assert_edge_json(edge_off.get("failing", f"/api/fail/{status}"), 90)

    def test_other_answers_pass(self, edge_off: Edge) -> None:
        assert edge_off.get("failing", "/fail/500").text == "bare error from a server"
        assert edge_off.get("failing", "/fail/404").status == 404
        ours = edge_off.get("failing", "/fail/503-ours")
        assert (ours.status, ours.text, ours.headers["retry-after"]) == (503, "origin's own answer", "5")

    def test_a_dropped_connection_is_tried_again_for_a_get_only(self, edge_off: Edge) -> None:
        # The origin drops the first connection unanswered, as when a pooled connection was
        # closed just as it was reused: a GET is sent once more and gets the origin's answer; a
        # POST may already have had its effect, so it is never sent twice.
        answer = edge_off.get("failing", "/drop-once/get")
        assert (answer.status, answer.text) == (200, "origin's own answer")
        assert FailingOrigin.requests_seen["GET /drop-once/get"] == 2
        assert_edge_page(edge_off.get("failing", "/drop-once/post", method="POST"), 90)
        assert FailingOrigin.requests_seen["POST /drop-once/post"] == 1

    def test_an_unreachable_origin_gets_the_page(self, edge_off: Edge) -> None:
        assert_edge_page(edge_off.get("dead"), 90)
        assert_edge_json(edge_off.get("dead", "/", {"Accept": "application/json"}), 90)

    def test_during_maintenance_the_page_says_when(self, edge_off: Edge) -> None:
        edge_off.put("dead", lock_document(retry=45))
        assert_edge_page(edge_off.get("dead", "/health/live"), 45)

    def test_a_status_path_that_does_not_answer_holds_no_visitor(self, edge_off: Edge) -> None:
        # The origin takes the request for its status path and never answers it (every worker
        # busy): the visitor whose request is due to read it is answered all the same, with the
        # last state known (none yet: forwarded).
        assert not FailingOrigin.status_released.is_set()
        answer = edge_off.get("failing-status", "/fail/404")  # within the client's timeout
        assert (answer.status, answer.text) == (404, "bare error from a server")


# -- the state from the origin's status path -------------------------------------------------


@pytest.mark.slow
class TestStatusPath:
    def test_learns_the_state_within_the_interval_reading_it_at_most_once_per_interval(
        self, edge_off: Edge
    ) -> None:
        assert edge_off.get("status").status == 200
        edge_off.maintenance.enable(retry=66, app=edge_off.app)

        def refused_at_the_edge() -> bool:
            answer = edge_off.get("status")
            return answer.headers.get("retry-after") == "66" and not from_origin(answer)

        wait_until(refused_at_the_edge, "the edge to see maintenance", timeout=INTERVAL + 5)
        before = edge_off.origin.hits("/_maintenance")
        start = time.monotonic()
        for _ in range(20):
            assert_edge_page(edge_off.get("status", "/?probe=status"), 66)
        elapsed = time.monotonic() - start
        assert edge_off.origin.hits("/?probe=status") == 0
        assert edge_off.origin.hits("/_maintenance") - before <= elapsed / INTERVAL + 1
        assert_edge_json(edge_off.get("status", "/api/x"), 66)

        edge_off.maintenance.disable(app=edge_off.app)
        wait_until(
            lambda: edge_off.get("status").status == 200, "the edge to see the end", timeout=INTERVAL + 5
        )

    def test_readonly_from_the_status_path(self, edge_off: Edge) -> None:
        edge_off.maintenance.enable(mode="readonly", retry=12, app=edge_off.app)
        wait_until(
            lambda: not from_origin(edge_off.get("status", "/", method="POST")),
            "the edge to see readonly",
            timeout=INTERVAL + 5,
        )
        assert_edge_page(edge_off.get("status", "/", method="POST"), 12, kind="readonly")
        assert edge_off.get("status", "/").status == 200
        # An allowlisted address gets through the edge; the origin (which sees the Worker's
        # address, not the visitor's) answers for itself.
        allowed = edge_off.get("status", "/", {"CF-Connecting-IP": "203.0.113.1"}, method="POST")
        assert allowed.status == 503 and from_origin(allowed)

    def test_a_planned_window_starts_between_two_reads(self, edge_off: Edge) -> None:
        app = edge_off.app
        starts = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=3)
        assert run(app, "schedule", "--at", format_instant(starts), "--for", "1h").exit_code == 0
        try:
            first = edge_off.get("status-slow")  # its one read of the status in 600 s
            assert first.status == 200 and from_origin(first)
            wait_until(lambda: datetime.now(timezone.utc) > starts + timedelta(seconds=1), "the window")
            reads = edge_off.origin.hits("/_maintenance")
            answer = edge_off.get("status-slow", "/?probe=window")
            assert answer.status == 503 and not from_origin(answer)
            assert 3500 <= int(answer.headers["retry-after"]) <= 3600  # counting down to the end
            assert edge_off.origin.hits("/_maintenance") == reads  # the Worker started it itself
        finally:
            assert run(app, "cancel").exit_code == 0
