"""One opened input: container probing, seeking to keyframes and decoding, times in seconds."""

from __future__ import annotations

import io
from collections.abc import Iterator
from fractions import Fraction
from typing import TypeVar

import av
import av.error

from localcloud.ice.engine.results import EngineError
from localcloud.ice.rangefile import HttpRangeError

# Normal FrameType: decode on from the current position instead of seeking when the next time is
# at most this far ahead (a seek would restart at a keyframe that is probably behind us anyway).
CONTINUE_WINDOW_S = 2.0
# Seeking without an index (MPEG-TS) can land past the wanted keyframe: step back this much, doubling.
SEEK_STEP_BACK_S = 1.0

_T = TypeVar("_T")


class Video:
    """One opened input: seek-and-decode primitives, times in seconds from the first frame."""

    def __init__(self, source: io.IOBase):
        try:
            size = source.seek(0, io.SEEK_END)
            source.seek(0)
        except HttpRangeError as exc:
            raise input_error(exc) from exc
        if size == 0:
            raise EngineError("InvalidInput.NotDecodable", "the input is empty (0 bytes)")
        try:
            self.container = av.open(source, mode="r")
        except HttpRangeError as exc:
            raise input_error(exc) from exc
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise EngineError("InvalidInput.NotDecodable", f"not a readable media file: {exc}") from exc
        if not self.container.streams.video:
            self.container.close()
            raise EngineError("InvalidInput.NoVideoStream", "the input has no video stream")
        self.stream = self.container.streams.video[0]
        self.codec = self.stream.codec_context
        if self.stream.time_base is None:
            self.container.close()
            raise EngineError("InvalidInput.NotDecodable", "the video stream has no time base")
        self.time_base: Fraction = self.stream.time_base
        self.start_pts = self.stream.start_time or 0
        self.duration_s = self._duration()
        self._decoder: Iterator[av.VideoFrame] | None = None  # `normal` mode: frames decoded forward from a seek
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

    def time_of(self, frame: av.VideoFrame) -> float:
        """The frame's time in seconds from the first frame."""
        return self.seconds(pts_of(frame))

    def pts(self, seconds: float) -> int:
        return self.start_pts + round(seconds / self.time_base)

    def _seek_keyframe_packets(self, target: int) -> Iterator[av.Packet]:
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
            if keyframe is not None and pts_of(keyframe) <= target:
                return chain_first(keyframe, packets)
            if seek_to < self.start_pts:  # already read from the beginning: take its first keyframe
                return chain_first(keyframe, packets) if keyframe is not None else iter(())
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
                    self._keyframe = (pts_of(packet), frame)
                    yield frame

    def frames_from(self, seconds: float) -> Iterator[av.VideoFrame]:
        """Every frame from the first one at or after `seconds` (or the last frame, if none)."""
        target = self.pts(seconds)
        window = round(CONTINUE_WINDOW_S / self.time_base)
        if self._decoder is None or self._last_pts is None or not (self._last_pts < target <= self._last_pts + window):
            self._decoder = self._decode_forward(self._seek_keyframe_packets(target))
        last = None
        for frame in self._decoder:
            self._last_pts = pts_of(frame)
            if self._last_pts >= target:
                yield frame
                yield from self._forward()
                return
            last = frame
        self._decoder = None
        if last is not None:
            yield last

    def _forward(self) -> Iterator[av.VideoFrame]:
        for frame in self._decoder or ():
            self._last_pts = pts_of(frame)
            yield frame

    def _decode_forward(self, packets: Iterator[av.Packet]) -> Iterator[av.VideoFrame]:
        for packet in packets:
            for frame in self.codec.decode(packet):
                if frame.pts is not None:
                    yield frame


def pts_of(item: av.VideoFrame | av.Packet) -> int:
    """The timestamp of a frame or packet the Video yields (it skips those without one)."""
    if item.pts is None:
        raise EngineError("InvalidInput.NotDecodable", "a frame or packet without a timestamp")
    return item.pts


def chain_first(first: _T, rest: Iterator[_T]) -> Iterator[_T]:
    yield first
    yield from rest


def input_error(exc: HttpRangeError) -> EngineError:
    codes: dict[int | None, str] = {404: "InvalidInput.NotFound", 403: "InvalidInput.Forbidden"}
    return EngineError(codes.get(exc.status, "InvalidInput.ReadFailed"), str(exc))

