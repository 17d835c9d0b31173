"""The built-in HTML pages: the 503 page and the notice of a bypass link that does not work.

Imported by :mod:`flask_maintenance.responses` when it first builds a page, which a web worker
does only once a state refuses requests: a worker that serves while off never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .responses import PAGE_CSP_SOURCES, PAGE_SCRIPT, PAGE_STYLE
from .times import format_instant

if TYPE_CHECKING:
    from .texts import Texts


@dataclass(frozen=True)
class Page:
    """What the built-in page shows; :meth:`render` makes its HTML, every value escaped."""

    words: Texts
    title: str
    detail: str
    retry_after: int
    ends_at: datetime | None
    overdue: bool
    status_url: str
    feature: str | None
    recovery_checks: Sequence[str]
    #: The modes in which the page's request is still refused: it reloads itself in the others.
    refused_in: tuple[str, ...]
    write: bool
    site_name: str | None
    status_page_url: str | None

    def render(self) -> str:
        words = self.words
        # The tab keeps the mode's title; the heading says what happened to the change.
        heading = words.not_saved_title if self.write else self.title
        attributes = {
            "data-status-url": self.status_url,
            "data-feature": self.feature,
            # Validated to hold no spaces (config.py): one attribute, split on spaces by the script.
            "data-checks": " ".join(self.recovery_checks) or None,
            # Only when it differs from the full page's, the common case.
            "data-refused-in": None if self.refused_in == ("full",) else " ".join(self.refused_in),
            "data-write": "" if self.write else None,
            "data-auto-reload": words.write_wait if self.write else words.auto_reload,
            "data-back-again": words.back_again,
            "data-your-time": words.your_time,
            "data-overdue": words.overdue,
        }
        lead = f'<p class="lead">{escape(words.not_saved_detail)}</p>\n' if self.write else ""
        back = (
            f'<p><button type="button" id="back" hidden>{escape(words.go_back)}</button></p>\n'
            if self.write
            else ""
        )
        updates = ""
        if self.status_page_url is not None:
            updates = (
                f'<p class="updates"><a href="{escape(self.status_page_url)}" rel="noopener noreferrer">'
                f"{escape(words.follow_updates)}</a></p>\n"
            )
        return _PAGE.format(
            language=words.language,
            title=escape(self.title if self.site_name is None else f"{self.title} · {self.site_name}"),
            site="" if self.site_name is None else f'<p class="site">{escape(self.site_name)}</p>\n',
            heading=escape(heading),
            attributes="".join(
                f' {name}="{escape(value)}"' if value else f" {name}"
                for name, value in attributes.items()
                if value is not None
            ),
            lead=lead,
            detail=paragraphs(self.detail),
            expected=self._expected(),
            back=back,
            updates=updates,
            live="" if self.write else escape(words.reload_hint),
        )

    def _expected(self) -> str:
        words = self.words
        again = escape(words.try_again.format(duration=words.duration(self.retry_after)))
        if self.overdue:  # never a time in the past
            return f"{escape(words.overdue)} {again}"
        if self.ends_at is None:
            return again
        iso = format_instant(self.ends_at)
        shown = self.ends_at.strftime("%Y-%m-%d %H:%M UTC")
        when = f'<time datetime="{iso}" data-local>{shown}</time>'
        return escape(words.back_by).format(time=when) + ' <span id="local-time"></span>'


#: http(s) addresses in a message, which the page shows as links.
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
# Punctuation that ends a sentence rather than an address.
_TRAILING = ".,;:!?)]}"


def _has_host(url: str) -> bool:
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:  # "http://[::1" and the like
        return False


def paragraphs(text: str) -> str:
    """A message as HTML: each line a paragraph, ``http(s)`` addresses as links, all escaped."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(f'<p class="detail">{_linked(line.strip())}</p>' for line in lines if line.strip())


def _linked(line: str) -> str:
    pieces = []
    done = 0
    for match in _URL.finditer(line):
        url = match.group(0)
        while url[-1] in _TRAILING and not (url[-1] == ")" and url.count("(") >= url.count(")")):
            url = url[:-1]
        if not _has_host(url):
            continue  # "http://" alone: text, not a link
        link = f'<a href="{escape(url)}" rel="noopener noreferrer nofollow">{escape(url)}</a>'
        pieces += [escape(line[done : match.start()]), link]
        done = match.start() + len(url)
    pieces.append(escape(line[done:]))
    return "".join(pieces)


# Self-contained on purpose: no stylesheet, script, font or image is fetched, so the page still
# shows when static files or a CDN are part of what is down. (Templates for str.format.)
_HEAD = (
    """<!doctype html>
<html lang="{language}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>"""
    + PAGE_STYLE.replace("{", "{{").replace("}", "}}")
    + """</style>
</head>
<body>
"""
)

_PAGE = (
    _HEAD
    + """<main role="main"{attributes}>
{site}<h1>{heading}</h1>
{lead}{detail}
<p class="expected">{expected}</p>
{back}{updates}<p class="live" id="live" aria-live="polite">{live}</p>
</main>
<script>"""
    + PAGE_SCRIPT.replace("{", "{{").replace("}", "}}")
    + """</script>
</body>
</html>
"""
)

#: The policy of :func:`~flask_maintenance.responses.link_refused`'s page: its inline style, nothing else.
NOTICE_CSP = (
    f"default-src 'none'; style-src {PAGE_CSP_SOURCES['style-src']}; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)

NOTICE = (
    _HEAD
    + """<main role="main">
<h1>{title}</h1>
<p class="detail">{detail}</p>
<p class="live"><a href="{home}">Go to the site</a></p>
</main>
</body>
</html>
"""
)
