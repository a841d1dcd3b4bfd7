"""End to end on the local cloud: an upload through oss2 becomes snapshots and an index.json."""
from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request

from PIL import Image

from snapshot_pipeline.callback import signature
from tests.support import PIPELINE_TIMEOUT_S, assert_valid_index, default_result, jobs_for, submit_records, wait_until


def _post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def test_upload_becomes_snapshots_and_index(cloud, small_video):
    key = "uploads/e2e clip.mp4"
    result = cloud.bucket().put_object(key, small_video)
    index = cloud.wait_for_index(key, timeout=PIPELINE_TIMEOUT_S)

    assert_valid_index(index)
    head = cloud.bucket().head_object(key)
    version = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(head.last_modified))}-{result.etag.lower()}"
    assert index["source"] == {"bucket": "media", "key": key, "etag": result.etag.upper(), "size": len(small_video),
                               "version": version,
                               "last_modified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(head.last_modified))}
    assert default_result(index)["job"]["status"] == "Success"
    assert default_result(index)["job"]["template_id"] == cloud.template_id
    assert default_result(index)["job"]["type"] == "Normal"
    expected = cloud.options.template_config["Count"]
    assert [s["index"] for s in default_result(index)["snapshots"]] == list(range(1, expected + 1))
    for snap in default_result(index)["snapshots"]:
        assert snap["bucket"] == "media"
        assert snap["key"].startswith(f"snapshots/media/{key}/{version}/")  # per bucket, per version
        image = Image.open(io.BytesIO(cloud.bucket(snap["bucket"]).get_object(snap["key"]).read()))
        assert image.format == "JPEG" and image.size == (320, 240)
        with urllib.request.urlopen(snap["url"], timeout=10) as resp:  # the signed URL works, for now
            assert resp.read()[:2] == b"\xff\xd8"
        assert snap["url_expires_at"] > index["generated_at"]


def test_non_video_and_output_prefix_uploads_make_no_job(cloud):
    uploads = {"uploads/e2e-notes.txt": b"not a video", "snapshots/uploads/e2e.mp4/00001.mp4": b"\x00" * 10}
    for key, data in uploads.items():
        cloud.bucket().put_object(key, data)
    # The local OSS delivers notifications in order from one thread: once the submit function has
    # logged this empty upload (which it skips), the two before it are in the FC or filtered out, so
    # wait_idle below waits for them too instead of returning before they arrive.
    marker = "uploads/e2e-empty.mp4"
    cloud.bucket().put_object(marker, b"")
    wait_until(lambda: submit_records(cloud, marker), f"the submit function's record of {marker}")
    assert cloud.fc.wait_idle(PIPELINE_TIMEOUT_S)
    assert [jobs_for(cloud, key) for key in uploads] == [[], []]
    (notes,) = submit_records(cloud, "uploads/e2e-notes.txt")
    assert notes["outcome"] == "skipped" and "not a video suffix" in notes["reason"]


def test_callback_refuses_a_bad_signature_and_writes_nothing(cloud):
    body = json.dumps({"MessageBody": {"JobId": "does-not-matter"}}).encode()
    ts = str(int(time.time()))
    status, payload = _post(cloud.callback_url, body, {"X-ICE-TIMESTAMP": ts, "X-ICE-SIGNATURE": "0" * 32})
    assert status == 401 and "signature" in payload["error"]
    status, _ = _post(cloud.callback_url, body, {})
    assert status == 401


def test_signed_callback_for_unknown_job_is_404(cloud):
    ts = str(int(time.time()))
    sig = signature(cloud.callback_url, ts, cloud.callback_auth_key)
    body = json.dumps({"EventType": "SnapshotComplete", "MessageBody": {"JobId": "0" * 32}}).encode()
    status, payload = _post(cloud.callback_url, body, {"X-ICE-TIMESTAMP": ts, "X-ICE-SIGNATURE": sig})
    assert status == 404, payload
