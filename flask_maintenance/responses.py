"""The answers maintenance gives: the 503 (problem JSON or a self-contained page) and the status.

Every answer is a plain value (status, headers, body) built once per state and reused, so that the
WSGI fast path and the ``before_request`` hook send byte-identical responses.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .rules import encodable
from .times import format_instant

if TYPE_CHECKING:
    from .model import Feature, State

PROBLEM_TYPE = "urn:flask-maintenance:problem:maintenance"
READONLY_PROBLEM_TYPE = "urn:flask-maintenance:problem:read-only"
FEATURE_PROBLEM_TYPE = "urn:flask-maintenance:problem:feature"
FULL_TITLE = "Down for maintenance"
READONLY_TITLE = "Read-only mode"
FULL_DETAIL = "The service is down for maintenance. Please try again shortly."
FEATURE_DETAIL = "This part of the service is down for maintenance; everything else works."
READONLY_DETAIL = "The service is read-only during maintenance; changes cannot be saved right now."
STATUS_LINE = "503 SERVICE UNAVAILABLE"


#: How much of an Accept header is looked at, and how many of its entries: a hostile header of
#: any length costs no more than a browser's.
ACCEPT_PREFIX = 1024
ACCEPT_ENTRIES = 32
#: Longest ``X-Maintenance-Banner``: proxies refuse (nginx: 502) answers with huge headers.
MAX_BANNER_BYTES = 1024
_JSON_TYPES = ("application/json", "application/problem+json")
_QUALITY = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer: status code, headers (without Content-Length) and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: The ``Retry-After`` it sends, in seconds.
    retry_after: int

    def wsgi_headers(self) -> list[tuple[str, str]]:
        return [*self.headers, ("Content-Length", str(len(self.body)))]


def prefers_json(accept: str | None) -> bool:
    """Whether an Accept header prefers JSON over HTML.

    Hand-written rather than Werkzeug's ``parse_accept_header``, which costs milliseconds on a
    hostile 8 KB header: only the first :data:`ACCEPT_PREFIX` characters and
    :data:`ACCEPT_ENTRIES` entries are read, and only two qualities matter. As in RFC 9110, the
    most specific range that covers a type gives its quality.
    """
    # Cheap first look: most browsers and crawlers never mention JSON.
    if not accept or "json" not in accept[:ACCEPT_PREFIX]:
        return False
    # (specificity, quality) of the most specific range seen that covers each type.
    html: tuple[int, float] = (-1, 0.0)
    json_: tuple[int, float] = (-1, 0.0)
    for entry in accept[:ACCEPT_PREFIX].split(",", ACCEPT_ENTRIES)[:ACCEPT_ENTRIES]:
        media, _, parameters = entry.partition(";")
        media = media.strip().lower()
        quality = _quality(parameters)
        if media == "*/*":
            html, json_ = max(html, (0, quality)), max(json_, (0, quality))
        elif media == "text/*":
            html = max(html, (1, quality))
        elif media == "application/*":
            json_ = max(json_, (1, quality))
        elif media == "text/html":
            html = max(html, (2, quality))
        elif media in _JSON_TYPES:
            json_ = max(json_, (2, quality))
    return json_[1] > html[1]


def _quality(parameters: str) -> float:
    """The ``q`` of a media range's parameters: 1 when absent, 0 when unreadable."""
    for parameter in parameters.split(";", 4)[:4]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            match = _QUALITY.fullmatch(value.strip())
            return float(match.group(0)) if match else 0.0
    return 1.0


def blocked(
    state: State,
    *,
    readonly: bool,
    as_json: bool,
    retry_after: int,
    status_path: str,
    banner: str | None,
    feature: Feature | None = None,
) -> Answer:
    """The 503 for a refused request: for the whole site, or for one switched-off feature."""
    ends_at = None if feature is not None else state.ends_at
    if feature is not None:
        title = f"{feature.name} is temporarily unavailable"
        detail = feature.message or FEATURE_DETAIL
        problem_type = FEATURE_PROBLEM_TYPE
    else:
        title = READONLY_TITLE if readonly else FULL_TITLE
        detail = state.message or (READONLY_DETAIL if readonly else FULL_DETAIL)
        problem_type = READONLY_PROBLEM_TYPE if readonly else PROBLEM_TYPE
    detail = encodable(detail)
    if as_json:
        problem = {
            "type": problem_type,
            "title": title,
            "status": 503,
            "detail": detail,
            "retry_after": retry_after,
            "ends_at": _instant(ends_at),
        }
        if feature is not None:
            problem["feature"] = feature.name
        body = json.dumps(problem).encode()
        content_type = "application/problem+json"
    else:
        feature_name = None if feature is None else feature.name
        body = _page(title, detail, retry_after, ends_at, status_path, feature_name).encode("utf-8")
        content_type = "text/html; charset=utf-8"
    headers = [
        ("Content-Type", content_type),
        ("Retry-After", str(retry_after)),
        ("Cache-Control", "no-store"),
    ]
    if banner is not None:
        headers.append(("X-Maintenance-Banner", banner))
    return Answer(status=503, headers=tuple(headers), body=body, retry_after=retry_after)


def public_status(state: State, now: datetime) -> dict[str, Any]:
    """The status document anyone may read: no secret, address, host or path."""
    return {
        "active": state.active,
        "mode": state.mode,
        "message": state.message if state.active else None,
        "retry_after": state.retry_after(now) if state.blocking else None,
        "started_at": _instant(state.started_at),
        "ends_at": _instant(state.ends_at),
        "scheduled": None if state.scheduled is None else state.scheduled.to_dict(),
        "features": sorted(state.features),
    }


def banner_header(state: State) -> str:
    """``X-Maintenance-Banner``: the banner text, percent-encoded where HTTP headers can't carry it,
    at most :data:`MAX_BANNER_BYTES` long, cut between characters with an ellipsis."""
    return _banner_header(state.banner or "")


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


def _page(
    title: str,
    detail: str,
    retry_after: int,
    ends_at: datetime | None,
    status_path: str,
    feature: str | None,
) -> str:
    if ends_at is None:
        expected = f"Please try again in about {_human(retry_after)}."
    else:
        iso = format_instant(ends_at)
        shown = ends_at.strftime("%Y-%m-%d %H:%M UTC")
        expected = (
            f'We expect to be back by <time datetime="{iso}" data-local>{shown}</time>'
            ' <span id="local-time"></span>'
        )
    return _PAGE.format(
        title=escape(title),
        detail=escape(detail),
        expected=expected,
        status_url=_script_value(status_path),
        feature=_script_value(feature),
    )


def _script_value(value: object) -> str:
    """A JSON literal safe inside an inline <script>."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _human(seconds: int) -> str:
    if seconds < 90:
        return f"{max(seconds, 1)} second{'s' if seconds != 1 else ''}"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{round(minutes / 60)} hours"


# Self-contained on purpose: no stylesheet, script, font or image is fetched, so the page still
# shows when static files or a CDN are part of what is down.
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
:root {{ color-scheme: light dark; --fg: #1f2933; --muted: #52606d; --bg: #f5f7fa; --card: #fff; --accent: #d97706; }}
@media (prefers-color-scheme: dark) {{ :root {{ --fg: #e4e7eb; --muted: #9aa5b1; --bg: #1f2933; --card: #323f4b; }} }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
  padding: 1.5rem; background: var(--bg); color: var(--fg);
  font: 1.0625rem/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }}
main {{ width: 100%; max-width: 34rem; border-radius: 12px; padding: calc(2rem + 6px) 1.75rem 2rem;
  background: var(--card) linear-gradient(var(--accent) 0 6px, transparent 6px); box-shadow: 0 8px 24px rgba(0,0,0,.08); }}
h1 {{ margin: 0 0 .75rem; font-size: 1.6rem; line-height: 1.25; }}
p {{ margin: 0 0 1rem; overflow-wrap: anywhere; }}
.expected {{ color: var(--muted); }}
time, #local-time {{ white-space: nowrap; }}
.live {{ margin: 0; font-size: .9rem; color: var(--muted); }}
</style>
</head>
<body>
<main role="main">
<h1>{title}</h1>
<p class="detail">{detail}</p>
<p class="expected">{expected}</p>
<p class="live" id="live">Reload this page to check whether we are back.</p>
</main>
<script>
(function () {{
  var statusUrl = {status_url};
  var feature = {feature};
  var live = document.getElementById("live");
  live.textContent = "This page reloads by itself as soon as we are back.";
  var when = document.querySelector("time[data-local]");
  if (when) {{
    var local = new Date(when.getAttribute("datetime"));
    if (!isNaN(local) && local.getTimezoneOffset() !== 0) {{
      var shown = local.toLocaleString([], {{ dateStyle: "medium", timeStyle: "short" }});
      document.getElementById("local-time").textContent = "(" + shown + " your time)";
    }}
  }}
  function check() {{
    fetch(statusUrl, {{ cache: "no-store", headers: {{ Accept: "application/json" }} }})
      .then(function (r) {{ return r.ok ? r.json() : null; }})
      .then(function (s) {{
        var over = s && (feature ? s.features.indexOf(feature) < 0 : (!s.active || s.mode === "banner"));
        if (over) {{ location.replace(location.href); }}
        else {{ setTimeout(check, 4000 + Math.random() * 2000); }}
      }})
      .catch(function () {{ setTimeout(check, 8000); }});
  }}
  setTimeout(check, 4000 + Math.random() * 2000);
}})();
</script>
</body>
</html>
"""
