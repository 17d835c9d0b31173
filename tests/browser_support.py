"""A real browser for the end-to-end tests: headless Chromium driven through chromedriver.

The tests speak the W3C WebDriver protocol (JSON over HTTP, https://www.w3.org/TR/webdriver2/)
to Debian's ``chromedriver`` directly. The dozen endpoints they use fit in :class:`Browser`, so the
test suite needs no Selenium: nothing else to install or keep in step with the driver, and no
Selenium Manager that would download a driver when the installed one is missing.

Also here: the example app under gunicorn with its own ``gunicorn.conf.py``, and a small PNG
reader to prove that a screenshot is not blank.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servers import FLASK, HOST, TIMEOUT, Server, answers_http, program, require_module, wait_until

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "docs" / "screenshots"

#: How often the example app's workers re-read the lock file (the extension's default). A switch
#: made by the CLI reaches every worker at most this long after it.
CHECK_INTERVAL = 1.0

# Every run starts from a fresh profile and makes no request of its own: no updates, sync, field
# trials or proxy, and every host name but ours fails to resolve, so nothing can leave the machine
# even by mistake. The requests a page makes still show in the log (they fail instead of leaving),
# which is what the tests look at.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--hide-scrollbars",
    "--lang=en-US",
)


# -- chromedriver and the browser ------------------------------------------------------------


class WebDriverError(AssertionError):
    """chromedriver refused a command; the message is the driver's own."""


class ChromeDriver(Server):
    """chromedriver on a free loopback port; each :class:`Browser` is one session of it."""

    name = "chromedriver"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.executable = program("chromedriver", "chromium-driver")
        self.chromium = program("chromium", "chromium")

    def command(self) -> list[str]:
        # Without --allowed-ips chromedriver accepts local connections only.
        return [self.executable, f"--port={self.port}"]

    def launch(self, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        # Chromium keeps its crash database (and GTK its dconf cache) in the user's default
        # folders whatever --user-data-dir says: point those at the test's folder too.
        env = {
            **(env or os.environ),
            "XDG_CONFIG_HOME": str(self.directory / "config"),
            "XDG_CACHE_HOME": str(self.directory / "cache"),
        }
        self._log = open(self.log_path, "a")
        # Its own process group, so that a browser it failed to close is stopped with it.
        self.process = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def ready(self) -> bool:
        try:
            return bool(self.request("GET", "/status").get("ready"))
        except OSError:
            return False

    def stop(self) -> None:
        group = None if self.process is None else self.process.pid
        super().stop()
        if group is not None:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One WebDriver command; returns its ``value``. A plain http.client: no proxy applies."""
        connection = http.client.HTTPConnection(HOST, self.port, timeout=TIMEOUT * 2)
        try:
            payload = None if body is None else json.dumps(body).encode()
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            document = json.loads(answer.read() or b"{}")
        finally:
            connection.close()
        value = document.get("value")
        if answer.status != 200:
            detail = value.get("message", value) if isinstance(value, dict) else value
            raise WebDriverError(f"{method} {path}: {answer.status} {detail}")
        return value

    def open_browser(self, profile: Path) -> Browser:
        """A new browser (its own Chromium, with a fresh profile in ``profile``)."""
        profile.mkdir(parents=True)
        capabilities = {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": int(TIMEOUT * 1000), "script": int(TIMEOUT * 1000)},
            "goog:loggingPrefs": {"performance": "ALL"},
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [*CHROMIUM_ARGS, f"--user-data-dir={profile}"],
            },
        }
        value = self.request("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        browser = Browser(self, value["sessionId"])
        # Debian's first tab is a new-tab page whatever the command line says: leave it, and
        # forget what it loaded, so that the log holds only what the test's pages ask for.
        browser.get("about:blank")
        browser.network_log()
        return browser


@dataclass(frozen=True)
class Cookie:
    name: str
    value: str
    http_only: bool
    same_site: str | None
    secure: bool
    path: str


class Browser:
    """One WebDriver session: one headless Chromium with its own profile."""

    def __init__(self, driver: ChromeDriver, session_id: str) -> None:
        self.driver = driver
        self.session = f"/session/{session_id}"

    def command(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.driver.request(method, self.session + path, body)

    def close(self) -> None:
        try:
            self.driver.request("DELETE", self.session)
        except (OSError, WebDriverError):
            pass  # the driver is gone already; ChromeDriver.stop ends its process group

    def viewport(self, width: int, height: int, *, scale: float = 1, mobile: bool = False) -> None:
        """Size the page's viewport exactly (a window size would include the window's frame)."""
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            width=width, height=height, deviceScaleFactor=scale, mobile=mobile,
        )

    def cdp(self, command: str, **params: Any) -> Any:
        """A Chrome DevTools Protocol command, through chromedriver."""
        return self.command("POST", "/goog/cdp/execute", {"cmd": command, "params": params})

    def get(self, url: str) -> None:
        """Navigate and wait for the page to load."""
        self.command("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        value: str = self.command("GET", "/url")
        return value

    def js(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body: ``return ...``) in the page."""
        return self.command("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script: str, *args: Any) -> Any:
        """Run ``script``; it ends by calling ``arguments[arguments.length - 1](result)``."""
        return self.command("POST", "/execute/async", {"script": script, "args": list(args)})

    def fetch_status(self, path: str) -> int:
        """The status this browser (its cookies included) gets for ``path``, fetched by the page."""
        status: int = self.js_async(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {cache: 'no-store', redirect: 'manual'})"
            ".then(r => done(r.status), e => done(String(e)));",
            path,
        )
        return status

    def text(self) -> str:
        value: str = self.js("return document.body ? document.body.innerText : ''")
        return value

    def wait_for(self, condition: str, what: str, timeout: float = TIMEOUT) -> float:
        """Poll the JavaScript expression ``condition`` until it is true; returns the time taken.

        A page that is reloading in the meantime counts as "not yet".
        """

        def holds() -> bool:
            try:
                return bool(self.js(f"return Boolean({condition})"))
            except WebDriverError:
                return False

        return wait_until(holds, what, timeout)

    def screenshot(self, path: Path) -> bytes:
        """A PNG of the viewport, also written to ``path``."""
        png = base64.b64decode(self.command("GET", "/screenshot"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return png

    def cookies(self) -> dict[str, Cookie]:
        """The cookies of the current page's site, HttpOnly ones included."""
        return {
            raw["name"]: Cookie(
                name=raw["name"],
                value=raw["value"],
                http_only=bool(raw.get("httpOnly")),
                same_site=raw.get("sameSite"),
                secure=bool(raw.get("secure")),
                path=raw.get("path", "/"),
            )
            for raw in self.command("GET", "/cookie")
        }

    def network_log(self) -> list[str]:
        """Every URL the browser asked for since the last call (reading the log empties it)."""
        urls = []
        for entry in self.command("POST", "/se/log", {"type": "performance"}):
            event = json.loads(entry["message"])["message"]
            if event["method"] == "Network.requestWillBeSent":
                urls.append(event["params"]["request"]["url"])
            elif event["method"] == "Network.webSocketCreated":
                urls.append(event["params"]["url"])
        return urls


@contextmanager
def browsers(driver: ChromeDriver, directory: Path) -> Iterator[Callable[[], Browser]]:
    """Open as many fresh browsers as a test asks for; every one is closed at the end."""
    opened: list[Browser] = []

    def open_one() -> Browser:
        browser = driver.open_browser(directory / f"profile-{len(opened)}")
        opened.append(browser)
        return browser

    try:
        yield open_one
    finally:
        for browser in opened:
            browser.close()


def foreign(urls: list[str], origin: str) -> list[str]:
    """The URLs that are not on ``origin`` (``http://127.0.0.1:port``)."""
    return [url for url in urls if not url.startswith(origin + "/")]


# -- the example app under gunicorn ----------------------------------------------------------


class ExampleSite(Server):
    """``example_app`` under gunicorn, started as the README says, on a free loopback port.

    It uses the app's own ``example_app/gunicorn.conf.py`` (two workers) with only ``--bind``
    changed, and an instance folder (lock file, database) in the test's temporary folder.
    """

    name = "gunicorn"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.instance = directory / "instance"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("EXAMPLE_", "FLASK_", "MAINTENANCE_")) and key != "PYTHONSTARTUP"
        }
        self.env.update(
            EXAMPLE_INSTANCE_PATH=str(self.instance),
            EXAMPLE_MAINTENANCE_CHECK_INTERVAL=json.dumps(CHECK_INTERVAL),
            # gunicorn >= 25.1 opens a control socket in $XDG_RUNTIME_DIR (else ~/.gunicorn):
            # keep it in the test's folder, away from any other gunicorn.
            XDG_RUNTIME_DIR=str(directory),
            PYTHONDONTWRITEBYTECODE="1",
        )

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def command(self) -> list[str]:
        # The README's command, from the repository root, with another port.
        return [
            sys.executable, "-m", "gunicorn", "-c", "example_app/gunicorn.conf.py",
            "--bind", f"{HOST}:{self.port}", "example_app:create_app()",
        ]

    def launch(self, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        require_module("gunicorn", 'pip install -e ".[test]"')
        super().launch(env or self.env, cwd or REPO)

    def ready(self) -> bool:
        return answers_http(self.port)

    def maintenance(self, *args: str, settle: bool = True) -> str:
        """Run the real ``flask --app example_app maintenance ...``; its output.

        With ``settle``, then wait out the workers' check interval, so that every worker serves
        the new state (two workers: polling one of them until it agrees proves nothing).
        """
        result = subprocess.run(
            [FLASK, "--app", "example_app", "maintenance", *args],
            check=False, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=TIMEOUT * 2,
        )
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        if settle:
            time.sleep(CHECK_INTERVAL + 0.2)
        return result.stdout


# -- screenshots -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """What a screenshot shows, in numbers."""

    width: int
    height: int
    #: How many pixels have each colour (RGB), over the rows read.
    colours: dict[tuple[int, int, int], int]


def read_png(png: bytes, *, enough: Callable[[Picture], bool] | None = None) -> Picture:
    """Decode an 8-bit, non-interlaced RGB(A) PNG (what Chromium writes) and count its colours.

    With ``enough``, reading stops at the first row after which ``enough`` holds: proving that a
    page is not blank needs its first coloured rows, not all of them (pure Python is slow).
    """
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    position, header, data = 8, b"", []
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position : position + 8])
        chunk = png[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            data.append(chunk)
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour_type}, interlaced {interlace}")
    step = 3 if colour_type == 2 else 4  # bytes per pixel
    stride = width * step
    raw = zlib.decompress(b"".join(data))
    colours: dict[tuple[int, int, int], int] = {}
    picture = Picture(width, height, colours)
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, step)
        for x in range(0, stride, step):
            pixel = (row[x], row[x + 1], row[x + 2])
            colours[pixel] = colours.get(pixel, 0) + 1
        previous = row
        if enough is not None and enough(picture):
            break
    return picture


def _unfilter(kind: int, row: bytearray, above: bytearray, step: int) -> bytearray:
    """Undo one row's PNG filter (RFC 2083, section 6)."""
    if kind == 0:
        return row
    if kind == 2:  # Up
        return bytearray((a + b) & 0xFF for a, b in zip(row, above))
    for i in range(len(row)):
        left = row[i - step] if i >= step else 0
        if kind == 1:  # Sub
            row[i] = (row[i] + left) & 0xFF
        elif kind == 3:  # Average
            row[i] = (row[i] + ((left + above[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            up, corner = above[i], (above[i - step] if i >= step else 0)
            guess = left + up - corner
            near_left, near_up, near_corner = abs(guess - left), abs(guess - up), abs(guess - corner)
            if near_left <= near_up and near_left <= near_corner:
                row[i] = (row[i] + left) & 0xFF
            elif near_up <= near_corner:
                row[i] = (row[i] + up) & 0xFF
            else:
                row[i] = (row[i] + corner) & 0xFF
        else:
            raise ValueError(f"unknown PNG filter {kind}")
    return row


def hex_colour(colour: str) -> tuple[int, int, int]:
    """``"#d97706"`` as ``(217, 119, 6)``."""
    value = int(colour.lstrip("#"), 16)
    return (value >> 16, (value >> 8) & 0xFF, value & 0xFF)
