"""A read-only, seekable file over HTTP Range requests, so PyAV can cut frames from a remote object.

The local ICE reads its input the way the real service reads OSS: it never downloads the whole
object. `HttpRangeFile` fetches fixed-size blocks on demand with `Range: bytes=a-b` and keeps at most
`max_blocks` of them (least recently used are dropped), so memory stays at
`block_size * max_blocks` whatever the object size. A container seek (e.g. to the moov atom at the
end of an MP4, then to one keyframe) costs one request per block touched.

The size is learnt from the first ranged GET's `Content-Range` (no HEAD: a presigned OSS URL is
signed for one verb, so HEAD on a GET URL answers 403). Nothing is requested before the first
read or seek. Errors raise `HttpRangeError` with the HTTP status; messages never include the query
string, which for a presigned URL carries the signature and security token.
"""

from __future__ import annotations

import http.client
import io
import re
import ssl
from collections import OrderedDict
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["HttpRangeFile", "HttpRangeError"]

#: Names the local ICE to the local OSS, whose rate fault switches spare its requests (oss/faults.py).
USER_AGENT = "localcloud-ice"
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")
_ERROR_BODY_LIMIT = 512


class HttpRangeError(OSError):
    """The object could not be read: `status` is the HTTP status (None for network failures)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class HttpRangeFile(io.RawIOBase):
    """Seekable read-only view of `url` that fetches `block_size` blocks with Range requests.

    `requests` counts HTTP requests sent and `bytes_fetched` the body bytes received; tests use them
    to prove seeking does not stream the file. A server that ignores Range (answers 200 with the
    whole body) is only accepted when the whole object fits in one block; anything larger raises
    rather than silently downloading it. If the object changes between requests (different ETag)
    reading fails instead of mixing two versions.
    """

    def __init__(
        self,
        url: str,
        *,
        block_size: int = 1 << 20,
        max_blocks: int = 4,
        timeout: float = 30.0,
    ):
        super().__init__()
        if block_size <= 0 or max_blocks <= 0:
            raise ValueError("block_size and max_blocks must be positive")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {_redact(url)}")
        self.url = url
        self.block_size = block_size
        self.max_blocks = max_blocks
        self.timeout = timeout
        self.requests = 0
        self.bytes_fetched = 0
        self._parts = parts
        self._host: str = parts.hostname
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._connection: http.client.HTTPConnection | None = None
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._size: int | None = None
        self._etag: str | None = None
        self._pos = 0

    def __repr__(self) -> str:
        return f"HttpRangeFile({_redact(self.url)!r}, block_size={self.block_size}, max_blocks={self.max_blocks})"

    # --- io.RawIOBase -----------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        self._check_open()
        view = memoryview(buffer).cast("B")
        written = 0
        while written < len(view) and self._pos < self.size:
            index, offset = divmod(self._pos, self.block_size)
            block = self._block(index)
            chunk = block[offset : offset + len(view) - written]
            if not chunk:  # the server's object is shorter than it said
                break
            view[written : written + len(chunk)] = chunk
            written += len(chunk)
            self._pos += len(chunk)
        return written

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._blocks.clear()
        super().close()

    # --- public extras ----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Object size in bytes; the first call fetches block 0 to learn it."""
        if self._size is None:
            self._block(0)
        assert self._size is not None
        return self._size

    # --- internals --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed HttpRangeFile")

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is not None:
            self._blocks.move_to_end(index)
            return block
        start = index * self.block_size
        end = start + self.block_size - 1
        if self._size is not None:
            end = min(end, self._size - 1)
        block = self._fetch(start, end) if self._size is None or start < self._size else b""
        self._blocks[index] = block
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)
        return block

    def _fetch(self, start: int, end: int) -> bytes:
        """GET bytes start..end (inclusive); retry once on a dropped keep-alive connection."""
        for attempt in (1, 2):
            try:
                return self._fetch_once(start, end)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._disconnect()
                if attempt == 2:
                    raise HttpRangeError(f"GET {_redact(self.url)} failed: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._disconnect()
                if isinstance(exc, HttpRangeError):
                    raise
                raise HttpRangeError(f"GET {_redact(self.url)} failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _fetch_once(self, start: int, end: int) -> bytes:
        connection = self._connect()
        self.requests += 1
        connection.request("GET", self._target, headers={"Range": f"bytes={start}-{end}", "User-Agent": USER_AGENT})
        response = connection.getresponse()
        status = response.status
        if status == 206:
            body = response.read()
            self.bytes_fetched += len(body)
            first, _last, total = _parse_content_range(response.getheader("Content-Range"))
            if first != start:
                raise HttpRangeError(
                    f"GET {_redact(self.url)}: asked for bytes from {start}, got from {first}", status=status
                )
            self._learn(total, response.getheader("ETag"))
            return body
        if status == 416:  # range starts past the end: an empty object, or the object shrank
            response.read()
            _, _, total = _parse_content_range(response.getheader("Content-Range"))
            self._learn(total, response.getheader("ETag"))
            return b""
        if status == 200:
            length = response.getheader("Content-Length")
            if start != 0 or length is None or int(length) > self.block_size:
                response.close()
                self._disconnect()
                raise HttpRangeError(
                    f"GET {_redact(self.url)}: server ignored the Range header (HTTP 200, "
                    f"Content-Length {length}); refusing to download the whole object",
                    status=status,
                )
            body = response.read()
            self.bytes_fetched += len(body)
            self._learn(len(body), response.getheader("ETag"))
            return body
        detail = response.read(_ERROR_BODY_LIMIT).decode("utf-8", "replace").strip()
        self._disconnect()
        raise HttpRangeError(
            f"GET {_redact(self.url)}: HTTP {status} {response.reason}" + (f": {detail}" if detail else ""),
            status=status,
        )

    def _learn(self, total: int | None, etag: str | None) -> None:
        if self._etag is not None and etag is not None and etag != self._etag:
            raise HttpRangeError(
                f"GET {_redact(self.url)}: object changed while reading (ETag {self._etag} -> {etag})",
                status=412,
            )
        self._etag = self._etag or etag
        if total is not None:
            self._size = total
        elif self._size is None:
            raise HttpRangeError(f"GET {_redact(self.url)}: server did not say the object size")

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            host, port = self._host, self._parts.port
            if self._parts.scheme == "https":
                self._connection = http.client.HTTPSConnection(
                    host, port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                self._connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        return self._connection

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not match:
        raise HttpRangeError(f"bad or missing Content-Range header: {value!r}")
    first, last, total = match.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        int(total) if total != "*" else None,
    )


def _redact(url: str) -> str:
    """The URL without its query string (a presigned URL's query holds the signature)."""
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl() + ("?…" if parts.query else "")
