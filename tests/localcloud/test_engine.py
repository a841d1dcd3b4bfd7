"""The local ICE frame-cutting engine, the stamped test media and the HTTP Range reader.

Every check on an image reads the frame index stamped into it by `localcloud.media`, so a test
knows *which* frame ICE semantics demand and which one the engine produced. No media files are
committed and nothing is mocked: videos are generated, and HttpRangeFile talks to a real local
HTTP server with a small Range handler (python's http.server has none).
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from posixpath import dirname, join
from urllib.parse import unquote

import av
import pytest
from PIL import Image

from localcloud.ice.engine import (
    EngineError,
    EngineResult,
    ParamError,
    SnapshotParams,
    run,
    validate_output,
)
from localcloud.ice.rangefile import HttpRangeError, HttpRangeFile
from localcloud.media import make_audio_only, make_garbage, make_test_video, read_stamp

FPS = 25
FRAME = 1 / FPS
DURATION = 4.0
GOP = 1.0


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip() -> bytes:
    """4 s, 25 fps, 320x240, keyframe every 1 s, B-frames on."""
    return make_test_video(duration_s=DURATION, fps=FPS, gop_s=GOP)


class Store(dict):
    """The `write` callback: key -> (data, content_type)."""

    def __call__(self, key: str, data: bytes, content_type: str) -> None:
        assert key not in self, f"{key} written twice"
        self[key] = (data, content_type)

    def image(self, key: str) -> Image.Image:
        data, content_type = self[key]
        assert content_type == "image/jpeg"
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG"
        return image


def cut(video: bytes, config: dict, output: str = "snap/{Count}.jpg") -> tuple[EngineResult, Store]:
    store = Store()
    result = run(io.BytesIO(video), SnapshotParams.from_config(config), output, store)
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


# --- test media -----------------------------------------------------------------------------------


def test_stamp_survives_jpeg_and_scaling_to_64_px(clip):
    with av.open(io.BytesIO(clip)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == DURATION * FPS
    for frame in frames[::7]:
        for size in ((320, 240), (64, 48), (64, 64)):
            out = io.BytesIO()
            frame.to_image().resize(size, Image.Resampling.BILINEAR).save(out, "JPEG", quality=60)
            assert read_stamp(Image.open(out), FPS) == pytest.approx(frame.time)


def test_keyframes_are_exactly_every_gop(clip):
    with av.open(io.BytesIO(clip)) as container:
        keyframes = [round(p.pts * p.time_base, 3) for p in container.demux(video=0) if p.is_keyframe]
    assert keyframes == [0.0, 1.0, 2.0, 3.0]


def test_black_lead_frames_and_garbage_have_no_stamp():
    video = make_test_video(duration_s=1, black_lead_s=0.5)
    with av.open(io.BytesIO(video)) as container:
        first = next(container.decode(video=0))
    with pytest.raises(ValueError, match="no stamp"):
        read_stamp(first.to_image(), FPS)
    with pytest.raises(ValueError, match="no stamp"):
        read_stamp(Image.new("RGB", (64, 48), (128, 128, 128)), FPS)
    with pytest.raises(av.error.FFmpegError):
        av.open(io.BytesIO(make_garbage()))


# --- Normal: time, count, interval, frame type ----------------------------------------------------


def test_normal_intra_takes_keyframe_at_or_before_each_time(clip):
    result, store = cut(clip, {"Type": "Normal", "Count": 5, "FrameType": "intra"})
    planned = [k * DURATION / 5 for k in range(5)]  # 0, 0.8, 1.6, 2.4, 3.2
    assert [s.key for s in result.snapshots] == [f"snap/0000{i}.jpg" for i in range(1, 6)]
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == [keyframe_at_or_before(t) for t in planned]
    assert [s.time_s for s in result.snapshots] == pytest.approx([keyframe_at_or_before(t) for t in planned])
    assert all((s.width, s.height) == (320, 240) for s in result.snapshots)
    assert (result.duration_s, result.source_width, result.source_height) == (DURATION, 320, 240)
    assert result.message is None and result.vtt_key is None


def test_normal_frame_type_normal_takes_exact_frame(clip):
    result, store = cut(clip, {"Type": "Normal", "Count": 7, "FrameType": "normal", "Time": 130})
    planned = [0.13 + k * (DURATION - 0.13) / 7 for k in range(7)]
    for snapshot, t in zip(result.snapshots, planned):
        stamp = stamp_of_snapshot(store, snapshot)
        assert stamp == pytest.approx(first_frame_at_or_after(t))
        assert t - 1e-9 <= stamp < t + FRAME
        assert snapshot.time_s == pytest.approx(stamp)


def test_interval_steps_from_time(clip):
    result, store = cut(clip, {"Type": "Normal", "Count": 3, "Interval": 1, "Time": 500, "FrameType": "normal"})
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == pytest.approx([0.52, 1.52, 2.52])
    assert result.message is None


def test_fewer_images_when_the_video_ends_first(clip):
    result, store = cut(clip, {"Type": "Normal", "Count": 10, "Interval": 1, "FrameType": "normal"})
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == pytest.approx([0, 1, 2, 3])
    assert len(store) == 4
    assert "4 of 10" in result.message


def test_interval_without_count_covers_the_video(clip):
    result, _ = cut(clip, {"Type": "Normal", "Interval": 1})
    assert len(result.snapshots) == 4 and result.message is None


def test_single_snapshot_without_placeholder_uses_the_name(clip):
    result, store = cut(clip, {"Type": "Normal", "Time": 2500}, "covers/a.jpg")
    assert list(store) == ["covers/a.jpg"]
    assert stamp_of_snapshot(store, result.snapshots[0]) == 2.0


def test_time_past_the_end_fails_the_job(clip):
    with pytest.raises(EngineError) as err:
        cut(clip, {"Type": "Normal", "Time": 4000})
    assert err.value.code == "InvalidParameter.Time" and "4000 ms" in err.value.message


@pytest.mark.parametrize("container_format", ["mpegts", "matroska"])
def test_other_containers_including_one_without_seek_index(container_format):
    video = make_test_video(duration_s=12, gop_s=2, container_format=container_format)
    planned = [k * 12 / 9 for k in range(9)]
    intra, store = cut(video, {"Type": "Normal", "Count": 9})
    assert [stamp_of_snapshot(store, s) for s in intra.snapshots] == [keyframe_at_or_before(t, 2) for t in planned]
    exact, store = cut(video, {"Type": "Normal", "Count": 9, "FrameType": "normal"})
    assert [stamp_of_snapshot(store, s) for s in exact.snapshots] == pytest.approx(
        [first_frame_at_or_after(t) for t in planned]
    )


# --- size -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dims", "expected"),
    [({"Width": 64}, (64, 48)), ({"Height": 60}, (80, 60)), ({"Width": 100, "Height": 50}, (100, 50)), ({}, (320, 240))],
)
def test_output_size(clip, dims, expected):
    result, store = cut(clip, {"Type": "Normal", "Count": 2, "FrameType": "normal", **dims})
    for snapshot in result.snapshots:
        assert store.image(snapshot.key).size == expected == (snapshot.width, snapshot.height)
        assert stamp_of_snapshot(store, snapshot) == pytest.approx(snapshot.time_s)


def test_display_rotation_is_applied():
    video = make_test_video(duration_s=2, rotation=90)  # coded 320x240, shown 240x320
    result, store = cut(video, {"Type": "Normal", "Count": 2, "FrameType": "normal", "Width": 120})
    assert (result.source_width, result.source_height) == (240, 320)
    for snapshot in result.snapshots:
        image = store.image(snapshot.key)
        assert image.size == (120, 160)
        assert read_stamp(image.rotate(-90, expand=True), FPS) == pytest.approx(snapshot.time_s)


# --- Sprite ---------------------------------------------------------------------------------------


def test_sprite_geometry_sheets_and_tile_times(clip):
    config = {
        "Type": "Sprite", "Count": 8, "FrameType": "normal", "Width": 80,
        "SpriteSnapshotConfig": {"Columns": 3, "Lines": 2, "Padding": 4, "Margin": 6, "Color": "#FF0000"},
    }
    result, store = cut(clip, config, "sprites/s-{TileCount}.jpg")
    assert list(store) == ["sprites/s-00001.jpg", "sprites/s-00002.jpg"]
    for key in store:
        assert store.image(key).size == (6 * 2 + 3 * 80 + 2 * 4, 6 * 2 + 2 * 60 + 4)
    assert [s.key for s in result.snapshots] == ["sprites/s-00001.jpg"] * 6 + ["sprites/s-00002.jpg"] * 2
    tiles = [s.tile for s in result.snapshots]
    assert [(t["column"], t["line"]) for t in tiles] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 0), (1, 0)]
    assert [(t["x"], t["y"], t["w"], t["h"]) for t in tiles[:5]] == [
        (6, 6, 80, 60), (90, 6, 80, 60), (174, 6, 80, 60), (6, 70, 80, 60), (90, 70, 80, 60),
    ]
    planned = [k * DURATION / 8 for k in range(8)]
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == pytest.approx(
        [first_frame_at_or_after(t) for t in planned]
    )
    second = store.image("sprites/s-00002.jpg").convert("RGB")
    for point in ((2, 2), (174 + 40, 6 + 30), (90 + 40, 70 + 30)):  # margin and two unused cells
        r, g, b = second.getpixel(point)
        assert r > 200 and g < 60 and b < 60, f"background at {point} is {(r, g, b)}"


def test_sprite_cell_of_another_shape_letterboxes_the_frame(clip):
    config = {"Type": "Sprite", "Count": 2, "Width": 80,
              "SpriteSnapshotConfig": {"Columns": 2, "Lines": 1, "CellWidth": 100, "CellHeight": 100}}
    result, store = cut(clip, config, "s-{TileCount}.jpg")
    sheet = store.image("s-00001.jpg")
    assert sheet.size == (200, 100)
    for snapshot in result.snapshots:
        x, y = snapshot.tile["x"], snapshot.tile["y"]
        inner = sheet.crop((x, y + 12, x + 100, y + 88))  # 80x60 fitted into 100x100 -> 100x75, centred
        assert read_stamp(inner, FPS) == pytest.approx(snapshot.time_s)


# --- WebVtt ---------------------------------------------------------------------------------------


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    def seconds(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    blocks = text.strip().split("\n\n")
    assert blocks[0] == "WEBVTT"
    cues = []
    for block in blocks[1:]:
        timing, payload = block.split("\n")
        start, end = timing.split(" --> ")
        cues.append((seconds(start), seconds(end), payload))
    return cues


def check_cues_cover_video(cues, duration):
    assert cues[0][0] == 0 and cues[-1][1] == pytest.approx(duration)
    for (_, end, _), (start, _, _) in zip(cues, cues[1:]):
        assert end == start


def test_webvtt_sprite_fragments(clip):
    result, store = cut(clip, {"Type": "WebVtt", "Count": 12, "FrameType": "normal", "Width": 64,
                               "IsSptFrag": True}, "vtt/my video.vtt")
    assert result.vtt_key == "vtt/my video.vtt" and result.objects_written[-1] == result.vtt_key
    data, content_type = store[result.vtt_key]
    assert content_type == "text/vtt"
    cues = parse_vtt(data.decode())
    assert len(cues) == 12
    check_cues_cover_video(cues, DURATION)
    assert list(store) == ["vtt/my video-sprite-00001.jpg", "vtt/my video.vtt"]
    for (start, _, payload), snapshot in zip(cues, result.snapshots):
        path, fragment = payload.split("#xywh=")
        assert "/" not in path and ":" not in path, "image paths must be relative to the VTT"
        sheet = store.image(join(dirname(result.vtt_key), unquote(path)))
        x, y, w, h = map(int, fragment.split(","))
        assert 0 <= x and 0 <= y and x + w <= sheet.width and y + h <= sheet.height
        assert read_stamp(sheet.crop((x, y, x + w, y + h)), FPS) == pytest.approx(snapshot.time_s)
        assert start - 1e-3 <= snapshot.time_s < start + FRAME


def test_webvtt_sprite_overflowing_its_grid_makes_several_sheets(clip):
    config = {"Type": "WebVtt", "Count": 5, "Width": 64, "IsSptFrag": True,
              "SpriteSnapshotConfig": {"Columns": 2, "Lines": 1}}
    result, store = cut(clip, config, "a.vtt")
    assert list(store) == ["a-sprite-00001.jpg", "a-sprite-00002.jpg", "a-sprite-00003.jpg", "a.vtt"]
    payloads = [p for _, _, p in parse_vtt(store["a.vtt"][0].decode())]
    assert payloads[4] == "a-sprite-00003.jpg#xywh=0,0,64,48"


def test_webvtt_one_image_per_cue(clip):
    result, store = cut(clip, {"Type": "WebVtt", "Interval": 1, "Time": 1000, "Width": 64}, "out/board.vtt")
    cues = parse_vtt(store["out/board.vtt"][0].decode())
    check_cues_cover_video(cues, DURATION)
    assert [p for _, _, p in cues] == ["board-00001.jpg", "board-00002.jpg", "board-00003.jpg"]
    assert [start for start, _, _ in cues] == [0, 2, 3]
    for (_, _, payload), snapshot in zip(cues, result.snapshots):
        assert snapshot.key == f"out/{payload}" and snapshot.tile is None
        assert stamp_of_snapshot(store, snapshot) == snapshot.time_s


# --- black frames ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def black_lead_clip() -> bytes:
    """Black for 0.5 s (frames 0..11), keyframes every 0.4 s."""
    return make_test_video(duration_s=DURATION, gop_s=0.4, black_lead_s=0.5)


def test_black_first_frame_is_skipped_for_the_first_snapshot_only(black_lead_clip):
    filtered, store = cut(black_lead_clip, {"Type": "Normal", "Count": 4, "FrameType": "normal",
                                            "BlackLevel": 90, "PixelBlackThreshold": 40})
    stamps = [stamp_of_snapshot(store, s) for s in filtered.snapshots]
    assert stamps == pytest.approx([0.48, 1.0, 2.0, 3.0])  # 0.48: frame 12, the first non-black one
    assert filtered.snapshots[0].time_s == pytest.approx(0.48)

    plain, store = cut(black_lead_clip, {"Type": "Normal", "Count": 4, "FrameType": "normal"})
    with pytest.raises(ValueError):
        stamp_of_snapshot(store, plain.snapshots[0])


def test_black_first_keyframe_moves_to_the_next_keyframe(black_lead_clip):
    result, store = cut(black_lead_clip, {"Type": "Normal", "Count": 4, "BlackLevel": 90})
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == pytest.approx([0.8, 0.8, 2.0, 2.8])


def test_black_filter_is_multi_frame_only(black_lead_clip):
    result, store = cut(black_lead_clip, {"Type": "Normal", "Count": 1, "FrameType": "normal", "BlackLevel": 90})
    with pytest.raises(ValueError):
        stamp_of_snapshot(store, result.snapshots[0])


def test_all_black_until_the_next_snapshot_keeps_the_black_frame():
    video = make_test_video(duration_s=2, black_lead_s=2)
    result, _ = cut(video, {"Type": "Normal", "Count": 2, "FrameType": "normal", "BlackLevel": 90})
    assert result.snapshots[0].time_s == 0 and "black" in result.message


# --- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: b"", "InvalidInput.NotDecodable"),
        (lambda: make_garbage(), "InvalidInput.NotDecodable"),
        (lambda: make_test_video(duration_s=1)[:3000], "InvalidInput.NotDecodable"),  # moov is at the end
        (lambda: make_audio_only(), "InvalidInput.NoVideoStream"),
    ],
    ids=["empty", "garbage", "truncated", "audio-only"],
)
def test_unusable_input_fails_with_a_code(make, code):
    with pytest.raises(EngineError) as err:
        cut(make(), {"Type": "Normal"}, "x.jpg")
    assert err.value.code == code and err.value.message


def test_write_failure_fails_the_job(clip):
    def failing(key, data, content_type):
        raise OSError("disk full")

    with pytest.raises(EngineError) as err:
        run(io.BytesIO(clip), SnapshotParams.from_config({"Type": "Normal"}), "x.jpg", failing)
    assert err.value.code == "Output.WriteFailed" and "x.jpg" in err.value.message and "disk full" in err.value.message


def test_run_refuses_bad_output_names(clip):
    with pytest.raises(EngineError) as err:
        cut(clip, {"Type": "Normal", "Count": 3}, "no-placeholder.jpg")
    assert err.value.code == "InvalidParameter.Output"


# --- parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "TemplateConfig.Type"),
        ({"Type": "Cover"}, "TemplateConfig.Type"),
        ({"Type": "Normal", "FrameType": "INTRA"}, "TemplateConfig.FrameType"),
        ({"Type": "Normal", "Count": 0}, "TemplateConfig.Count"),
        ({"Type": "Normal", "Count": "5"}, "TemplateConfig.Count"),
        ({"Type": "Normal", "Count": True}, "TemplateConfig.Count"),
        ({"Type": "Normal", "Time": -1}, "TemplateConfig.Time"),
        ({"Type": "Normal", "Interval": 0}, "TemplateConfig.Interval"),
        ({"Type": "Normal", "Width": 4}, "TemplateConfig.Width"),
        ({"Type": "Normal", "Height": 5000}, "TemplateConfig.Height"),
        ({"Type": "Normal", "BlackLevel": 101}, "TemplateConfig.BlackLevel"),
        ({"Type": "Normal", "PixelBlackThreshold": 256}, "TemplateConfig.PixelBlackThreshold"),
        ({"Type": "WebVtt", "IsSptFrag": "true"}, "TemplateConfig.IsSptFrag"),
        ({"Type": "Normal", "Intervall": 3}, "TemplateConfig.Intervall"),
        ({"Type": "Sprite"}, "TemplateConfig.SpriteSnapshotConfig"),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 3}}, "TemplateConfig.SpriteSnapshotConfig.Lines"),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 0, "Lines": 1}},
         "TemplateConfig.SpriteSnapshotConfig.Columns"),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 1, "Lines": 1, "Color": "red"}},
         "TemplateConfig.SpriteSnapshotConfig.Color"),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 1, "Lines": 1, "Padding": -1}},
         "TemplateConfig.SpriteSnapshotConfig.Padding"),
        ({"Type": "Sprite", "SpriteSnapshotConfig": []}, "TemplateConfig.SpriteSnapshotConfig"),
    ],
)
def test_param_errors_name_the_field(config, field):
    with pytest.raises(ParamError) as err:
        SnapshotParams.from_config(config)
    assert err.value.field == field
    assert field in str(err.value)


def test_config_round_trip():
    config = {
        "Type": "Sprite", "FrameType": "normal", "Time": 1000, "Count": 8, "Interval": 2, "Width": 160,
        "BlackLevel": 30, "PixelBlackThreshold": 70,
        "SpriteSnapshotConfig": {"Columns": 4, "Lines": 2, "Padding": 2, "Margin": 0, "Color": "#000000"},
    }
    params = SnapshotParams.from_config(config)
    assert params.to_config() == config
    assert SnapshotParams.from_config(params.to_config()) == params
    assert SnapshotParams.from_config({"Type": "Normal"}).to_config() == {"Type": "Normal", "FrameType": "intra", "Time": 0}


@pytest.mark.parametrize(
    ("config", "output", "ok"),
    [
        ({"Type": "Normal"}, "a.jpg", True),
        ({"Type": "Normal", "Count": 2}, "a.jpg", False),
        ({"Type": "Normal", "Count": 2}, "a-{Count}.jpg", True),
        ({"Type": "Normal", "Interval": 5}, "a.jpg", False),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2}}, "s.jpg", False),
        ({"Type": "Sprite", "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2}}, "s-{TileCount}.jpg", True),
        ({"Type": "WebVtt"}, "a.jpg", False),
        ({"Type": "WebVtt"}, "a.vtt", True),
        ({"Type": "Normal"}, "dir/", False),
    ],
)
def test_validate_output(config, output, ok):
    params = SnapshotParams.from_config(config)
    if ok:
        validate_output(params, output)
    else:
        with pytest.raises(ParamError) as err:
            validate_output(params, output)
        assert err.value.field == "Output"


# --- HttpRangeFile --------------------------------------------------------------------------------


class RangeServer:
    """A real local HTTP server for a dict of path -> bytes, honouring single `Range: bytes=a-b`.

    /forbidden answers 403 (like OSS for a bad signature); paths under /norange/ ignore Range.
    """

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.range_requests = 0
        objects, server = self.objects, self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path == "/forbidden":
                    return self._reply(403, b"<Error><Code>AccessDenied</Code></Error>")
                body = objects.get(path.removeprefix("/norange"))
                if body is None:
                    return self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
                header = self.headers.get("Range")
                if header is None or path.startswith("/norange/"):
                    return self._reply(200, body)
                server.range_requests += 1
                first, last = header.removeprefix("bytes=").split("-")
                first, last = int(first), min(int(last), len(body) - 1)
                if first >= len(body):
                    return self._reply(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                self._reply(206, body[first : last + 1], {"Content-Range": f"bytes {first}-{last}/{len(body)}"})

            def _reply(self, status, body, headers=None):
                etag = '"%s"' % hashlib.md5(objects.get(self.path.split("?", 1)[0], b"")).hexdigest()
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), "ETag": etag, **(headers or {})}.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # a client that stops reading early
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"


@pytest.fixture(scope="module")
def server():
    srv = RangeServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def test_range_file_reads_what_it_is_asked_and_fetches_only_nearby_blocks(server):
    data = random.Random(1).randbytes(8 << 20)
    server.objects["/big.bin"] = data
    with HttpRangeFile(server.url("/big.bin"), block_size=64 << 10, max_blocks=4) as f:
        assert f.requests == 0, "nothing is fetched before the first read"
        assert f.seek(0, io.SEEK_END) == len(data)
        rng = random.Random(2)
        for _ in range(20):
            offset, n = rng.randrange(len(data)), rng.randrange(1, 100_000)
            f.seek(offset)
            assert f.read(n) == data[offset : offset + n]
            assert f.tell() == min(offset + n, len(data))
        f.seek(len(data) - 3)
        assert f.read(10) == data[-3:] and f.read(10) == b""
        assert f.bytes_fetched <= (1 + 20 * 3) * (64 << 10) < len(data) // 2
        assert f.requests <= 1 + 20 * 3


def test_range_file_keeps_a_bounded_lru_of_blocks(server):
    server.objects["/lru.bin"] = bytes(range(256)) * 4096  # 1 MiB
    with HttpRangeFile(server.url("/lru.bin"), block_size=1024, max_blocks=2) as f:
        f.seek(0)
        f.read(10)
        f.seek(5000)
        f.read(10)
        before = f.requests
        f.seek(20)
        assert f.read(4) == bytes([20, 21, 22, 23]) and f.requests == before, "a cached block is not fetched again"
        f.seek(9000)
        f.read(1)
        f.seek(5000)
        f.read(1)  # block 4 was evicted by blocks 0 (recent) and 8
        assert f.requests == before + 2


@pytest.mark.parametrize(("path", "status"), [("/missing.mp4", 404), ("/forbidden", 403)])
def test_range_file_errors_carry_the_status_and_hide_the_signature(server, path, status):
    f = HttpRangeFile(server.url(path) + "?Signature=SECRET&security-token=TOKEN")
    with pytest.raises(HttpRangeError) as err:
        f.read(1)
    assert err.value.status == status and str(status) in str(err.value)
    assert "SECRET" not in str(err.value) and "TOKEN" not in str(err.value) and path in str(err.value)


def test_range_file_fails_when_the_object_changes_while_reading(server):
    server.objects["/changing.bin"] = b"a" * 4096
    f = HttpRangeFile(server.url("/changing.bin"), block_size=1024)
    assert f.read(10) == b"a" * 10
    server.objects["/changing.bin"] = b"b" * 4096
    f.seek(3000)
    with pytest.raises(HttpRangeError, match="changed while reading"):
        f.read(10)


def test_empty_object_over_http_is_not_decodable(server):
    server.objects["/uploads/empty.mp4"] = b""
    source = HttpRangeFile(server.url("/uploads/empty.mp4"))
    assert source.size == 0 and source.read(10) == b""
    with pytest.raises(EngineError) as err:
        run(source, SnapshotParams.from_config({"Type": "Normal"}), "x.jpg", Store())
    assert err.value.code == "InvalidInput.NotDecodable" and "empty" in err.value.message


def test_range_file_refuses_a_server_that_ignores_range_for_big_objects(server):
    server.objects["/small.bin"], server.objects["/large.bin"] = b"abc", b"x" * (3 << 20)
    assert HttpRangeFile(server.url("/norange/small.bin")).read() == b"abc"
    with pytest.raises(HttpRangeError, match="ignored the Range header"):
        HttpRangeFile(server.url("/norange/large.bin"), block_size=1 << 20).read(1)


def test_engine_reads_over_http_without_downloading_the_file(server):
    video = make_test_video(duration_s=60, width=640, height=360, gop_s=2)
    server.objects["/uploads/long.mp4"] = video
    source = HttpRangeFile(server.url("/uploads/long.mp4"), block_size=32 << 10, max_blocks=4)
    store = Store()
    result = run(source, SnapshotParams.from_config({"Type": "Normal", "Count": 3, "Width": 64}), "{Count}.jpg", store)
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == [0, 20, 40]
    assert source.bytes_fetched < len(video) / 3, (source.bytes_fetched, len(video))


def test_engine_maps_http_errors_to_job_codes(server):
    with pytest.raises(EngineError) as err:
        run(HttpRangeFile(server.url("/uploads/nope.mp4")), SnapshotParams.from_config({"Type": "Normal"}),
            "x.jpg", Store())
    assert err.value.code == "InvalidInput.NotFound" and "404" in err.value.message
