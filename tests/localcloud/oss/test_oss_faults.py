"""LocalOss fault switches: a lost answer (work done, no response), a 500 without the work, latency."""
from __future__ import annotations

import time

import oss2
import pytest

from tests.localcloud.oss.support import upper_md5


@pytest.fixture
def faults(server):
    yield server
    server.clear_faults()


def test_lost_answer_performs_the_put_and_the_client_raises(faults, bucket, events):
    faults.lose_answers(method="PUT", key_prefix="snapshots/_claims/", count=1)
    bucket.put_object("snapshots/other", b"not matched")  # another prefix: answered

    with pytest.raises(oss2.exceptions.RequestError) as lost:
        bucket.put_object("snapshots/_claims/job-1", b"claim", headers={"x-oss-forbid-overwrite": "true"})
    assert lost.value.status == -2  # oss2: no HTTP answer at all
    assert bucket.get_object("snapshots/_claims/job-1").read() == b"claim"  # it took effect
    record = events.wait_for(bucket.bucket_name, "snapshots/_claims/job-1")[-1]
    assert record["oss"]["object"]["eTag"] == upper_md5(b"claim")  # and was notified

    # The fault is spent: the retry a client would make is answered, here FileAlreadyExists.
    with pytest.raises(oss2.exceptions.ServerError) as retried:
        bucket.put_object("snapshots/_claims/job-1", b"claim", headers={"x-oss-forbid-overwrite": "true"})
    assert retried.value.code == "FileAlreadyExists"


def test_lost_answer_matches_method_and_counts(faults, bucket):
    bucket.put_object("k", b"v")
    faults.lose_answers(method="DELETE", count=2)
    assert bucket.get_object("k").read() == b"v"  # a GET does not match
    for _ in range(2):
        with pytest.raises(oss2.exceptions.RequestError):
            bucket.delete_object("k")
    assert not bucket.object_exists("k")
    assert bucket.delete_object("k").status == 204


def test_failed_request_is_not_performed(faults, bucket):
    faults.fail_requests(method="PUT", key_prefix="f/", count=1)
    with pytest.raises(oss2.exceptions.ServerError) as failed:
        bucket.put_object("f/a", b"x")
    assert (failed.value.status, failed.value.code) == (500, "InternalError")
    assert not bucket.object_exists("f/a")
    bucket.put_object("f/a", b"x")
    assert bucket.object_exists("f/a")


def test_delay_then_clear(faults, bucket):
    faults.delay_requests(0.3, method="GET", key_prefix="slow", count=5)
    bucket.put_object("slow", b"s")
    started = time.monotonic()
    assert bucket.get_object("slow").read() == b"s"
    assert time.monotonic() - started >= 0.3
    faults.lose_answers(key_prefix="slow")
    faults.clear_faults()
    assert bucket.get_object("slow").read() == b"s"


def test_a_fault_needs_a_positive_count(server):
    with pytest.raises(ValueError):
        server.lose_answers(count=0)
