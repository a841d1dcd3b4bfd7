"""The clips the engine tests cut: generated, never committed."""
from __future__ import annotations

import pytest

from localcloud.media import make_test_video
from tests.localcloud.engine.support import DURATION, FPS, GOP


@pytest.fixture(scope="package")
def clip() -> bytes:
    """4 s, 25 fps, 320x240, keyframe every 1 s, B-frames on."""
    return make_test_video(duration_s=DURATION, fps=FPS, gop_s=GOP)
