"""Reading a request's ``Accept`` header: whether the client prefers JSON to HTML.

Bounded for hostile headers and remembered for the headers clients really send, because the
fast path reads it on every refusal.
"""

from __future__ import annotations

import functools
import re

#: How much of an Accept header is looked at, and how many look-alikes of one range are skipped
#: at most: a hostile header of any length costs no more than a browser's.
ACCEPT_PREFIX = 512
ACCEPT_ENTRIES = 32
#: How many distinct Accept headers :data:`accepts_json` remembers.
ACCEPT_CACHE_SIZE = 256
JSON_TYPES = ("application/json", "application/problem+json")
_QUALITY = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def prefers_json(accept: str | None) -> bool:
    """Whether an Accept header prefers JSON over HTML.

    Hand-written rather than Werkzeug's ``parse_accept_header``, which costs milliseconds on a
    hostile 8 KB header: only the first :data:`ACCEPT_PREFIX` characters are read, and only for
    the few ranges that matter, each found by one C-speed ``str.find``. As in RFC 9110, the most
    specific range that covers a type gives its quality.
    """
    if not accept:
        return False
    accept = (accept if len(accept) <= ACCEPT_PREFIX else accept[:ACCEPT_PREFIX]).lower()
    # Cheap first look: most browsers and crawlers never mention JSON.
    if "json" not in accept and "application/*" not in accept:
        return False
    qualities = [q for q in (_range_quality(accept, media) for media in JSON_TYPES) if q is not None]
    json_quality = max(qualities) if qualities else None
    if json_quality is None:
        json_quality = _range_quality(accept, "application/*")
    html_quality = _range_quality(accept, "text/html")
    if html_quality is None:
        html_quality = _range_quality(accept, "text/*")
    anything = _range_quality(accept, "*/*")
    json_quality = anything if json_quality is None else json_quality
    html_quality = anything if html_quality is None else html_quality
    return (json_quality or 0.0) > (html_quality or 0.0)


#: :func:`prefers_json`, remembered for the last :data:`ACCEPT_CACHE_SIZE` distinct headers: how
#: the hot path reads ``Accept``, as ``accepts_json(accept[:ACCEPT_PREFIX])``. The caller cuts the
#: header to the part :func:`prefers_json` reads before it is hashed (a C-level slice, no copy
#: for a usual header), so a hostile header costs a bounded hash, and a client that varies its
#: header one bounded parse per request. Clients send a handful of distinct headers, so nearly
#: every request costs one C call: lru_cache is thread-safe, bounded, and a hit runs no Python.
accepts_json = functools.lru_cache(maxsize=ACCEPT_CACHE_SIZE)(prefers_json)


def _range_quality(accept: str, media: str) -> float | None:
    """The quality of the first range that is exactly ``media``, or ``None`` if there is none."""
    start = 0
    for _ in range(ACCEPT_ENTRIES):
        found = accept.find(media, start)
        if found < 0:
            return None
        end = found + len(media)
        if (found == 0 or accept[found - 1] in ", \t") and accept[end : end + 1] in ("", ",", ";", " ", "\t"):
            parameters_end = accept.find(",", end)
            return quality(accept[end : parameters_end if parameters_end >= 0 else len(accept)])
        start = end
    return None


def quality(parameters: str) -> float:
    """The ``q`` of a media range's parameters: 1 when absent, 0 when unreadable."""
    for parameter in parameters.split(";", 4)[:4]:
        name, _, value = parameter.partition("=")
        if name.strip() == "q":
            match = _QUALITY.fullmatch(value.strip())
            return float(match.group(0)) if match else 0.0
    return 1.0
