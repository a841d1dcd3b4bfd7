"""The frame-cutting engine of the local ICE: the rules of `SubmitSnapshotJob`, no HTTP.

`SnapshotParams.from_config` turns an ICE TemplateConfig (template merged with OverwriteParams)
into a validated value, `validate_output` checks the output object name the way ICE does, and `run`
cuts the frames from a seekable input and writes JPEGs (plus a WebVTT storyboard) through a
`write(key, data, content_type)` callback. Parameter reference:
https://help.aliyun.com/zh/ims/developer-reference/api-ice-2020-11-09-submitsnapshotjob and the
snapshot template page https://help.aliyun.com/document_detail/448296.html.

The input is never read or decoded whole. Every snapshot is one container seek: for FrameType
`intra` the keyframe packet at or before the time is decoded alone; for `normal` the decoder starts
at that keyframe and decodes forward to the first frame at or after the time (and carries on forward
instead of re-seeking when the next time is close). Images are streamed to `write` as they are made,
sprite sheets one sheet at a time, so memory is a few frames plus one sheet whatever the input size.

Error codes raised as `EngineError.code` (the job ends `Fail` with them):
  InvalidInput.NotFound / InvalidInput.Forbidden / InvalidInput.ReadFailed - the input could not be read
  InvalidInput.NotDecodable - empty, not a media file, or frames could not be decoded
  InvalidInput.NoVideoStream - a media file without video
  InvalidParameter.Time - Time is at or after the end of the video
  InvalidParameter.Output - the output name breaks the placeholder rules (see `validate_output`)
  InvalidParameter.SpriteSize - a sprite sheet would exceed MAX_SHEET_SIDE / MAX_SHEET_PIXELS
  Output.WriteFailed - the `write` callback raised

Assumptions
-----------
Where ICE's documentation is silent the engine takes the conservative reading below.

* Placeholders: `{Count}` and `{TileCount}` become the 1-based index zero-padded to 5 digits
  (`00001`), as in the GetSnapshotUrls example. A single still without `{Count}` is written to the
  output name as is.
* Times are relative to the first frame of the video stream (its start_time), in seconds.
* FrameType `intra`: the keyframe whose presentation time is at or before the requested time.
  FrameType `normal`: the first frame whose presentation time is at or after the requested time
  (ffmpeg `-ss` semantics); past the last frame, the last frame.
* Count and Interval: with Interval, snapshots are taken at Time + k*Interval for k = 0..Count-1,
  and those at or past the end of the video are dropped (the result's message says so). Without
  Interval, Count snapshots are spread evenly over [Time, duration): Time + k*(duration-Time)/Count.
  Count missing means 1, except with Interval, where it means "every Interval until the end".
  Time at or after the end of the video fails the job (InvalidParameter.Time) rather than
  producing nothing.
* Ranges (ICE documents none): Count 1..MAX_COUNT, Interval >= 1 s, Time >= 0, Width/Height and
  CellWidth/CellHeight 8..4096 px, Padding/Margin 0..1024, Columns/Lines 1..100, BlackLevel 1..100,
  PixelBlackThreshold 0..255, Color `#RRGGBB`. Integers must be JSON integers (no strings, no
  booleans). Unknown TemplateConfig keys are rejected so a typo ("Intervall") is not silently
  ignored. Type `Cover` (listed by the template page) is not supported by the local ICE.
* Size: Width only or Height only keeps the display aspect ratio (rounded to whole pixels); both
  scale to exactly that size; neither keeps the source size. Sizes refer to the picture as
  displayed: a display-matrix rotation (phone video) is applied, as ffmpeg does by default.
  Sample aspect ratio is not applied.
* Black-frame filter: it is on when BlackLevel or PixelBlackThreshold is set, and only when the
  job takes more than one snapshot ("multi-frame only"); it applies to the first snapshot only.
  Following ffmpeg's `blackframe` filter, a pixel is black when its full-range luma (0..255) is
  below PixelBlackThreshold, and a frame is black when at least BlackLevel percent of its pixels
  are black; a missing one of the two takes ffmpeg's default (amount 98, threshold 32). A black
  first frame is replaced by the first non-black frame after it: the next frames for `normal`, the
  next keyframes for `intra`, up to the next snapshot's time (inclusive) and at most
  BLACK_SCAN_LIMIT_S seconds. If none is found the black frame is kept and the message says so.
* Sprite: Columns and Lines are required. CellWidth/CellHeight default to the output frame size; a
  frame that does not match its cell is scaled to fit inside it keeping its aspect ratio, centred,
  on the background Color (default `#000000`). Cell (c, l) is at x = Margin + c*(CellWidth+Padding),
  y = Margin + l*(CellHeight+Padding); every sheet has the full grid size; frames fill cells row by
  row and a new sheet starts when Columns*Lines cells are used. `Snapshot.tile` column/line are
  0-based.
* WebVtt: for `<stem>.vtt` the images are `<stem>-00001.jpg`, ... (one per cue) or, with
  IsSptFrag, sprite sheets `<stem>-sprite-00001.jpg`, ... addressed with `#xywh=x,y,w,h` (the cell
  rectangle). Paths in the VTT are relative to the VTT (the file name, percent-encoded). Cue i runs
  from snapshot i's requested time to snapshot i+1's; the first starts at 0 and the last ends at
  the duration, so the cues cover the whole video. With IsSptFrag and no Columns/Lines the grid
  has min(n, 10) columns and as many lines as fit in one sheet under the size limits. The VTT is
  written last, after every image it references.
* Images are baseline JPEG, quality JPEG_QUALITY, written with content type image/jpeg; the VTT is
  written as text/vtt.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import quote

import av
import av.error
import numpy as np
from PIL import Image

from localcloud.ice.rangefile import HttpRangeError

__all__ = [
    "EngineError",
    "ParamError",
    "SpriteConfig",
    "SnapshotParams",
    "Snapshot",
    "EngineResult",
    "validate_output",
    "run",
]

MAX_COUNT = 10_000
MAX_SHEET_SIDE = 8192
MAX_SHEET_PIXELS = 4096 * 4096
BLACK_SCAN_LIMIT_S = 30.0
JPEG_QUALITY = 90
DEFAULT_BLACK_LEVEL = 98  # ffmpeg blackframe "amount"
DEFAULT_PIXEL_BLACK_THRESHOLD = 32  # ffmpeg blackframe "threshold"
VTT_AUTO_COLUMNS = 10
# Normal FrameType: decode on from the current position instead of seeking when the next time is
# at most this far ahead (a seek would restart at a keyframe that is probably behind us anyway).
CONTINUE_WINDOW_S = 2.0
# Seeking without an index (MPEG-TS) can land past the wanted keyframe: step back this much, doubling.
SEEK_STEP_BACK_S = 1.0

_TYPES = ("Normal", "Sprite", "WebVtt")
_FRAME_TYPES = ("intra", "normal")
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
_PREFIX = "TemplateConfig"
_SPRITE_PREFIX = f"{_PREFIX}.SpriteSnapshotConfig"


class EngineError(Exception):
    """A job-level failure: the job ends with Status Fail and this Code / Message."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ParamError(ValueError):
    """A bad TemplateConfig / OverwriteParams / Output value; the API answers InvalidParameter."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- parameters -----------------------------------------------------------------------------------


def _int(config: dict, key: str, prefix: str, lo: int, hi: int | None = None) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    field = f"{prefix}.{key}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(field, f"must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ParamError(field, f"must be {bounds}, got {value}")
    return value


def _choice(config: dict, key: str, prefix: str, choices: tuple[str, ...]) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if value not in choices:
        raise ParamError(f"{prefix}.{key}", f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _reject_unknown(config: Any, known: tuple[str, ...], prefix: str) -> None:
    if not isinstance(config, dict):
        raise ParamError(prefix, f"must be a JSON object, got {type(config).__name__}")
    for key in config:
        if key not in known:
            raise ParamError(f"{prefix}.{key}", f"unknown field; known fields are {', '.join(known)}")


@dataclass(frozen=True)
class SpriteConfig:
    """SpriteSnapshotConfig. None means "not set": the engine applies the defaults (see Assumptions)."""

    cell_width: int | None = None
    cell_height: int | None = None
    padding: int | None = None
    margin: int | None = None
    columns: int | None = None
    lines: int | None = None
    color: str | None = None

    _KEYS = ("CellWidth", "CellHeight", "Padding", "Margin", "Columns", "Lines", "Color")

    @classmethod
    def from_config(cls, config: Any) -> "SpriteConfig":
        _reject_unknown(config, cls._KEYS, _SPRITE_PREFIX)
        color = config.get("Color")
        if color is not None and (not isinstance(color, str) or not _COLOR.fullmatch(color)):
            raise ParamError(f"{_SPRITE_PREFIX}.Color", f"must be a colour like #000000, got {color!r}")
        return cls(
            cell_width=_int(config, "CellWidth", _SPRITE_PREFIX, 8, 4096),
            cell_height=_int(config, "CellHeight", _SPRITE_PREFIX, 8, 4096),
            padding=_int(config, "Padding", _SPRITE_PREFIX, 0, 1024),
            margin=_int(config, "Margin", _SPRITE_PREFIX, 0, 1024),
            columns=_int(config, "Columns", _SPRITE_PREFIX, 1, 100),
            lines=_int(config, "Lines", _SPRITE_PREFIX, 1, 100),
            color=color,
        )

    def to_config(self) -> dict:
        values = (self.cell_width, self.cell_height, self.padding, self.margin, self.columns, self.lines, self.color)
        return {key: value for key, value in zip(self._KEYS, values) if value is not None}


@dataclass(frozen=True)
class SnapshotParams:
    """The merged TemplateConfig of a snapshot job (template + OverwriteParams), with ICE's meaning."""

    type: str
    frame_type: str = "intra"
    time_ms: int = 0
    count: int | None = None
    interval_s: int | None = None
    width: int | None = None
    height: int | None = None
    black_level: int | None = None
    pixel_black_threshold: int | None = None
    is_spt_frag: bool = False
    sprite: SpriteConfig | None = None

    _KEYS = (
        "Type", "FrameType", "Time", "Count", "Interval", "Width", "Height",
        "BlackLevel", "PixelBlackThreshold", "IsSptFrag", "SpriteSnapshotConfig",
    )

    @classmethod
    def from_config(cls, config: dict) -> "SnapshotParams":
        """Validate ICE TemplateConfig JSON keys; raise ParamError naming the first bad field."""
        _reject_unknown(config, cls._KEYS, _PREFIX)
        type_ = _choice(config, "Type", _PREFIX, _TYPES)
        if type_ is None:
            raise ParamError(f"{_PREFIX}.Type", f"is required: one of {', '.join(_TYPES)}")
        is_spt_frag = config.get("IsSptFrag", False)
        if not isinstance(is_spt_frag, bool):
            raise ParamError(f"{_PREFIX}.IsSptFrag", f"must be true or false, got {is_spt_frag!r}")
        sprite_config = config.get("SpriteSnapshotConfig")
        sprite = SpriteConfig.from_config(sprite_config) if sprite_config is not None else None
        if type_ == "Sprite":
            if sprite is None:
                raise ParamError(_SPRITE_PREFIX, "is required for Type Sprite (Columns and Lines at least)")
            for key, value in (("Columns", sprite.columns), ("Lines", sprite.lines)):
                if value is None:
                    raise ParamError(f"{_SPRITE_PREFIX}.{key}", "is required for Type Sprite")
        return cls(
            type=type_,
            frame_type=_choice(config, "FrameType", _PREFIX, _FRAME_TYPES) or "intra",
            time_ms=_int(config, "Time", _PREFIX, 0) or 0,
            count=_int(config, "Count", _PREFIX, 1, MAX_COUNT),
            interval_s=_int(config, "Interval", _PREFIX, 1),
            width=_int(config, "Width", _PREFIX, 8, 4096),
            height=_int(config, "Height", _PREFIX, 8, 4096),
            black_level=_int(config, "BlackLevel", _PREFIX, 1, 100),
            pixel_black_threshold=_int(config, "PixelBlackThreshold", _PREFIX, 0, 255),
            is_spt_frag=is_spt_frag,
            sprite=sprite,
        )

    def to_config(self) -> dict:
        """Back to ICE JSON keys: Type, FrameType and Time always, the rest only when set."""
        config: dict[str, Any] = {"Type": self.type, "FrameType": self.frame_type, "Time": self.time_ms}
        optional = {
            "Count": self.count,
            "Interval": self.interval_s,
            "Width": self.width,
            "Height": self.height,
            "BlackLevel": self.black_level,
            "PixelBlackThreshold": self.pixel_black_threshold,
            "IsSptFrag": True if self.is_spt_frag else None,
            "SpriteSnapshotConfig": self.sprite.to_config() if self.sprite is not None else None,
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        return config

    @property
    def black_filter_on(self) -> bool:
        return self.black_level is not None or self.pixel_black_threshold is not None


def validate_output(params: SnapshotParams, output_object: str) -> None:
    """Check the output object name against ICE's rules; raise ParamError("Output", ...)."""
    if not output_object or output_object.endswith("/"):
        raise ParamError("Output", f"needs an object name, got {output_object!r}")
    if params.type == "Normal":
        if ((params.count or 1) > 1 or params.interval_s is not None) and "{Count}" not in output_object:
            raise ParamError("Output", "several snapshots (Count > 1 or Interval) need {Count} in the object name")
    elif params.type == "Sprite":
        if "{TileCount}" not in output_object:
            raise ParamError("Output", "Sprite snapshots need {TileCount} in the object name")
    elif params.type == "WebVtt":
        if not output_object.endswith(".vtt"):
            raise ParamError("Output", "WebVtt output must end in .vtt")


# --- results --------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """One captured frame. For sprite cells `key` is the sheet and `tile` locates the cell in it."""

    index: int
    key: str
    time_s: float
    width: int
    height: int
    tile: dict | None = None


@dataclass
class EngineResult:
    objects_written: list[str]
    snapshots: list[Snapshot]
    vtt_key: str | None
    duration_s: float
    source_width: int
    source_height: int
    message: str | None = None


Writer = Callable[[str, bytes, str], None]


# --- decoding -------------------------------------------------------------------------------------


class _Video:
    """One opened input: seek-and-decode primitives, times in seconds from the first frame."""

    def __init__(self, source):
        try:
            size = source.seek(0, io.SEEK_END)
            source.seek(0)
        except HttpRangeError as exc:
            raise _input_error(exc) from exc
        if size == 0:
            raise EngineError("InvalidInput.NotDecodable", "the input is empty (0 bytes)")
        try:
            self.container = av.open(source, mode="r")
        except HttpRangeError as exc:
            raise _input_error(exc) from exc
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise EngineError("InvalidInput.NotDecodable", f"not a readable media file: {exc}") from exc
        if not self.container.streams.video:
            self.container.close()
            raise EngineError("InvalidInput.NoVideoStream", "the input has no video stream")
        self.stream = self.container.streams.video[0]
        self.codec = self.stream.codec_context
        self.time_base = self.stream.time_base
        self.start_pts = self.stream.start_time or 0
        self.duration_s = self._duration()
        self._decoder: Iterator | None = None  # `normal` mode: frames decoded forward from a seek
        self._last_pts: int | None = None
        self._keyframe: tuple[int, av.VideoFrame] | None = None  # `intra` mode: last decoded keyframe

    def close(self) -> None:
        self.container.close()

    def _duration(self) -> float:
        if self.stream.duration:
            return float(self.stream.duration * self.time_base)
        if self.container.duration:
            return self.container.duration / av.time_base - float(self.start_pts * self.time_base)
        raise EngineError("InvalidInput.NotDecodable", "the video stream has no known duration")

    def seconds(self, pts: int) -> float:
        return float((pts - self.start_pts) * self.time_base)

    def pts(self, seconds: float) -> int:
        return self.start_pts + round(seconds / self.time_base)

    def _seek_keyframe_packets(self, target: int) -> Iterator:
        """Packets starting at the last keyframe whose pts is at or before `target`.

        With an index (MP4, MKV) the first seek lands there. Without one (MPEG-TS) ffmpeg lands
        near the byte position it guesses, possibly after the target or mid-GOP past the last
        keyframe; then we seek again SEEK_STEP_BACK_S, 2x, 4x ... earlier, until before the start.
        For a target before the first keyframe, the first keyframe is used.
        """
        step = round(SEEK_STEP_BACK_S / self.time_base)
        seek_to = target
        while True:
            self.container.seek(seek_to, stream=self.stream, backward=True)
            packets = self.container.demux(self.stream)
            keyframe = next((p for p in packets if p.is_keyframe and p.pts is not None), None)
            if keyframe is not None and keyframe.pts <= target:
                return _chain_first(keyframe, packets)
            if seek_to < self.start_pts:  # already read from the beginning: take its first keyframe
                return _chain_first(keyframe, packets) if keyframe is not None else iter(())
            seek_to -= step
            step *= 2

    def keyframes_from(self, seconds: float) -> Iterator[av.VideoFrame]:
        """The keyframe at or before `seconds`, then each later keyframe, each decoded alone."""
        self._decoder = None
        for packet in self._seek_keyframe_packets(self.pts(seconds)):
            if not packet.is_keyframe or packet.size == 0:
                continue
            if self._keyframe is not None and self._keyframe[0] == packet.pts:
                yield self._keyframe[1]  # dense times often land on the same keyframe
                continue
            # Decode the keyframe packet alone and drain the decoder, so B-frame reorder delay
            # does not make us read the rest of the GOP.
            frames = self.codec.decode(packet) + self.codec.decode(None)
            self.codec.flush_buffers()
            for frame in frames:
                if frame.pts is not None:
                    self._keyframe = (packet.pts, frame)
                    yield frame

    def frames_from(self, seconds: float) -> Iterator[av.VideoFrame]:
        """Every frame from the first one at or after `seconds` (or the last frame, if none)."""
        target = self.pts(seconds)
        window = round(CONTINUE_WINDOW_S / self.time_base)
        if self._decoder is None or self._last_pts is None or not (self._last_pts < target <= self._last_pts + window):
            self._decoder = self._decode_forward(self._seek_keyframe_packets(target))
        last = None
        for frame in self._decoder:
            self._last_pts = frame.pts
            if frame.pts >= target:
                yield frame
                yield from self._forward()
                return
            last = frame
        self._decoder = None
        if last is not None:
            yield last

    def _forward(self) -> Iterator[av.VideoFrame]:
        for frame in self._decoder or ():
            self._last_pts = frame.pts
            yield frame

    def _decode_forward(self, packets: Iterator) -> Iterator[av.VideoFrame]:
        for packet in packets:
            for frame in self.codec.decode(packet):
                if frame.pts is not None:
                    yield frame


def _chain_first(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def _input_error(exc: HttpRangeError) -> EngineError:
    codes = {404: "InvalidInput.NotFound", 403: "InvalidInput.Forbidden"}
    return EngineError(codes.get(exc.status, "InvalidInput.ReadFailed"), str(exc))


def _is_black(frame: av.VideoFrame, black_level: int, pixel_threshold: int) -> bool:
    """ffmpeg-blackframe test on a small full-range grey copy (the percentage is scale-free)."""
    scale = min(1.0, 160 / frame.width)
    small = frame.reformat(
        width=max(1, round(frame.width * scale)), height=max(1, round(frame.height * scale)), format="gray"
    )
    luma = small.to_ndarray()
    return float(np.count_nonzero(luma < pixel_threshold)) * 100 >= black_level * luma.size


# --- planning -------------------------------------------------------------------------------------


def _plan_times(params: SnapshotParams, duration_s: float) -> tuple[list[float], str | None]:
    start = params.time_ms / 1000
    if start >= duration_s:
        raise EngineError(
            "InvalidParameter.Time",
            f"Time {params.time_ms} ms is at or after the end of the video ({duration_s:.3f} s)",
        )
    if params.interval_s is None:
        count = params.count or 1
        step = (duration_s - start) / count
        return [start + k * step for k in range(count)], None
    fits = math.ceil((duration_s - start) / params.interval_s)
    count = min(params.count, fits) if params.count is not None else min(fits, MAX_COUNT)
    times = [start + k * params.interval_s for k in range(count)]
    message = None
    if params.count is not None and count < params.count:
        message = f"video ended after {count} of {params.count} snapshots (duration {duration_s:.3f} s)"
    return times, message


def _output_size(params: SnapshotParams, width: int, height: int) -> tuple[int, int]:
    if params.width and params.height:
        return params.width, params.height
    if params.width:
        return params.width, max(1, round(params.width * height / width))
    if params.height:
        return max(1, round(params.height * width / height)), params.height
    return width, height


@dataclass(frozen=True)
class _Grid:
    columns: int
    lines: int
    cell_width: int
    cell_height: int
    padding: int
    margin: int
    color: tuple[int, int, int]

    @property
    def cells(self) -> int:
        return self.columns * self.lines

    @property
    def size(self) -> tuple[int, int]:
        return (
            2 * self.margin + self.columns * self.cell_width + (self.columns - 1) * self.padding,
            2 * self.margin + self.lines * self.cell_height + (self.lines - 1) * self.padding,
        )

    def cell_box(self, cell: int) -> tuple[int, int, int, int]:
        line, column = divmod(cell, self.columns)
        return (
            self.margin + column * (self.cell_width + self.padding),
            self.margin + line * (self.cell_height + self.padding),
            column,
            line,
        )


def _fits(grid: _Grid) -> bool:
    width, height = grid.size
    return max(width, height) <= MAX_SHEET_SIDE and width * height <= MAX_SHEET_PIXELS


def _grid(params: SnapshotParams, frame_size: tuple[int, int], n_frames: int) -> _Grid:
    sprite = params.sprite or SpriteConfig()
    color = sprite.color or "#000000"
    grid = _Grid(
        columns=sprite.columns or min(n_frames, VTT_AUTO_COLUMNS),
        lines=sprite.lines or 1,
        cell_width=sprite.cell_width or frame_size[0],
        cell_height=sprite.cell_height or frame_size[1],
        padding=sprite.padding or 0,
        margin=sprite.margin or 0,
        color=tuple(int(color[i : i + 2], 16) for i in (1, 3, 5)),
    )
    if not _fits(grid):
        width, height = grid.size
        raise EngineError(
            "InvalidParameter.SpriteSize",
            f"a sprite sheet of {width}x{height} px exceeds the limit of {MAX_SHEET_SIDE} px a side "
            f"and {MAX_SHEET_PIXELS} px in all; lower Columns/Lines or the cell size",
        )
    if sprite.lines is None:  # WebVtt auto grid: as many lines as needed, while the sheet fits
        wanted = math.ceil(n_frames / grid.columns)
        while grid.lines < wanted and _fits(dataclasses.replace(grid, lines=grid.lines + 1)):
            grid = dataclasses.replace(grid, lines=grid.lines + 1)
    return grid


# --- output ---------------------------------------------------------------------------------------


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


class _Output:
    """Writes objects through the caller's `write`, remembering what was written."""

    def __init__(self, write: Writer):
        self._write = write
        self.written: list[str] = []

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._write(key, data, content_type)
        except Exception as exc:
            raise EngineError("Output.WriteFailed", f"writing {key}: {exc}") from exc
        self.written.append(key)


class _Stills:
    """One JPEG per snapshot; `key_for(i)` names image i (1-based)."""

    def __init__(self, output: _Output, key_for: Callable[[int], str]):
        self._output = output
        self._key_for = key_for

    def add(self, index: int, time_s: float, image: Image.Image) -> Snapshot:
        key = self._key_for(index)
        self._output.put(key, _jpeg(image), "image/jpeg")
        return Snapshot(index=index, key=key, time_s=time_s, width=image.width, height=image.height)

    def finish(self) -> None:
        pass


class _Sheets:
    """Sprite sheets filled cell by cell; a full sheet is written and a new one started."""

    def __init__(self, output: _Output, grid: _Grid, key_for: Callable[[int], str]):
        self._output = output
        self._grid = grid
        self._key_for = key_for
        self._sheet: Image.Image | None = None
        self._sheet_number = 0
        self._used = 0

    def add(self, index: int, time_s: float, image: Image.Image) -> Snapshot:
        grid = self._grid
        if self._sheet is None:
            self._sheet = Image.new("RGB", grid.size, grid.color)
            self._sheet_number += 1
            self._used = 0
        x, y, column, line = grid.cell_box(self._used)
        cell = (grid.cell_width, grid.cell_height)
        if image.size != cell:
            scale = min(cell[0] / image.width, cell[1] / image.height)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        self._sheet.paste(image, (x + (cell[0] - image.width) // 2, y + (cell[1] - image.height) // 2))
        self._used += 1
        key = self._key_for(self._sheet_number)
        tile = {"sprite_key": key, "x": x, "y": y, "w": cell[0], "h": cell[1], "column": column, "line": line}
        if self._used == grid.cells:
            self.finish()
        return Snapshot(index=index, key=key, time_s=time_s, width=cell[0], height=cell[1], tile=tile)

    def finish(self) -> None:
        if self._sheet is not None:
            self._output.put(self._key_for(self._sheet_number), _jpeg(self._sheet), "image/jpeg")
            self._sheet = None


def _numbered(pattern: str, placeholder: str) -> Callable[[int], str]:
    return lambda n: pattern.replace(placeholder, f"{n:05d}")


def _vtt_timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _webvtt(planned: list[float], duration_s: float, snapshots: list[Snapshot]) -> str:
    starts = [0.0, *planned[1:]]
    ends = [*planned[1:], duration_s]
    lines = ["WEBVTT", ""]
    for start, end, snap in zip(starts, ends, snapshots):
        target = quote(snap.key.rsplit("/", 1)[-1])
        if snap.tile is not None:
            tile = snap.tile
            target += f"#xywh={tile['x']},{tile['y']},{tile['w']},{tile['h']}"
        lines += [f"{_vtt_timestamp(start)} --> {_vtt_timestamp(end)}", target, ""]
    return "\n".join(lines)


# --- the job --------------------------------------------------------------------------------------


def run(source, params: SnapshotParams, output_object: str, write: Writer) -> EngineResult:
    """Cut the snapshots of one job from `source` and write them; raise EngineError on failure.

    `source` is a seekable binary file (an HttpRangeFile in the local ICE); `output_object` is the
    object key pattern from Output.Media with the bucket stripped; `write(key, data, content_type)`
    stores one object. Objects already written stay written when a later step fails.
    """
    try:
        validate_output(params, output_object)
    except ParamError as exc:
        raise EngineError("InvalidParameter.Output", str(exc)) from exc
    video = _Video(source)
    try:
        return _run(video, params, output_object, _Output(write))
    except HttpRangeError as exc:
        raise _input_error(exc) from exc
    except av.error.FFmpegError as exc:
        raise EngineError("InvalidInput.NotDecodable", f"decoding failed: {exc}") from exc
    finally:
        video.close()


def _run(video: _Video, params: SnapshotParams, output_object: str, output: _Output) -> EngineResult:
    planned, message = _plan_times(params, video.duration_s)
    captures = _capture(video, params, planned)
    first_time, first_frame, note = next(captures)
    rotation = first_frame.rotation % 360
    coded = (first_frame.width, first_frame.height)
    display = coded[::-1] if rotation in (90, 270) else coded
    out_size = _output_size(params, *display)
    scale_to = out_size[::-1] if rotation in (90, 270) else out_size

    def to_image(frame: av.VideoFrame) -> Image.Image:
        image = frame.to_image(width=scale_to[0], height=scale_to[1], interpolation="AREA")
        return image.rotate(rotation, expand=True) if rotation else image

    vtt_key = None
    if params.type == "Normal":
        sink = _Stills(output, _numbered(output_object, "{Count}"))
    elif params.type == "Sprite":
        sink = _Sheets(output, _grid(params, out_size, len(planned)), _numbered(output_object, "{TileCount}"))
    else:
        vtt_key = output_object
        stem = output_object[: -len(".vtt")]
        if params.is_spt_frag:
            sink = _Sheets(output, _grid(params, out_size, len(planned)), lambda n: f"{stem}-sprite-{n:05d}.jpg")
        else:
            sink = _Stills(output, lambda n: f"{stem}-{n:05d}.jpg")

    snapshots = [sink.add(1, first_time, to_image(first_frame))]
    for index, (time_s, frame, _) in enumerate(captures, start=2):
        snapshots.append(sink.add(index, time_s, to_image(frame)))
    sink.finish()
    if vtt_key is not None:
        output.put(vtt_key, _webvtt(planned, video.duration_s, snapshots).encode("utf-8"), "text/vtt")
    message = "; ".join(m for m in (message, note) if m) or None
    return EngineResult(
        objects_written=output.written,
        snapshots=snapshots,
        vtt_key=vtt_key,
        duration_s=video.duration_s,
        source_width=display[0],
        source_height=display[1],
        message=message,
    )


def _capture(video: _Video, params: SnapshotParams, planned: list[float]) -> Iterator[tuple[float, av.VideoFrame, str | None]]:
    """Yield (time_s, frame, note) per planned time; the first may be moved past black frames."""
    frames_at = video.keyframes_from if params.frame_type == "intra" else video.frames_from
    for index, seconds in enumerate(planned):
        frames = frames_at(seconds)
        frame = next(frames, None)
        if frame is None:
            raise EngineError("InvalidInput.NotDecodable", f"no frame could be decoded at {seconds:.3f} s")
        note = None
        if index == 0 and len(planned) > 1 and params.black_filter_on:
            frame, note = _skip_black(video, params, frame, frames, planned[1])
        yield video.seconds(frame.pts), frame, note


def _skip_black(
    video: _Video, params: SnapshotParams, frame: av.VideoFrame, later: Iterator[av.VideoFrame], next_time: float
) -> tuple[av.VideoFrame, str | None]:
    """Return the first non-black frame from `frame` on, up to `next_time` / BLACK_SCAN_LIMIT_S."""
    level = params.black_level if params.black_level is not None else DEFAULT_BLACK_LEVEL
    threshold = params.pixel_black_threshold if params.pixel_black_threshold is not None else DEFAULT_PIXEL_BLACK_THRESHOLD
    if not _is_black(frame, level, threshold):
        return frame, None
    first = frame
    limit = min(next_time, video.seconds(first.pts) + BLACK_SCAN_LIMIT_S)
    for candidate in later:
        if video.seconds(candidate.pts) > limit + 1e-9:
            break
        if not _is_black(candidate, level, threshold):
            return candidate, None
    return first, f"the first snapshot is black: no non-black frame up to {limit:.3f} s"
