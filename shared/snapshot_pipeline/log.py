"""Structured logs through the standard ``logging`` module: one JSON object per line on stdout,
which Function Compute ships to SLS.

- :func:`log` writes one record: an event name and plain fields.
- The invocation's request id (or a reconciler run's id) lives in a context variable set by
  :func:`request_context`, so every record of that invocation carries it without being passed by hand,
  and threads started with ``contextvars.copy_context()`` keep it.
- One record is one ``write`` of one line (JSON escapes newlines; the handler holds its lock while
  writing), so concurrent threads never merge two records on a line.
- Nothing secret: callers never pass secrets, and fields whose names say they are secrets are
  dropped here as a second line of defence.
"""
from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TextIO

LOGGER_NAME = "snapshot_pipeline"
SECRET_FIELD_WORDS = ("secret", "password", "auth_key", "token", "signature", "authorization")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


@contextlib.contextmanager
def request_context(request_id: str | None) -> Iterator[None]:
    """Every record logged inside carries ``request_id``."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "event", "request_id", ...fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": round(record.created, 3), "event": record.getMessage()}
        if record.levelno != logging.INFO:
            doc["level"] = record.levelname.lower()
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            doc["request_id"] = request_id
        fields = getattr(record, "fields", None) or {}
        doc.update({k: v for k, v in fields.items() if v is not None and not _is_secret(k)})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_FIELD_WORDS)


if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # not subscriptable at run time before Python 3.11
    _StreamHandler = logging.StreamHandler


class _StdoutHandler(_StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of each record (so a caller that redirects
    stdout, like the operator CLI or a test's capture, gets the records)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _configured_logger() -> logging.Logger:
    """The pipeline's logger with its one handler. Done once, at import (under the import lock): a
    check-then-add on first use could let two threads each add a handler, and every line would
    then be written twice."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:  # a re-import (importlib.reload) keeps the handler it already has
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the runtime's root handler would print each record a second time
    return logger


_LOGGER = _configured_logger()


def log(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """One structured record: ``event`` names what happened, ``fields`` say the details."""
    _LOGGER.log(level, event, extra={"fields": fields})


def seconds_since(started: float) -> float:
    """Seconds since a ``time.monotonic()`` reading, rounded for a log field."""
    return round(time.monotonic() - started, 4)
