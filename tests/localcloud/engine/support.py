"""What the engine tests share: the stamped clip's shape, an in-memory ``write`` target and the frame arithmetic.

Every check on an image reads the frame index stamped into it by `localcloud.media`, so a test knows
*which* frame ICE semantics demand and which one the engine produced.
"""
from __future__ import annotations

import io
import math

from PIL import Image

from localcloud.ice.engine import EngineResult, SnapshotParams, run
from localcloud.media import read_stamp

FPS = 25
FRAME = 1 / FPS
DURATION = 4.0
GOP = 1.0

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

