"""LocalOss notifications: the FC OSS-trigger record, one per completed write, and listeners kept apart."""
from __future__ import annotations

import logging
import re
import threading
import uuid

import oss2
import pytest

from localcloud.oss import LocalOss
from tests.localcloud.oss.support import ACCOUNT, AK, REGION, SK


def test_put_notification_record_shape(bucket, events):
    key = "in/a b+ü.mp4"  # the record carries the raw key, not URL-encoded
    put = bucket.put_object(key, b"12345")
    record = events.wait_for(bucket.bucket_name, key)[-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record.pop("eventTime"))
    assert re.fullmatch(r"[0-9a-f]{40}", record["oss"].pop("ruleId"))
    assert record == {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {"arn": f"acs:oss:{REGION}:{ACCOUNT}:{bucket.bucket_name}",
                       "name": bucket.bucket_name, "ownerIdentity": ACCOUNT},
            "object": {"deltaSize": 5, "eTag": put.etag, "key": key, "size": 5},
            "ossSchemaVersion": "1.0",
        },
        "region": REGION,
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"requestId": put.request_id},
        "userIdentity": {"principalId": ACCOUNT},
    }

    bucket.put_object(key, b"12")  # overwrite: deltaSize is the change in size
    overwrite = events.wait_for(bucket.bucket_name, key, count=2)
    assert [(r["oss"]["object"]["size"], r["oss"]["object"]["deltaSize"]) for r in overwrite] == [(5, 5), (2, -3)]


def test_notifications_per_operation_and_none_for_parts(bucket, events):
    upload_id = bucket.init_multipart_upload("mp.mp4").upload_id
    etags = [bucket.upload_part("mp.mp4", upload_id, n, b"p" * (100 * 1024)).etag for n in (1, 2, 3)]
    bucket.complete_multipart_upload("mp.mp4", upload_id,
                                     [oss2.models.PartInfo(n, e) for n, e in zip((1, 2, 3), etags, strict=True)])
    bucket.copy_object(bucket.bucket_name, "mp.mp4", "copy.mp4")
    with pytest.raises(oss2.exceptions.ServerError):
        bucket.put_object("copy.mp4", b"", headers={"x-oss-forbid-overwrite": "true"})
    bucket.put_object("last", b"")  # events are delivered in order: once this one is in, all are
    seen = [(r["eventName"], r["oss"]["object"]["key"]) for r in events.wait_for(bucket.bucket_name, "last")]
    assert seen == [
        ("ObjectCreated:CompleteMultipartUpload", "mp.mp4"),
        ("ObjectCreated:CopyObject", "copy.mp4"),
        ("ObjectCreated:PutObject", "last"),
    ]
    complete = events.for_bucket(bucket.bucket_name)[0]["oss"]["object"]
    assert complete["size"] == 3 * 100 * 1024 and complete["eTag"].endswith("-3")


def test_listener_can_read_the_object_and_a_failing_listener_is_isolated(caplog):
    with LocalOss(access_key_id=AK, access_key_secret=SK) as oss:
        name = f"notify-{uuid.uuid4().hex[:8]}"
        oss.create_bucket(name)
        bucket = oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, name)
        read_back: list[bytes] = []
        done = threading.Event()

        def failing(record: dict) -> None:
            raise RuntimeError("listener bug")

        def reader(record: dict) -> None:
            read_back.append(bucket.get_object(record["oss"]["object"]["key"]).read())
            done.set()

        oss.subscribe(failing)
        oss.subscribe(reader)
        with caplog.at_level(logging.ERROR, logger="localcloud.oss"):
            bucket.put_object("fresh.mp4", b"just written")
            assert done.wait(5)
            bucket.put_object("second", b"server still fine")
            assert bucket.get_object("second").read() == b"server still fine"
    assert read_back[0] == b"just written"
    assert "listener" in caplog.text and "listener bug" in caplog.text
    assert SK not in caplog.text

