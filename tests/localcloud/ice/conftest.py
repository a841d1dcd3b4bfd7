"""One LocalOss and one LocalIce for every ICE test, reset around each test, and the SDK clients on them.

The servers live for the package (as long as the ICE tests run, whichever file runs them); ``clean``
resets the model before and after each test and fails a test that leaves jobs or callbacks running.
"""
from __future__ import annotations

import oss2
import pytest

from localcloud.ice.server import LocalIce
from localcloud.media import make_garbage, make_test_video
from localcloud.oss import LocalOss
from tests.localcloud.ice.support import (
    AK,
    CALLBACK_INTERVAL_S,
    CALLBACK_TIMEOUT_S,
    FPS,
    IN,
    OUT,
    SK,
    Receiver,
    sdk,
)
from tests.support import PIPELINE_TIMEOUT_S


@pytest.fixture(scope="package")
def oss():
    server = LocalOss(access_key_id=AK, access_key_secret=SK, host="127.0.0.1").start()
    server.create_bucket(IN)
    server.create_bucket(OUT)
    yield server
    server.stop()


@pytest.fixture(scope="package")
def ice(oss):
    server = LocalIce(access_key_id=AK, access_key_secret=SK, oss_endpoint=oss.endpoint, fault_seed=7,
                      callback_timeout_s=CALLBACK_TIMEOUT_S, callback_retry_interval_s=CALLBACK_INTERVAL_S).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean(ice):
    ice.reset()
    yield
    assert ice.wait_idle(PIPELINE_TIMEOUT_S), "jobs or callbacks still running after the test"
    ice.reset()


@pytest.fixture(scope="package")
def client(ice):
    return sdk(ice)


@pytest.fixture(scope="package")
def bucket_in(oss):
    return oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, IN)


@pytest.fixture(scope="package")
def bucket_out(oss):
    return oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, OUT)


@pytest.fixture(scope="package")
def video(bucket_in):
    """A 36 s stamped clip with a keyframe every second, uploaded as ``IN/videos/clip 1.mp4``."""
    key = "videos/clip 1.mp4"
    bucket_in.put_object(key, make_test_video(duration_s=36, fps=FPS, width=128, height=96, gop_s=1.0))
    bucket_in.put_object("videos/garbage.mp4", make_garbage(32 * 1024))
    return key


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()
