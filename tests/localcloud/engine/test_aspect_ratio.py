"""Non-square pixels: stills, sprite cells and storyboard tiles show the picture as ffmpeg displays it
(`scale=iw*sar:ih`), not the coded 960x720 squeezed into 4:3."""
from __future__ import annotations

from fractions import Fraction

import pytest
from PIL import Image

from localcloud.media import make_test_video
from tests.localcloud.engine.support import (
    FPS,
    cut,
    ffmpeg_stills,
    mean_difference,
    needs_ffmpeg,
    stamp_of_snapshot,
)

pytestmark = needs_ffmpeg

SAR = Fraction(4, 3)  # 960x720 coded, shown 1280x720 (16:9)
TIMES = [0.0, 0.5]
JPEG_TOLERANCE = 4.0


@pytest.fixture(scope="module")
def anamorphic(tmp_path_factory):
    video = make_test_video(duration_s=1.0, fps=FPS, width=960, height=720, sample_aspect_ratio=SAR)
    path = tmp_path_factory.mktemp("sar") / "anamorphic.mp4"
    path.write_bytes(video)
    return video, path


def crop_tile(store, snapshot) -> Image.Image:
    tile = snapshot.tile
    return store.image(snapshot.key).crop((tile["x"], tile["y"], tile["x"] + tile["w"], tile["y"] + tile["h"]))


@pytest.mark.parametrize(("size", "expected"), [({}, (1280, 720)), ({"Width": 320}, (320, 180)),
                                                ({"Height": 90}, (160, 90))])
def test_stills_have_the_display_aspect_ratio(anamorphic, size, expected):
    video, path = anamorphic
    result, store = cut(video, {"Type": "Normal", "FrameType": "normal", "Count": 2, **size})
    assert (result.source_width, result.source_height) == (1280, 720)
    references = ffmpeg_stills(path, TIMES, "scale=iw*sar:ih", f"scale={expected[0]}:{expected[1]}")
    for snapshot, reference in zip(result.snapshots, references, strict=True):
        still = store.image(snapshot.key)
        assert still.size == (snapshot.width, snapshot.height) == expected == reference.size
        assert stamp_of_snapshot(store, snapshot) == pytest.approx(snapshot.time_s)
        assert mean_difference(still, reference) < JPEG_TOLERANCE


def test_sprite_cells_are_filled_unsqueezed(anamorphic):
    video, path = anamorphic
    config = {"Type": "Sprite", "FrameType": "normal", "Count": 2,
              "SpriteSnapshotConfig": {"Columns": 2, "Lines": 1, "CellWidth": 160, "CellHeight": 90,
                                       "Color": "#FF0000"}}
    result, store = cut(video, config, "sprite-{TileCount}.jpg")
    references = ffmpeg_stills(path, TIMES, "scale=iw*sar:ih", "scale=160:90")
    for snapshot, reference in zip(result.snapshots, references, strict=True):
        cell = crop_tile(store, snapshot)
        assert mean_difference(cell, reference) < JPEG_TOLERANCE  # a squeezed frame would leave red bars


def test_storyboard_tiles_have_the_display_aspect_ratio(anamorphic):
    video, path = anamorphic
    config = {"Type": "WebVtt", "FrameType": "normal", "Count": 2, "Width": 160, "IsSptFrag": True}
    result, store = cut(video, config, "story.vtt")
    references = ffmpeg_stills(path, TIMES, "scale=iw*sar:ih", "scale=160:90")
    for snapshot, reference in zip(result.snapshots, references, strict=True):
        assert (snapshot.tile["w"], snapshot.tile["h"]) == (160, 90)
        assert mean_difference(crop_tile(store, snapshot), reference) < JPEG_TOLERANCE
