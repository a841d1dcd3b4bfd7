"""Fault switches for the local OSS: lost answers, errors and latency, for the next N matching requests.

A rule matches an authenticated request by HTTP method (any, if None) and key prefix ("" matches
every request, bucket-level ones too, whose key is ""), and is spent after ``count`` matches:

* ``lose``: the request is performed, then the connection is closed without an answer. oss2 raises
  :class:`oss2.exceptions.RequestError` (status -2); the write took effect (and notified).
* ``fail``: answered 500 InternalError without doing the work (oss2 raises ServerError).
* ``delay``: the request waits ``seconds`` before it is performed.

What a test sees through oss2: a plain ``Bucket`` call never retries; a RequestError or
ServerError reaches the caller at once. oss2's listing iterators (``ObjectIterator``...) retry a
page on a 5xx ServerError up to ``oss2.defaults.request_retries`` (3) times, so a ``fail`` with
count < 3 is absorbed there; they do not retry a RequestError. The resumable helpers
(``oss2.resumable_upload``...) have retries of their own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from localcloud.oss.wire import OssRequest


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


class OssFaults:
    """The armed rules, oldest first; the first rule that matches a request is spent on it."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

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
        with self._lock:
            self._faults.clear()

    def take(self, req: OssRequest) -> Fault | None:
        """The rule this request spends, if any."""
        with self._lock:
            fault = next((f for f in self._faults if f.matches(req)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            return fault

    def _arm(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError(f"a fault needs count >= 1, not {fault.remaining}")
        with self._lock:
            self._faults.append(fault)


def _method(method: str | None) -> str | None:
    return None if method is None else method.upper()
