"""Sprite sheets and WebVTT storyboards from the engine: geometry, sheets, cues and the frames in them."""
from __future__ import annotations

from itertools import pairwise
from posixpath import dirname, join
from urllib.parse import unquote

import pytest

from localcloud.media import read_stamp
from tests.localcloud.engine.support import DURATION, FPS, FRAME, cut, first_frame_at_or_after, stamp_of_snapshot


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
    for (_, end, _), (start, _, _) in pairwise(cues):
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
    for (start, _, payload), snapshot in zip(cues, result.snapshots, strict=True):
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
    for (_, _, payload), snapshot in zip(cues, result.snapshots, strict=True):
        assert snapshot.key == f"out/{payload}" and snapshot.tile is None
        assert stamp_of_snapshot(store, snapshot) == snapshot.time_s

