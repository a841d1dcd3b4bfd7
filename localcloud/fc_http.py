"""The local FC's HTTP triggers: one server per function; an HTTP request in, the FC 3.0 HTTP-trigger
event to the function, its ``{statusCode, headers, body, isBase64Encoded}`` back out as the response.

The request body reaches the function as FC's gateway hands it over (README, "Assumptions"):

* framed by ``Content-Length`` or by ``Transfer-Encoding: chunked``, which is decoded here: the
  function gets the whole body in ``body``, and no ``Transfer-Encoding`` header (it described the
  hop to the gateway, which ends there);
* a body over :data:`MAX_BODY_BYTES` (FC's limit for a synchronous invocation) answers 400
  ``EntityTooLarge``; a ``Content-Length`` that is not one non-negative integer, both framings at
  once, a transfer coding other than ``chunked``, broken chunks or a body that ends early answer 400
  ``InvalidArgument``. The function is not invoked, and the connection is closed: where the next
  request would begin is unknown.

Errors are FC's JSON, ``{"errorCode": ..., "errorMessage": ...}``
(https://www.alibabacloud.com/help/en/functioncompute/error-codes), also for requests the HTTP
server itself refuses (a malformed request line...), never an HTML page or a traceback.
"""
from __future__ import annotations

import base64
import io
import json
import re
import sys
import threading
import time
import uuid
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from .fc import FunctionPool, LocalFc

#: FC's limit on a synchronous invocation's HTTP request body (HTTP/HTTPS protocol limits: 32 MB).
MAX_BODY_BYTES = 32 * 1024 * 1024
_MAX_CHUNK_LINE = 4096  # a chunk-size line: hex digits and extensions
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


class BadRequest(Exception):
    """A request the gateway refuses before the function sees it: FC's status, errorCode and errorMessage."""

    def __init__(self, message: str, code: str = "InvalidArgument", status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def payload(self) -> bytes:
        return json.dumps({"errorCode": self.code, "errorMessage": self.message}).encode()


def _too_large() -> BadRequest:
    return BadRequest(f"payload size exceeds maximum allowed size ({MAX_BODY_BYTES} bytes)", "EntityTooLarge")


def read_body(headers: Message, rfile: io.BufferedIOBase) -> bytes:
    """The request body, by its ``Content-Length`` or decoded from chunks; :class:`BadRequest` if neither is sound."""
    codings = [c.strip().lower() for v in headers.get_all("Transfer-Encoding", []) for c in v.split(",")]
    lengths = [n.strip() for v in headers.get_all("Content-Length", []) for n in v.split(",")]
    if codings:
        if lengths:
            raise BadRequest("a request cannot have both Content-Length and Transfer-Encoding")
        if codings != ["chunked"]:
            raise BadRequest(f"unsupported Transfer-Encoding {', '.join(codings)!r}: only chunked is")
        return _read_chunks(rfile)
    if not lengths:
        return b""
    if len(set(lengths)) != 1 or not (lengths[0].isascii() and lengths[0].isdigit()):
        raise BadRequest(f"invalid Content-Length {', '.join(lengths)!r}: expected one non-negative integer")
    length = int(lengths[0])
    if length > MAX_BODY_BYTES:
        raise _too_large()
    return _read_exactly(rfile, length)


def _read_chunks(rfile: io.BufferedIOBase) -> bytes:
    body = bytearray()
    while True:
        line = rfile.readline(_MAX_CHUNK_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()  # chunk extensions are ignored, as RFC 9112 allows
        if not _CHUNK_SIZE.fullmatch(size_text) or not line.endswith(b"\n"):
            raise BadRequest("malformed chunked body: a chunk size line is not a hexadecimal number")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > MAX_BODY_BYTES:
            raise _too_large()
        body += _read_exactly(rfile, size)
        if rfile.readline(3).strip():
            raise BadRequest("malformed chunked body: a chunk is longer than its size")
    while rfile.readline(_MAX_CHUNK_LINE + 1).strip():  # trailer fields, up to the empty line
        pass
    return bytes(body)


def _read_exactly(rfile: io.BufferedIOBase, length: int) -> bytes:
    data = rfile.read(length) if length else b""
    if len(data) != length:
        raise BadRequest(f"the request body ended after {len(data)} of {length} bytes")
    return data


def http_event(method: str, raw_path: str, headers: dict[str, str], body: bytes, *, source_ip: str,
               request_id: str, domain: str) -> dict[str, Any]:
    """The FC 3.0 HTTP-trigger event for a built-in runtime."""
    parts = urlsplit(raw_path)
    query: dict[str, str] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        query[k] = f"{query[k]},{v}" if k in query else v
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    now = time.time()
    return {
        "version": "v1", "rawPath": parts.path, "body": text, "isBase64Encoded": is_b64,
        "headers": headers, "queryParameters": query,
        "requestContext": {
            "accountId": "", "domainName": domain, "domainPrefix": domain.split(".")[0],
            "http": {"method": method, "path": unquote(parts.path), "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "requestId": request_id, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "timeEpoch": str(int(now * 1000)),
        },
    }


class TriggerServer(ThreadingHTTPServer):
    """One function's HTTP trigger on its own port (0: any free one; ``url`` says which it got)."""

    daemon_threads = True

    def __init__(self, fc: LocalFc, pool: FunctionPool, host: str, port: int) -> None:
        super().__init__((host, port), _TriggerRequestHandler)
        self.fc, self.pool, self.host = fc, pool, host
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server_address[1]}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is not an error
            super().handle_error(request, client_address)


class _TriggerRequestHandler(BaseHTTPRequestHandler):
    """An HTTP request in, the function's FC 3.0 HTTP-trigger event and response out."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body
    server: TriggerServer

    def _serve(self) -> None:
        request_id = str(uuid.uuid4())
        try:
            body = read_body(self.headers, self.rfile)
        except BadRequest as refused:
            self._refuse(refused, request_id)
            return
        headers: dict[str, str] = {}
        for k, v in self.headers.items():
            if k.lower() != "transfer-encoding":  # the gateway decoded the chunks
                headers[k] = f"{headers[k]},{v}" if k in headers else v
        event = http_event(self.command, self.path, headers, body, source_ip=self.client_address[0],
                           request_id=request_id, domain=self.server.host)
        self._answer(*self.server.fc.invoke_http(self.server.pool, event, request_id), request_id)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def _refuse(self, refused: BadRequest, request_id: str) -> None:
        self.close_connection = True
        self._answer(refused.status, {"Content-Type": "application/json", "Connection": "close"},
                     refused.payload(), request_id)

    def _answer(self, status: int, headers: dict[str, str], payload: bytes, request_id: str) -> None:
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-fc-request-id", request_id)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up waiting (ICE does after 3 s); the function still ran

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the HTTP server refuses itself (a malformed request line, headers too long): FC's JSON."""
        phrase = HTTPStatus(code).phrase
        self.request_version = self.protocol_version  # a status line and headers even for a garbled request
        error = BadRequest(message or phrase, "InvalidArgument" if code == 400 else phrase.replace(" ", ""), code)
        self._refuse(error, str(uuid.uuid4()))

    def log_message(self, format: str, *args: Any) -> None:
        pass
