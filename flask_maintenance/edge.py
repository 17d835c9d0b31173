"""Maintenance at the edge: a Cloudflare Worker that answers for the app, and the state it reads.

The Worker (``edge_worker.js``, with this app's settings and answers filled in) forwards every
request to the origin. While maintenance blocks it answers 503 itself, as the app would; when the
origin cannot answer it sends the page instead of an error. It learns the state from a KV
namespace (the document :func:`edge_document` makes), else from the app's status path.

What the Worker needs of the app is computed here, from the same objects the app uses (the
gate's path sets, the validated settings, the rendered answers), so that the edge decides a
request as the app does.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

from .accept import ACCEPT_ENTRIES, ACCEPT_PREFIX, JSON_TYPES
from .answer import MARKER_HEADER
from .bypass import MAX_ADDRESS_LENGTH
from .gate import SAFE_METHODS, Gate, PathSet
from .model import Plan, State, resolve
from .proxy import static_answer
from .rules import BLOCKING_MODES, MAX_SECONDS, MODES
from .times import INSTANT

#: How much of a ``Cookie`` header the Worker reads looking for the bypass cookie: four times what
#: most servers accept in one header (gunicorn and nginx: 8 KB).
MAX_COOKIE_HEADER = 32 * 1024
#: Where the settings go in the Worker's source.
_PLACEHOLDER = '"__SETTINGS__"'


def worker_source(gate: Gate, state: State, *, root: str, interval: int, now: datetime) -> str:
    """The Worker's ES module, for this app.

    :param state: the current state: its message and retry go into the embedded answers (the
        defaults when maintenance is off), as in ``render-page``.
    :param root: where the app is mounted on its site (``APPLICATION_ROOT``), without a slash
        at the end; the Worker sees the site's paths.
    :param interval: seconds between two reads of the status path by one isolate (without KV).
    """
    settings = gate.settings
    # The gate finds other extensions' open endpoints (``/metrics``) on its first decision.
    gate._find_open_endpoints()
    status_url = root + settings.status_path
    answers: dict[str, dict[str, Any]] = {}
    for kind in ("full", "readonly"):
        answers[kind] = {}
        for as_json in (False, True):
            answer = _answer(gate, state, root, now, kind == "readonly", as_json)
            answers[kind]["json" if as_json else "page"] = answer
    values = {
        "modes": MODES,
        "blockingModes": BLOCKING_MODES,
        "safeMethods": sorted(SAFE_METHODS),
        "instantPattern": INSTANT,
        "defaultRetry": settings.retry_after,
        "maxSeconds": MAX_SECONDS,
        "interval": interval,
        "statusPath": status_url,
        "openPaths": _site_paths(gate.open_paths, root),
        "apiPaths": _site_paths(gate.api_paths, root),
        "allowedNetworks": [
            [network.version, str(int(network.network_address)), network.prefixlen]
            for network in settings.allowed_networks
        ],
        "maxAddressLength": MAX_ADDRESS_LENGTH,
        "cookie": settings.bypass_cookie,
        "bypassHeader": settings.bypass_header,
        "maxCookieHeader": MAX_COOKIE_HEADER,
        "acceptPrefix": ACCEPT_PREFIX,
        "acceptEntries": ACCEPT_ENTRIES,
        "jsonTypes": JSON_TYPES,
        "marker": MARKER_HEADER,
        "answers": answers,
    }
    template = resources.files(__package__).joinpath("edge_worker.js").read_text("utf-8")
    # ASCII only, so the module reads the same whatever encoding the upload assumes.
    return template.replace(_PLACEHOLDER, json.dumps(values, indent=1, ensure_ascii=True), 1)


def _answer(
    gate: Gate, state: State, root: str, now: datetime, readonly: bool, as_json: bool
) -> dict[str, Any]:
    """One embedded answer, as ``render-page`` renders the page, with the app's headers."""
    answer = static_answer(state, gate.settings, root=root, now=now, readonly=readonly, as_json=as_json)
    return {"body": answer.body.decode("utf-8"), "headers": [list(header) for header in answer.headers]}


def _site_paths(paths: PathSet, root: str) -> dict[str, list[str]]:
    """A path set of the app as the site's paths (under ``root``), for the Worker."""
    return {
        "exact": sorted(root + path for path in paths.exact),
        "under": sorted(root + path for path in paths.under),
    }


def edge_document(lock: State, plan: Plan, now: datetime, default_retry: int) -> bytes:
    """The state document for the Worker's KV namespace: the lock file's document, plus
    ``active`` (``false`` while off) and ``scheduled`` (the planned window, if any).

    A plan that cannot be read gives full maintenance, as the app reads it then.
    """
    if plan.damage is not None:
        lock = resolve(lock, plan, now, default_retry)
        plan = Plan()
    data: dict[str, Any] = json.loads(lock.to_json()) if lock.active else {}
    # The Worker needs neither: the origin checks bypass cookies against its own lock.
    data.pop("token_hash", None)
    data.pop("window", None)
    data["active"] = lock.active
    if plan.schedule is not None:
        data["scheduled"] = plan.schedule.to_dict()
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
