"""The index is a contract: sprite geometry with tile times, WebVTT storyboards, stills' times, warnings."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.media import make_test_video, read_stamp
from tests.support import PIPELINE_TIMEOUT_S, assert_valid_index, default_result

FPS = 25


@pytest.fixture(scope="module")
def video() -> bytes:
    return make_test_video(duration_s=4.0, fps=FPS, width=320, height=240, gop_s=1.0)


def run_once(options: LocalCloudOptions, key: str, data: bytes):
    cloud = LocalCloud(options).start()
    try:
        cloud.bucket().put_object(key, data)
        return cloud, assert_valid_index(cloud.wait_for_index(key, timeout=PIPELINE_TIMEOUT_S))
    except BaseException:
        cloud.stop()
        raise


def image(cloud, key: str) -> Image.Image:
    return Image.open(io.BytesIO(cloud.bucket().get_object(key).read())).convert("RGB")


def test_sprite_index_maps_every_tile_to_its_time(video):
    config = {"Type": "Sprite", "FrameType": "intra", "Time": 0, "Count": 4, "Interval": 1,
              "SpriteSnapshotConfig": {"Columns": 2, "Lines": 1, "CellWidth": 96, "CellHeight": 72,
                                       "Padding": 4, "Margin": 6, "Color": "#202020"}}
    cloud, index = run_once(LocalCloudOptions(bucket="sprites", snapshot_type="Sprite", template_config=config,
                                              template_subtype=2), "uploads/sprite.mp4", video)
    try:
        assert default_result(index)["job"]["type"] == "Sprite"
        assert [s["key"].rsplit("/", 1)[1] for s in default_result(index)["snapshots"]] == \
            ["sprite-00001.jpg", "sprite-00002.jpg"]
        sprite = default_result(index)["sprite"]
        assert {k: sprite[k] for k in ("columns", "lines", "cell_width", "cell_height", "padding", "margin")} == \
            {"columns": 2, "lines": 1, "cell_width": 96, "cell_height": 72, "padding": 4, "margin": 6}
        assert [t["time"] for t in sprite["tiles"]] == [0.0, 1.0, 2.0, 3.0]
        sheets = {s["index"]: image(cloud, s["key"]) for s in default_result(index)["snapshots"]}
        assert sheets[1].size == (6 + 96 + 4 + 96 + 6, 6 + 72 + 6)
        for tile in sprite["tiles"]:
            cell = sheets[tile["sprite"]].crop((tile["x"], tile["y"], tile["x"] + tile["w"], tile["y"] + tile["h"]))
            assert read_stamp(cell, FPS) == pytest.approx(tile["time"], abs=1 / FPS)
    finally:
        cloud.stop()


def test_webvtt_index_names_the_storyboard_and_its_cues(video):
    config = {"Type": "WebVtt", "FrameType": "intra", "Time": 0, "Count": 4, "Interval": 1, "IsSptFrag": True,
              "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2, "CellWidth": 80, "CellHeight": 60}}
    cloud, index = run_once(LocalCloudOptions(bucket="storyboards", snapshot_type="WebVtt", template_config=config,
                                              template_subtype=3), "uploads/story.mp4", video)
    try:
        webvtt = default_result(index)["webvtt"]
        assert webvtt["key"] == f"snapshots/storyboards/uploads/story.mp4/{index['source']['version']}/storyboard.vtt"
        assert cloud.bucket().get_object(webvtt["key"]).read().startswith(b"WEBVTT")
        cues = webvtt["cues"]
        assert [c["start"] for c in cues] == [0.0, 1.0, 2.0, 3.0]
        assert cues[-1]["end"] == pytest.approx(4.0, abs=0.1)
        (sheet,) = default_result(index)["snapshots"]
        assert all(c["key"] == sheet["key"] for c in cues) and sheet["time"] == 0.0
        picture = image(cloud, sheet["key"])
        for cue in cues:
            x, y, w, h = cue["xywh"]
            assert read_stamp(picture.crop((x, y, x + w, y + h)), FPS) == pytest.approx(cue["start"], abs=1 / FPS)
    finally:
        cloud.stop()


def test_stills_carry_their_requested_time_when_the_interval_fixes_it(video):
    config = {"Type": "Normal", "FrameType": "normal", "Time": 500, "Count": 3, "Interval": 1}
    cloud, index = run_once(LocalCloudOptions(bucket="stills", template_config=config), "uploads/stills.mp4", video)
    try:
        assert [s["time"] for s in default_result(index)["snapshots"]] == [0.5, 1.5, 2.5]
        for snap in default_result(index)["snapshots"]:
            assert read_stamp(image(cloud, snap["key"]), FPS) == pytest.approx(snap["time"], abs=1 / FPS)
        assert index["source"]["size"] == len(video)
        assert "warnings" not in default_result(index)["job"]  # 3 of 3
    finally:
        cloud.stop()


def test_fewer_snapshots_than_count_reach_the_index_as_a_warning(video):
    config = {"Type": "Normal", "FrameType": "normal", "Time": 2000, "Count": 5, "Interval": 1}
    cloud, index = run_once(LocalCloudOptions(bucket="short", template_config=config), "uploads/short.mp4", video)
    try:
        assert default_result(index)["job"]["status"] == "Success" and len(default_result(index)["snapshots"]) == 2
        assert default_result(index)["job"]["warnings"] == ["video ended after 2 of 5 snapshots (duration 4.000 s)"]
        assert "error" not in default_result(index)["job"]
    finally:
        cloud.stop()

