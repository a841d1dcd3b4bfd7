import json

import pytest

from snapshot_pipeline.events import EventError, parse_http_event, parse_oss_event, parse_oss_record
from tests.conftest import load_event


def test_native_oss_event_sample():
    records = parse_oss_event(json.dumps(load_event("oss-put.json")).encode())
    event = parse_oss_record(records[0])
    assert (event.bucket, event.key, event.size) == ("my-video-bucket", "uploads/holiday.mp4", 1048576)
    assert event.event_name == "ObjectCreated:PutObject" and event.is_object_created
    assert event.etag == "688A7BF4F233DC9C88A80BF985AB1234"


@pytest.mark.parametrize("raw, problem", [
    (b"not json", "not JSON"),
    (b"[]", "'events' list"),
    (b'{"events": {}}', "must be a list"),
])
def test_malformed_oss_event_names_the_problem(raw, problem):
    with pytest.raises(EventError, match=problem):
        parse_oss_event(raw)


def test_record_missing_key_names_the_field():
    record = load_event("oss-put.json")["events"][0]
    del record["oss"]["object"]["key"]
    with pytest.raises(EventError, match="oss.object.key"):
        parse_oss_record(record)


def test_http_event_sample_headers_are_case_insensitive():
    request = parse_http_event(json.dumps(load_event("http-callback.json")))
    assert request.method == "POST"
    assert request.header("X-ICE-TIMESTAMP") == "1795502770"
    assert json.loads(request.body)["MessageBody"]["Status"] == "Success"


def test_http_event_base64_body():
    event = load_event("http-callback.json")
    event["body"], event["isBase64Encoded"] = "aGVsbG8=", True
    assert parse_http_event(event).body == b"hello"


def test_eventbridge_sample_parses_to_the_same_record_shape():
    (record,) = parse_oss_event(json.dumps(load_event("eventbridge-oss-put.json")))
    event = parse_oss_record(record)
    assert event.event_name == "ObjectCreated:PutObject"
    assert (event.bucket, event.key, event.etag) == ("my-video-bucket", "uploads/holiday.mp4",
                                                     "688A7BF4F233DC9C88A80BF985AB1234")
