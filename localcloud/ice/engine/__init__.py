"""The frame-cutting engine of the local ICE: the rules of `SubmitSnapshotJob`, no HTTP.

`SnapshotParams.from_config` turns an ICE TemplateConfig (template merged with OverwriteParams)
into a validated value, `validate_output` checks the output object name the way ICE does, and `run`
cuts the frames from a seekable input and writes JPEGs (plus a WebVTT storyboard) through a
`write(key, data, content_type)` callback; a job that fails deletes what it wrote through
`delete(key)`. Parameter reference:
https://help.aliyun.com/zh/ims/developer-reference/api-ice-2020-11-09-submitsnapshotjob and the
snapshot template page https://help.aliyun.com/document_detail/448296.html.

The input is never decoded whole, and read whole only when it declares no duration (below). Opening
it reads the end of the data once (one seek, packets only) to catch a cut upload. Every snapshot is
one container seek: the packets are read (not decoded) up to the time, so the last keyframe at or
before it is found even where the seek is approximate (MPEG-TS has no index); for FrameType `intra`
that keyframe packet is decoded alone; for `normal` the decoder starts at that keyframe and decodes
forward to the first frame at or after the time (and carries on forward instead of re-seeking when
the next time is close). Images are streamed to `write` as they are made, sprite sheets one sheet
at a time, so memory is a few frames plus one sheet (and at most one GOP of packets) whatever the
input size.

Error codes raised as `EngineError.code` (the job ends `Fail` with them):
  InvalidInput.NotFound / InvalidInput.Forbidden / InvalidInput.ReadFailed - the input could not be read
  InvalidInput.NotDecodable - empty, not a media file, or frames could not be decoded
  InvalidInput.Truncated - the data stops before the end the file declares (a cut upload; see below)
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
* Times are relative to the first frame of the video stream (its start_time), in seconds. A time is
  put on the stream's time base as ffmpeg's `-ss` does: whole microseconds, then the nearest tick,
  halves up. On a fine time base (MP4, MPEG-TS, WebM) that is the time itself; on a coarse one (AVI:
  1/fps) 0.1 s at 25 fps is tick 3 (0.12 s) and 0.09 s is tick 2 (0.08 s), the frames ffmpeg shows.
* FrameType `intra`: the last keyframe whose presentation time is at or before that tick.
  FrameType `normal`: the first frame whose presentation time is at or after it (ffmpeg `-ss`
  semantics); past the last frame, the last frame.
* Duration: the video stream's, else the container's. A file that declares none (a WebM written by
  a browser's MediaRecorder or to a pipe has no Duration element, and no Cues) is read through once,
  packets only, and its duration is where its last video packet ends.
* Truncated input: the job fails with InvalidInput.Truncated, whatever the FrameType and the times,
  when an MP4's top-level box (its mdat, before the moov) runs past the end of the file, or when the
  packets at the end are incomplete, reading them fails, or no stream's packets (audio counts: a
  video track may end before the audio) reach within TRUNCATION_TOLERANCE_S (0.5 s) of the end the
  file declares (its duration, or AVI's frame count). A file damaged so that its end cannot be read
  is reported the same way. MPEG-TS and WebM without a Duration declare no length (ffmpeg measures
  it from the data), so a cut one reads as a shorter video, as in ffmpeg.
* A job that fails leaves no outputs: every object it wrote is deleted before the job ends `Fail`
  (objects that could not be deleted are named in the Message). A job that succeeds with a remark
  (fewer snapshots than Count, a black first frame kept) carries it in the result's `message`.
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
  displayed: a display-matrix rotation (phone video) is applied, as ffmpeg does by default, and so
  is the sample aspect ratio (the container's, else the codec's), the way ffmpeg's
  `scale=iw*sar:ih` does it: the width becomes width x SAR rounded down, the height stays (960x720
  with SAR 4:3 is 1280x720). Stills, sprite cells and storyboard tiles all get that shape.
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

from localcloud.ice.engine.job import run
from localcloud.ice.engine.params import ParamError, SnapshotParams, SpriteConfig, validate_output
from localcloud.ice.engine.results import EngineError, EngineResult, Snapshot

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
