"""Refusals as Prometheus metrics, when ``prometheus_client`` is installed (the ``metrics`` extra).

- ``flask_maintenance_refused_total{mode,kind}``: requests this process refused, fast path
  included; ``mode`` is ``full``, ``readonly`` or ``feature`` (a feature switched off on its own),
  ``kind`` is ``page`` or ``json`` (the kind of answer), or ``socket`` (a Socket.IO event).
- ``flask_maintenance_active``: 1 while maintenance is on (in any mode) for an app of this process.

They are read from the gates' own counters when Prometheus scrapes, so they add nothing to any
request. Like every custom collector, they are per process: prometheus_client's multiprocess
mode (``PROMETHEUS_MULTIPROC_DIR``) does not aggregate them.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .gate import Gate

_gates: weakref.WeakSet[Gate] = weakref.WeakSet()
_registered = False
_lock = threading.Lock()


def watch(gate: Gate) -> None:
    """Include ``gate`` in the metrics; register them with prometheus_client the first time."""
    global _registered
    _gates.add(gate)
    with _lock:
        if _registered:
            return
        try:
            from prometheus_client.core import REGISTRY
        except ImportError:
            return  # the metrics extra is not installed: nothing to expose them through
        REGISTRY.register(_Collector())
        _registered = True


class _Collector:
    def describe(self) -> Iterator[Any]:
        return self._families(with_values=False)

    def collect(self) -> Iterator[Any]:
        return self._families(with_values=True)

    def _families(self, *, with_values: bool) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        refused = CounterMetricFamily(
            "flask_maintenance_refused", "Requests refused for maintenance", labels=["mode", "kind"]
        )
        active = 0
        if with_values:
            totals: Counter[tuple[str, str]] = Counter()
            for gate in list(_gates):
                totals.update(gate.refusal_counts())
                active = max(active, int(gate.cache.get().active))
            for (mode, kind), count in sorted(totals.items()):
                refused.add_metric([mode, kind], count)
        yield refused
        yield GaugeMetricFamily(
            "flask_maintenance_active", "1 while maintenance is on (any mode), else 0", value=active
        )
