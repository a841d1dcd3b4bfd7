"""Faults the local ICE injects on purpose: latency, throttling, 5xx, lost or late answers, dropped
callbacks, slow jobs and failed jobs.

Throttling answers ``Throttling.User`` (HTTP 400, no ``x-acs-retry-after``, so the SDK raises a
``ClientException``): "Request was denied due to user flow control." Each action has a token
bucket of capacity ``max(1, limit)`` refilled at ``limit`` per second; refused calls take no token.
Injected 5xx: ``InternalError`` (500). Both happen before the action runs, so they change no state.

The answer faults happen after the action ran, whatever it answered; they model a response lost
in the network or a service slower than the client's read timeout, where the work IS done:

* ``lose_answers={"SubmitSnapshotJob": 1}``: the next 1 answer of that action is lost (a count per
  action that goes down as answers are lost); ``lose_answer_rates={"SubmitSnapshotJob": 0.2}``
  loses each answer with that chance (the fault RNG). The server closes the connection without
  writing a response: the SDK raises a network error (``Tea.exceptions.UnretryableException``).
* ``answer_delay_s={"SubmitSnapshotJob": 12}``: the answer is written that many seconds late.

``fail_jobs={"code": "InternalError", "message": "...", "count": 2}``: the next ``count`` jobs a
worker processes finish ``Fail`` with that ``Code``/``Message`` and cut no frames, as a job does
when the service fails it server-side. ``message`` is optional (ICE's own wording for
``InternalError``, a generic one otherwise) and ``count`` defaults to 1. Bad input keeps failing the
way the engine finds it (``InvalidInput.*``, ``InvalidParameter.*``, ``ResourceNotFound``).
"""

from __future__ import annotations

import copy
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from localcloud.ice.models import IceError

INTERNAL_ERROR_MESSAGE = "The request processing has failed due to some unknown error, exception or failure."
_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)*$")


class AnswerLost(Exception):
    """The action ran, and its answer must never reach the client (``lose_answers``)."""


@dataclass
class Faults:
    """What goes wrong on purpose. All zero/empty: nothing does."""

    qps_limits: dict[str, float] = field(default_factory=dict)
    error_rate: float = 0.0
    latency_s: float = 0.0
    callback_drop_rate: float = 0.0
    job_delay_s: float = 0.0
    lose_answers: dict[str, int] = field(default_factory=dict)
    lose_answer_rates: dict[str, float] = field(default_factory=dict)
    answer_delay_s: dict[str, float] = field(default_factory=dict)
    fail_jobs: dict[str, Any] = field(default_factory=dict)

    def validated(self) -> Faults:
        _check_per_action("qps_limits", self.qps_limits, lambda v: v > 0, "limits > 0 calls per second")
        _check_per_action("lose_answers", self.lose_answers, lambda v: isinstance(v, int) and v >= 0,
                          "counts >= 0")
        _check_per_action("lose_answer_rates", self.lose_answer_rates, lambda v: 0 <= v <= 1,
                          "chances between 0 and 1")
        _check_per_action("answer_delay_s", self.answer_delay_s, lambda v: v >= 0, "delays >= 0 seconds")
        for name in ("error_rate", "callback_drop_rate"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("latency_s", "job_delay_s"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0")
        self.fail_jobs = _job_failure(self.fail_jobs)
        return self


def _check_per_action(name: str, value: Any, valid: Callable[[float], bool], what: str) -> None:
    if not isinstance(value, dict) or any(
            not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)) or not valid(v)
            for k, v in value.items()):
        raise ValueError(f"{name} must map action names to {what}")


def _job_failure(spec: Any) -> dict[str, Any]:
    """``fail_jobs`` checked and completed: {} (off) or {"code", "message", "count"}."""
    if not isinstance(spec, dict) or set(spec) - {"code", "message", "count"}:
        raise ValueError('fail_jobs must be {} or {"code": ..., "message": ... (optional), "count": n (optional)}')
    if not spec:
        return {}
    code, count = spec.get("code"), spec.get("count", 1)
    if not isinstance(code, str) or not _ERROR_CODE.match(code):
        raise ValueError(f"fail_jobs.code must be an ICE error code such as InternalError, got {code!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"fail_jobs.count must be an integer >= 0, got {count!r}")
    default = INTERNAL_ERROR_MESSAGE if code == "InternalError" else f"The job failed with {code}."
    message = spec.get("message", default)
    if not isinstance(message, str):
        raise ValueError("fail_jobs.message must be a string")
    return {"code": code, "message": message, "count": count} if count else {}


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
    """Holds the faults in force and applies them: per call (:meth:`gate` before the action,
    :meth:`settle` after it) and per job (:meth:`take_job_failure`). ``sleep`` waits out latency."""

    FIELDS = tuple(f.name for f in fields(Faults))

    def __init__(self, faults: Faults, seed: int | None = None,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._sleep = sleep
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
            # A deep copy: the counts go down in place, never in the caller's dicts.
            merged = Faults(**copy.deepcopy({**asdict(self._faults), **changes})).validated()
            if "qps_limits" in changes:
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
            return self._chance(rate)

    def _chance(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def gate(self, action: str) -> None:
        """Before ``action`` runs: latency, then throttling, then an injected 5xx."""
        faults = self.faults
        if faults.latency_s:
            self._sleep(faults.latency_s)
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
            raise IceError("InternalError", INTERNAL_ERROR_MESSAGE, 500)

    def settle(self, action: str) -> None:
        """After ``action`` ran: raise :class:`AnswerLost` if its answer is to be lost, else wait out
        its ``answer_delay_s``."""
        with self._lock:
            lost = self._take_count(self._faults.lose_answers, action) or self._chance(
                self._faults.lose_answer_rates.get(action, 0.0))
            delay = self._faults.answer_delay_s.get(action, 0.0)
        if lost:
            raise AnswerLost(action)
        if delay:
            self._sleep(delay)

    def take_job_failure(self) -> tuple[str, str] | None:
        """(Code, Message) the next job must fail with under ``fail_jobs``, or None; counts it down."""
        with self._lock:
            failure = self._faults.fail_jobs
            if not failure:
                return None
            failure["count"] -= 1
            if failure["count"] <= 0:
                self._faults.fail_jobs = {}
            return failure["code"], failure["message"]

    @staticmethod
    def _take_count(counts: dict[str, int], action: str) -> bool:
        left = counts.get(action, 0)
        if left > 0:
            counts[action] = left - 1
        return left > 0
