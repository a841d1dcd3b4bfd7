"""Exactly one job per upload: duplicate deliveries, concurrency, new versions, crashed claims."""
from __future__ import annotations

import threading

import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.fc import InvocationError
from snapshot_pipeline.claims import CLOCK_SKEW_S, ClaimBusy, Claims
from snapshot_pipeline.submit import Submitter
from tests.support import jobs_for, oss_event, upload, upload_of


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(LocalCloudOptions(bucket="exactly-once")) as running:
        yield running


def test_same_upload_delivered_three_times_sequentially_makes_one_job(cloud, small_video):
    record = upload(cloud, "manual/seq.mp4", small_video)
    outcomes = [cloud.fc.invoke("submit", oss_event(record)) for _ in range(3)]
    assert len(jobs_for(cloud, "manual/seq.mp4")) == 1
    assert '"submitted"' in outcomes[0] and all('"duplicate"' in o for o in outcomes[1:])


def test_same_upload_delivered_concurrently_makes_one_job(cloud, small_video):
    record = upload(cloud, "manual/concurrent.mp4", small_video)
    results, errors = [], []

    def deliver():
        try:
            results.append(cloud.fc.invoke("submit", oss_event(record)))
        except InvocationError as exc:  # a loser may find the claim busy: it raises for a retry
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(jobs_for(cloud, "manual/concurrent.mp4")) == 1
    assert sum('"submitted"' in r for r in results) == 1
    assert all("RetryLater" in e.error_type and "claimed by attempt" in e.message for e in errors)
    # The platform retries the losers later: they find the JobId and stop.
    assert '"duplicate"' in cloud.fc.invoke("submit", oss_event(record))
    assert len(jobs_for(cloud, "manual/concurrent.mp4")) == 1


def test_a_new_version_of_the_same_key_is_a_new_upload(cloud, small_video):
    first = upload(cloud, "manual/versioned.mp4", small_video)
    cloud.fc.invoke("submit", oss_event(first))
    second = upload(cloud, "manual/versioned.mp4", small_video + b"\0")
    assert second["oss"]["object"]["eTag"] != first["oss"]["object"]["eTag"]
    cloud.fc.invoke("submit", oss_event(second))
    assert len(jobs_for(cloud, "manual/versioned.mp4")) == 2
    # The first version's event arriving again now names an object that was replaced: no job.
    assert "superseded" in cloud.fc.invoke("submit", oss_event(first))
    assert len(jobs_for(cloud, "manual/versioned.mp4")) == 2


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_crashed_claim_blocks_until_it_expires_then_the_retry_proceeds(cloud, small_video):
    the_upload = upload_of(cloud, upload(cloud, "manual/crashed.mp4", small_video))
    clock = FakeClock()
    store, settings = cloud.store(), cloud.settings()
    claims = Claims(store, cloud.options.bucket, settings.output_prefix, lease_s=60, clock=clock)
    crashed = claims.acquire(the_upload, owner="attempt-that-crashed")  # ...and never submits
    assert crashed.job_id is None

    retry = Submitter(settings, cloud.ice_adapter(), store, lease_s=60, clock=clock)
    clock.now += 59
    with pytest.raises(ClaimBusy, match="attempt-that-crashed"):
        retry.submit_upload(the_upload, owner="retry-1")
    assert jobs_for(cloud, "manual/crashed.mp4") == []

    clock.now = crashed.expires_at + 1  # the function's timeout (and the skew margin) has passed
    outcome = retry.submit_upload(the_upload, owner="retry-2")
    assert outcome.outcome == "submitted"
    assert len(jobs_for(cloud, "manual/crashed.mp4")) == 1
    latest = claims.latest(the_upload)
    assert latest.generation == 2 and latest.job_id == outcome.job_id and latest.doc["owner"] == "retry-2"


def test_an_owner_whose_claim_expired_while_working_does_not_submit(cloud, small_video):
    the_upload = upload_of(cloud, upload(cloud, "manual/slow-owner.mp4", small_video))
    clock = FakeClock()
    settings = cloud.settings()
    slow = Submitter(settings, cloud.ice_adapter(), cloud.store(), lease_s=60, clock=clock)
    claims = slow.claims(the_upload)
    claim = claims.acquire(the_upload, owner="slow")
    assert claim.expires_at == clock.now + 60 + CLOCK_SKEW_S
    clock.now = claim.expires_at - 5  # about to expire: too late to submit safely
    assert not claims.usable(claim)
    # A takeover after expiry makes the one job; the slow owner, resuming, finds it and stops.
    clock.now = claim.expires_at + 1
    assert slow.submit_upload(the_upload, owner="taker").outcome == "submitted"
    assert slow.submit_upload(the_upload, owner="slow").outcome == "duplicate"
    assert len(jobs_for(cloud, "manual/slow-owner.mp4")) == 1


def test_concurrent_takeovers_of_an_expired_claim_make_one_job(cloud, small_video):
    the_upload = upload_of(cloud, upload(cloud, "manual/takeover.mp4", small_video))
    clock = FakeClock()
    settings = cloud.settings()
    Claims(cloud.store(), cloud.options.bucket, settings.output_prefix, lease_s=60, clock=clock).acquire(
        the_upload, owner="crashed")
    clock.now += 3600
    outcomes, errors = [], []

    def take_over(n: int):
        try:
            outcomes.append(Submitter(settings, cloud.ice_adapter(), cloud.store(), lease_s=60,
                                      clock=clock).submit_upload(the_upload, owner=f"taker-{n}"))
        except ClaimBusy as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take_over, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(jobs_for(cloud, "manual/takeover.mp4")) == 1
    assert sum(o.outcome == "submitted" for o in outcomes) == 1
