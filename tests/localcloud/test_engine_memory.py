"""The issue's "memory stays bounded: a 2 GB input costs no more memory than a 20 MB one", measured.

No 2 GB file is stored or sent. `make_test_video` gives a real stamped MP4; `virtual_mp4` rewrites it
as ftyp, moov, a top-level `free` box as big as needed, then the original mdat, adding the padding to
every chunk offset in moov (stco/co64), so it stays a valid MP4 of 2 GiB (or 20 MiB) whose frames
sit at the end. `VirtualServer` answers HTTP Range GETs for it from those three segments, making the
zero bytes of the padding on the fly, so the padding never exists in memory or on disk.

The engine then cuts the same snapshots from the 20 MiB and the 2 GiB input through `HttpRangeFile`
(as the local ICE does), each in a fresh Python process so the two peaks cannot mix. The process
reads its resident set after importing PyAV and the engine, restarts the kernel's high-water mark
(`/proc/self/clear_refs`), runs the jobs and reads the high-water mark again (VmHWM): the growth is
the jobs' peak over the post-import baseline. (ru_maxrss is no use here: Linux carries it over
across exec, so a child of pytest starts with the pytest process's peak and a growth of 0.) The
test asserts that the 2 GiB run's growth is within MEMORY_MARGIN_KIB of the 20 MiB run's, that
the server sent it under 1% of the input, and that every snapshot shows the frame ICE semantics
demand (read from the stamp in the picture), so the test cannot pass by producing nothing.

The server also caps what it serves per run (SERVE_BUDGET), so an engine that did read the whole
input fails this test quickly instead of pulling 2 GiB into the test machine's memory.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
import os
import random
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest
from PIL import Image

from localcloud.ice.rangefile import HttpRangeFile
from localcloud.media import make_test_video, read_stamp
from tests.localcloud.support import BackgroundServer, QuietHandler

ROOT = Path(__file__).resolve().parents[2]

SMALL = 20 << 20  # 20 MiB
LARGE = 2 << 30  # 2 GiB: still below 4 GiB, so 32-bit box sizes and stco offsets suffice
FPS = 25
DURATION = 40.0
GOP = 2.0
JOBS = [
    {"Type": "Normal", "FrameType": "normal", "Time": 1000, "Count": 10},
    {"Type": "Normal", "FrameType": "intra", "Time": 1000, "Count": 10},
]
# Allowed extra peak-RSS growth of the 2 GiB run over the 20 MiB run. Both grow by about 19 MiB
# (decoder, frames, the reader's blocks) and differ by under 0.3 MiB run to run; 8 MiB leaves room
# for noisier machines and is still well under 1% of the 2 GiB input (21 MiB).
MEMORY_MARGIN_KIB = 8 << 10
# Bytes the server sends per run before it answers 503: an eighth of LARGE, far above the 1% the
# test allows, so a run that streams the input shows up in both bytes and RSS (up to a few hundred
# MiB), then fails instead of pulling in all 2 GiB.
SERVE_BUDGET = 256 << 20
CHILD_TIMEOUT_S = 60


# --- the virtual MP4 ------------------------------------------------------------------------------

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}  # the path from moov to stco/co64


def _boxes(data: bytes | bytearray, start: int, end: int):
    """(type, box start, header size, box end) for each box in data[start:end]."""
    pos = start
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"bad box {kind!r} at {pos}")
        yield kind, pos, header, pos + size
        pos += size


def _shift_chunk_offsets(moov: bytearray, start: int, end: int, delta: int) -> int:
    """Add delta to every stco/co64 entry under moov[start:end]; return the number of entries."""
    shifted = 0
    for kind, pos, header, box_end in _boxes(moov, start, end):
        if kind in _CONTAINERS:
            shifted += _shift_chunk_offsets(moov, pos + header, box_end, delta)
        elif kind in (b"stco", b"co64"):
            fmt = ">I" if kind == b"stco" else ">Q"
            width = struct.calcsize(fmt)
            (count,) = struct.unpack_from(">I", moov, pos + header + 4)  # after version+flags
            for i in range(count):
                at = pos + header + 8 + i * width
                (offset,) = struct.unpack_from(fmt, moov, at)
                struct.pack_into(fmt, moov, at, offset + delta)  # struct.error if stco overflows
            shifted += count
    return shifted


@dataclass
class VirtualFile:
    """A file made of byte strings and runs of zeros (ints), never materialised whole."""

    parts: list[bytes | int]
    size: int = field(init=False)

    def __post_init__(self):
        self.size = sum(p if isinstance(p, int) else len(p) for p in self.parts)

    _ZEROS = bytes(1 << 20)

    def chunks(self, first: int, last: int):
        """The bytes first..last (inclusive), in pieces of at most 1 MiB."""
        pos = 0
        for part in self.parts:
            length = part if isinstance(part, int) else len(part)
            lo, hi = max(first, pos), min(last + 1, pos + length)
            while lo < hi:
                n = min(hi - lo, len(self._ZEROS))
                yield self._ZEROS[:n] if isinstance(part, int) else part[lo - pos : lo - pos + n]
                lo += n
            pos += length


def virtual_mp4(mp4: bytes, total_size: int) -> VirtualFile:
    """`mp4` as ftyp + moov + free(padding) + mdat, padded to total_size bytes (see module doc)."""
    top = {kind: (pos, end) for kind, pos, _, end in _boxes(mp4, 0, len(mp4))}
    assert set(top) <= {b"ftyp", b"free", b"mdat", b"moov"}, f"unexpected top-level boxes {set(top)}"
    ftyp = mp4[slice(*top[b"ftyp"])]
    mdat_start, mdat_end = top[b"mdat"]
    mdat = mp4[mdat_start:mdat_end]
    moov = bytearray(mp4[slice(*top[b"moov"])])
    padding = total_size - len(ftyp) - len(moov) - len(mdat)
    assert 8 <= padding <= 0xFFFFFFFF, padding
    new_mdat_start = len(ftyp) + len(moov) + padding
    assert _shift_chunk_offsets(moov, 0, len(moov), new_mdat_start - mdat_start) > 0, "no stco/co64 in moov"
    free_header = struct.pack(">I4s", padding, b"free")
    return VirtualFile([ftyp + bytes(moov) + free_header, padding - len(free_header), mdat])


# --- a Range server for virtual files -------------------------------------------------------------


class VirtualServer(BackgroundServer):
    """HTTP server for path -> VirtualFile answering single `Range: bytes=a-b` GETs (206/416).

    `served[path]` counts body bytes sent per path; past SERVE_BUDGET a path answers 503.
    """

    def __init__(self):
        self.files: dict[str, VirtualFile] = {}
        self.served: dict[str, int] = {}
        lock = threading.Lock()
        files, served = self.files, self.served

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                vfile = files.get(path)
                if vfile is None:
                    return self._reply(404)
                spec = self.headers.get("Range", f"bytes=0-{vfile.size - 1}").removeprefix("bytes=")
                first, _, last = spec.partition("-")
                first, last = int(first), min(int(last or vfile.size - 1), vfile.size - 1)
                if first >= vfile.size:
                    return self._reply(416, {"Content-Range": f"bytes */{vfile.size}"})
                with lock:
                    if served.get(path, 0) + (last - first + 1) > SERVE_BUDGET:
                        return self._reply(503)
                    served[path] = served.get(path, 0) + (last - first + 1)
                self._reply(206, {"Content-Range": f"bytes {first}-{last}/{vfile.size}"}, vfile.chunks(first, last),
                            length=last - first + 1)

            def _reply(self, status, headers=None, chunks=(), length=0):
                self.send(status, {"Content-Length": str(length), "ETag": '"v1"', **(headers or {})}, chunks)

        super().__init__(Handler)


# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs() -> dict[int, VirtualFile]:
    clip = make_test_video(duration_s=DURATION, fps=FPS, width=640, height=360, gop_s=GOP)
    return {size: virtual_mp4(clip, size) for size in (SMALL, LARGE)}


@pytest.fixture(scope="module")
def server():
    srv = VirtualServer().start()
    yield srv
    srv.close()


_run_ids = itertools.count(1)


def publish(server: VirtualServer, vfile: VirtualFile) -> tuple[str, str]:
    """A fresh path for vfile (so each run has its own byte count and budget): (path, url)."""
    path = f"/run{next(_run_ids)}/input.mp4"
    server.files[path] = vfile
    return path, server.url(path)


def expected_stamps(config: dict) -> list[float]:
    """The frame times ICE semantics demand for a Count-without-Interval job on the test clip."""
    start = config["Time"] / 1000
    times = [start + k * (DURATION - start) / config["Count"] for k in range(config["Count"])]
    if config["FrameType"] == "intra":  # the keyframe at or before t
        return [math.floor(t / GOP + 1e-9) * GOP for t in times]
    return [math.ceil(t * FPS - 1e-9) / FPS for t in times]  # the first frame at or after t


# The measured process: imports, then the jobs, over HTTP, the way the local ICE runs them.
CHILD = r"""
import base64, json, sys

def memory_kib():  # this process's resident set now, and its peak (high-water mark), in KiB
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

import av, numpy, PIL.Image, PIL.JpegImagePlugin
from localcloud.ice.engine import EngineError, SnapshotParams, run
from localcloud.ice.rangefile import HttpRangeFile

url, jobs = sys.argv[1], json.loads(sys.argv[2])
rss, peak = memory_kib()
try:  # restart the high-water mark here, so the import peak cannot hide the jobs' peak
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    peak_reset = True
except OSError:
    peak_reset = False
report = {"rss_after_import_kib": rss, "peak_after_import_kib": peak, "peak_reset": peak_reset,
          "jobs": [], "bytes_fetched": 0, "requests": 0}
for config in jobs:
    outputs = {}
    source = HttpRangeFile(url)  # the local ICE's defaults: 1 MiB blocks, at most 4 kept
    try:
        result = run(source, SnapshotParams.from_config(config), "snap/{Count}.jpg",
                     lambda key, data, content_type: outputs.__setitem__(key, data))
        job = {"times": [s.time_s for s in result.snapshots], "keys": [s.key for s in result.snapshots]}
    except EngineError as exc:
        job = {"error": f"{exc.code}: {exc.message}"}
    except Exception as exc:  # not the engine's contract, but report the numbers all the same
        job = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        source.close()
    report["bytes_fetched"] += source.bytes_fetched
    report["requests"] += source.requests
    job["outputs"] = {key: base64.b64encode(data).decode() for key, data in outputs.items()}
    report["jobs"].append(job)
report["peak_after_jobs_kib"] = memory_kib()[1]
print(json.dumps(report))
"""


def measure(server: VirtualServer, vfile: VirtualFile) -> dict:
    """Run JOBS on vfile in a fresh interpreter; its report plus the server-side byte count."""
    path, url = publish(server, vfile)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, url, json.dumps(JOBS)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    report["growth_kib"] = report["peak_after_jobs_kib"] - report["rss_after_import_kib"]
    report["served"] = server.served.get(path, 0)
    return report


def summary(report: dict) -> str:
    errors = [job["error"] for job in report["jobs"] if "error" in job]
    return (
        f"RSS {report['rss_after_import_kib']} KiB after imports, peak {report['peak_after_jobs_kib']} KiB "
        f"during the jobs (+{report['growth_kib']} KiB); {report['bytes_fetched']} bytes fetched in "
        f"{report['requests']} requests ({report['served']} served)" + (f"; errors: {errors}" if errors else "")
    )


# --- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["20MiB", "2GiB"])
def test_the_virtual_input_is_a_valid_mp4_of_that_size(server, inputs, size):
    vfile = inputs[size]
    assert vfile.size == size
    _, url = publish(server, vfile)
    with HttpRangeFile(url, block_size=64 << 10) as f:
        assert f.seek(0, io.SEEK_END) == size
        f.seek(0)
        layout = []
        while f.tell() < size:  # walk the top-level boxes by their headers only
            start = f.tell()
            box_size, kind = struct.unpack(">I4s", f.read(8))
            layout.append((kind, box_size))
            f.seek(start + box_size)
        assert [kind for kind, _ in layout] == [b"ftyp", b"moov", b"free", b"mdat"]
        assert layout[2][1] > size * 0.95, "the padding is almost all of the file"
        f.seek(size // 2)
        assert f.read(4096) == bytes(4096)
        f.seek(0)
        with av.open(f) as container:  # PyAV through the Range reader, as the engine opens it
            stream = container.streams.video[0]
            assert float(stream.duration * stream.time_base) == pytest.approx(DURATION)
            container.seek(round(10 / stream.time_base), stream=stream)  # -> the keyframe at 10 s
            frame = next(container.decode(stream))
            assert read_stamp(frame.to_image(), FPS) == 10.0, "chunk offsets do not point at the frames"
        assert f.bytes_fetched < 4 << 20


def test_the_virtual_server_serves_what_the_file_holds(server, inputs):
    vfile = inputs[SMALL]
    whole = b"".join(p if isinstance(p, bytes) else bytes(p) for p in vfile.parts)
    assert len(whole) == SMALL
    _, url = publish(server, vfile)
    rng = random.Random(0)
    with HttpRangeFile(url, block_size=256 << 10, max_blocks=2) as f:
        for offset in [0, len(vfile.parts[0]) - 3, SMALL - len(vfile.parts[2]) - 3, SMALL - 5] + [
            rng.randrange(SMALL) for _ in range(20)
        ]:
            n = rng.randrange(1, 600_000)
            f.seek(offset)
            assert f.read(n) == whole[offset : offset + n], offset


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures memory with Linux /proc")
def test_a_2gib_input_costs_no_more_memory_than_a_20mib_one(server, inputs):
    small = measure(server, inputs[SMALL])
    large = measure(server, inputs[LARGE])
    numbers = f"20 MiB input: {summary(small)}\n2 GiB input: {summary(large)}"
    print(numbers)

    problems = []
    if large["served"] >= LARGE / 100:
        problems.append(f"the 2 GiB run read {large['served']} bytes, not under 1% of the input")
    if large["growth_kib"] > small["growth_kib"] + MEMORY_MARGIN_KIB:
        problems.append(f"the 2 GiB run's peak RSS grew {large['growth_kib'] - small['growth_kib']} KiB more "
                        f"than the 20 MiB run's (allowed: {MEMORY_MARGIN_KIB} KiB)")
    for name, report in (("20 MiB", small), ("2 GiB", large)):
        if report["bytes_fetched"] != report["served"]:
            problems.append(f"{name}: HttpRangeFile counted {report['bytes_fetched']} bytes, "
                            f"the server sent {report['served']}")
        problems += [f"{name}: {job['error']}" for job in report["jobs"] if "error" in job]
    assert not problems, "\n".join(problems) + "\n" + numbers

    for report in (small, large):  # both runs cut the frames ICE semantics demand
        for config, job in zip(JOBS, report["jobs"], strict=True):
            images = {key: Image.open(io.BytesIO(base64.b64decode(data))) for key, data in job["outputs"].items()}
            assert list(images) == [f"snap/{i:05d}.jpg" for i in range(1, config["Count"] + 1)] == job["keys"]
            stamps = [read_stamp(images[key], FPS) for key in job["keys"]]
            assert stamps == pytest.approx(expected_stamps(config)), (config, stamps)
            assert job["times"] == pytest.approx(stamps)
