"""Immutable values without :mod:`dataclasses`: the base of the state, the plan and their parts.

``flask-maintenance-guard`` and the ``flask-maintenance`` switch import these values, and must
start fast on a machine starved of CPU: building a frozen dataclass costs more than the rest of
either command (it imports :mod:`inspect` and generates code with ``exec``). A subclass names its
fields in ``_fields`` (a public one in ``__match_args__`` too), in the constructor's order, and
sets them in its ``__init__`` with :func:`assign`; this base gives it what a frozen dataclass
had: equality and a hash over those fields, the same ``repr``, assignment refused,
:meth:`Value.replace`, copies and pickles rebuilt by the constructor, weak references, and
positional patterns (``case Feature(name, message)``).
"""

from __future__ import annotations

from types import MappingProxyType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    V = TypeVar("V", bound="Value")

#: Sets an attribute of a value under construction (the values' own ``__setattr__`` refuses).
assign = object.__setattr__


class Value:
    """An immutable value: compared, hashed and shown by its fields."""

    __slots__ = ("__weakref__",)  # weak references, as a dataclass took them
    #: The fields, in the constructor's order: compared, hashed and copied by :meth:`replace`.
    _fields: tuple[str, ...] = ()
    #: Fields left out of the ``repr`` (still compared).
    _unshown: tuple[str, ...] = ()

    def replace(self: V, **changes: Any) -> V:
        """A copy with the fields named in ``changes`` changed, made by the constructor (so it
        checks and derives what it always does)."""
        return type(self)(**{**self._keywords(), **changes})

    __replace__ = replace  # copy.replace() (Python 3.13)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def _keywords(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self._fields if name not in self._unshown
        )
        return f"{type(self).__qualname__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Callable[..., Value], tuple[Any, ...]]:
        # copy and pickle rebuild through the constructor, as replace() does (by keyword: some
        # constructors take nothing else): the slots cannot be set from outside. A read-only
        # mapping travels as a dict, since pickle cannot take a mappingproxy, and is one again.
        fields = self._keywords()
        views = tuple(name for name, value in fields.items() if isinstance(value, MappingProxyType))
        return _rebuild, (type(self), {**fields, **{name: dict(fields[name]) for name in views}}, views)


def _rebuild(cls: type[V], fields: dict[str, Any], views: tuple[str, ...]) -> V:
    return cls(**{**fields, **{name: MappingProxyType(fields[name]) for name in views}})
