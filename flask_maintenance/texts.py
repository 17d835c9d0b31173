"""What the built-in answers say, in each language of the message catalog.

The catalog is plain data: one JSON file per language in ``flask_maintenance/catalog/``, shipped
in the wheel as package data, each with the same keys as ``en.json``. A translator edits a file;
no code changes. Each file is read once, on first use, and kept.
"""

from __future__ import annotations

import functools
import json

from .values import Value, assign

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .model import State

#: The languages of the catalog (``Content-Language`` values), English first: the default.
LANGUAGES = ("en", "de", "ko", "ja", "fr", "es", "pt", "zh-Hans")
DEFAULT_LANGUAGE = LANGUAGES[0]


class Texts(Value):
    """One language's texts. ``{placeholders}`` are filled with :meth:`str.format`.

    Made with ``language`` and every other field by keyword, as each catalog file holds them.
    """

    _fields = __match_args__ = (
        "language",
        "full_title",
        "readonly_title",
        "feature_title",
        "full_detail",
        "readonly_detail",
        "feature_detail",
        "try_again",
        "overdue",
        "back_by",
        "your_time",
        "reload_hint",
        "auto_reload",
        "write_wait",
        "follow_updates",
        "not_saved_title",
        "not_saved_detail",
        "go_back",
        "back_again",
        "second",
        "minute",
        "hour",
        "banner",
        "banner_scheduled",
        "banner_scheduled_until",
    )
    __slots__ = _fields
    language: str
    full_title: str
    readonly_title: str
    #: ``{feature}``: the feature's name.
    feature_title: str
    full_detail: str
    readonly_detail: str
    feature_detail: str
    #: ``{duration}``: :meth:`duration`.
    try_again: str
    overdue: str
    #: ``{time}``: the expected end.
    back_by: str
    #: ``{time}``: the expected end in the visitor's time zone (filled in by the page's script).
    your_time: str
    reload_hint: str
    auto_reload: str
    #: What a refused write's page says while it waits (it never reloads itself).
    write_wait: str
    follow_updates: str
    not_saved_title: str
    not_saved_detail: str
    go_back: str
    back_again: str
    #: ``[one, other]`` forms with ``{n}``.
    second: tuple[str, str]
    minute: tuple[str, str]
    hour: tuple[str, str]
    #: The banner while on without a message.
    banner: str
    #: The banner announcing a window: ``{start}`` (and ``{end}``) as ``YYYY-MM-DD HH:MM``.
    banner_scheduled: str
    banner_scheduled_until: str

    def __init__(self, language: str, **values: str | tuple[str, str]) -> None:
        missing = set(self._fields[1:]) - set(values)
        unknown = set(values) - set(self._fields)
        if missing or unknown:
            raise TypeError(f"Texts() needs every text: missing {sorted(missing)}, unknown {sorted(unknown)}")
        assign(self, "language", language)
        for name, value in values.items():
            assign(self, name, value)

    def duration(self, seconds: int) -> str:
        """About how long ``seconds`` is, in words: seconds up to 90, then minutes, then hours."""
        if seconds < 90:
            amount, forms = max(seconds, 1), self.second
        elif round(seconds / 60) < 90:
            amount, forms = round(seconds / 60), self.minute
        else:
            amount, forms = round(seconds / 3600), self.hour
        return forms[0 if amount == 1 else 1].format(n=amount)


@functools.lru_cache(maxsize=len(LANGUAGES))  # thread-safe; at most one file read per language
def texts(language: str = DEFAULT_LANGUAGE) -> Texts:
    """The texts of one of :data:`LANGUAGES`.

    :raises ValueError: for a language the catalog does not have.
    """
    if language not in LANGUAGES:
        raise ValueError(f"the message catalog has no language {language!r}")
    # Through importlib, not open(): the package may be inside a zip archive. Imported here: only
    # pages read the catalog, never the console scripts, which must start fast.
    from importlib import resources

    catalog = resources.files(__package__).joinpath("catalog")
    raw = json.loads(catalog.joinpath(f"{language}.json").read_text("utf-8"))
    values = {name: raw[name] for name in Texts._fields[1:]}
    for plural in ("second", "minute", "hour"):
        values[plural] = tuple(values[plural])
    return Texts(language=language, **values)


def banner(state: State, language: str = DEFAULT_LANGUAGE, message: str | None = None) -> str | None:
    """What a banner says now, in ``language``: the message (``message``, a translation chosen
    for the visitor, else the main one) or the default while on, the announcement of a planned
    window before it starts, else ``None``."""
    if state.active:
        return message or state.message or texts(language).banner
    window = state.scheduled
    if window is None:
        return None
    words = texts(language)
    start = f"{window.starts_at:%Y-%m-%d %H:%M}"
    if window.ends_at is None:
        text = words.banner_scheduled.format(start=start)
    else:
        text = words.banner_scheduled_until.format(start=start, end=f"{window.ends_at:%Y-%m-%d %H:%M}")
    return f"{text}: {window.message}" if window.message else text
