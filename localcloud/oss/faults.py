"""Fault switches for the local OSS: errors, latency and lost answers, by chance or for the next N requests.

**Rate switches** (:class:`RateFaults`, like the local ICE's: ``up --oss-error-rate P --oss-latency S
--oss-drop-response-rate P --fault-seed N``, ``POST /__localcloud/faults`` on the OSS port,
:meth:`OssFaults.set_rates`), drawn from one seeded RNG, one draw after another per request:

* ``latency_s``: every request waits that long before it is performed.
* ``error_rate``: that share of requests is answered 500 ``InternalError`` or 503
  ``ServiceUnavailable`` (half each) without being performed.
* ``drop_response_rate``: that share of the others is performed (and notified), then the
  connection is closed without an answer, as a lost response would be.
* ``methods`` (HTTP methods, empty: all) and ``key_prefix`` limit the requests they apply to.

They spare the local ICE's own requests (its reads of inputs and writes of outputs: the User-Agent
ends with ``localcloud-ice``, see ``localcloud/ice/rangefile.py``): on Alibaba Cloud ICE reaches OSS
inside the region, and a job failing on OSS is the ICE switch ``fail_jobs``' business, not the
network between the pipeline and OSS that these switches model.

**Count rules** (:meth:`OssFaults.lose_answers`, ``fail_requests``, ``delay_requests``) apply to
the next ``count`` requests matching an HTTP method (any, if None) and key prefix, the local ICE's
too, and take precedence over the rates:

* ``lose``: the request is performed, then the connection is closed without an answer. oss2 raises
  :class:`oss2.exceptions.RequestError` (status -2); the write took effect (and notified).
* ``fail``: answered 500 InternalError without doing the work (oss2 raises ServerError).
* ``delay``: the request waits ``seconds`` before it is performed.

A key prefix matches on the object key; a bucket-level request (a listing) has the key "", which
only the prefix "" matches. What a test sees through oss2: a plain ``Bucket`` call never retries; a
RequestError or ServerError reaches the caller at once. oss2's listing iterators
(``ObjectIterator``...) retry a page on a 5xx ServerError up to ``oss2.defaults.request_retries``
(3) times; they do not retry a RequestError. The resumable helpers have retries of their own.
"""

from __future__ import annotations

import collections
import random
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from localcloud.oss.wire import OssError, OssRequest

#: The last part of the local ICE's User-Agent; the rate switches spare its requests.
SPARED_CLIENT = "localcloud-ice"
_NOT_PERFORMED = "LocalOss fault: the request failed and was not performed."


@dataclass(frozen=True)
class Plan:
    """What a request gets: a wait before it is performed, an error instead, or its answer lost after."""

    delay_s: float = 0.0
    error: OssError | None = None
    lose_answer: bool = False


NO_FAULT = Plan()


@dataclass
class Fault:
    """One armed rule: what to do (``lose``, ``fail``, ``delay``) to the next ``remaining`` matches."""

    kind: str
    method: str | None
    key_prefix: str
    remaining: int
    seconds: float = 0.0

    def matches(self, req: OssRequest) -> bool:
        return (self.method is None or self.method == req.method) and req.key.startswith(self.key_prefix)

    def plan(self) -> Plan:
        if self.kind == "lose":
            return Plan(lose_answer=True)
        if self.kind == "fail":
            return Plan(error=OssError(500, "InternalError", _NOT_PERFORMED))
        return Plan(delay_s=self.seconds)


@dataclass(frozen=True)
class RateFaults:
    """The rate switches in force. All zero: nothing happens."""

    error_rate: float = 0.0
    latency_s: float = 0.0
    drop_response_rate: float = 0.0
    methods: tuple[str, ...] = ()
    key_prefix: str = ""

    @classmethod
    def of(cls, values: dict[str, Any]) -> RateFaults:
        """Checked: rates between 0 and 1, a latency >= 0, methods a list of HTTP method names."""
        for name in ("error_rate", "drop_response_rate", "latency_s"):
            value = values.get(name, 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
                    name != "latency_s" and value > 1):
                raise ValueError(f"{name} must be {'>= 0 seconds' if name == 'latency_s' else 'between 0 and 1'}"
                                 f", not {value!r}")
        methods, prefix = values.get("methods", ()), values.get("key_prefix", "")
        if isinstance(methods, str) or not all(isinstance(m, str) and m.isalpha() for m in methods):
            raise ValueError(f'methods must be a list of HTTP methods such as ["PUT", "POST"], not {methods!r}')
        if not isinstance(prefix, str):
            raise ValueError(f"key_prefix must be a string, not {prefix!r}")
        return cls(float(values.get("error_rate", 0.0)), float(values.get("latency_s", 0.0)),
                   float(values.get("drop_response_rate", 0.0)), tuple(m.upper() for m in methods), prefix)

    def apply_to(self, req: OssRequest) -> bool:
        spared = req.headers.get("user-agent", "").rsplit("/", 1)[-1] == SPARED_CLIENT
        return (not spared and (not self.methods or req.method in self.methods)
                and req.key.startswith(self.key_prefix))

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), methods=list(self.methods))


RATE_FIELDS = tuple(f.name for f in fields(RateFaults))


class OssFaults:
    """The rate switches and the armed rules (oldest first; the first rule a request matches is spent on it)."""

    def __init__(self, seed: int | None = None) -> None:
        self._faults: list[Fault] = []
        self._rates = RateFaults()
        self._rng = random.Random(seed)
        self._injected: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def set_rates(self, seed: int | None = None, **changes: Any) -> None:
        """Change the given rate switches (the others stay); ``seed`` reseeds the fault RNG."""
        unknown = sorted(set(changes) - set(RATE_FIELDS))
        if unknown:
            raise ValueError(f"unknown OSS fault(s) {', '.join(unknown)}; known: seed, {', '.join(RATE_FIELDS)}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an integer, not {seed!r}")
        with self._lock:
            self._rates = RateFaults.of(dict(self._rates.to_dict(), **changes))
            self._injected.clear()
            if seed is not None:
                self._rng.seed(seed)

    def rates(self) -> dict[str, Any]:
        with self._lock:
            return self._rates.to_dict()

    def lose_answers(self, *, method: str | None = None, key_prefix: str = "", count: int = 1) -> None:
        """Perform the next ``count`` matching requests, then close the connection without answering."""
        self._arm(Fault("lose", _method(method), key_prefix, count))

    def fail_requests(self, *, method: str | None = None, key_prefix: str = "", count: int = 1) -> None:
        """Answer the next ``count`` matching requests 500 InternalError, without performing them."""
        self._arm(Fault("fail", _method(method), key_prefix, count))

    def delay_requests(self, seconds: float, *, method: str | None = None, key_prefix: str = "",
                       count: int = 1) -> None:
        """Hold the next ``count`` matching requests for ``seconds`` before performing them."""
        self._arm(Fault("delay", _method(method), key_prefix, count, seconds))

    def clear_faults(self) -> None:
        """Disarm every rule and turn every rate switch off."""
        with self._lock:
            self._faults.clear()
            self._rates = RateFaults()
            self._injected.clear()

    def plan(self, req: OssRequest) -> Plan:
        """What this request gets: the rule it spends, if any, else what the rate switches draw."""
        with self._lock:
            fault = next((f for f in self._faults if f.matches(req)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault.plan()
            plan = self._draw(req)
            happened = {"delayed": plan.delay_s > 0, "failed": plan.error is not None, "lost": plan.lose_answer}
            self._injected.update(kind for kind, happens in happened.items() if happens)
            return plan

    def injected(self) -> dict[str, int]:
        """How many requests the rate switches delayed, failed and lost the answers of, since last set."""
        with self._lock:
            return {kind: self._injected[kind] for kind in ("delayed", "failed", "lost")}

    def _draw(self, req: OssRequest) -> Plan:
        rates = self._rates
        if not rates.apply_to(req):
            return NO_FAULT
        plan = replace(NO_FAULT, delay_s=rates.latency_s)
        if self._chance(rates.error_rate):
            unavailable = self._rng.random() < 0.5
            return replace(plan, error=OssError(503, "ServiceUnavailable", _NOT_PERFORMED) if unavailable
                           else OssError(500, "InternalError", _NOT_PERFORMED))
        return replace(plan, lose_answer=self._chance(rates.drop_response_rate))

    def _chance(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def _arm(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError(f"a fault needs count >= 1, not {fault.remaining}")
        with self._lock:
            self._faults.append(fault)


def _method(method: str | None) -> str | None:
    return None if method is None else method.upper()
