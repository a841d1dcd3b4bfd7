"""One opened input: container probing (duration, aspect ratio, a cut end), seeking to keyframes and
decoding, times in seconds."""

from __future__ import annotations

import io
import itertools
import math
import struct
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
# The completeness check reads the packets of about this much before the declared end ...
END_CHECK_S = 1.0
# ... and the input is truncated when no stream's data reaches this close to that end.
TRUNCATION_TOLERANCE_S = 0.5
# An input that does not open is checked for a cut MP4 box by box, up to this many top-level boxes.
MAX_TOP_LEVEL_BOXES = 10_000

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
            cut_box = _box_past_end(source, size)
            if cut_box is not None:
                raise truncated(f"the {cut_box} box runs past the end of the input ({size} bytes)") from exc
            raise EngineError("InvalidInput.NotDecodable", f"not a readable media file: {exc}") from exc
        try:
            self._probe()
        except BaseException:
            self.container.close()
            raise
        self._decoder: Iterator[av.VideoFrame] | None = None  # `normal` mode: frames decoded forward from a seek
        self._last_pts: int | None = None
        self._keyframe: tuple[int, av.VideoFrame] | None = None  # `intra` mode: last decoded keyframe

    def _probe(self) -> None:
        """The video stream, its time base, aspect ratio and duration; a cut end fails here."""
        if not self.container.streams.video:
            raise EngineError("InvalidInput.NoVideoStream", "the input has no video stream")
        self.stream = self.container.streams.video[0]
        self.codec = self.stream.codec_context
        if self.stream.time_base is None:
            raise EngineError("InvalidInput.NotDecodable", "the video stream has no time base")
        self.time_base: Fraction = self.stream.time_base
        self.start_pts = self.stream.start_time or 0
        self.sample_aspect_ratio = _sample_aspect_ratio(self.stream)
        declared = self._declared_duration()
        if declared is None:
            self.duration_s = self._scanned_duration()
        else:
            self._check_complete(declared)
            self.duration_s = declared

    def close(self) -> None:
        self.container.close()

    def _declared_duration(self) -> float | None:
        """The duration the container declares for the video (None: it declares none)."""
        if self.stream.duration:
            return float(self.stream.duration * self.time_base)
        if self.container.duration:
            end = ((self.container.start_time or 0) + self.container.duration) / av.time_base
            return end - float(self.start_pts * self.time_base)
        return None

    def _scanned_duration(self) -> float:
        """The end of the last video packet, read packet by packet without decoding: for inputs
        that declare no duration (a WebM from MediaRecorder or a pipe has no Duration element)."""
        end = None
        for packet in self.container.demux(self.stream):
            if packet.pts is not None and not packet.is_corrupt:
                end = max(end or packet.pts, packet.pts + (packet.duration or self._frame_ticks()))
        if end is None:
            raise EngineError("InvalidInput.NotDecodable", "no packet of the video stream has a timestamp")
        return float((end - self.start_pts) * self.time_base)

    def _frame_ticks(self) -> int:
        """One frame's length in time-base ticks, from the average frame rate (0 when unknown)."""
        rate = self.stream.average_rate
        return round(1 / (rate * self.time_base)) if rate else 0

    def _check_complete(self, declared_s: float) -> None:
        """Fail with InvalidInput.Truncated when the data stops before the declared end.

        One seek to END_CHECK_S before the end and the packets from there (no decoding): the data is
        cut when reading fails, the very last packet is partial, or no stream's packets (audio
        counts: a video track may end before the audio) reach within TRUNCATION_TOLERANCE_S of the
        end the container declares (its duration, or for AVI its frame count).
        """
        start_s = float(self.start_pts * self.time_base)
        expected_s = start_s + max(declared_s, self._declared_frames_s())
        data_end_s, last_is_partial = None, False
        self.container.seek(self.pts(max(0.0, declared_s - END_CHECK_S)), stream=self.stream, backward=True)
        try:
            for packet in self.container.demux():
                last_is_partial = packet.is_corrupt  # set on a short read; earlier ones may be mere TS glitches
                if packet.pts is not None and packet.time_base is not None:
                    end_s = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    data_end_s = end_s if data_end_s is None else max(data_end_s, end_s)
        except av.error.InvalidDataError as exc:
            raise truncated(f"reading the end of the input failed ({exc}); declared {declared_s:.3f} s") from exc
        if last_is_partial:
            raise truncated(f"the last packet of the input is incomplete (declared {declared_s:.3f} s)")
        if data_end_s is None or data_end_s < expected_s - TRUNCATION_TOLERANCE_S:
            ends = "has no packets near the end" if data_end_s is None else f"ends at {data_end_s - start_s:.3f} s"
            raise truncated(f"the input declares {expected_s - start_s:.3f} s but its data {ends}")

    def _declared_frames_s(self) -> float:
        """How long the frame count the container declares lasts at the average rate (0: none)."""
        rate = self.stream.average_rate
        return float(self.stream.frames / rate) if self.stream.frames and rate else 0.0

    def seconds(self, pts: int) -> float:
        return float((pts - self.start_pts) * self.time_base)

    def time_of(self, frame: av.VideoFrame) -> float:
        """The frame's time in seconds from the first frame."""
        return self.seconds(pts_of(frame))

    def pts(self, seconds: float) -> int:
        """The tick of `seconds` as ffmpeg's `-ss` computes it: the time in whole microseconds,
        rescaled to the time base to the nearest tick, halves away from zero (av_rescale_q)."""
        micros = round(seconds * 1_000_000)
        ticks = Fraction(micros, 1_000_000) / self.time_base
        return self.start_pts + math.floor(ticks + Fraction(1, 2))

    def _seek_keyframe_packets(self, target: int) -> Iterator[av.Packet]:
        """Packets starting at the last keyframe whose pts is at or before `target`.

        With an index (MP4, MKV) the first seek lands on that keyframe. Without one (MPEG-TS)
        ffmpeg lands near the byte position it guesses: possibly after the target (then we seek
        again SEEK_STEP_BACK_S, 2x, 4x ... earlier, until before the start) or some GOPs before it.
        So the packets are read on (not decoded) until one is decoded after the target, and the
        last keyframe at or before it is where the returned packets start. For a target before the
        first keyframe, the first keyframe is used.
        """
        step = round(SEEK_STEP_BACK_S / self.time_base)
        seek_to = target
        while True:
            self.container.seek(seek_to, stream=self.stream, backward=True)
            packets = self.container.demux(self.stream)
            keyframe = next((p for p in packets if p.is_keyframe and p.pts is not None), None)
            if keyframe is not None and pts_of(keyframe) <= target:
                return self._from_last_keyframe(keyframe, packets, target)
            if seek_to < self.start_pts:  # already read from the beginning: take its first keyframe
                return chain_first(keyframe, packets) if keyframe is not None else iter(())
            seek_to -= step
            step *= 2

    @staticmethod
    def _from_last_keyframe(keyframe: av.Packet, packets: Iterator[av.Packet], target: int) -> Iterator[av.Packet]:
        """`keyframe` (at or before `target`) and the packets after it, restarted at any later
        keyframe at or before `target`; held packets are at most one GOP."""
        held = [keyframe]
        for packet in packets:
            if packet.is_keyframe and packet.pts is not None and packet.pts <= target:
                held = [packet]
                continue
            held.append(packet)
            decode_ts = packet.dts if packet.dts is not None else packet.pts
            if decode_ts is not None and decode_ts > target:  # every later packet is later still
                break
        return itertools.chain(held, packets)

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


def _box_past_end(source: io.IOBase, size: int) -> str | None:
    """For an MP4/MOV (ISO-BMFF: top-level boxes from an `ftyp`): the type of a top-level box that
    runs past the end of the input, as when an upload is cut before its `moov`; else None."""
    offset = 0
    for _ in range(MAX_TOP_LEVEL_BOXES):
        if offset + 8 > size:
            return None
        source.seek(offset)
        header = source.read(16)
        box_size, kind = struct.unpack(">I4s", header[:8])
        if offset == 0 and kind != b"ftyp":
            return None
        if box_size == 1 and len(header) == 16:  # a 64-bit size follows the type
            box_size = struct.unpack(">Q", header[8:])[0]
        if box_size < 8:  # 0: the box runs to the end by definition; 1..7: not a box
            return None
        if offset + box_size > size:
            return kind.decode("latin-1")
        offset += box_size
    return None


def truncated(message: str) -> EngineError:
    return EngineError("InvalidInput.Truncated", message)


def _sample_aspect_ratio(stream: av.VideoStream) -> Fraction:
    """The stream's sample (pixel) aspect ratio as ffmpeg guesses it: the container's, else the
    codec's; 1 when neither says."""
    for ratio in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if ratio is not None and ratio > 0:
            return Fraction(ratio)
    return Fraction(1)


def input_error(exc: HttpRangeError) -> EngineError:
    codes: dict[int | None, str] = {404: "InvalidInput.NotFound", 403: "InvalidInput.Forbidden"}
    return EngineError(codes.get(exc.status, "InvalidInput.ReadFailed"), str(exc))

