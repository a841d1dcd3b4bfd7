"""Request counters of the local services: how many calls of each action a run made (benchmarks
report one reconciler run's ICE calls and OSS requests with them)."""
from __future__ import annotations

import threading
from collections import Counter


class RequestCounts:
    """A thread-safe count of requests per action; :meth:`snapshot` reads it, :meth:`reset` zeroes it."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, action: str) -> None:
        with self._lock:
            self._counts[action] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
