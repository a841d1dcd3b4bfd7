"""What the engine tests share: the stamped clip's shape, an in-memory store, the frame arithmetic and ffmpeg.

Every check on an image reads the frame index stamped into it by `localcloud.media`, so a test knows
*which* frame ICE semantics demand and which one the engine produced; the ffmpeg helpers give what the
ffmpeg CLI shows for the same file and time (the reference the real-media tests compare with).
"""
from __future__ import annotations

import io
import math
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from localcloud.ice.engine import EngineError, EngineResult, SnapshotParams, run
from localcloud.media import read_stamp

FPS = 25
FRAME = 1 / FPS
DURATION = 4.0
GOP = 1.0

class Store(dict):
    """The `write` callback: key -> (data, content_type)."""

    def __call__(self, key: str, data: bytes, content_type: str) -> None:
        assert key not in self, f"{key} written twice"
        self[key] = (data, content_type)

    def delete(self, key: str) -> None:
        del self[key]

    def image(self, key: str) -> Image.Image:
        data, content_type = self[key]
        assert content_type == "image/jpeg"
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG"
        return image


def cut(video: bytes, config: dict, output: str = "snap/{Count}.jpg") -> tuple[EngineResult, Store]:
    store = Store()
    result = run(io.BytesIO(video), SnapshotParams.from_config(config), output, store, store.delete)
    assert result.objects_written == list(store), "objects_written must list every write, in order"
    return result, store


def stamp_of_snapshot(store: Store, snapshot) -> float:
    image = store.image(snapshot.key)
    if snapshot.tile:
        t = snapshot.tile
        image = image.crop((t["x"], t["y"], t["x"] + t["w"], t["y"] + t["h"]))
    return read_stamp(image, FPS)


def keyframe_at_or_before(t: float, gop: float = GOP) -> float:
    return math.floor(round(t / gop, 9)) * gop


def first_frame_at_or_after(t: float) -> float:
    return math.ceil(round(t * FPS, 6)) / FPS



# --- ffmpeg, the reference ------------------------------------------------------------------------

needs_ffmpeg = pytest.mark.skipif(not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
                                  reason="the ffmpeg CLI is the reference (Debian package ffmpeg; .ci/run installs it)")


def ffmpeg_stills(video: Path, times: list[float], *filters: str) -> list[Image.Image]:
    """The frames ffmpeg shows at `times` (`-ss T -frames:v 1` each), optionally through `-vf filters`.

    One ffmpeg run with one output per time; `-ss` after `-i`: ffmpeg decodes from the start and
    drops the frames before T, by the same rule as an input seek (an input seek, `-ss` before
    `-i`, of ffmpeg 5.1 lands a GOP late on MPEG-TS).
    """
    vf = ["-vf", ",".join(filters)] if filters else []
    with tempfile.TemporaryDirectory() as folder:
        outputs = [Path(folder, f"{n:05d}.png") for n in range(len(times))]
        per_output = [arg for t, out in zip(times, outputs, strict=True)
                      for arg in ("-ss", f"{t:.6f}", "-frames:v", "1", *vf, str(out))]
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), *per_output], check=True, timeout=60)
        return [Image.open(out).convert("RGB") for out in outputs]


def ffmpeg_keyframe_times(video: Path) -> list[float]:
    """The times of the frames ffprobe decodes as keyframes (frame n of a stamped clip is at n / FPS).

    `ffprobe -show_entries frame=key_frame` rather than `ffmpeg -skip_frame nokey`: ffmpeg's VP9
    decoder ignores skip_frame and returns every frame.
    """
    flags = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame",
                            "-of", "csv=p=0", str(video)], check=True, capture_output=True, text=True,
                           timeout=60).stdout.split()
    return [index / FPS for index, flag in enumerate(flags) if flag.startswith("1")]


def ffmpeg_tick(video: Path, seconds: float) -> float:
    """`seconds` on the video's time base as ffmpeg rounds it (nearest tick, halves up)."""
    with av.open(str(video)) as container:
        time_base = container.streams.video[0].time_base
    assert time_base is not None
    return float(math.floor(Fraction(round(seconds * 1_000_000), 1_000_000) / time_base + Fraction(1, 2)) * time_base)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0..255) of two same-size pictures."""
    assert a.size == b.size, (a.size, b.size)
    pixels_a, pixels_b = (np.asarray(image.convert("RGB"), dtype=np.int16) for image in (a, b))
    return float(np.abs(pixels_a - pixels_b).mean())


def cut_failing(video: bytes, config: dict, output: str = "snap/{Count}.jpg",
                store: Store | None = None) -> tuple[EngineError, Store]:
    """Run a job that must fail; the error and what is left in the store afterwards."""
    store = Store() if store is None else store
    with pytest.raises(EngineError) as err:
        run(io.BytesIO(video), SnapshotParams.from_config(config), output, store, store.delete)
    return err.value, store
