"""Events: both OSS event shapes, per-record handling, skips that say why, awkward keys."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.fc import InvocationError
from snapshot_pipeline.domain import OssLocation
from snapshot_pipeline.layout import index_key
from tests.conftest import load_event
from tests.support import (
    PIPELINE_TIMEOUT_S,
    assert_valid_index,
    default_result,
    jobs_for,
    oss_event,
    oss_record,
    submit_records,
    upload,
    upload_of,
)


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(LocalCloudOptions(bucket="events")) as running:
        yield running


def test_eventbridge_cloudevent_is_accepted(cloud, small_video):
    record = upload(cloud, "manual/eventbridge.mp4", small_video)
    cloudevent = load_event("eventbridge-oss-put.json")  # the sample, pointed at the uploaded object
    cloudevent["data"]["oss"]["bucket"]["name"] = "events"
    cloudevent["data"]["oss"]["object"].update({k: record["oss"]["object"][k] for k in ("key", "eTag", "size")})
    assert "eventName" not in cloudevent["data"]  # the event name comes from the CloudEvent's type
    result = json.loads(cloud.fc.invoke("submit", json.dumps(cloudevent).encode()))
    assert result[0]["outcome"] == "submitted"
    assert len(jobs_for(cloud, "manual/eventbridge.mp4")) == 1


def test_one_bad_record_does_not_stop_the_others(cloud, small_video):
    good = upload(cloud, "manual/multi-good.mp4", small_video)
    bad = oss_record("events", "manual/multi-bad.mp4", "AB", 10)
    del bad["oss"]["object"]["key"]
    result = json.loads(cloud.fc.invoke("submit", oss_event(bad, good)))
    assert result[0]["outcome"] == "invalid" and "oss.object.key" in result[0]["reason"]
    assert result[1]["outcome"] == "submitted"
    assert len(jobs_for(cloud, "manual/multi-good.mp4")) == 1


@pytest.mark.parametrize("key, data, event_name, reason", [
    ("manual/readme.txt", b"text", "ObjectCreated:PutObject", "not a video suffix"),
    ("manual/empty.mp4", b"", "ObjectCreated:PutObject", "zero-size object"),
    ("manual/folder.mp4/", b"", "ObjectCreated:PutObject", "folder marker"),
    ("snapshots/manual/x.mp4", b"video", "ObjectCreated:PutObject", "under the output prefix"),
    ("manual/meta.mp4", b"video", "ObjectModified:UpdateObjectMeta", "neither creates nor removes"),
])
def test_skips_are_logged_with_their_reason(cloud, key, data, event_name, reason):
    record = upload(cloud, key, data)
    record["eventName"] = event_name
    result = json.loads(cloud.fc.invoke("submit", oss_event(record)))
    assert result[0]["outcome"] == "skipped" and reason in result[0]["reason"]
    assert jobs_for(cloud, key) == []
    (line,) = submit_records(cloud, key)
    assert line["outcome"] == "skipped" and reason in line["reason"] and line["request_id"]


def test_suffix_match_is_case_insensitive(cloud, small_video):
    record = upload(cloud, "manual/UPPER.MOV", small_video)
    assert json.loads(cloud.fc.invoke("submit", oss_event(record)))[0]["outcome"] == "submitted"


LONG_KEY = "uploads/" + "l" * (1023 - len("uploads/") - len(".mp4")) + ".mp4"


@pytest.mark.parametrize("key", [
    "uploads/with space.mp4", "uploads/plus+sign.mp4", "uploads/percent%20literal.mp4",
    "uploads/ünïcødé/视频.mp4", LONG_KEY,
])
def test_awkward_keys_end_with_an_index(cloud, small_video, key):
    assert len(key.encode()) <= 1023
    cloud.bucket().put_object(key, small_video)
    index = assert_valid_index(cloud.wait_for_index(key, timeout=PIPELINE_TIMEOUT_S))
    assert index["source"]["key"] == key and default_result(index)["job"]["status"] == "Success"
    for snap in default_result(index)["snapshots"]:
        assert cloud.bucket().object_exists(snap["key"])
    if key == LONG_KEY:
        assert "_by-hash/" in index_key("snapshots/", OssLocation("events", key))


def test_a_url_encoded_key_in_the_event_is_resolved(cloud, small_video):
    key = "manual/encoded name+1.mp4"
    record = upload(cloud, key, small_video)
    record["oss"]["object"]["key"] = quote(key)  # as if OSS had URL-encoded it
    result = json.loads(cloud.fc.invoke("submit", oss_event(record)))
    assert result[0]["outcome"] == "submitted"
    assert len(jobs_for(cloud, key)) == 1


@pytest.mark.parametrize("body, problem", [
    (b"{not json", "is not JSON"),
    (b'{"Records": []}', "'events' list"),
    (b'{"events": "x"}', "must be a list"),
])
def test_malformed_event_fails_naming_the_problem(cloud, body, problem):
    with pytest.raises(InvocationError) as err:
        cloud.fc.invoke("submit", body)
    assert err.value.error_type == "EventError" and problem in err.value.message


def test_a_malformed_http_event_is_a_400_with_a_log_line(cloud):
    result = cloud.fc.invoke("callback", b'{"not": "an HTTP trigger event"}')
    assert result["statusCode"] == 400 and "requestContext.http" in json.loads(result["body"])["error"]
    lines = [json.loads(line) for line in list(cloud.fc.pools["callback"].logs) if line.startswith("{")]
    assert any(d.get("outcome") == "bad_event" and d.get("http_status") == 400 and d.get("request_id")
               for d in lines)


def test_a_job_ice_refuses_is_recorded_in_a_failure_index(cloud, small_video):
    from snapshot_pipeline.submit import Submitter

    record = upload(cloud, "manual/refused.mp4", small_video)
    settings = cloud.settings(SNAPSHOT_OVERWRITE_PARAMS='{"Count": -1}')
    submitter = Submitter(settings, cloud.ice_adapter(), cloud.store())
    the_upload = upload_of(cloud, record)
    outcome = submitter.submit_upload(the_upload, owner="t")
    assert outcome.outcome == "rejected" and "Count" in outcome.reason
    index = assert_valid_index(cloud.wait_for_index("manual/refused.mp4", timeout=5))
    job = default_result(index)["job"]
    assert job["id"] is None and job["status"] == "Fail"
    assert job["error"]["code"] == "InvalidParameter" and job["error"]["stage"] == "submit"
    assert "Count" in job["error"]["message"]
    # A redelivery does not resubmit a refused upload.
    assert submitter.submit_upload(the_upload, owner="t2").outcome == "duplicate"
    assert jobs_for(cloud, "manual/refused.mp4") == []
