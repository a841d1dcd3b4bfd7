"""The local OSS's admin endpoint: its fault switches over HTTP, under ``/__localcloud/`` on the OSS port.

Not part of OSS (no bucket can have that name): no signature, loopback clients only, JSON in and
out, like the local ICE's (``localcloud/ice/admin.py``):

* ``GET /__localcloud/faults``: the rate switches in force (``error_rate``, ``latency_s``,
  ``drop_response_rate``, ``methods``, ``key_prefix``; see :mod:`localcloud.oss.faults`).
* ``POST /__localcloud/faults`` with some of those keys, and ``seed`` to reseed the fault RNG:
  changes them and answers the switches now in force.

A body that is not a JSON object, or has the wrong keys or values, answers 400 ``{"error": ...}``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from werkzeug.wsgi import get_input_stream

from localcloud.admin_json import json_object
from localcloud.oss.faults import OssFaults
from localcloud.oss.wire import Environ

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication

PREFIX = "/__localcloud/"


class AdminApp:
    """WSGI middleware: answers ``PREFIX`` calls itself and hands every other request to ``inner``."""

    def __init__(self, inner: WSGIApplication, faults: OssFaults) -> None:
        self._inner = inner
        self._faults = faults

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self._inner(environ, start_response)
        status, payload = self._answer(environ["REQUEST_METHOD"], path[len(PREFIX):], environ)
        body = json.dumps(payload).encode()
        start_response(f"{status} {HTTPStatus(status).phrase}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _answer(self, method: str, name: str, environ: Environ) -> tuple[int, Any]:
        address = environ.get("REMOTE_ADDR", "")
        if not (address == "::1" or address.startswith("127.")):
            return 403, {"error": "the admin endpoint answers loopback clients only"}
        if name != "faults" or method not in ("GET", "POST"):
            return 404, {"error": f"unknown admin call {method} {PREFIX}{name}"}
        if method == "POST":
            try:
                self._faults.set_rates(**json_object(get_input_stream(environ).read()))
            except (ValueError, TypeError) as exc:
                return 400, {"error": str(exc)}
        return 200, self._faults.rates()

