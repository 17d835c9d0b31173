"""A real browser for the end-to-end tests: Debian's headless Chromium, driven by Playwright.

Playwright starts the installed ``chromium`` (``executable_path``), never a browser of its own:
nothing is downloaded and ``playwright install`` is never needed. One Chromium serves a test
module; each :class:`Visitor` is a fresh browser context in it (its own cookies, cache and
storage), which is what a new person at another computer amounts to.

Also here: the example app under gunicorn with its own ``gunicorn.conf.py``, and the colour count
that proves a screenshot is not blank.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servers import FLASK, HOST, TIMEOUT, Server, answers_http, program, require_module

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

REPO = Path(__file__).resolve().parents[1]
#: Where ``pytest tests/test_browser.py --update-screenshots`` writes the docs' pictures.
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"

#: How often the example app's workers re-read the lock file (the extension's default). A switch
#: made by the CLI reaches every worker at most this long after it.
CHECK_INTERVAL = 1.0

# Playwright brings its own switches (headless, no sandbox, no first-run screens); these are ours
# and hold whatever its defaults become. The browser makes no request of its own (no updates,
# sync, QUIC or proxy), and every host name but 127.0.0.1 fails to resolve, so nothing can leave
# the machine even by mistake. A page's attempts still show as requests (they fail instead of
# leaving), which is what the tests look at.
CHROMIUM_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-quic",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--lang=en-US",
)

#: A visitor's window unless a test says otherwise.
DESKTOP = {"width": 1280, "height": 800}

# Counts the colours of a PNG (a data: URL) in a scratch page: Chromium's own decoder, no
# hand-written one, and fast enough to count every pixel.
COUNT_COLOURS = """async png => {
    const image = new Image();
    image.src = 'data:image/png;base64,' + png;
    await image.decode();
    const canvas = new OffscreenCanvas(image.naturalWidth, image.naturalHeight);
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const counts = new Map();
    for (let i = 0; i < pixels.length; i += 4) {
        const rgb = (pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2];
        counts.set(rgb, (counts.get(rgb) || 0) + 1);
    }
    return {width: canvas.width, height: canvas.height, colours: [...counts]};
}"""


# -- Chromium and the people in front of it --------------------------------------------------


@contextmanager
def chromium(directory: Path) -> Iterator[Browser]:
    """Debian's Chromium under Playwright, closed at the end; skips when either is missing."""
    require_module("playwright", 'pip install -e ".[test]"')
    executable = program("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    # Chromium keeps its crash database (and GTK its dconf cache) in the user's default folders
    # whatever profile Playwright gives it: point those at the test's folder too.
    env: dict[str, str | float | bool] = {
        **os.environ,
        "XDG_CONFIG_HOME": str(directory / "config"),
        "XDG_CACHE_HOME": str(directory / "cache"),
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, env=env, timeout=TIMEOUT * 1000
        )
        try:
            yield browser
        finally:
            browser.close()


class Visitor:
    """One person's browser: a fresh context (cookies, cache, storage) with one tab.

    ``requested`` lists every URL the context asked for, in order, whether or not it got an
    answer: pages, their resources, ``fetch`` calls and WebSockets.
    """

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.requested: list[str] = []
        context.set_default_timeout(TIMEOUT * 1000)
        context.on("request", lambda request: self.requested.append(request.url))
        self.page = context.new_page()
        self.page.on("websocket", lambda socket: self.requested.append(socket.url))

    def fetch_status(self, path: str) -> int:
        """The status this browser (its cookies included) gets for ``path``, fetched by the page."""
        status: int = self.page.evaluate(
            "path => fetch(path, {cache: 'no-store', redirect: 'manual'}).then(r => r.status)", path
        )
        return status

    def text(self) -> str:
        """What the page shows, as a reader would copy it."""
        return self.page.inner_text("body")

    def wait_for(self, condition: str, timeout: float = TIMEOUT) -> None:
        """Poll the JavaScript expression ``condition`` until it holds, across reloads.

        Not ``page.wait_for_function``: it compiles the condition inside the page, which the
        maintenance page's Content-Security-Policy rightly forbids (no ``unsafe-eval``).
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.page.evaluate(condition):
                    return
            except Exception as error:  # playwright's Error: the page is navigating
                if "context was destroyed" not in str(error) and "navigat" not in str(error):
                    raise
            if time.monotonic() >= deadline:
                raise AssertionError(f"{condition!r} did not hold within {timeout} s")
            time.sleep(0.1)

    def cookies(self) -> dict[str, Any]:
        """The browser's cookies by name, HttpOnly ones included (Playwright's cookie dicts)."""
        return {cookie["name"]: cookie for cookie in self.context.cookies()}


def foreign(urls: list[str], origin: str) -> list[str]:
    """The URLs that are not on ``origin`` (``http://127.0.0.1:port``)."""
    return [url for url in urls if not url.startswith(origin + "/")]


# -- screenshots -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """What a screenshot shows, in numbers."""

    width: int
    height: int
    #: How many pixels have each colour (RGB).
    colours: dict[tuple[int, int, int], int]


def picture(browser: Browser, png: bytes) -> Picture:
    """Decode ``png`` in a scratch page of ``browser`` and count its colours."""
    page = browser.new_page()
    try:
        found = page.evaluate(COUNT_COLOURS, base64.b64encode(png).decode("ascii"))
    finally:
        page.context.close()
    colours = {(rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF): count for rgb, count in found["colours"]}
    return Picture(found["width"], found["height"], colours)


def hex_colour(colour: str) -> tuple[int, int, int]:
    """``"#d97706"`` as ``(217, 119, 6)``."""
    value = int(colour.lstrip("#"), 16)
    return (value >> 16, (value >> 8) & 0xFF, value & 0xFF)


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
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "example_app/gunicorn.conf.py",
            "--bind",
            f"{HOST}:{self.port}",
            "example_app:create_app()",
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
            check=False,
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT * 2,
        )
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        if settle:
            time.sleep(CHECK_INTERVAL + 0.2)
        return result.stdout
