"""Test media made in-process with PyAV: stamped clips (H.264, VP8/VP9, MPEG-4, MJPEG in MP4, MPEG-TS,
Matroska/WebM, AVI), cut-short and damaged copies, and undecodable garbage.

Every frame of a generated clip carries its frame index as a grid of big black/white cells in the
top half of the picture, so a test can take any snapshot (JPEG-compressed, scaled down to ~64 px
wide, cropped out of a sprite sheet) and read back *which* frame it shows with `read_stamp`. The
bottom half holds a grey gradient and a white bar that moves one step per frame, so a human looking
at a thumbnail also sees motion.

Stamp layout (all positions are fractions of the picture, so any scaling keeps them readable):
the top `_STAMP_BAND` of the height is split into `_STAMP_ROWS` x `_STAMP_COLUMNS` cells, read row
by row. Cell 0 is always white and the last cell always black (they make a black frame, a flat
frame or a picture that is not a stamp unreadable instead of "frame 0"); the cell before the last is
an even-parity bit over the data cells; the cells between carry the frame index, most significant
bit first. White means 1.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image

__all__ = ["make_test_video", "cut_short", "with_noise", "make_audio_only", "make_garbage", "read_stamp",
           "MAX_STAMPED_FRAMES"]

_STAMP_ROWS = 3
_STAMP_COLUMNS = 8
_STAMP_BAND = 0.48  # fraction of the height used by the stamp grid
_DATA_BITS = _STAMP_ROWS * _STAMP_COLUMNS - 3  # minus white sync, parity, black sync
MAX_STAMPED_FRAMES = 1 << _DATA_BITS

# Limited-range ("TV") luma, what H.264 in yuv420p carries: 16 is black, 235 is white.
_Y_BLACK, _Y_WHITE, _Y_GREY = 16, 235, 126
# Decoded to full-range 8-bit grey, a stamp cell must be clearly dark or clearly light.
_DARK_BELOW, _LIGHT_ABOVE = 80, 175


def make_test_video(
    *,
    duration_s: float = 4.0,
    fps: int = 25,
    width: int = 320,
    height: int = 240,
    gop_s: float = 1.0,
    codec: str = "libx264",
    black_lead_s: float = 0.0,
    bframes: int = 2,
    rotation: int = 0,
    container_format: str = "mp4",
    sample_aspect_ratio: Fraction | None = None,
    declare_duration: bool = True,
    faststart: bool = False,
) -> bytes:
    """Encode a stamped test clip and return the file's bytes (MP4 unless `container_format` says).

    duration_s * fps frames; frame i shows stamp i (read it back with `read_stamp`) and has
    pts i/fps. A keyframe is forced exactly every gop_s seconds (no scene-cut keyframes), so tests
    know where "the keyframe at or before t" is. The first black_lead_s seconds are pure black and
    unstamped. `bframes` > 0 (libx264 only) makes decode order differ from display order, as in
    real camera/encoder output. `rotation` (counter-clockwise degrees, a multiple of 90) writes a
    display matrix like a phone does for portrait video; the coded picture stays width x height.
    The MP4 moov atom is written at the end (ffmpeg's default), so a reader must seek to the end
    first; `faststart` moves it to the front (a cut copy still opens). `container_format` "mpegts"
    gives a file without a seek index, like a camera recording; "avi" (codec "mpeg4" or "mjpeg")
    a time base of 1/fps. `sample_aspect_ratio` marks the pixels as non-square (a 960x720 picture
    with 4:3 is shown 1280x720). `declare_duration=False` (matroska/webm) writes no Duration and
    no Cues, as a browser's MediaRecorder or a pipe does. Codecs: libx264, libvpx (VP8),
    libvpx-vp9, mpeg4, mjpeg.
    """
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError(f"width and height must be even and >= 16 for yuv420p, got {width}x{height}")
    if fps <= 0 or duration_s <= 0 or gop_s <= 0:
        raise ValueError("fps, duration_s and gop_s must be positive")
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    n_frames = max(1, round(duration_s * fps))
    if n_frames > MAX_STAMPED_FRAMES:
        raise ValueError(f"{n_frames} frames exceed the stamp capacity of {MAX_STAMPED_FRAMES}")
    clip = _Clip(width, height, fps, codec, gop=max(1, round(gop_s * fps)), bframes=bframes, n_frames=n_frames,
                 n_black=min(n_frames, round(black_lead_s * fps)), sample_aspect_ratio=sample_aspect_ratio,
                 rotation=rotation)
    options = _container_options(container_format, declare_duration=declare_duration, faststart=faststart)
    with tempfile.TemporaryDirectory() as folder:  # a real file: faststart reads it back to move the moov
        path = os.path.join(folder, "clip")
        with av.open(path, mode="w", format=container_format, options=options) as container:
            clip.encode(container)
        with open(path, "rb") as encoded:
            return encoded.read()


@dataclass(frozen=True)
class _Clip:
    """What `make_test_video` encodes: the picture, the codec and where keyframes and black frames are."""

    width: int
    height: int
    fps: int
    codec: str
    gop: int
    bframes: int
    n_frames: int
    n_black: int
    sample_aspect_ratio: Fraction | None
    rotation: int

    def encode(self, container: av.container.OutputContainer) -> None:
        stream = container.add_stream(self.codec, rate=self.fps)
        assert isinstance(stream, av.VideoStream), f"{self.codec} is not a video codec"
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = "yuvj420p" if self.codec == "mjpeg" else "yuv420p"  # the JPEG encoder: full range only
        stream.codec_context.gop_size = self.gop
        stream.options = _encoder_options(self.codec, self.gop, self.bframes)
        if self.codec.startswith("libvpx"):
            stream.bit_rate = 4_000_000  # sharp stamps at the sizes tests use
        if self.sample_aspect_ratio is not None:
            stream.codec_context.sample_aspect_ratio = self.sample_aspect_ratio
        if self.rotation:
            stream.set_display_rotation(self.rotation)
        time_base = Fraction(1, self.fps)
        for index in range(self.n_frames):
            y = _black_luma(self.width, self.height) if index < self.n_black else \
                _stamped_luma(index, self.width, self.height)
            frame = av.VideoFrame.from_ndarray(_with_neutral_chroma(y), format="yuv420p")
            frame.pts, frame.time_base = index, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def cut_short(data: bytes, keep: float = 0.5) -> bytes:
    """The first `keep` (a fraction) of a file: an upload that stopped part way."""
    return data[: round(len(data) * keep)]


def with_noise(data: bytes, start: float = 0.5, end: float = 0.9, *, seed: int = 0) -> bytes:
    """A copy whose bytes from fraction `start` to `end` are random: a file damaged in the middle."""
    lo, hi = round(len(data) * start), round(len(data) * end)
    return data[:lo] + random.Random(seed).randbytes(hi - lo) + data[hi:]


def _encoder_options(codec: str, gop: int, bframes: int) -> dict[str, object]:
    """Encoder options that force a keyframe exactly every `gop` frames and nowhere else, fast."""
    if codec == "libx264":
        return {"preset": "ultrafast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"}
    if codec.startswith("libvpx"):
        # one thread: libvpx's threads spin for seconds on a busy machine
        return {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "keyint_min": str(gop), "threads": "1"}
    if codec == "mpeg4":
        return {"sc_threshold": "1000000000"}  # no scene-change keyframes
    return {}


def _container_options(container_format: str, *, declare_duration: bool, faststart: bool) -> dict[str, str]:
    options = {}
    if not declare_duration:
        if container_format not in ("matroska", "webm"):
            raise ValueError(f"declare_duration=False is for matroska/webm, not {container_format}")
        options["live"] = "1"  # the muxer writes what a non-seekable output gets: no Duration, no Cues
    if faststart:
        options["movflags"] = "+faststart"
    return options


def make_audio_only(duration_s: float = 1.0, *, sample_rate: int = 48000) -> bytes:
    """An M4A (AAC) file with no video stream: a valid media file the snapshot engine must refuse."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        frame_size = stream.codec_context.frame_size or 1024
        t = np.arange(round(duration_s * sample_rate), dtype=np.float32) / sample_rate
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(tone), frame_size):
            chunk = tone[start : start + frame_size].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def make_garbage(n: int = 64 * 1024, *, seed: int = 0) -> bytes:
    """Deterministic bytes that no demuxer accepts as video, for "undecodable input" tests."""
    rng = random.Random(seed)
    return b"NOT A VIDEO\n" + rng.randbytes(max(0, n - 12))


def read_stamp(image: Image.Image, fps: int) -> float:
    """Return the time (s) stamped into a frame of a `make_test_video` clip: index / fps.

    Works on the whole picture at any size down to ~64x48, after JPEG compression, as long as the
    image is exactly one frame (crop sprite cells out first). Raises ValueError when the picture
    holds no valid stamp (black frame, wrong crop, a cell neither dark nor light, bad parity).
    """
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    height, width = grey.shape
    cells = []
    band_h = height * _STAMP_BAND
    for row in range(_STAMP_ROWS):
        for col in range(_STAMP_COLUMNS):
            y0, y1 = _inner_span(row, _STAMP_ROWS, band_h)
            x0, x1 = _inner_span(col, _STAMP_COLUMNS, width)
            mean = float(grey[y0:y1, x0:x1].mean())
            if _DARK_BELOW <= mean <= _LIGHT_ABOVE:
                raise ValueError(f"no stamp: cell {row},{col} is neither dark nor light (mean {mean:.0f})")
            cells.append(1 if mean > _LIGHT_ABOVE else 0)
    if cells[0] != 1 or cells[-1] != 0:
        raise ValueError("no stamp: sync cells missing (black frame or not a stamped picture)")
    data, parity = cells[1:-2], cells[-2]
    if sum(data) % 2 != parity:
        raise ValueError("no stamp: parity check failed")
    index = int("".join(map(str, data)), 2)
    return index / fps


def _stamp_bits(index: int) -> list[int]:
    data = [int(b) for b in format(index, f"0{_DATA_BITS}b")]
    return [1, *data, sum(data) % 2, 0]


def _stamped_luma(index: int, width: int, height: int) -> np.ndarray:
    y = np.empty((height, width), dtype=np.uint8)
    band = round(height * _STAMP_BAND)
    # Bottom part: a horizontal grey gradient and a bar that moves one step per frame.
    y[band:, :] = np.linspace(60, 190, width, dtype=np.float32).astype(np.uint8)
    bar_w = max(2, width // 16)
    bar_x = (index * max(1, width // 50)) % (width - bar_w)
    y[band:, bar_x : bar_x + bar_w] = _Y_WHITE
    for cell, bit in enumerate(_stamp_bits(index)):
        row, col = divmod(cell, _STAMP_COLUMNS)
        y0, y1 = _span(row, _STAMP_ROWS, band)
        x0, x1 = _span(col, _STAMP_COLUMNS, width)
        y[y0:y1, x0:x1] = _Y_WHITE if bit else _Y_BLACK
    return y


def _black_luma(width: int, height: int) -> np.ndarray:
    return np.full((height, width), _Y_BLACK, dtype=np.uint8)


def _with_neutral_chroma(y: np.ndarray) -> np.ndarray:
    """Stack a luma plane with grey (128) U and V planes into PyAV's yuv420p array layout."""
    height, width = y.shape
    chroma = np.full((height // 2, width), 128, dtype=np.uint8)
    return np.vstack([y, chroma])


def _span(i: int, n: int, length: float) -> tuple[int, int]:
    return round(i * length / n), round((i + 1) * length / n)


def _inner_span(i: int, n: int, length: float) -> tuple[int, int]:
    """The middle half of cell i: far from the edges that scaling and JPEG blur."""
    size = length / n
    lo, hi = round(i * size + size / 4), round((i + 1) * size - size / 4)
    return lo, max(hi, lo + 1)
