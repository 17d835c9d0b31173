"""The answers maintenance gives: the 503 (problem JSON or a self-contained page) and the status.

Every answer is a plain value (status, headers, body) built once per state and reused, so that the
WSGI fast path and the ``before_request`` hook send byte-identical responses.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .answer import MARKER_HEADER, Answer
from .rules import encodable
from .texts import DEFAULT_LANGUAGE, banner, texts
from .times import format_instant

if TYPE_CHECKING:
    from .model import Feature, State

PROBLEM_TYPE = "urn:flask-maintenance:problem:maintenance"
READONLY_PROBLEM_TYPE = "urn:flask-maintenance:problem:read-only"
FEATURE_PROBLEM_TYPE = "urn:flask-maintenance:problem:feature"
LINK_PROBLEM_TYPE = "urn:flask-maintenance:problem:bypass-link"
#: Longest ``X-Maintenance-Banner``: proxies refuse (nginx: 502) answers with huge headers.
MAX_BANNER_BYTES = 1024


def blocked(
    state: State,
    *,
    readonly: bool,
    as_json: bool,
    retry_after: int,
    status_url: str,
    banner: str | None,
    feature: Feature | None = None,
    extra_headers: Mapping[str, str] | None = None,
    recovery_checks: Sequence[str] = (),
    refused_in: Sequence[str] | None = None,
    language: str = DEFAULT_LANGUAGE,
    translation: str | None = None,
    write: bool = False,
    site_name: str | None = None,
    status_page_url: str | None = None,
) -> Answer:
    """The 503 for a refused request: for the whole site, or for one switched-off feature.

    :param status_url: the status path with the app's script root, which the page polls.
    :param recovery_checks: ``MAINTENANCE_RECOVERY_CHECKS``, which must answer OK as well
        before the page reloads itself.
    :param extra_headers: ``MAINTENANCE_RESPONSE_HEADERS``, added to every answer.
    :param refused_in: the modes in which the page's request is still refused; it reloads
        itself in the others. By default ``full``, and ``readonly`` too for the read-only page
        (it answered a write); a proxy that refuses in every mode (nginx) gives them all.
    :param language: the catalog's language (:data:`flask_maintenance.texts.LANGUAGES`).
    :param translation: the tag of the operator's translation to show instead of the message.
    :param write: the refused request would have changed something (a POST): the page says it
        was not saved, offers to go back to the form, and never reloads itself.
    :param site_name: ``MAINTENANCE_SITE_NAME``; ``status_page_url``: ``MAINTENANCE_STATUS_PAGE_URL``.
    """
    words = texts(language)
    ends_at = None if feature is not None else state.ends_at
    overdue = feature is None and state.overdue()
    if feature is not None:
        title = words.feature_title.format(feature=feature.name)
        detail = feature.message or words.feature_detail
        problem_type = FEATURE_PROBLEM_TYPE
    else:
        title = words.readonly_title if readonly else words.full_title
        message = state.messages.get(translation) if translation is not None else None
        detail = message or state.message or (words.readonly_detail if readonly else words.full_detail)
        problem_type = READONLY_PROBLEM_TYPE if readonly else PROBLEM_TYPE
    detail = encodable(detail)
    headers = []
    if as_json:
        problem: dict[str, Any] = {
            "type": problem_type,
            "title": title,
            "status": 503,
            "detail": detail,
            "retry_after": retry_after,
            "ends_at": _instant(ends_at),
            "overdue": overdue,
            "status_url": status_url,
        }
        if feature is not None:
            problem["feature"] = feature.name
        if status_page_url is not None:
            problem["status_page_url"] = status_page_url
        body = json.dumps(problem).encode()
        headers.append(("Content-Type", "application/problem+json"))
    else:
        from .page import Page  # here: a worker builds a page only once a state refuses requests

        page = Page(
            words,
            title,
            detail,
            retry_after,
            ends_at,
            overdue,
            status_url,
            None if feature is None else feature.name,
            recovery_checks,
            tuple(refused_in or (("full", "readonly") if readonly else ("full",))),
            write,
            site_name,
            status_page_url,
        )
        body = page.render().encode("utf-8")
        headers += [("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", PAGE_CSP)]
    headers += [
        ("Retry-After", str(retry_after)),
        ("Cache-Control", "no-store"),
        ("Content-Language", language),
        ("Vary", "Accept, Accept-Language"),
    ]
    headers.append((MARKER_HEADER, "feature" if feature is not None else "readonly" if readonly else "full"))
    if banner is not None:
        headers.append(("X-Maintenance-Banner", banner))
    headers += list((extra_headers or {}).items())
    return Answer(status=503, headers=tuple(headers), body=body, retry_after=retry_after)


def link_refused(*, as_json: bool, home: str) -> Answer:
    """The 403 for a bypass link that is wrong or from an earlier window: a page for browsers."""
    title = "This link does not work"
    detail = (
        "The bypass link is wrong, or maintenance has started a new window since it was made "
        "(each window has its own link). Ask for a new one."
    )
    if as_json:
        problem = {"type": LINK_PROBLEM_TYPE, "title": title, "status": 403, "detail": detail}
        body = json.dumps(problem).encode()
        headers = [("Content-Type", "application/problem+json")]
    else:
        from .page import NOTICE, NOTICE_CSP

        body = NOTICE.format(
            language=DEFAULT_LANGUAGE, title=escape(title), detail=escape(detail), home=escape(home)
        ).encode()
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", NOTICE_CSP)]
    headers.append(("Cache-Control", "no-store"))
    return Answer(status=403, headers=tuple(headers), body=body, retry_after=0)


def public_status(state: State, now: datetime) -> dict[str, Any]:
    """The status document anyone may read: no secret, address, host or path."""
    return {
        "active": state.active,
        "mode": state.mode,
        "message": state.message if state.active else None,
        "messages": dict(sorted(state.messages.items())) if state.active else {},
        "retry_after": state.retry_after(now) if state.blocking else None,
        "overdue": state.overdue(now),
        "started_at": _instant(state.started_at),
        "ends_at": _instant(state.ends_at),
        "scheduled": None if state.scheduled is None else state.scheduled.to_dict(),
        "features": sorted(state.features),
    }


def banner_header(state: State, language: str = DEFAULT_LANGUAGE, translation: str | None = None) -> str:
    """``X-Maintenance-Banner``: the banner text, percent-encoded where HTTP headers can't carry it,
    at most :data:`MAX_BANNER_BYTES` long, cut between characters with an ellipsis.

    :param language: the catalog's language for the default texts; ``translation``: the tag of
        the operator's translation to show instead of the message (both from
        :func:`flask_maintenance.languages.choose`).
    """
    message = None if translation is None else state.messages.get(translation)
    return _banner_header(banner(state, language, message) or "")


@functools.lru_cache(maxsize=16)  # thread-safe; the hook asks for it on every request in banner mode
def _banner_header(banner: str) -> str:
    text = " ".join(banner.split())
    if text.isascii() and text.isprintable():
        if len(text) <= MAX_BANNER_BYTES:
            return text
        return text[: MAX_BANNER_BYTES - 3] + "..."
    pieces: list[str] = []
    size = 0
    ellipsis = _encoded("\u2026")
    for character in encodable(text):
        piece = _encoded(character)
        if size + len(piece) > MAX_BANNER_BYTES:
            while size + len(ellipsis) > MAX_BANNER_BYTES:
                size -= len(pieces.pop())
            pieces.append(ellipsis)
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)


def _encoded(character: str) -> str:
    return quote(character, safe=" !\"#$&'()*+,-./:;<=>?@[]^_`{|}~")


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else format_instant(moment)


#: The page's inline style and script: constants, so that its Content-Security-Policy can allow
#: exactly them by hash; what varies per answer travels in data- attributes (:mod:`.page`).
PAGE_STYLE = """
:root { color-scheme: light dark; --fg: #1f2933; --muted: #52606d; --bg: #f5f7fa; --card: #fff; --accent: #d97706; }
@media (prefers-color-scheme: dark) { :root { --fg: #e4e7eb; --muted: #9aa5b1; --bg: #1f2933; --card: #323f4b; } }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
  padding: 1.5rem; background: var(--bg); color: var(--fg);
  font: 1.0625rem/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { width: 100%; max-width: 34rem; border-radius: 12px; padding: calc(2rem + 6px) 1.75rem 2rem;
  background: var(--card) linear-gradient(var(--accent) 0 6px, transparent 6px); box-shadow: 0 8px 24px rgba(0,0,0,.08); }
h1 { margin: 0 0 .75rem; font-size: 1.6rem; line-height: 1.25; }
p { margin: 0 0 1rem; overflow-wrap: anywhere; }
:lang(ko) h1, :lang(ko) p { word-break: keep-all; }
.expected { color: var(--muted); }
time, #local-time { white-space: nowrap; }
.live { margin: 0; font-size: .9rem; color: var(--muted); }
.site { margin: 0 0 .25rem; font-weight: 600; color: var(--muted); }
.lead { font-weight: 600; }
a { color: inherit; }
button { font: inherit; padding: .5rem 1.1rem; border: 0; border-radius: 6px; background: var(--accent); color: #fff; cursor: pointer; }
"""

PAGE_SCRIPT = """
(function () {
  var main = document.querySelector("main");
  function text(name) { return main.getAttribute("data-" + name); }
  var statusUrl = main.getAttribute("data-status-url");
  var feature = text("feature");
  // The modes that still refuse the request this page answered: it reloads in any other.
  var refusedIn = (text("refused-in") || "full").split(" ");
  // A refused write must never reload itself: that would turn the POST into a GET.
  var write = main.hasAttribute("data-write");
  var live = document.getElementById("live");
  live.textContent = text("auto-reload");
  var back = document.getElementById("back");
  if (back) {
    back.hidden = false;
    back.addEventListener("click", function () { history.back(); });
  }
  var when = document.querySelector("time[data-local]");
  var end = when ? new Date(when.getAttribute("datetime")) : null;
  if (end && !isNaN(end) && end.getTimezoneOffset() !== 0) {
    var lang = document.documentElement.lang;
    var shown = end.toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
    document.getElementById("local-time").textContent = text("your-time").replace("{time}", shown);
  }
  var checks = (main.getAttribute("data-checks") || "").split(" ").filter(Boolean);
  function over() {
    return fetch(statusUrl, { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) { return false; }
        if (feature) { return s.features.indexOf(feature) < 0; }
        return !s.active || refusedIn.indexOf(s.mode) < 0;
      });
  }
  function healthy(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) { return r.ok; });
  }
  function reload() {
    // A new URL, so that no cache along the way serves the old page or stale assets.
    var query = new URLSearchParams(location.search);
    query.set("v", String(Date.now()));
    location.replace(location.pathname + "?" + query + location.hash);
  }
  function check() {
    if (end && new Date() >= end) {  // never a time in the past
      document.querySelector(".expected").textContent = text("overdue");
    }
    Promise.all([over()].concat(checks.map(healthy)))
      .then(function (results) {
        if (!results.every(Boolean)) { setTimeout(check, 4000 + Math.random() * 2000); }
        else if (write) { live.textContent = text("back-again"); }
        else { reload(); }
      })
      .catch(function () { setTimeout(check, 8000); });
  }
  setTimeout(check, 4000 + Math.random() * 2000);
})();
"""

#: CSP sources that allow the built-in page's inline style and script, for an app whose own
#: Content-Security-Policy (Flask-Talisman's, say) also applies to the page.
PAGE_CSP_SOURCES = {
    "style-src": f"'sha256-{base64.b64encode(hashlib.sha256(PAGE_STYLE.encode()).digest()).decode()}'",
    "script-src": f"'sha256-{base64.b64encode(hashlib.sha256(PAGE_SCRIPT.encode()).digest()).decode()}'",
}
#: The page's own policy: nothing but its inline code, and polling the status on the same site.
PAGE_CSP = (
    f"default-src 'none'; style-src {PAGE_CSP_SOURCES['style-src']}; "
    f"script-src {PAGE_CSP_SOURCES['script-src']}; connect-src 'self'; img-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
