"""What a job writes: stills or sprite sheets as JPEG, and the WebVTT storyboard over them."""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from PIL import Image

from localcloud.ice.engine.params import SnapshotParams, SpriteConfig
from localcloud.ice.engine.results import Deleter, EngineError, Snapshot, Writer

MAX_SHEET_SIDE = 8192
MAX_SHEET_PIXELS = 4096 * 4096
JPEG_QUALITY = 90
VTT_AUTO_COLUMNS = 10


def output_size(params: SnapshotParams, width: int, height: int) -> tuple[int, int]:
    if params.width and params.height:
        return params.width, params.height
    if params.width:
        return params.width, max(1, round(params.width * height / width))
    if params.height:
        return max(1, round(params.height * width / height)), params.height
    return width, height


@dataclass(frozen=True)
class Grid:
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


def _fits(grid: Grid) -> bool:
    width, height = grid.size
    return max(width, height) <= MAX_SHEET_SIDE and width * height <= MAX_SHEET_PIXELS


def grid_for(params: SnapshotParams, frame_size: tuple[int, int], n_frames: int) -> Grid:
    sprite = params.sprite or SpriteConfig()
    color = sprite.color or "#000000"
    grid = Grid(
        columns=sprite.columns or min(n_frames, VTT_AUTO_COLUMNS),
        lines=sprite.lines or 1,
        cell_width=sprite.cell_width or frame_size[0],
        cell_height=sprite.cell_height or frame_size[1],
        padding=sprite.padding or 0,
        margin=sprite.margin or 0,
        color=_rgb(color),
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


def _rgb(color: str) -> tuple[int, int, int]:
    """``#RRGGBB`` as a PIL colour."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


class Output:
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

    def remove_all(self, delete: Deleter) -> list[str]:
        """Delete every object written so far, last first; the keys that could not be, in written order."""
        leftover = []
        for key in reversed(self.written):
            try:
                delete(key)
            except Exception:  # the job's own error is the one to report; the leftovers are named in it
                leftover.append(key)
        self.written = leftover[::-1]
        return self.written


class Sink(Protocol):
    """Where a job's images go: `add` one per snapshot, then `finish` once."""

    def add(self, index: int, time_s: float, image: Image.Image) -> Snapshot: ...

    def finish(self) -> None: ...


class Stills:
    """One JPEG per snapshot; `key_for(i)` names image i (1-based)."""

    def __init__(self, output: Output, key_for: Callable[[int], str]):
        self._output = output
        self._key_for = key_for

    def add(self, index: int, time_s: float, image: Image.Image) -> Snapshot:
        key = self._key_for(index)
        self._output.put(key, _jpeg(image), "image/jpeg")
        return Snapshot(index=index, key=key, time_s=time_s, width=image.width, height=image.height)

    def finish(self) -> None:
        pass


class Sheets:
    """Sprite sheets filled cell by cell; a full sheet is written and a new one started."""

    def __init__(self, output: Output, grid: Grid, key_for: Callable[[int], str]):
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


def sink_for(params: SnapshotParams, output: Output, output_object: str, frame_size: tuple[int, int],
             n_frames: int) -> tuple[Sink, str | None]:
    """The sink for the job's Type, and the key of the WebVTT to write after it (None: no VTT)."""
    if params.type == "Normal":
        return Stills(output, _numbered(output_object, "{Count}")), None
    if params.type == "Sprite":
        return Sheets(output, grid_for(params, frame_size, n_frames), _numbered(output_object, "{TileCount}")), None
    stem = output_object[: -len(".vtt")]
    if params.is_spt_frag:
        sheets = Sheets(output, grid_for(params, frame_size, n_frames), lambda n: f"{stem}-sprite-{n:05d}.jpg")
        return sheets, output_object
    return Stills(output, lambda n: f"{stem}-{n:05d}.jpg"), output_object


def _numbered(pattern: str, placeholder: str) -> Callable[[int], str]:
    return lambda n: pattern.replace(placeholder, f"{n:05d}")


def _vtt_timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def webvtt(planned: list[float], duration_s: float, snapshots: list[Snapshot]) -> str:
    starts = [0.0, *planned[1:]]
    ends = [*planned[1:], duration_s]
    lines = ["WEBVTT", ""]
    for start, end, snap in zip(starts, ends, snapshots, strict=True):
        target = quote(snap.key.rsplit("/", 1)[-1])
        if snap.tile is not None:
            tile = snap.tile
            target += f"#xywh={tile['x']},{tile['y']},{tile['w']},{tile['h']}"
        lines += [f"{_vtt_timestamp(start)} --> {_vtt_timestamp(end)}", target, ""]
    return "\n".join(lines)

