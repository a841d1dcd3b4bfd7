"""The local ICE's signed snapshot URLs are the ones oss2 signs, byte for byte."""
from __future__ import annotations

import oss2
import pytest

from localcloud.ice.url_signing import signed_get_url

KEYS = ["snapshots/uploads/a.mp4/00001.jpg", "snapshots/with space/+plus/~tilde/x.jpg",
        "snapshots/ünïcödé/视频/截图.jpg", "snapshots/a%20b/c?d=e&f#g.jpg", "snapshots//double//slash.jpg"]


@pytest.mark.parametrize("key", KEYS)
def test_the_url_is_the_one_oss2_signs(key, monkeypatch):
    monkeypatch.setattr(oss2.auth.time, "time", lambda: 1_796_000_000.25)
    bucket = oss2.Bucket(oss2.Auth("LTAIlocal", "secret/with+chars="), "http://127.0.0.1:4321", "media")
    expected = bucket.sign_url("GET", key, 3600, slash_safe=True)
    assert signed_get_url("http://127.0.0.1:4321", "media", key, access_key_id="LTAIlocal",
                          access_key_secret="secret/with+chars=", expires_s=3600,
                          clock=lambda: 1_796_000_000.25) == expected
