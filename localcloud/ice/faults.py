"""Faults the local ICE injects on purpose: latency, throttling, 5xx, dropped callbacks, slow jobs.

Throttling answers ``Throttling.User`` (HTTP 400, no ``x-acs-retry-after``, so the SDK raises a
``ClientException``): "Request was denied due to user flow control." Each action has a token
bucket of capacity ``max(1, limit)`` refilled at ``limit`` per second; refused calls take no token.
Injected 5xx: ``InternalError`` (500).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from localcloud.ice.models import IceError


@dataclass
class Faults:
    """What goes wrong on purpose. All zero/empty: nothing does."""

    qps_limits: dict[str, float] = field(default_factory=dict)
    error_rate: float = 0.0
    latency_s: float = 0.0
    callback_drop_rate: float = 0.0
    job_delay_s: float = 0.0

    def validated(self) -> Faults:
        if not isinstance(self.qps_limits, dict) or any(
                not isinstance(k, str) or not isinstance(v, (int, float)) or v <= 0
                for k, v in self.qps_limits.items()):
            raise ValueError("qps_limits must map action names to limits > 0 calls per second")
        for name in ("error_rate", "callback_drop_rate"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("latency_s", "job_delay_s"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0")
        return self


class _TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class FaultInjector:
    """Holds the faults in force and applies the per-call ones (latency, throttling, 5xx)."""

    FIELDS = tuple(f.name for f in fields(Faults))

    def __init__(self, faults: Faults, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._faults = faults.validated()
        self._buckets: dict[str, _TokenBucket] = {}

    @property
    def faults(self) -> Faults:
        with self._lock:
            return Faults(**asdict(self._faults))

    def update(self, seed: int | None = None, **changes: Any) -> None:
        unknown = sorted(set(changes) - set(self.FIELDS))
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: seed, {', '.join(self.FIELDS)}")
        with self._lock:
            merged = Faults(**{**asdict(self._faults), **changes}).validated()
            if "qps_limits" in changes:
                merged.qps_limits = dict(merged.qps_limits)
                self._buckets.clear()
            self._faults = merged
            if seed is not None:
                self._rng.seed(seed)

    def clear(self) -> None:
        with self._lock:
            self._faults = Faults()
            self._buckets.clear()

    def chance(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def gate(self, action: str) -> None:
        faults = self.faults
        if faults.latency_s:
            time.sleep(faults.latency_s)
        limit = faults.qps_limits.get(action)
        if limit:
            with self._lock:
                bucket = self._buckets.get(action)
                if bucket is None or bucket.rate != limit:
                    bucket = self._buckets[action] = _TokenBucket(limit)
                allowed = bucket.take()
            if not allowed:
                raise IceError("Throttling.User", "Request was denied due to user flow control.", 400)
        if self.chance(faults.error_rate):
            raise IceError("InternalError", "The request processing has failed due to some unknown error, "
                                            "exception or failure.", 500)
