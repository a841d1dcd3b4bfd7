"""Retries that end: exponential backoff with full jitter, within the invocation's time.

Throttling, 5xx and connection failures are tried again until the function's remaining
time would not allow another attempt; then the last error is raised so Function Compute
retries the whole invocation. ``sleep``, ``clock`` and ``random`` are injected, so tests
of throttling run instantly and deterministically.
"""
from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Deadline:
    """The invocation's time budget: ``at`` is a ``clock()`` value; ``reserve_s`` is kept for the
    work after the last retry (writing a record, answering)."""

    at: float
    clock: Callable[[], float] = time.monotonic
    reserve_s: float = 1.0

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic, reserve_s: float = 1.0) -> Deadline:
        return cls(clock() + seconds, clock, reserve_s)

    def remaining(self) -> float:
        return self.at - self.clock() - self.reserve_s


@dataclass
class RetryPolicy:
    """Full jitter: after the n-th failure a call waits ``random() * min(cap_s, base_s * 2**(n-1))``;
    after its n-th refusal by the rate limit (``throttled``), ``random() * min(throttled_cap_s, ...)``.
    Failures and refusals are counted apart.

    Why: a QPS limit is a budget refilled every second and a refused call did nothing, so it may
    succeed a second later, and refusals say nothing about the service failing; a long sleep only
    leaves the budget unused. After a burst of 1000 uploads against a 50 QPS limit, the last submits
    slept up to the 5 s cap (after many refusals, or one 5xx after them) while tokens went unspent:
    4 s of a 27 s burst (``make bench``, burst section)."""

    base_s: float = 0.2
    cap_s: float = 5.0
    throttled_cap_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = field(default_factory=lambda: _random.random)

    def call(self, operation: Callable[[], T], *, deadline: Deadline, retryable: Callable[[Exception], bool],
             on_retry: Callable[[int, Exception, float], None] | None = None,
             throttled: Callable[[Exception], bool] = lambda exc: False) -> T:
        attempt = 0
        failed = {False: 0, True: 0}  # failures and refusals (throttled) so far
        while True:
            attempt += 1
            try:
                return operation()
            except Exception as exc:
                if not retryable(exc):
                    raise
                refused = throttled(exc)
                failed[refused] += 1
                cap = self.throttled_cap_s if refused else self.cap_s
                delay = self.random() * min(cap, self.base_s * (2 ** (failed[refused] - 1)))
                if deadline.remaining() < delay:
                    raise
                if on_retry:
                    on_retry(attempt, exc, delay)
                self.sleep(delay)
