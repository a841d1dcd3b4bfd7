"""A webhook receiver for the demo: it verifies each event's signature and keeps the verified ones.

What an app's receiver does (README, "Webhooks"), with the pipeline's own :func:`verify_signature`:
a 204 for a verified event, a 400 for anything else.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from snapshot_pipeline.webhooks import SIGNATURE_HEADER, verify_signature


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.secret: str | None = None  # set once the cloud has generated it, before anything is sent
        self.events: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.server_port}/webhook"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for_event(self, timeout_s: float) -> dict[str, Any] | None:
        """The first verified event, waiting up to ``timeout_s`` for it; None if none came."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while not self.events and time.monotonic() < deadline:
                self._arrived.wait(deadline - time.monotonic())
            return self.events[0] if self.events else None

    def _accept(self, header: str, body: bytes) -> bool:
        problem = verify_signature(self.secret or "", header, body, now=time.time()) if self.secret else "no secret"
        if problem is None:
            with self._arrived:
                self.events.append(json.loads(body))
                self._arrived.notify_all()
        return problem is None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                verified = receiver._accept(self.headers.get(SIGNATURE_HEADER, ""), body)
                self.send_response(204 if verified else 400)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # the demo prints what matters
                pass

        return Handler
