"""The domain values: states as enums, claims' one answer to "settled?" and "live?", sources."""
from __future__ import annotations

import json

import pytest

from snapshot_pipeline.claims import Claim
from snapshot_pipeline.domain import (
    ClaimState,
    JobStatus,
    OssLocation,
    Outcome,
    OutcomeKind,
    SnapshotJob,
    Upload,
    parse_template_config,
)

UPLOAD = Upload("media", "uploads/a.mp4", "ETAG1", 10)


def _claim(**doc: object) -> Claim:
    return Claim(UPLOAD, "snapshots/_claims/x/000001.json", 1, dict(doc))


@pytest.mark.parametrize(("doc", "settled"), [
    ({"state": "claimed"}, False),
    ({}, False),
    ({"state": "submitted", "job_id": "j1"}, True),
    ({"state": "claimed", "job_id": "j1"}, True),  # a JobId settles it whatever the state says
    ({"state": "failed"}, True),
    ({"state": "nonsense"}, False),
])
def test_a_claim_is_settled_when_it_has_a_job_or_a_recorded_failure(doc: dict, settled: bool) -> None:
    assert _claim(**doc).settled is settled


def test_a_claim_is_live_only_while_unsettled_and_within_its_lease() -> None:
    assert _claim(state="claimed", expires_at=100.0).live(now=99.0)
    assert not _claim(state="claimed", expires_at=100.0).live(now=100.0)
    assert not _claim(state="submitted", job_id="j", expires_at=100.0).live(now=1.0)


def test_claim_states_and_job_statuses_are_their_wire_values() -> None:
    assert _claim(state="failed").state is ClaimState.FAILED
    assert JobStatus.parse("Success") is JobStatus.SUCCESS and JobStatus.SUCCESS.finished
    assert JobStatus.parse("Processing") is JobStatus.UNKNOWN and not JobStatus.UNKNOWN.finished
    assert Outcome("b", "k", OutcomeKind.SUBMITTED, "j").to_dict() == {"bucket": "b", "key": "k",
                                                                        "outcome": "submitted", "job_id": "j"}
    assert json.dumps({"state": ClaimState.SUBMITTED}) == '{"state": "submitted"}'


def test_a_jobs_source_comes_from_its_user_data_else_its_input() -> None:
    base = {"JobId": "j", "Status": "Success", "Input": {"Type": "OSS", "Media": "oss://media/in/a.mp4"}}
    with_user_data = dict(base, UserData=json.dumps({"source": {"bucket": "media", "key": "k.mp4", "etag": "E"}}))
    assert SnapshotJob.from_map(with_user_data).source() == Upload("media", "k.mp4", "E")
    assert SnapshotJob.from_map(dict(base, UserData="not json")).source() == Upload("media", "in/a.mp4", "")
    with pytest.raises(ValueError, match="names no source"):
        SnapshotJob.from_map({"JobId": "j"}).source()


def test_locations_parse_every_form_ice_reports() -> None:
    assert OssLocation.parse("oss://b/k/x.jpg") == OssLocation("b", "k/x.jpg")
    assert OssLocation.parse("https://b.oss-cn-shanghai.aliyuncs.com/k/x.jpg") == OssLocation("b", "k/x.jpg")
    assert OssLocation.parse("", {"Bucket": "b", "Object": "k"}) == OssLocation("b", "k")
    assert OssLocation.parse("oss://b") is None and OssLocation.parse("https://example.com/x") is None


def test_template_configs_arrive_as_json_text_or_objects() -> None:
    assert parse_template_config('{"Count": 3}') == {"Count": 3}
    assert parse_template_config({"Count": 3}) == {"Count": 3}
    assert parse_template_config("not json") == {} and parse_template_config(None) == {}
