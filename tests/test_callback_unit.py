"""The signature check and JobId extraction, without a cloud."""
import json

from snapshot_pipeline.callback import job_id_of, signature, verify
from snapshot_pipeline.events import parse_http_event
from tests.conftest import load_event

URL = "https://www.example.com/your/callback"


def test_signature_matches_the_documented_example():
    # ICE's callback-authentication page: the example digest reproduces with key "test123".
    assert signature(URL, "1519375990", "test123") == "c72b60894140fa98920f1279219b7ed4"


def _request(ts: str, sig: str):
    event = load_event("http-callback.json")
    event["headers"].update({"X-Ice-Timestamp": ts, "X-Ice-Signature": sig})
    return parse_http_event(event)


def test_verify_accepts_valid_and_rejects_tampering():
    ts = "1795502770"
    good = signature(URL, ts, "Key123abc")
    assert verify(_request(ts, good), URL, "Key123abc", now=int(ts)) is None
    assert verify(_request(ts, good.upper()), URL, "Key123abc", now=int(ts)) is None
    assert verify(_request(ts, good), URL, "OtherKey1", now=int(ts)) == "signature mismatch"
    assert verify(_request(ts, good), URL + "x", "Key123abc", now=int(ts)) == "signature mismatch"
    assert "window" in verify(_request(ts, good), URL, "Key123abc", now=int(ts) + 301)
    assert "window" in verify(_request(ts, good), URL, "Key123abc", now=int(ts) - 301)
    assert "not an integer" in verify(_request("soon", good), URL, "Key123abc", now=int(ts))


def test_job_id_found_in_envelope_or_top_level():
    body = json.loads(load_event("http-callback.json")["body"])
    assert job_id_of(body) == "8f1e4c2a9b7d4e6f8a1b2c3d4e5f6a7b"
    assert job_id_of({"MessageBody": json.dumps({"JobId": "j1"})}) == "j1"
    assert job_id_of({"JobId": "j2"}) == "j2"
    assert job_id_of({"MessageBody": {}}) is None
    assert job_id_of([1, 2]) is None
