"""What people see, in a real browser: the example app under gunicorn, seen by headless Chromium.

The site is ``example_app`` served by gunicorn with its own ``gunicorn.conf.py`` on a free
loopback port; maintenance is switched with the real ``flask --app example_app maintenance``
command. Playwright drives Debian's ``chromium`` (never a downloaded browser); each test opens
fresh visitors (each a new browser context: its own cookies and cache).

The tests take screenshots as they go and write them to a temporary folder. To refresh the
pictures the docs show (docs/screenshots/), ask for it::

    pytest tests/test_browser.py --update-screenshots

A plain ``pytest`` run never writes into the repository.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from browser_support import (
    DESKTOP,
    DOCS_SCREENSHOTS,
    ExampleSite,
    Picture,
    Visitor,
    chromium,
    foreign,
    hex_colour,
    picture,
)
from servers import http_get

from flask_maintenance.backends.file import FileBackend
from flask_maintenance.texts import texts

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow

NewVisitor = Callable[..., Visitor]

# The built-in page's palette (flask_maintenance/responses.py).
PAGE_BACKGROUND = hex_colour("#f5f7fa")
CARD = hex_colour("#ffffff")
ACCENT = hex_colour("#d97706")
DARK_BACKGROUND = hex_colour("#1f2933")
DARK_CARD = hex_colour("#323f4b")
# The example app's banners (example_app/templates/base.html).
BANNER_BLUE = hex_colour("#dbeafe")
BANNER_RED = hex_colour("#fee2e2")
BANNER_AMBER = hex_colour("#fef3c7")

MESSAGE = "We are upgrading the database. Your guestbook entries are safe."
WINDOWS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": DESKTOP},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Chromium for the whole module: started first, so that a missing one skips (fails in CI)
    before gunicorn starts."""
    with chromium(tmp_path_factory.mktemp("chromium")) as running:
        yield running


@pytest.fixture(scope="module")
def site(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleSite]:
    server = ExampleSite(tmp_path_factory.mktemp("site"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: docs/screenshots/ only with ``--update-screenshots``."""
    if request.config.getoption("--update-screenshots"):
        return DOCS_SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(autouse=True)
def maintenance_off(site: ExampleSite) -> Iterator[None]:
    """Every test leaves maintenance off and nothing scheduled, even when it fails.

    The workers may serve this state for one more check interval; the next test's own switch
    waits that out before it looks.
    """
    yield
    lock = FileBackend(str(site.instance / "maintenance.lock"))
    lock.clear()
    lock.sibling("plan").clear()


@pytest.fixture
def new_visitor(browser: Browser) -> Iterator[NewVisitor]:
    """Open as many fresh visitors as a test asks for (keywords go to Playwright's
    ``new_context``: viewport, time zone, colour scheme...); all are closed at the end."""
    opened: list[Visitor] = []

    def open_one(**options: Any) -> Visitor:
        visitor = Visitor(browser.new_context(**{"viewport": DESKTOP, "locale": "en-US", **options}))
        opened.append(visitor)
        return visitor

    yield open_one
    for visitor in opened:
        visitor.context.close()


def screenshot(browser: Browser, visitor: Visitor, path: Path, *colours: tuple[int, int, int]) -> Picture:
    """Write a PNG of the viewport to ``path``; it has several colours, ``colours`` among them
    (the page's styles were applied, it is not blank)."""
    found = picture(browser, visitor.page.screenshot(path=path))
    missing = [colour for colour in colours if colour not in found.colours]
    common = sorted(found.colours, key=lambda colour: -found.colours[colour])[:20]
    assert not missing, f"{missing} not in {path.name}; its most common colours: {common}"
    assert len(found.colours) >= 8, f"{path.name} is (nearly) blank: {found.colours}"
    return found


def assert_stayed_home(visitor: Visitor, site: ExampleSite) -> None:
    """Nothing the page asked for left 127.0.0.1: not in the browser's requests, not in the page's list."""
    assert visitor.page.url in visitor.requested, f"the requests missed the page itself: {visitor.requested}"
    assert foreign(visitor.requested, site.origin) == []
    resources = visitor.page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert foreign(resources, site.origin) == []


def assert_maintenance_page(visitor: Visitor, site: ExampleSite) -> None:
    """The built-in page: its text on screen, its inline style and script applied, nothing fetched."""
    page = visitor.page
    assert page.title() == "Down for maintenance"
    text = visitor.text()
    assert "Down for maintenance" in text
    assert MESSAGE in text
    assert "We expect to be back by" in text and "your time)" in text  # the inline script ran
    assert "This page reloads by itself" in text
    # The card stands out from the page: the inline stylesheet applied (unstyled, both would be
    # transparent).
    colours = page.evaluate(
        "[getComputedStyle(document.querySelector('main')).backgroundColor,"
        " getComputedStyle(document.body).backgroundColor]"
    )
    assert colours == ["rgb(255, 255, 255)", "rgb(245, 247, 250)"]
    # Everything is inline: no stylesheet, script, image, font or frame to fetch.
    fetched = page.evaluate(
        "[...document.querySelectorAll('[src], link[href], iframe, object')]"
        ".map(e => e.getAttribute('src') || e.getAttribute('href') || e.tagName)"
        ".filter(url => !url.startsWith('data:'))"
    )
    assert fetched == []
    assert_stayed_home(visitor, site)


def assert_fits(visitor: Visitor, width: int) -> None:
    """The layout viewport is the window (so the meta viewport works on a phone), nothing scrolls
    sideways, and the heading and the card are inside the window."""
    layout = visitor.page.evaluate(
        """() => {
            const h = document.querySelector('h1').getBoundingClientRect();
            const card = document.querySelector('main').getBoundingClientRect();
            return {viewport: innerWidth, scroll: document.documentElement.scrollWidth,
                heading: h.left >= 0 && h.right <= innerWidth && h.top >= 0 && h.bottom <= innerHeight,
                card: card.left >= 0 && card.right <= innerWidth};
        }"""
    )
    assert layout["viewport"] == width, layout
    assert layout["scroll"] <= width, layout
    assert layout["heading"] and layout["card"], layout


def banner(visitor: Visitor) -> str:
    """The text of the example app's maintenance banner, if it is on screen."""
    text: str = visitor.page.evaluate(
        """() => {
            const b = document.getElementById('maintenance-banner');
            if (!b) return '';
            const r = b.getBoundingClientRect();
            const shown = r.top >= 0 && r.height > 0 && getComputedStyle(b).visibility === 'visible';
            return shown ? b.innerText : '';
        }"""
    )
    return text


def sign(visitor: Visitor, name: str, message: str) -> int:
    """Fill in the guestbook form on the current page and press Sign, as a person would; the
    status of the answer to the form (before any redirect it asks for)."""
    page = visitor.page
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Message").fill(message)
    with (
        page.expect_response(lambda answer: answer.request.method == "POST") as posted,
        page.expect_event("load"),
    ):
        page.get_by_role("button", name="Sign").click()
    return posted.value.status


class TestMaintenancePage:
    @pytest.mark.parametrize("window", ["desktop", "phone"])
    def test_self_contained_and_readable(
        self, site: ExampleSite, browser: Browser, new_visitor: NewVisitor, screenshots: Path, window: str
    ) -> None:
        options = WINDOWS[window]
        site.maintenance("on", "--message", MESSAGE, "--for", "30m")
        # A reader away from UTC, so that the page shows the end in their own time too.
        visitor = new_visitor(**options, timezone_id="Europe/Berlin")
        response = visitor.page.goto(site.url("/guestbook"))

        assert response is not None and response.status == 503
        assert 1700 <= int(response.headers["retry-after"]) <= 1800  # the 30 minutes left
        assert visitor.fetch_status("/guestbook") == 503
        assert_maintenance_page(visitor, site)
        width, height = options["viewport"]["width"], options["viewport"]["height"]
        assert_fits(visitor, width)
        shot = screenshot(
            browser, visitor, screenshots / f"maintenance-{window}.png", PAGE_BACKGROUND, CARD, ACCENT
        )
        scale = options.get("device_scale_factor", 1)
        assert (shot.width, shot.height) == (width * scale, height * scale)

    def test_dark_mode(
        self, site: ExampleSite, browser: Browser, new_visitor: NewVisitor, screenshots: Path
    ) -> None:
        site.maintenance("on", "--message", MESSAGE, "--for", "30m")
        visitor = new_visitor(color_scheme="dark")
        visitor.page.goto(site.url("/guestbook"))
        assert visitor.page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(31, 41, 51)"
        screenshot(browser, visitor, screenshots / "maintenance-dark.png", DARK_BACKGROUND, DARK_CARD, ACCENT)

    def test_reloads_into_the_site_soon_after_off(self, site: ExampleSite, new_visitor: NewVisitor) -> None:
        site.maintenance("on")
        visitor = new_visitor()
        visitor.page.goto(site.url("/"))
        assert visitor.page.title() == "Down for maintenance"
        visitor.page.evaluate("window.stillTheMaintenancePage = true")

        site.maintenance("off", settle=False)
        # The page polls the status every 4-6 s and the workers see the switch within a second:
        # a few seconds, with room to spare on a busy machine.
        visitor.wait_for(
            "!window.stillTheMaintenancePage && document.readyState === 'complete'"
            " && document.title.startsWith('Welcome')"
        )
        # Reloaded in place (no redirect), with a cache-busting v= so that fresh assets load.
        assert re.fullmatch(re.escape(site.url("/")) + r"\?v=\d{13}", visitor.page.url), visitor.page.url
        assert "Welcome to the guestbook" in visitor.text()
        assert site.url("/_maintenance") in visitor.requested  # it was the page's own poll
        assert foreign(visitor.requested, site.origin) == []


#: Each catalog language, the browser locale that asks for it, and a word its page must show.
LOCALES = {
    "en": "en-US",
    "de": "de-DE",
    "ko": "ko-KR",
    "ja": "ja-JP",
    "fr": "fr-FR",
    "es": "es-ES",
    "pt": "pt-BR",
    "zh-Hans": "zh-CN",
}
CJK = {"ko", "ja", "zh-Hans"}


def fonts_of(visitor: Visitor, selector: str) -> dict[str, int]:
    """The fonts Chromium drew ``selector``'s text with, and how many glyphs each drew
    (Chromium's own answer, over the DevTools protocol)."""
    session = visitor.context.new_cdp_session(visitor.page)
    try:
        session.send("DOM.enable")
        session.send("CSS.enable")
        root = session.send("DOM.getDocument")["root"]["nodeId"]
        node = session.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        fonts = session.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        session.detach()
    return {font["familyName"]: font["glyphCount"] for font in fonts}


class TestLanguages:
    def test_each_language_in_the_browser(
        self, site: ExampleSite, browser: Browser, new_visitor: NewVisitor, screenshots: Path
    ) -> None:
        site.maintenance(
            "on",
            "--message",
            MESSAGE,
            "--translation",
            "de=Wir ziehen das Gästebuch auf eine neue Datenbank um. Ihre Einträge sind sicher.",
            "--translation",
            "ko=방명록을 새 데이터베이스로 옮기고 있습니다. 작성하신 글은 안전합니다.",
            "--for",
            "30m",
        )
        for language, locale in LOCALES.items():
            words = texts(language)
            visitor = new_visitor(locale=locale, timezone_id="Asia/Seoul")
            response = visitor.page.goto(site.url("/guestbook"))
            assert response is not None and response.status == 503
            assert response.headers["content-language"] == language
            assert visitor.page.title() == words.full_title
            assert visitor.page.evaluate("document.documentElement.lang") == language
            text = visitor.text()
            assert words.full_title in text
            assert words.auto_reload in text  # the inline script ran, in this language
            before, _, after = words.your_time.partition("{time}")
            assert before in text and after in text  # the end in the visitor's time, in words of theirs
            if language in ("de", "ko"):
                assert "Gästebuch" in text or "방명록" in text
            else:
                assert MESSAGE in text
            if language in CJK:
                # Real glyphs, not empty boxes: every letter of the heading from a CJK font (a
                # space may come from another).
                fonts = fonts_of(visitor, "h1")
                drawn = sum(count for family, count in fonts.items() if "CJK" in family)
                assert drawn == len(words.full_title.replace(" ", "")), fonts
            if language in ("de", "ko"):
                screenshot(
                    browser,
                    visitor,
                    screenshots / f"maintenance-{language}.png",
                    PAGE_BACKGROUND,
                    CARD,
                    ACCENT,
                )
            assert_stayed_home(visitor, site)
            visitor.context.close()


class TestBanner:
    def test_banner_mode_shows_the_message_on_every_page(
        self, site: ExampleSite, browser: Browser, new_visitor: NewVisitor, screenshots: Path
    ) -> None:
        message = "Searches are slow today while we reindex."
        site.maintenance("on", "--mode", "banner", "--message", message)
        visitor = new_visitor()
        for path, title in (("/guestbook", "Sign the guestbook"), ("/", "Welcome")):
            response = visitor.page.goto(site.url(path))
            assert response is not None and response.status == 200
            assert visitor.page.title().startswith(title)
            assert banner(visitor) == message
        assert_stayed_home(visitor, site)
        screenshot(browser, visitor, screenshots / "banner.png", BANNER_BLUE)

    def test_a_scheduled_window_is_announced_before_it_starts(
        self, site: ExampleSite, browser: Browser, new_visitor: NewVisitor, screenshots: Path
    ) -> None:
        starts = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(hours=1)
        ends = starts + timedelta(minutes=30)
        message = "The site will be down for the database upgrade."
        site.maintenance(
            "schedule", "--at", starts.strftime("%Y-%m-%dT%H:%M:%SZ"), "--for", "30m", "--message", message
        )
        visitor = new_visitor()
        response = visitor.page.goto(site.url("/"))
        assert response is not None and response.status == 200  # announced, not started
        assert banner(visitor) == (
            f"Heads up: Scheduled maintenance at {starts:%Y-%m-%d %H:%M} UTC"
            f" until {ends:%Y-%m-%d %H:%M} UTC: {message}"
        )
        assert "a window is scheduled" in visitor.text()
        screenshot(browser, visitor, screenshots / "scheduled-banner.png", BANNER_BLUE)


class TestReadonly:
    def test_reading_works_a_write_is_refused_and_never_sent_again(
        self, site: ExampleSite, browser: Browser, new_visitor: NewVisitor, screenshots: Path
    ) -> None:
        message = "Moving the guestbook to a new database"
        writer = new_visitor()
        writer.page.goto(site.url("/guestbook"))
        assert sign(writer, "Ada", "Lovely guestbook!") == 303  # a write before the window
        assert "Thank you for signing the guestbook!" in writer.text()

        # The writer starts a second message; readonly begins before they press Sign.
        site.maintenance("on", "--mode", "readonly", "--message", message)
        assert sign(writer, "Grace", "Back in a minute.") == 503
        assert writer.page.title() == "Read-only mode"
        assert message in writer.text()

        # Meanwhile a reader: every page reads, the form says beforehand that it cannot be sent.
        reader = new_visitor()
        response = reader.page.goto(site.url("/guestbook"))
        assert response is not None and response.status == 200
        assert banner(reader) == f"Read-only: {message} · changes can't be saved right now."
        assert reader.page.get_by_label("Your name").is_disabled()
        assert reader.page.get_by_role("button", name="Sign").is_disabled()
        entries = reader.page.inner_text("main")
        assert "Lovely guestbook!" in entries and "Back in a minute." not in entries
        assert_stayed_home(reader, site)
        screenshot(browser, reader, screenshots / "readonly.png", BANNER_AMBER)

        # The refusal says the change was not saved. When the window ends it does not reload
        # itself (that would be a GET of the form's address, and the form would be gone): it
        # says so, and going back finds the form as the writer left it.
        assert writer.page.inner_text("h1") == "Your change was not saved"
        writer.page.evaluate("window.stillTheRefusal = true")
        site.maintenance("off", settle=False)
        writer.wait_for("document.getElementById('live').textContent.includes('We are back')")
        assert writer.page.evaluate("window.stillTheRefusal") is True
        assert writer.page.url == site.url("/guestbook")
        with writer.page.expect_event("load"):
            writer.page.get_by_role("button", name="Go back").click()
        assert writer.page.title().startswith("Sign the guestbook")
        assert writer.page.get_by_label("Your name").input_value() == "Grace"
        assert writer.page.get_by_label("Message").input_value() == "Back in a minute."
        text = writer.text()
        assert "Lovely guestbook!" in text and "Thank you" not in text
        # Sent again, now that the site is back, it is saved once.
        with (
            writer.page.expect_response(lambda answer: answer.request.method == "POST") as posted,
            writer.page.expect_event("load"),
        ):
            writer.page.get_by_role("button", name="Sign").click()
        assert posted.value.status == 303
        assert writer.text().count("Back in a minute.") == 1


class TestBypass:
    def test_the_link_lets_the_admin_in_and_no_one_else(
        self, site: ExampleSite, browser: Browser, new_visitor: NewVisitor, screenshots: Path
    ) -> None:
        output = site.maintenance("on", "--secret", "--message", MESSAGE)
        (link,) = [line.split()[2] for line in output.splitlines() if line.strip().startswith("bypass link:")]
        assert link.startswith("/_maintenance/bypass/")

        admin = new_visitor()
        response = admin.page.goto(site.url(link))
        assert response is not None and response.status == 200
        assert admin.page.url == site.url("/")  # sent on to the home page
        cookie = admin.cookies()["maintenance_bypass"]
        assert cookie["httpOnly"]
        assert cookie["sameSite"] == "Lax"
        assert cookie["path"] == "/"
        assert "maintenance_bypass" not in admin.page.evaluate("document.cookie")  # HttpOnly indeed
        assert admin.page.title().startswith("Welcome")
        assert banner(admin) == f"Maintenance is on (you are allowed through): {MESSAGE}"
        for path in ("/", "/guestbook", "/health/ready"):
            assert admin.fetch_status(path) == 200, path
        screenshot(browser, admin, screenshots / "admin-bypass.png", BANNER_RED)

        visitor = new_visitor()
        response = visitor.page.goto(site.url("/"))
        assert response is not None and response.status == 503
        assert visitor.cookies() == {}
        assert visitor.page.title() == "Down for maintenance"
        assert visitor.fetch_status("/") == 503
        assert visitor.fetch_status("/guestbook") == 503
        # And without any browser at all.
        assert http_get(site.port, "/").status == 503

        # A guessed link is refused and sets nothing.
        visitor.page.goto(site.url("/_maintenance/bypass/not-the-secret"))
        assert "This link does not work" in visitor.text()
        assert visitor.cookies() == {}
        refused = visitor.page.goto(site.url("/"))  # that page may fetch nothing: navigate
        assert refused is not None and refused.status == 503


class TestNothingLeaves:
    def test_a_request_for_another_host_is_seen_and_goes_nowhere(
        self, site: ExampleSite, new_visitor: NewVisitor
    ) -> None:
        """The check the other tests rely on can fail: a foreign request shows up in
        ``requested``, and the resolver rule stops it before it reaches any server.

        ``localhost`` names the very gunicorn that served the page: without the rule the request
        would get there (and stay on this machine either way)."""
        site.maintenance("off")  # the maintenance page's own policy would block the fetch first
        visitor = new_visitor()
        visitor.page.goto(site.url("/"))
        elsewhere = f"http://localhost:{site.port}/"
        with visitor.page.expect_event("requestfailed", lambda request: request.url == elsewhere) as failed:
            outcome = visitor.page.evaluate(
                "url => fetch(url, {mode: 'no-cors'}).then(() => 'answered', () => 'failed')", elsewhere
            )
        assert outcome == "failed"
        assert failed.value.url == elsewhere
        assert failed.value.failure == "net::ERR_NAME_NOT_RESOLVED"
        assert foreign(visitor.requested, site.origin) == [elsewhere]
