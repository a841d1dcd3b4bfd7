"""HttpRangeFile, the engine's seekable reader over HTTP Range, against a real local HTTP server.

python's http.server has no Range support, so `RangeServer` adds a small single-range handler.
"""
from __future__ import annotations

import hashlib
import io
import random

import pytest

from localcloud.ice.engine import EngineError, SnapshotParams, run
from localcloud.ice.rangefile import HttpRangeError, HttpRangeFile
from localcloud.media import make_test_video
from tests.localcloud.engine.support import Store, stamp_of_snapshot
from tests.localcloud.support import BackgroundServer, QuietHandler


class RangeServer(BackgroundServer):
    """A real local HTTP server for a dict of path -> bytes, honouring single `Range: bytes=a-b`.

    /forbidden answers 403 (like OSS for a bad signature); paths under /norange/ ignore Range.
    """

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.range_requests = 0
        objects, server = self.objects, self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path == "/forbidden":
                    return self._reply(403, b"<Error><Code>AccessDenied</Code></Error>")
                body = objects.get(path.removeprefix("/norange"))
                if body is None:
                    return self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
                header = self.headers.get("Range")
                if header is None or path.startswith("/norange/"):
                    return self._reply(200, body)
                server.range_requests += 1
                first, last = header.removeprefix("bytes=").split("-")
                first, last = int(first), min(int(last), len(body) - 1)
                if first >= len(body):
                    return self._reply(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                self._reply(206, body[first : last + 1], {"Content-Range": f"bytes {first}-{last}/{len(body)}"})

            def _reply(self, status, body, headers=None):
                etag = f'"{hashlib.md5(objects.get(self.path.split("?", 1)[0], b"")).hexdigest()}"'
                self.send(status, {"Content-Length": str(len(body)), "ETag": etag, **(headers or {})}, [body])

        super().__init__(Handler)


@pytest.fixture(scope="module")
def server():
    srv = RangeServer().start()
    yield srv
    srv.close()


def test_range_file_reads_what_it_is_asked_and_fetches_only_nearby_blocks(server):
    data = random.Random(1).randbytes(8 << 20)
    server.objects["/big.bin"] = data
    with HttpRangeFile(server.url("/big.bin"), block_size=64 << 10, max_blocks=4) as f:
        assert f.requests == 0, "nothing is fetched before the first read"
        assert f.seek(0, io.SEEK_END) == len(data)
        rng = random.Random(2)
        for _ in range(20):
            offset, n = rng.randrange(len(data)), rng.randrange(1, 100_000)
            f.seek(offset)
            assert f.read(n) == data[offset : offset + n]
            assert f.tell() == min(offset + n, len(data))
        f.seek(len(data) - 3)
        assert f.read(10) == data[-3:] and f.read(10) == b""
        assert f.bytes_fetched <= (1 + 20 * 3) * (64 << 10) < len(data) // 2
        assert f.requests <= 1 + 20 * 3


def test_range_file_keeps_a_bounded_lru_of_blocks(server):
    server.objects["/lru.bin"] = bytes(range(256)) * 4096  # 1 MiB
    with HttpRangeFile(server.url("/lru.bin"), block_size=1024, max_blocks=2) as f:
        f.seek(0)
        f.read(10)
        f.seek(5000)
        f.read(10)
        before = f.requests
        f.seek(20)
        assert f.read(4) == bytes([20, 21, 22, 23]) and f.requests == before, "a cached block is not fetched again"
        f.seek(9000)
        f.read(1)
        f.seek(5000)
        f.read(1)  # block 4 was evicted by blocks 0 (recent) and 8
        assert f.requests == before + 2


@pytest.mark.parametrize(("path", "status"), [("/missing.mp4", 404), ("/forbidden", 403)])
def test_range_file_errors_carry_the_status_and_hide_the_signature(server, path, status):
    f = HttpRangeFile(server.url(path) + "?Signature=SECRET&security-token=TOKEN")
    with pytest.raises(HttpRangeError) as err:
        f.read(1)
    assert err.value.status == status and str(status) in str(err.value)
    assert "SECRET" not in str(err.value) and "TOKEN" not in str(err.value) and path in str(err.value)


def test_range_file_fails_when_the_object_changes_while_reading(server):
    server.objects["/changing.bin"] = b"a" * 4096
    f = HttpRangeFile(server.url("/changing.bin"), block_size=1024)
    assert f.read(10) == b"a" * 10
    server.objects["/changing.bin"] = b"b" * 4096
    f.seek(3000)
    with pytest.raises(HttpRangeError, match="changed while reading"):
        f.read(10)


def test_empty_object_over_http_is_not_decodable(server):
    server.objects["/uploads/empty.mp4"] = b""
    source = HttpRangeFile(server.url("/uploads/empty.mp4"))
    assert source.size == 0 and source.read(10) == b""
    with pytest.raises(EngineError) as err:
        run(source, SnapshotParams.from_config({"Type": "Normal"}), "x.jpg", Store())
    assert err.value.code == "InvalidInput.NotDecodable" and "empty" in err.value.message


def test_range_file_refuses_a_server_that_ignores_range_for_big_objects(server):
    server.objects["/small.bin"], server.objects["/large.bin"] = b"abc", b"x" * (3 << 20)
    assert HttpRangeFile(server.url("/norange/small.bin")).read() == b"abc"
    with pytest.raises(HttpRangeError, match="ignored the Range header"):
        HttpRangeFile(server.url("/norange/large.bin"), block_size=1 << 20).read(1)


def test_engine_reads_over_http_without_downloading_the_file(server):
    # 120 s: long enough that the fixed costs (the moov, the end-of-data check, one 32 KiB read per
    # seek) stay well under a third of the file
    video = make_test_video(duration_s=120, width=640, height=360, gop_s=2)
    server.objects["/uploads/long.mp4"] = video
    source = HttpRangeFile(server.url("/uploads/long.mp4"), block_size=32 << 10, max_blocks=4)
    store = Store()
    result = run(source, SnapshotParams.from_config({"Type": "Normal", "Count": 3, "Width": 64}), "{Count}.jpg", store)
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == [0, 40, 80]
    assert source.bytes_fetched < len(video) / 3, (source.bytes_fetched, len(video))


def test_engine_maps_http_errors_to_job_codes(server):
    with pytest.raises(EngineError) as err:
        run(HttpRangeFile(server.url("/uploads/nope.mp4")), SnapshotParams.from_config({"Type": "Normal"}),
            "x.jpg", Store())
    assert err.value.code == "InvalidInput.NotFound" and "404" in err.value.message
