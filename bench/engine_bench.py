"""4. The snapshot engine against one ffmpeg process per still.

A generated 60 s 1280x720 H.264 clip (25 fps, a keyframe every 2 s, moov at the end, as ffmpeg
writes it) is served by the local OSS. Ten stills at evenly spaced times: ICE's plan for
``Count=10, Time=1000`` (1 s + k x 5.9 s), so the times fall between keyframes, where FrameType
``normal`` has to decode forward. Each side reads the same signed URL:

- ``baseline``: ``ffmpeg -ss T -i <signed URL> -frames:v 1 out.jpg``, one process per still, one
  after the other (the ffmpeg that imageio-ffmpeg ships);
- ``intra`` / ``normal``: ``localcloud.ice.engine.run`` in-process over an ``HttpRangeFile`` of the
  URL, JPEGs kept in memory.

The three alternate within each run. ``normal`` must give the same frames as ffmpeg: every pair is
checked by the frame number stamped into the picture and by the mean absolute pixel difference
(both decoded to RGB at the same size).
"""
from __future__ import annotations

import io
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Section, log, ratio_stats, stats

FPS = 25
DURATION_S = 60.0
COUNT = 10
TIME_MS = 1000
MAX_MEAN_ABS_DIFF = 4.0  # of 255: JPEG re-encoding noise, far below a different frame


def planned_times(duration_s: float = DURATION_S, count: int = COUNT, time_ms: int = TIME_MS) -> list[float]:
    start = time_ms / 1000
    return [start + k * (duration_s - start) / count for k in range(count)]


def run_engine(url: str, frame_type: str, *, count: int = COUNT, time_ms: int = TIME_MS) -> list[bytes]:
    from contextlib import closing

    from localcloud.ice import engine
    from localcloud.ice.rangefile import HttpRangeFile

    params = engine.SnapshotParams.from_config({"Type": "Normal", "FrameType": frame_type, "Time": time_ms,
                                                "Count": count})
    images: dict[str, bytes] = {}
    with closing(HttpRangeFile(url)) as reader:
        engine.run(reader, params, "bench/{Count}.jpg", lambda key, data, _ct: images.__setitem__(key, data))
    return [images[k] for k in sorted(images)]


def run_ffmpeg(ffmpeg: str, url: str, times: list[float], workdir: Path) -> list[bytes]:
    out = []
    for i, t in enumerate(times):
        target = workdir / f"ff-{i:02d}.jpg"
        subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-ss", f"{t:.3f}", "-i", url, "-frames:v", "1",
                        str(target)], check=True, capture_output=True)
        out.append(target.read_bytes())
    return out


def compare(ours: list[bytes], theirs: list[bytes], fps: int = FPS) -> dict[str, Any]:
    """Stamped frame numbers of both sides, and the mean absolute RGB difference of each pair."""
    import numpy as np
    from PIL import Image

    from localcloud.media import read_stamp

    frames, diffs = [], []
    for a, b in zip(ours, theirs, strict=False):  # a side with fewer images fails same_frames, below
        ia, ib = Image.open(io.BytesIO(a)).convert("RGB"), Image.open(io.BytesIO(b)).convert("RGB")
        if ia.size != ib.size:
            ib = ib.resize(ia.size)
        diffs.append(float(np.abs(np.asarray(ia, np.int16) - np.asarray(ib, np.int16)).mean()))
        frames.append((round(read_stamp(ia, fps) * fps), round(read_stamp(ib, fps) * fps)))
    return {"frames": frames, "mean_abs_diff": [round(d, 3) for d in diffs],
            "same_frames": len(ours) == len(theirs) and all(x == y for x, y in frames),
            "max_mean_abs_diff": round(max(diffs), 3) if diffs else None}


def time_sides(ffmpeg: str, url: str, times: list[float], runs: int) -> tuple[dict[str, list[float]], list[dict]]:
    """Seconds per run of ffmpeg and the engine's two frame types, alternated; and each run's frame check."""
    timings: dict[str, list[float]] = {"baseline": [], "intra": [], "normal": []}
    checks = []
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        workdir = Path(tmp)
        # once unmeasured each (page cache, ffmpeg binary, PyAV), and the frame check
        theirs = run_ffmpeg(ffmpeg, url, times, workdir)
        ours_normal = run_engine(url, "normal")
        run_engine(url, "intra")
        checks.append(compare(ours_normal, theirs))
        sides = ["baseline", "intra", "normal"]
        for i in range(runs):
            for side in sides[i % 3:] + sides[:i % 3]:
                t0 = time.perf_counter()
                if side == "baseline":
                    theirs = run_ffmpeg(ffmpeg, url, times, workdir)
                else:
                    images = run_engine(url, side)
                    if side == "normal":
                        ours_normal = images
                timings[side].append(time.perf_counter() - t0)
            checks.append(compare(ours_normal, theirs))
            log(f"engine run {i + 1}/{runs}: ffmpeg {timings['baseline'][-1]:.2f}s intra {timings['intra'][-1]:.2f}s "
                f"normal {timings['normal'][-1]:.2f}s")
    return timings, checks


def run(cloud, *, runs: int = 5, duration_s: float = DURATION_S, width: int = 1280, height: int = 720) -> Section:
    import imageio_ffmpeg

    from localcloud.media import make_test_video

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    log(f"engine: encoding a {duration_s:g} s {width}x{height} clip")
    video = make_test_video(duration_s=duration_s, fps=FPS, width=width, height=height, gop_s=2.0)
    key = "bench/engine/source.mp4"
    bucket = cloud.bucket()
    bucket.put_object(key, video)
    url = bucket.sign_url("GET", key, 3600, slash_safe=True)
    times = planned_times(duration_s)
    timings, checks = time_sides(ffmpeg, url, times, runs)
    same = all(c["same_frames"] for c in checks)
    worst = max(c["max_mean_abs_diff"] for c in checks)
    if not same or worst > MAX_MEAN_ABS_DIFF:
        raise RuntimeError(f"engine normal frames differ from ffmpeg's: {checks[-1]}")
    video_info = {"duration_s": duration_s, "fps": FPS, "width": width, "height": height, "gop_s": 2.0,
                  "bytes": len(video)}
    return engine_section(timings, checks[-1], same, worst, video_info=video_info, times=times,
                          ffmpeg_version=imageio_ffmpeg.get_ffmpeg_version())


def engine_section(timings: dict[str, list[float]], last_check: dict, same: bool, worst: float, *,
                   video_info: dict, times: list[float], ffmpeg_version: str) -> Section:
    """The three timings, the engine's ratios to ffmpeg, and how its normal frames compare with ffmpeg's."""
    section = Section("engine")
    base, intra, normal = (stats(timings[k]) for k in ("baseline", "intra", "normal"))
    intra_ratio = ratio_stats(timings["intra"], timings["baseline"])
    normal_ratio = ratio_stats(timings["normal"], timings["baseline"])
    section.flat = {"baseline_s": base["median"], "intra_s": intra["median"], "normal_s": normal["median"],
                    "intra_ratio": intra_ratio["median"], "normal_ratio": normal_ratio["median"],
                    "normal_same_frames": same, "normal_max_mean_abs_diff": worst}
    section.details = {"video": video_info, "times_s": [round(t, 3) for t in times], "ffmpeg": ffmpeg_version,
                       "baseline_s": base, "intra_s": intra, "normal_s": normal, "intra_ratio": intra_ratio,
                       "normal_ratio": normal_ratio, "frame_check": last_check,
                       "frame_check_max_mean_abs_diff_threshold": MAX_MEAN_ABS_DIFF}
    section.figure("10 stills, N x ffmpeg -ss T -i URL -frames:v 1 (baseline)", base)
    section.figure("10 stills, engine FrameType intra", intra)
    section.figure("10 stills, engine FrameType normal", normal)
    section.figure("intra_ratio", intra_ratio, unit="x", target="<= 0.3", met=intra_ratio["median"] <= 0.3)
    section.figure(f"normal_ratio (same frames as ffmpeg: {same}, max mean abs diff {worst:.2f}/255)",
                   normal_ratio, unit="x", target="<= 0.8", met=normal_ratio["median"] <= 0.8)
    return section
