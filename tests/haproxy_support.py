"""Debian's HAProxy in front of real gunicorn servers, all on free loopback ports.

The app here is the tests' served app plus two things the HAProxy tests need: ProxyFix (so the
app sees the client's address that HAProxy forwards, as a real deployment must) and an
``X-Served-By-App`` header on everything the app answers, so that a test can tell an answer
HAProxy gave itself from one that reached the app.
"""

from __future__ import annotations

import http.client
import subprocess
from collections.abc import Mapping
from pathlib import Path

from servers import APP_MODULE, APP_SOURCE, HOST, TIMEOUT, AppProject, Response, Server, answers_http, program

SERVED_BY_APP = "x-served-by-app"

HAPROXY_APP_SOURCE = (
    APP_SOURCE
    + """

from werkzeug.middleware.proxy_fix import ProxyFix

_inner = ProxyFix(app.wsgi_app, x_for=1)


def _marked(environ, start_response):
    def start(status, headers, *exc_info):
        return start_response(status, [*headers, ("X-Served-By-App", str(os.getpid()))], *exc_info)

    return _inner(environ, start)


app.wsgi_app = _marked


@app.get("/api/items")
def items():
    return {"items": []}
"""
)


def haproxy_project(directory: Path, **config: str) -> AppProject:
    """The served app, as :data:`HAPROXY_APP_SOURCE`, configured by ``config``."""
    project = AppProject(directory, **config)
    (directory / f"{APP_MODULE}.py").write_text(HAPROXY_APP_SOURCE)
    return project


class HAProxy(Server):
    """``haproxy -db`` (foreground) on the configuration the CLI printed."""

    name = "haproxy"

    def __init__(self, directory: Path, configuration: str) -> None:
        super().__init__(directory)
        self.executable = program("haproxy", "haproxy")
        self.config = directory / f"haproxy-{self.port}.cfg"
        self.config.write_text(configuration)

    def command(self) -> list[str]:
        return [self.executable, "-db", "-f", str(self.config)]

    def ready(self) -> bool:
        return answers_http(self.port)

    def check_config(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.executable, "-c", "-f", str(self.config)], capture_output=True, text=True, timeout=TIMEOUT
        )

    def get(
        self,
        path: str = "/",
        headers: Mapping[str, str] | None = None,
        *,
        method: str = "GET",
        source: str | None = None,
    ) -> Response:
        """One request through HAProxy, from ``source`` (a loopback address) when given."""
        connection = http.client.HTTPConnection(
            HOST, self.port, timeout=TIMEOUT, source_address=None if source is None else (source, 0)
        )
        try:
            connection.request(method, path, headers=dict(headers or {}))
            answer = connection.getresponse()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
        finally:
            connection.close()
