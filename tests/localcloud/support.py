"""A real HTTP server for tests that need one of their own: port 0, a daemon thread, no access log."""
from __future__ import annotations

import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps pytest's output clean and survives a client that hangs up."""

    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, headers: dict[str, str], chunks: Iterable[bytes] = ()) -> None:
        """Answer ``status`` with ``headers`` and the body ``chunks``; a closed client ends the connection."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        try:
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(chunk)
        except OSError:  # the client stopped reading early or timed out
            self.close_connection = True


class BackgroundServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 at a port the system picks, serving until ``close()``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
