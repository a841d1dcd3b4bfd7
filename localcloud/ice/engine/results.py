"""What a run produces, and the job-level error that ends it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: ``write(key, data, content_type)``: stores one output object.
Writer = Callable[[str, bytes, str], None]
#: ``delete(key)``: removes one output object (a failed job's cleanup).
Deleter = Callable[[str], None]


class EngineError(Exception):
    """A job-level failure: the job ends with Status Fail and this Code / Message."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


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

