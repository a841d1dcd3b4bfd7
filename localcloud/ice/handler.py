"""The HTTP side of a LocalIce: one connection, keep-alive, to the ICE API or the admin endpoint."""
from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from localcloud.ice import admin
from localcloud.ice.faults import AnswerLost
from localcloud.ice.responses import Headers

if TYPE_CHECKING:
    from localcloud.ice.server import LocalIce

log = logging.getLogger("localcloud.ice.server")


class IceRequestHandler(BaseHTTPRequestHandler):
    """One connection to a LocalIce: the ICE API, or the admin endpoint under admin.PREFIX."""

    protocol_version = "HTTP/1.1"
    server_version = "LocalIce"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    timeout = 120  # seconds an idle keep-alive connection is kept
    ice: LocalIce  # set by handler_for

    def setup(self) -> None:
        super().setup()
        self.ice._track_connection(self.connection, open=True)

    def finish(self) -> None:
        self.ice._track_connection(self.connection, open=False)
        super().finish()

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self) -> None:
        body = self._body()
        parts = urlsplit(self.path)
        if parts.path.startswith(admin.PREFIX):
            loopback = self.client_address[0].startswith("127.") or self.client_address[0] == "::1"
            self._send(*admin.answer(self.ice, self.command, parts.path[len(admin.PREFIX):], body, loopback))
            return
        try:
            answer = self.ice._responses.handle(self.command, parts.path, parts.query,
                                                Headers(self.headers.items()), body)
        except AnswerLost as lost:  # the action ran; close the connection with no response at all
            log.info("answer of %s lost by fault injection (lose_answers)", lost.args[0])
            self.close_connection = True
            return
        try:
            self._send(*answer)
        except ConnectionError:  # the client gave up first (e.g. its read timeout under answer_delay_s)
            log.info("client of %s went away before the answer", self.headers.get("x-acs-action"))
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries the query (SetEventCallback's AuthKey): log method and path only.
        log.debug("%s %s -> %s", self.command, urlsplit(self.path).path, args[1] if len(args) > 1 else "")


def handler_for(ice: LocalIce) -> type[BaseHTTPRequestHandler]:
    """The request handler class of one LocalIce's HTTP server."""
    return type("LocalIceHandler", (IceRequestHandler,), {"ice": ice})
