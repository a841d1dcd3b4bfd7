"""The backfill's "already handled?" rule, on its own: which index and claim mean no new job."""
from __future__ import annotations

import pytest

from snapshot_pipeline.backfill import already_handled
from snapshot_pipeline.claims import Claim
from snapshot_pipeline.domain import Upload

UPLOAD = Upload("media", "archive/clip.mp4", "ETAG1", 100)
NOW = 1_000_000.0


def claim(**doc) -> Claim:
    return Claim(UPLOAD, "snapshots/_claims/x/1.json", 1, doc)


def index(etag: str | None = "ETAG1", **job) -> dict:
    return {"source": {"bucket": "media", "key": UPLOAD.key, "etag": etag}, "job": job}


@pytest.mark.parametrize("doc, latest, reason", [
    (None, None, None),  # never seen: submit
    (index(), None, "already indexed"),
    (index(etag=None), None, "already indexed"),  # an index without an etag counts
    (index(etag="OLDER"), None, None),  # the index of an earlier version of the object
    (None, claim(state="submitted", job_id="j1"), "already submitted (claim has a job)"),
    (None, claim(state="failed"), "refused by ICE earlier (see its index)"),
    (None, claim(state="claimed", expires_at=NOW + 1), "claimed by another attempt"),
    (None, claim(state="claimed", expires_at=NOW - 1), None),  # its owner crashed: take over
    (index(status="Fail", id="j1"), claim(state="submitted", job_id="j1"), "already indexed"),  # no --retry-failed
])
def test_already_handled(doc, latest, reason):
    assert already_handled(UPLOAD, doc, latest, NOW, retry_failed=False) == (reason, None)


def test_retry_failed_supersedes_only_the_failure_the_index_records():
    failed_job = claim(state="submitted", job_id="j1")
    assert already_handled(UPLOAD, index(status="Fail", id="j1"), failed_job, NOW, retry_failed=True) == \
        (None, failed_job.object_key)
    refused = claim(state="failed")
    assert already_handled(UPLOAD, index(status="Fail", id=None), refused, NOW, retry_failed=True) == \
        (None, refused.object_key)
    retried = claim(state="submitted", job_id="j2")  # a later attempt than the failure indexed
    assert already_handled(UPLOAD, index(status="Fail", id="j1"), retried, NOW, retry_failed=True) == \
        ("already indexed", None)
    assert already_handled(UPLOAD, index(status="Success", id="j1"), failed_job, NOW, retry_failed=True) == \
        ("already indexed", None)
