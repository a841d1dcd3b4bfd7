"""Which OSS notification records reach which function: the trigger's events list, then its key filter."""
from __future__ import annotations

import pytest

from localcloud.fc import oss_trigger_matches
from tests.support import oss_record

DEPLOYED_EVENTS = [
    "oss:ObjectCreated:PutObject", "oss:ObjectCreated:PostObject", "oss:ObjectCreated:CompleteMultipartUpload",
    "oss:ObjectCreated:CopyObject", "oss:ObjectRemoved:DeleteObject", "oss:ObjectRemoved:DeleteObjects",
]


def _trigger(events: list[str], prefix: str = "", suffix: str = "", bucket: str = "media") -> dict:
    return {"triggerType": "oss", "sourceArn": f"acs:oss:cn-hangzhou:1:{bucket}",
            "triggerConfig": {"events": events, "filter": {"key": {"prefix": prefix, "suffix": suffix}}}}


def _record(event_name: str, key: str = "in/a.mp4", bucket: str = "media") -> dict:
    return oss_record(bucket, key, "ETAG", 1, event_name=event_name)


@pytest.mark.parametrize("event_name", [e.removeprefix("oss:") for e in DEPLOYED_EVENTS])
def test_every_subscribed_event_is_delivered(event_name):
    assert oss_trigger_matches(_trigger(DEPLOYED_EVENTS), _record(event_name))


@pytest.mark.parametrize("event_name", ["ObjectCreated:UploadPart", "ObjectCreated:InitiateMultipartUpload",
                                        "ObjectCreated:AppendObject", "ObjectRemoved:AbortMultipartUpload"])
def test_events_not_named_are_not_delivered(event_name):
    assert not oss_trigger_matches(_trigger(DEPLOYED_EVENTS), _record(event_name))


def test_wildcards_match_their_group_only():
    created, removed = _trigger(["oss:ObjectCreated:*"]), _trigger(["oss:ObjectRemoved:*"])
    assert oss_trigger_matches(created, _record("ObjectCreated:CopyObject"))
    assert not oss_trigger_matches(created, _record("ObjectRemoved:DeleteObject"))
    assert oss_trigger_matches(removed, _record("ObjectRemoved:DeleteObjects"))
    assert not oss_trigger_matches(removed, _record("ObjectCreated:PutObject"))


def test_bucket_and_key_filter_still_apply():
    trigger = _trigger(["oss:ObjectRemoved:DeleteObject"], prefix="in/", suffix=".mp4")
    assert oss_trigger_matches(trigger, _record("ObjectRemoved:DeleteObject", "in/a.mp4"))
    assert not oss_trigger_matches(trigger, _record("ObjectRemoved:DeleteObject", "out/a.mp4"))
    assert not oss_trigger_matches(trigger, _record("ObjectRemoved:DeleteObject", "in/a.MP4"))
    assert not oss_trigger_matches(trigger, _record("ObjectRemoved:DeleteObject", "in/a.mp4", bucket="other"))
    assert not oss_trigger_matches({**trigger, "triggerType": "timer"}, _record("ObjectRemoved:DeleteObject"))
