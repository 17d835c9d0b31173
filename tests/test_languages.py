"""The page in the visitor's language: the catalog, Accept-Language, the operator's translations,
the site name and status page link, linked paragraphs, overdue windows and refused writes.

Each answer is checked from the fast path and from the hook alone (``MAINTENANCE_FAST_PATH``):
they must send the same bytes. The browser's view is in ``test_browser.py``.
"""

from __future__ import annotations

import html
import json
import logging
import re
import string
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from conftest import AppFactory
from flask import Flask
from werkzeug.test import TestResponse

from flask_maintenance import ConfigurationError, Maintenance
from flask_maintenance.languages import ACCEPT_LANGUAGE_ENTRIES, ACCEPT_LANGUAGE_PREFIX, choose
from flask_maintenance.languages import _choose as cached_choice
from flask_maintenance.texts import LANGUAGES, texts

RunFlask = Callable[..., subprocess.CompletedProcess[str]]

#: A browser's Accept-Language for each catalog language (what Chromium sends for its locale).
BROWSERS = {
    "en": "en-US,en;q=0.9",
    "de": "de-DE,de;q=0.9",
    "ko": "ko-KR,ko;q=0.9",
    "ja": "ja",
    "fr": "fr-CA,fr;q=0.9,en;q=0.5",
    "es": "es-419,es;q=0.9",
    "pt": "pt-BR,pt;q=0.9",
    "zh-Hans": "zh-CN,zh;q=0.9",
}


@pytest.fixture(params=[True, False], ids=["fast-path", "hook-only"])
def fast(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def heading(response: TestResponse) -> str:
    match = re.search(r"<h1>(.*?)</h1>", response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:500]
    return html.unescape(match.group(1))


def details(response: TestResponse) -> list[str]:
    """The message's paragraphs, as HTML."""
    return re.findall(r'<p class="detail">(.*?)</p>', response.get_data(as_text=True))


# -- the catalog ---------------------------------------------------------------------------------


def placeholders(text: str | list[str]) -> set[str]:
    pieces = text if isinstance(text, list) else [text]
    return {name for piece in pieces for _, name, _, _ in string.Formatter().parse(piece) if name}


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalog_file_has_every_text_with_the_same_placeholders(language: str) -> None:
    folder = resources.files("flask_maintenance").joinpath("catalog")
    english = json.loads(folder.joinpath("en.json").read_text("utf-8"))
    other = json.loads(folder.joinpath(f"{language}.json").read_text("utf-8"))
    assert other.keys() == english.keys()
    for key, text in english.items():
        assert other[key], (language, key)
        assert placeholders(other[key]) == placeholders(text), (language, key)
    # Loaded through the one reader the answers use.
    assert texts(language).language == language


def test_the_catalog_is_package_data_in_setup_cfg() -> None:
    setup = (Path(__file__).resolve().parents[1] / "setup.cfg").read_text()
    assert re.search(r"flask_maintenance = .*catalog/\*\.json", setup)
    assert sorted(
        p.name for p in resources.files("flask_maintenance").joinpath("catalog").iterdir()
    ) == sorted(f"{language}.json" for language in LANGUAGES)


# -- the page and the problem JSON in each language ----------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_language_gets_its_page_and_problem_json(
    make_app: AppFactory, fast: bool, language: str
) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast)
    app.extensions["maintenance"].enable(app=app)
    client = app.test_client()
    words = texts(language)
    headers = {"Accept-Language": BROWSERS[language]}

    page = client.get("/", headers=headers)
    assert page.status_code == 503
    assert page.headers["Content-Language"] == language
    assert "Accept-Language" in page.headers["Vary"]
    body = page.get_data(as_text=True)
    assert f'<html lang="{language}">' in body
    assert f"<title>{html.escape(words.full_title)}</title>" in body
    assert heading(page) == words.full_title
    assert details(page) == [html.escape(words.full_detail)]
    assert html.escape(words.try_again.format(duration=words.duration(60))) in body
    assert html.escape(words.reload_hint) in body

    problem = client.get("/api/items", headers=headers)
    assert problem.headers["Content-Language"] == language
    assert "Accept-Language" in problem.headers["Vary"]
    document = problem.get_json(force=True)
    assert (document["title"], document["detail"]) == (words.full_title, words.full_detail)

    app.extensions["maintenance"].enable(mode="readonly", app=app)
    readonly = client.post("/api/items", headers=headers).get_json(force=True)
    assert (readonly["title"], readonly["detail"]) == (words.readonly_title, words.readonly_detail)


def test_without_accept_language_the_page_is_english(app: Flask, maintenance: Maintenance) -> None:
    maintenance.enable(app=app)
    page = app.test_client().get("/")
    assert page.headers["Content-Language"] == "en"
    assert heading(page) == "Down for maintenance"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("fr;q=0.5, ko", "ko"),  # quality before position
        ("de-AT", "de"),  # a region takes its language
        ("pt-PT", "pt"),
        ("zh-CN", "zh-Hans"),
        ("zh-Hans-SG", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("zh-TW, ja;q=0.3", "ja"),  # Traditional readers are not given Simplified
        ("zh-Hant", "en"),
        ("*", "en"),
        ("de;q=0, fr", "fr"),  # q=0: not acceptable
        ("tlh, sv, es;q=0.1", "es"),  # unknown ones are passed over
        ("EN-gb", "en"),
        ("", "en"),
    ],
)
def test_the_best_catalog_language_is_chosen(header: str, language: str) -> None:
    assert choose(header).page == language


HOSTILE_HEADERS = {
    "huge": "x" * 100_000 + ", de",
    "many entries": ", ".join(["xx"] * 5000 + ["de"]),
    "past the entries read": ", ".join(["xx"] * (ACCEPT_LANGUAGE_ENTRIES - 1) + ["ko;q=0.5", "de"]),
    "q above 1": "de;q=1.5, fr;q=0.5",
    "negative q": "de;q=-1, fr;q=0.5",
    "q not a number": "de;q=nan, fr;q=0.5",
    "q exponent": "de;q=1e3, fr;q=0.5",
    "q too precise": "de;q=0.00001, fr;q=0.5",
    "many parameters": "de;a=1;b=2;c=3;d=4;q=0.9, fr;q=0.5",
    "controls": "de\x00\x07\t;q=1, fr;q=0.5",
    "unicode": "dé, fr;q=0.5",
    "only separators": ",,,;;;===",
    "a long range": "de-" + "a" * 300,
}


@pytest.mark.parametrize("header", HOSTILE_HEADERS.values(), ids=list(HOSTILE_HEADERS))
def test_hostile_accept_language_headers_get_a_page_in_some_language(
    make_app: AppFactory, fast: bool, header: str
) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast)
    app.extensions["maintenance"].enable(app=app, translations={"de": "Wartung"})
    # The test client refuses control characters in headers: send them as a raw environ value.
    page = app.test_client().get("/", environ_overrides={"HTTP_ACCEPT_LANGUAGE": header})
    assert page.status_code == 503
    assert page.headers["Content-Language"] in LANGUAGES
    assert heading(page) == texts(page.headers["Content-Language"]).full_title


def test_only_the_first_part_and_entries_of_a_header_are_read() -> None:
    assert choose("x" * ACCEPT_LANGUAGE_PREFIX + ", de").page == "en"
    assert choose(", ".join(["xx"] * ACCEPT_LANGUAGE_ENTRIES + ["de"])).page == "en"
    assert choose(", ".join(["xx"] * (ACCEPT_LANGUAGE_ENTRIES - 1) + ["de"])).page == "de"
    # Unreadable qualities count as 0: the language is not wanted.
    for odd in ("1.5", "-1", "nan", "1e3", "0.00001", ""):
        assert choose(f"de;q={odd}, fr;q=0.5").page == "fr", odd


def test_the_choice_cache_stays_small_whatever_strangers_send() -> None:
    for number in range(3000):
        choose(f"x{number}, de;q=0.{number % 10}")
    info = cached_choice.cache_info()
    assert info.maxsize is not None and info.currsize <= info.maxsize <= 1024
    before = cached_choice.cache_info().hits
    choose("de-DE,de;q=0.9")
    choose("de-DE,de;q=0.9")
    assert cached_choice.cache_info().hits > before  # a browser's header is read once


# -- the operator's translations -----------------------------------------------------------------


def test_visitors_get_the_best_translation_else_the_main_message(make_app: AppFactory, fast: bool) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast)
    app.extensions["maintenance"].enable(
        message="Upgrading until 3 am",
        translations={"de": "Wartung bis 3 Uhr", "pt-BR": "Manutenção até 3h", "ko": "오전 3시까지 점검"},
        app=app,
    )
    client = app.test_client()
    for header, message, language in (
        ("de-CH, en;q=0.5", "Wartung bis 3 Uhr", "de"),
        ("pt", "Manutenção até 3h", "pt"),  # pt takes pt-BR
        ("ko-KR", "오전 3시까지 점검", "ko"),
        ("fr, de;q=0.5", "Wartung bis 3 Uhr", "fr"),  # the page in French, the best message German
        ("ja", "Upgrading until 3 am", "ja"),
        ("*", "Upgrading until 3 am", "en"),
    ):
        page = client.get("/", headers={"Accept-Language": header})
        assert details(page) == [html.escape(message)], header
        assert page.headers["Content-Language"] == language
        problem = client.get("/api/items", headers={"Accept-Language": header}).get_json(force=True)
        assert problem["detail"] == message


def test_the_banner_header_and_the_template_banner_speak_the_visitors_language(
    make_app: AppFactory, fast: bool
) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast)

    @app.get("/page")
    def page() -> str:
        from flask import render_template_string

        return render_template_string("[{{ maintenance_banner }}]")

    maintenance = app.extensions["maintenance"]
    maintenance.enable(mode="banner", app=app)
    client = app.test_client()
    german = client.get("/page", headers={"Accept-Language": "de"})
    assert german.headers["X-Maintenance-Banner"] == texts("de").banner
    assert "Accept-Language" in german.headers["Vary"]
    assert german.get_data(as_text=True) == f"[{texts('de').banner}]"
    korean = client.get("/page", headers={"Accept-Language": "ko"})
    assert korean.headers["X-Maintenance-Banner"] != texts("ko").banner  # percent-encoded
    assert korean.get_data(as_text=True) == f"[{texts('ko').banner}]"
    assert client.get("/page").headers["X-Maintenance-Banner"] == "Maintenance in progress"

    maintenance.enable(message="Slow today", translations={"de": "Heute langsam"}, app=app)
    assert (
        client.get("/", headers={"Accept-Language": "de"}).headers["X-Maintenance-Banner"] == "Heute langsam"
    )
    assert client.get("/", headers={"Accept-Language": "fr"}).headers["X-Maintenance-Banner"] == "Slow today"

    maintenance.disable(app=app)
    starts = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=2)
    maintenance.schedule(starts, starts + timedelta(hours=1), app=app)
    announced = client.get("/page", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert (
        announced
        == "["
        + texts("de").banner_scheduled_until.format(
            start=f"{starts:%Y-%m-%d %H:%M}", end=f"{starts + timedelta(hours=1):%Y-%m-%d %H:%M}"
        )
        + "]"
    )
    maintenance.cancel(app=app)
    assert client.get("/page").get_data(as_text=True) == "[None]"


def test_a_new_message_drops_the_translations_of_the_old_one(app: Flask, maintenance: Maintenance) -> None:
    maintenance.enable(message="One", translations={"de": "Eins"}, app=app)
    assert dict(maintenance.enable(retry=30, app=app).messages) == {"de": "Eins"}  # kept
    assert dict(maintenance.enable(translations={"fr": "Un"}, app=app).messages) == {"fr": "Un"}  # replaced
    assert dict(maintenance.enable(message="Two", app=app).messages) == {}


@pytest.mark.parametrize(
    ("translations", "error"),
    [
        ({"de": "a", "DE": "b"}, "de is given twice"),
        ({"deutsch": "a"}, "'deutsch' is not a language tag"),
        ({"de": ""}, "de is empty"),
        ({"de": 5}, "must be text"),
        ({"de": "x" * 2001}, "too long"),
        ({f"a{chr(97 + i)}{chr(97 + j)}": "x" for i in range(5) for j in range(5)}, "at most 20 languages"),
        ("de=x", "must map language tags to texts"),
    ],
)
def test_bad_translations_are_refused_and_change_nothing(
    app: Flask, maintenance: Maintenance, lock_file: Path, translations: Any, error: str
) -> None:
    maintenance.enable(message="Before", translations={"ko": "이전"}, app=app)
    before = lock_file.read_bytes()
    with pytest.raises(ConfigurationError, match=re.escape(error)):
        maintenance.enable(message="After", translations=translations, app=app)
    assert lock_file.read_bytes() == before


def test_translations_that_would_overflow_the_lock_are_refused(
    app: Flask, maintenance: Maintenance, lock_file: Path
) -> None:
    many = {f"a{chr(97 + i)}": "語" * 2000 for i in range(20)}  # 20 x 2000 characters, escaped in JSON
    with pytest.raises(ConfigurationError, match="larger than 64 KiB"):
        maintenance.enable(translations=many, app=app)
    assert not lock_file.exists()


def test_the_lock_file_keeps_messages_and_reads_older_and_damaged_ones(
    app: Flask, maintenance: Maintenance, lock_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    maintenance.enable(message="Main", translations={"de": "Haupt", "zh-hans": "主要"}, app=app)
    stored = json.loads(lock_file.read_text())
    assert stored["message"] == "Main"
    assert stored["messages"] == {"de": "Haupt", "zh-Hans": "主要"}  # tags written in their usual case

    # A lock written before translations existed (or by hand) reads as it always did.
    lock_file.write_text(json.dumps({"mode": "readonly", "message": "Old"}))
    state = maintenance.status(fresh=True, app=app)
    assert (state.mode, state.message, dict(state.messages)) == ("readonly", "Old", {})
    assert "messages" not in json.loads(state.to_json())

    # Damaged translations are dropped alone, with one warning; the rest of the lock holds.
    for damaged in ({"de": 5}, {"not a tag": "x"}, ["de", "x"], {"DE": "x"}):
        lock_file.write_text(json.dumps({"mode": "readonly", "message": "Old", "messages": damaged}))
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            state = maintenance.status(fresh=True, app=app)
        assert (state.mode, state.message, dict(state.messages)) == ("readonly", "Old", {}), damaged
        assert "invalid messages" in caplog.text
        caplog.clear()


class TestTheCommandLine:
    def test_on_with_translations_then_status(self, run_flask: RunFlask, app_module: Path) -> None:
        result = run_flask(
            "maintenance",
            "on",
            "--message",
            "Down until 3 am",
            "--translation",
            "de=Wartung bis 3 Uhr",
            "--translation",
            "ko=오전 3시까지 점검",
        )
        assert result.returncode == 0, result.stderr
        lock = json.loads((app_module.parent / "maintenance.lock").read_text())
        assert lock["messages"] == {"de": "Wartung bis 3 Uhr", "ko": "오전 3시까지 점검"}
        status = run_flask("maintenance", "status", "--json")
        assert json.loads(status.stdout)["messages"] == lock["messages"]
        assert "message [de]: Wartung bis 3 Uhr" in run_flask("maintenance", "status").stdout

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            (("--translation", "de=a", "--translation", "DE=b"), "de is given twice"),
            (("--translation", "german=a"), "is not a language tag"),
            (("--translation", "de"), "LANG=TEXT"),
            (("--translation", "de="), "de is empty"),
            (("--translation", "<script>=x"), "is not a language tag"),
            (("--feature", "shop", "--force", "--translation", "de=x"), "--feature takes only --message"),
        ],
    )
    def test_bad_translations_are_one_line_and_leave_the_lock_alone(
        self, run_flask: RunFlask, app_module: Path, args: tuple[str, ...], words: str
    ) -> None:
        assert (
            run_flask("maintenance", "on", "--message", "Before", "--translation", "fr=Avant").returncode == 0
        )
        lock = app_module.parent / "maintenance.lock"
        before = lock.read_bytes()
        result = run_flask("maintenance", "on", "--message", "After", *args)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
        assert words in result.stderr and "Traceback" not in result.stderr
        assert lock.read_bytes() == before


# -- site name, status page, the message as paragraphs and links --------------------------------


def test_the_site_name_and_the_status_page_link(make_app: AppFactory, fast: bool) -> None:
    app = make_app(
        MAINTENANCE_FAST_PATH=fast,
        MAINTENANCE_SITE_NAME="Shop & Co",
        MAINTENANCE_STATUS_PAGE_URL="https://status.example.com/?a=1&b=2",
    )
    app.extensions["maintenance"].enable(app=app)
    client = app.test_client()
    page = client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert f"<title>{texts('de').full_title} · Shop &amp; Co</title>" in page
    assert '<p class="site">Shop &amp; Co</p>\n<h1>' in page
    assert (
        '<a href="https://status.example.com/?a=1&amp;b=2" rel="noopener noreferrer">'
        f"{texts('de').follow_updates}</a>" in page
    )
    problem = client.get("/api/items").get_json(force=True)
    assert problem["status_page_url"] == "https://status.example.com/?a=1&b=2"
    assert "status_page_url" not in make_app().test_client().get("/api/items").get_json(force=True)


@pytest.mark.parametrize(
    "address",
    [
        "javascript:alert(1)",
        "ftp://files.example.com",
        "https://",
        "/status",
        'https://example.com/" onclick="x',
        "https://example.com/<script>",
        "https://exa mple.com",
        "https://例え.jp",
        "data:text/html,hi",
        42,
    ],
)
def test_a_status_page_address_must_be_http(make_app: AppFactory, address: object) -> None:
    with pytest.raises(
        ConfigurationError, match=r"MAINTENANCE_STATUS_PAGE_URL must be (an http|a non-empty string)"
    ):
        make_app(MAINTENANCE_STATUS_PAGE_URL=address)


@pytest.mark.parametrize("name", ["", None])
def test_no_site_name_shows_none(make_app: AppFactory, name: str | None) -> None:
    app = make_app(MAINTENANCE_SITE_NAME=name)
    app.extensions["maintenance"].enable(app=app)
    page = app.test_client().get("/").get_data(as_text=True)
    assert "<title>Down for maintenance</title>" in page and 'class="site"' not in page


@pytest.mark.parametrize("name", ["a\nb", "x" * 101, 5])
def test_a_site_name_is_one_short_line(make_app: AppFactory, name: object) -> None:
    with pytest.raises(ConfigurationError, match="MAINTENANCE_SITE_NAME"):
        make_app(MAINTENANCE_SITE_NAME=name)


MESSAGES = {
    "paragraphs": (
        "Upgrading the database.\r\n\nDetails: https://status.example.com/incidents/42.\rThanks!",
        [
            "Upgrading the database.",
            'Details: <a href="https://status.example.com/incidents/42" rel="noopener noreferrer nofollow">'
            "https://status.example.com/incidents/42</a>.",
            "Thanks!",
        ],
    ),
    "script": ("<script>alert(1)</script>", ["&lt;script&gt;alert(1)&lt;/script&gt;"]),
    "javascript url": ("javascript:alert(document.cookie)", ["javascript:alert(document.cookie)"]),
    "quote breaks out": (
        'See http://x.example/" onmouseover="alert(1)',
        [
            'See <a href="http://x.example/" rel="noopener noreferrer nofollow">http://x.example/</a>'
            "&quot; onmouseover=&quot;alert(1)"
        ],
    ),
    "tag inside": (
        "http://a.example/<img src=x onerror=alert(1)>",
        [
            '<a href="http://a.example/" rel="noopener noreferrer nofollow">http://a.example/</a>'
            "&lt;img src=x onerror=alert(1)&gt;"
        ],
    ),
    "entities": (
        "https://a.example/?q=1&x=&quot;",
        [
            '<a href="https://a.example/?q=1&amp;x=&amp;quot" rel="noopener noreferrer nofollow">'
            "https://a.example/?q=1&amp;x=&amp;quot</a>;"  # a last ";" ends the sentence
        ],
    ),
    "parentheses": (
        "(see https://en.example.org/wiki/A_(b))",
        [
            '(see <a href="https://en.example.org/wiki/A_(b)" rel="noopener noreferrer nofollow">'
            "https://en.example.org/wiki/A_(b)</a>)"
        ],
    ),
    "no host": ("http:// and https://?x", ["http:// and https://?x"]),
    "upper case": (
        "HTTPS://A.EXAMPLE",
        ['<a href="HTTPS://A.EXAMPLE" rel="noopener noreferrer nofollow">HTTPS://A.EXAMPLE</a>'],
    ),
    "data url": ("data:text/html,<b>x</b>", ["data:text/html,&lt;b&gt;x&lt;/b&gt;"]),
    "unicode separators stay": ("a\u2028b", ["a\u2028b"]),
}


@pytest.mark.parametrize(("message", "shown"), MESSAGES.values(), ids=list(MESSAGES))
def test_the_message_becomes_escaped_paragraphs_with_links(
    make_app: AppFactory, fast: bool, message: str, shown: list[str]
) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast)
    app.extensions["maintenance"].enable(message=message, app=app)
    client = app.test_client()
    page = client.get("/")
    assert details(page) == shown
    body = page.get_data(as_text=True)
    assert len(re.findall(r"<script>", body)) == 1  # the page's own
    assert '<a href="javascript' not in body.lower()
    assert client.get("/api/items").get_json(force=True)["detail"] == message  # JSON: the text as it is


# -- overdue, refused writes, robots.txt, long outages -------------------------------------------


@pytest.mark.parametrize("language", ["en", "de", "ja"])
def test_an_overdue_window_says_it_takes_longer_never_a_past_time(
    make_app: AppFactory, fast: bool, language: str
) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast, MAINTENANCE_RETRY_AFTER=300)
    lock = Path(app.config["MAINTENANCE_LOCK_FILE"])
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"ends_at": "2026-01-01T00:00:00Z"}))
    page = app.test_client().get("/", headers={"Accept-Language": language})
    body = page.get_data(as_text=True)
    words = texts(language)
    assert html.escape(words.overdue) in body
    assert html.escape(words.try_again.format(duration=words.duration(300))) in body
    assert "2026-01-01" not in body and "<time" not in body
    assert page.headers["Retry-After"] == "300"


@pytest.mark.parametrize("mode", ["full", "readonly"])
def test_a_refused_write_says_nothing_was_saved_and_offers_to_go_back(
    make_app: AppFactory, fast: bool, mode: str
) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast)
    app.extensions["maintenance"].enable(mode=mode, message="Moving house", app=app)
    client = app.test_client()
    for language in ("en", "ko"):
        words = texts(language)
        write = client.post("/form", headers={"Accept-Language": language}, data={"name": "Ada"})
        assert write.status_code == 503
        body = write.get_data(as_text=True)
        assert heading(write) == words.not_saved_title
        assert html.escape(words.not_saved_detail) in body
        assert f'<button type="button" id="back" hidden>{html.escape(words.go_back)}</button>' in body
        assert details(write) == ["Moving house"]
        assert re.search(r"<main [^>]* data-write[ >]", body)
        assert html.escape(words.reload_hint) not in body  # reloading would send the form again
        assert f'data-auto-reload="{html.escape(words.write_wait)}"' in body
        assert write.headers["Cache-Control"] == "no-store"

    read = client.get("/form") if mode == "full" else client.get("/")
    if mode == "full":
        assert not re.search(r"<main [^>]* data-write[ >]", read.get_data(as_text=True))
        assert heading(read) == "Down for maintenance"
    # A write that asks for JSON gets the usual problem document.
    problem = client.post("/form", headers={"Accept": "application/json"}).get_json(force=True)
    assert problem["title"] == texts().full_title if mode == "full" else texts().readonly_title


@pytest.mark.parametrize("mode", ["full", "readonly"])
def test_robots_txt_is_served_during_maintenance(make_app: AppFactory, fast: bool, mode: str) -> None:
    for serve in (True, False):
        app = make_app(MAINTENANCE_FAST_PATH=fast, MAINTENANCE_SERVE_ROBOTS_TXT=serve)

        @app.get("/robots.txt")
        def robots() -> str:
            return "User-agent: *\nDisallow: /admin\n"

        app.extensions["maintenance"].enable(mode=mode, app=app)
        client = app.test_client()
        answer = client.get("/robots.txt")
        assert answer.status_code == (200 if serve or mode == "readonly" else 503)
        if mode == "full":  # only that path (readonly lets every GET through anyway)
            assert client.get("/robots.txt/x").status_code == 503
            assert client.get("/robots.txt.bak").status_code == 503


def test_an_app_without_robots_txt_answers_404_not_503(app: Flask, maintenance: Maintenance) -> None:
    maintenance.enable(app=app)
    assert app.test_client().get("/robots.txt").status_code == 404  # crawl on, nothing disallowed


def test_full_maintenance_over_24_hours_is_flagged_by_status_and_logged_once(
    make_app: AppFactory, run_flask: RunFlask, app_module: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = app_module.parent / "maintenance.lock"
    started = datetime.now(timezone.utc) - timedelta(hours=25)
    lock.write_text(json.dumps({"mode": "full", "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    status = run_flask("maintenance", "status")
    assert "warning:      full maintenance for more than 24 hours" in status.stdout
    assert json.loads(run_flask("maintenance", "status", "--json").stdout)["long_outage"] is True

    lock.write_text(json.dumps({"mode": "readonly", "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    assert "24 hours" not in run_flask("maintenance", "status").stdout
    assert json.loads(run_flask("maintenance", "status", "--json").stdout)["long_outage"] is False

    app = make_app()
    app_lock = Path(app.config["MAINTENANCE_LOCK_FILE"])
    app_lock.parent.mkdir(parents=True, exist_ok=True)
    window = {"mode": "full", "window": "w1", "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ")}
    app_lock.write_text(json.dumps(window))
    with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
        for _ in range(5):
            assert app.test_client().get("/").status_code == 503
        assert caplog.text.count("more than 24 hours") == 1
        app_lock.write_text(json.dumps({**window, "window": "w2"}))  # a new window: told again
        app.test_client().get("/")
        assert caplog.text.count("more than 24 hours") == 2


def test_a_custom_template_is_told_the_visitors_language(make_app: AppFactory) -> None:
    from jinja2 import DictLoader

    app = make_app(MAINTENANCE_TEMPLATE="maintenance.html")
    app.jinja_loader = DictLoader({"maintenance.html": "<p>{{ language }}</p>"})  # type: ignore[method-assign]
    app.extensions["maintenance"].enable(app=app)
    page = app.test_client().get("/", headers={"Accept-Language": "ja-JP, en;q=0.1"})
    assert page.status_code == 503
    assert page.get_data(as_text=True) == "<p>ja</p>"
    assert page.headers["Content-Language"] == "ja"
