"""One snapshot job from start to finish: plan the times, capture the frames, write the images."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import av
import av.error
from PIL import Image

from localcloud.ice.engine.compose import Output, output_size, sink_for, webvtt
from localcloud.ice.engine.params import ParamError, SnapshotParams, validate_output
from localcloud.ice.engine.results import Deleter, EngineError, EngineResult, Writer
from localcloud.ice.engine.selection import capture, plan_times
from localcloud.ice.engine.video import Video, input_error
from localcloud.ice.rangefile import HttpRangeError


def run(source: io.IOBase, params: SnapshotParams, output_object: str, write: Writer,
        delete: Deleter | None = None) -> EngineResult:
    """Cut the snapshots of one job from `source` and write them; raise EngineError on failure.

    `source` is a seekable binary file (an HttpRangeFile in the local ICE); `output_object` is the
    object key pattern from Output.Media with the bucket stripped; `write(key, data, content_type)`
    stores one object and `delete(key)` removes one: when a step fails, every object the job wrote
    is deleted again before the error is raised, so a failed job leaves no outputs behind (without
    `delete` they stay).
    """
    try:
        validate_output(params, output_object)
    except ParamError as exc:
        raise EngineError("InvalidParameter.Output", str(exc)) from exc
    with _engine_errors():
        video = Video(source)
    output = Output(write)
    try:
        with _engine_errors():
            return _run(video, params, output_object, output)
    except Exception as exc:
        leftover = output.remove_all(delete) if delete is not None else []
        if leftover and isinstance(exc, EngineError):
            raise EngineError(exc.code, f"{exc.message}; {len(leftover)} output(s) could not be removed: "
                                        f"{', '.join(leftover[:5])}") from exc
        raise
    finally:
        video.close()


@contextmanager
def _engine_errors() -> Iterator[None]:
    """Reading and decoding failures as the job-level errors they are."""
    try:
        yield
    except HttpRangeError as exc:
        raise input_error(exc) from exc
    except av.error.FFmpegError as exc:
        raise EngineError("InvalidInput.NotDecodable", f"decoding failed: {exc}") from exc


@dataclass(frozen=True)
class _Picture:
    """How frames become images: the size shown (rotation applied) and the size written."""

    rotation: int
    display: tuple[int, int]
    output: tuple[int, int]

    @classmethod
    def of(cls, frame: av.VideoFrame, params: SnapshotParams, sample_aspect_ratio: Fraction) -> _Picture:
        rotation = frame.rotation % 360
        # In square pixels, as ffmpeg's scale=iw*sar:ih (the width rounded down): non-square pixels
        # widen or narrow the picture, its height stays
        unrotated = (max(1, math.floor(frame.width * sample_aspect_ratio)), frame.height)
        display = unrotated[::-1] if rotation in (90, 270) else unrotated
        return cls(rotation, display, output_size(params, *display))

    def converter(self) -> Callable[[av.VideoFrame], Image.Image]:
        width, height = self.output[::-1] if self.rotation in (90, 270) else self.output
        rotation = self.rotation

        def to_image(frame: av.VideoFrame) -> Image.Image:
            image = frame.to_image(width=width, height=height, interpolation="AREA")
            return image.rotate(rotation, expand=True) if rotation else image

        return to_image


def _run(video: Video, params: SnapshotParams, output_object: str, output: Output) -> EngineResult:
    planned, message = plan_times(params, video.duration_s)
    captures = capture(video, params, planned)
    first_time, first_frame, note = next(captures)
    picture = _Picture.of(first_frame, params, video.sample_aspect_ratio)
    to_image = picture.converter()
    sink, vtt_key = sink_for(params, output, output_object, picture.output, len(planned))
    snapshots = [sink.add(1, first_time, to_image(first_frame))]
    for index, (time_s, frame, _) in enumerate(captures, start=2):
        snapshots.append(sink.add(index, time_s, to_image(frame)))
    sink.finish()
    if vtt_key is not None:
        output.put(vtt_key, webvtt(planned, video.duration_s, snapshots).encode("utf-8"), "text/vtt")
    return EngineResult(
        objects_written=output.written,
        snapshots=snapshots,
        vtt_key=vtt_key,
        duration_s=video.duration_s,
        source_width=picture.display[0],
        source_height=picture.display[1],
        message="; ".join(m for m in (message, note) if m) or None,
    )
