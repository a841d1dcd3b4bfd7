"""The console's HTTP server: the static pages and the JSON API, on 127.0.0.1, stdlib only.

Routes: ``/`` the uploads, ``/video?key=K`` one video (both ``static/index.html``, which draws
the page the address names), ``/static/...`` the page's files and Plyr, and the API under
``/api/``: ``about``, ``uploads?q=&after=&limit=``, ``gone?q=&after=&limit=`` (the deleted ones),
``video?key=``, ``storyboard.vtt?key=&profile=`` and ``POST upload?name=`` (the body is the
video; refused unless uploads are allowed). A threaded server: each request has its own thread,
and the API's reads their own retry budget.
"""
from __future__ import annotations

import json
import mimetypes
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ..ports import IceError, ObjectStoreError
from .api import MAX_UPLOAD_BYTES, ConsoleApi, ConsoleError

STATIC = Path(__file__).resolve().parent / "static"
#: The console binds here only: it reads the bucket with the operator's credentials.
HOST = "127.0.0.1"


class ConsoleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: ConsoleApi, port: int = 0):
        super().__init__((HOST, port), _Handler)
        self.api = api
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def video_url(self, key: str) -> str:
        """The address of one video's page."""
        return f"{self.url}video?key={quote(key, safe='/')}"

    def start(self) -> ConsoleServer:
        """Serve on a thread of its own until :meth:`stop`."""
        self._thread = threading.Thread(target=self.serve_forever, name="console", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    server: ConsoleServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the signature http.server calls)
        pass  # the addresses carry signed URLs' keys only, but a quiet console is what operators expect

    def _from_this_console(self, writes: bool) -> bool:
        """Only requests addressed to this console (a page elsewhere that rebinds its name to 127.0.0.1
        sends another Host), and, for an upload, sent by its own page (another site's form sends its Origin)."""
        port = self.server.server_address[1]
        hosts = {f"{HOST}:{port}", f"localhost:{port}"}
        origin = self.headers.get("Origin")
        foreign_origin = writes and origin is not None and origin not in {f"http://{h}" for h in hosts}
        if self.headers.get("Host") in hosts and not foreign_origin:
            return True
        self._json(403, {"error": "not a request of this console's own page"})
        return False

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        if not self._from_this_console(writes=False):
            return
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path in ("/", "/video"):
            self._file(STATIC / "index.html")
        elif parts.path.startswith("/static/"):
            self._static(parts.path[len("/static/"):])
        elif parts.path.startswith("/api/"):
            self._api(lambda: self._get(parts.path[len("/api/"):], query))
        else:
            self._send(404, b"not found", "text/plain; charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802
        if not self._from_this_console(writes=True):
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != "/api/upload":
            self._send(404, b"not found", "text/plain; charset=utf-8")
            return
        length = _int(self.headers.get("Content-Length"), -1)
        if length < 0:  # read(-1) would read until the client closes, past any limit
            self.close_connection = True
            self._json(411, {"error": "a Content-Length is required"})
            return
        if length > MAX_UPLOAD_BYTES:
            self.close_connection = True
            self._json(413, {"error": f"at most {MAX_UPLOAD_BYTES >> 20} MiB"})
            return
        data = self.rfile.read(length)
        self._api(lambda: self.server.api.upload(query.get("name", ""), data))

    def _get(self, route: str, query: dict[str, str]) -> Any:
        api = self.server.api
        if route == "about":
            return api.about()
        if route == "uploads":
            return api.uploads(query.get("q", ""), query.get("after", ""), _int(query.get("limit"), 25))
        if route == "gone":
            return api.gone(query.get("q", ""), query.get("after", ""), _int(query.get("limit"), 25))
        if route == "video":
            return api.video(query.get("key", ""))
        if route == "storyboard.vtt":
            return api.storyboard(query.get("key", ""), query.get("profile", ""))
        raise ConsoleError(404, f"no API route {route!r}")

    def _api(self, answer: Any) -> None:
        try:
            body = answer()
        except ConsoleError as exc:
            self._json(exc.status, {"error": str(exc)})
        except (IceError, ObjectStoreError) as exc:
            self._json(502, {"error": " ".join(str(exc).split())})
        else:
            if isinstance(body, bytes):
                self._send(200, body, "text/vtt; charset=utf-8")
            else:
                self._json(200, body)

    def _static(self, name: str) -> None:
        path = (STATIC / name).resolve()
        if STATIC not in path.parents or not path.is_file():
            self._send(404, b"not found", "text/plain; charset=utf-8")
        else:
            self._file(path)

    def _file(self, path: Path) -> None:
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._send(200, path.read_bytes(), kind + ("; charset=utf-8" if kind.startswith("text/") else ""))

    def _json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # signed URLs expire: never reuse an answer
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default
