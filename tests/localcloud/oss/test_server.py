"""The LocalOss server itself: request ids on every answer, port 0 and stop, and APIs it does not offer."""
from __future__ import annotations

import http.client
import re
import urllib.parse

import oss2
import pytest

from localcloud.oss import LocalOss
from tests.localcloud.oss.support import AK, SK


def test_every_response_has_a_request_id(server, bucket):
    host = urllib.parse.urlsplit(server.endpoint).netloc
    for method, path in [("GET", f"/{bucket.bucket_name}/x"), ("HEAD", "/"), ("DELETE", "/b/k")]:
        conn = http.client.HTTPConnection(host, timeout=5)
        conn.request(method, path)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 403
        assert re.fullmatch(r"[0-9A-F]{24}", resp.getheader("x-oss-request-id"))
        conn.close()


def test_start_picks_a_free_port_and_stop_is_idempotent():
    oss = LocalOss(access_key_id=AK, access_key_secret=SK).start()
    port = int(oss.endpoint.rsplit(":", 1)[1])
    assert port > 0 and SK not in repr(oss)
    oss.stop()
    oss.stop()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


def test_oss_only_apis_and_bad_bucket_names_fail_clearly(server, bucket):
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.create_live_channel("channel", oss2.models.LiveChannelInfo(target=oss2.models.LiveChannelInfoTarget()))
    assert (err.value.status, err.value.code) == (501, "NotImplemented")
    assert "live" in err.value.message
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.put_symlink("target", "link")
    assert err.value.code == "NotImplemented"
    assert not bucket.object_exists("link")  # moto never saw the request
    with pytest.raises(ValueError, match="InvalidBucketName"):
        server.create_bucket("Not_Valid")
