"""`snapshots audit`: the state decision on plain values, the request pacer, and the command on a prefix
of the local cloud built to hold every state, with its exit code, --json and --fix."""
from __future__ import annotations

import json
import re
import threading
import time
import uuid

import pytest

from snapshot_pipeline.audit import DeadLetterRef, State, judge
from snapshot_pipeline.backfill import RateLimiter
from snapshot_pipeline.claims import Claim
from snapshot_pipeline.domain import JobStatus, OssLocation, Upload
from tests.support import VirtualTime, cli_runner, wait_until

NOW = 2_000_000_000.0
UPLOAD = Upload("media", "v/a.mp4", "E2", 10, NOW - 100)
OLDER = Upload("media", "v/a.mp4", "E1", 10, NOW - 500)


def index_of(upload: Upload, status: str = "Success", job_id: str = "j1", code: str | None = None, **extra) -> dict:
    job = {"id": job_id, "status": status}
    if code:
        job["error"] = {"code": code, "message": f"{code} happened"}
    return {"source": upload.to_doc(), "job": job, **extra}


def claim_of(upload: Upload = UPLOAD, **doc) -> Claim:
    return Claim(upload, "snapshots/_claims/x/000001.json", 1, doc)


def verdict(index=None, claim: Claim | None = None, jobs: dict | None = None, letters=()):
    return judge(UPLOAD, index, lambda: claim, (jobs or {}).__getitem__, list(letters), NOW)


def never() -> Claim:
    raise AssertionError("an indexed video needs no claim lookup")


# --- the decision, on plain values -----------------------------------------------------------------
def test_an_index_of_this_versions_success_is_indexed_without_reading_its_claim():
    found = judge(UPLOAD, index_of(UPLOAD), never, {}.__getitem__, [], NOW)
    assert (found.state, found.job_id) == (State.INDEXED, "j1")


def test_an_index_of_this_versions_failure_is_failed_with_its_code_unless_a_later_attempt_runs():
    failed = index_of(UPLOAD, "Fail", code="InvalidInput.Decode")
    found = verdict(failed, claim_of(job_id="j1", state="submitted"))
    assert (found.state, found.code, found.reason) == \
        (State.FAILED, "InvalidInput.Decode", "InvalidInput.Decode happened")
    retried = verdict(failed, claim_of(job_id="j2", state="submitted"), {"j2": JobStatus.INIT})
    assert retried.state == State.PENDING and "job j2 is Init" in retried.reason


@pytest.mark.parametrize("claim, jobs, reason", [
    (claim_of(job_id="j3", state="submitted"), {"j3": JobStatus.INIT}, "job j3 is Init"),
    (claim_of(job_id="j3", state="submitted"), {"j3": JobStatus.SUCCESS}, "finished (Success); its index is not"),
    (claim_of(owner="req-1", state="claimed", expires_at=NOW + 30), {}, "claimed by req-1 until"),
    (claim_of(owner="retry-of-j0", state="claimed", expires_at=NOW - 5, attempt=2,
              retry_of={"job_id": "j0", "code": "InternalError"}), {}, "attempt 2 is due at"),
])
def test_a_claim_at_work_is_pending_whatever_the_index_shows(claim, jobs, reason):
    for index in (None, index_of(OLDER)):
        found = verdict(index, claim, jobs)
        assert found.state == State.PENDING and reason in found.reason


def test_without_a_claim_at_work_dead_letters_then_older_indexes_then_nothing_decide():
    letter = DeadLetterRef("snapshots/_deadletters/20261201/1-r.json", "e2", "ObjectCreated:PutObject", "RetryLater: x")
    assert verdict(None, None, letters=[letter]).state == State.DEAD_LETTERED
    other_version = DeadLetterRef(letter.key, "E1", "ObjectCreated:PutObject", "x")
    removal = DeadLetterRef(letter.key, "", "ObjectRemoved:DeleteObject", "x")
    assert verdict(None, None, letters=[other_version, removal]).state == State.MISSING

    stale = verdict(index_of(OLDER))
    assert stale.state == State.STALE and OLDER.version in stale.reason
    tombstone = verdict(index_of(OLDER, "Fail", code="SourceDeleted", deleted="2026-01-01T00:00:00Z"))
    assert tombstone.state == State.STALE and "deletion" in tombstone.reason

    assert verdict().reason == "no index, no claim: never submitted"
    abandoned = verdict(None, claim_of(owner="req-9", state="claimed", expires_at=NOW - 1))
    assert abandoned.state == State.MISSING and "abandoned" in abandoned.reason


def test_pacer_spaces_acquisitions_across_threads():
    fake = VirtualTime(now=50.0)
    pacer = RateLimiter(4, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        pacer.acquire()
    assert fake.sleeps == [pytest.approx(0.25)] * 4

    pacer, started = RateLimiter(50), time.monotonic()
    threads = [threading.Thread(target=lambda: [pacer.acquire() for _ in range(5)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started >= 19 / 50 - 0.01  # 20 acquisitions at most 50 a second


# --- the command, on a prefix holding every state --------------------------------------------------
@pytest.fixture(scope="module")
def tiny_video() -> bytes:
    from localcloud.media import make_test_video

    return make_test_video(duration_s=1.0, width=64, height=48)


def _submit(cloud, key: str) -> str:
    from snapshot_pipeline.submit import Submitter, existing_object_event

    submitter = Submitter(cloud.settings(), cloud.ice_adapter(), cloud.store())
    upload, _ = submitter.resolve(existing_object_event("media", cloud.store().head("media", key)))
    return submitter.submit_upload(upload, f"test-audit-{uuid.uuid4().hex[:6]}").job_id


def _indexed(cloud, key: str) -> dict:
    """Submit ``key`` (outside the trigger's prefix) and wait for its final index."""
    from snapshot_pipeline.publish import Publisher

    _submit(cloud, key)
    publisher = Publisher(cloud.settings(), cloud.ice_adapter(), cloud.store())
    return wait_until(lambda: publisher.current_index(OssLocation("media", key))[1], f"the index of {key}")


def _dead_letter(cloud, key: str, etag: str) -> str:
    """A dead letter for ``key``'s upload, in the shared ``snapshot-deadletter/1`` format."""
    letter = f"snapshots/_deadletters/20261201/{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.json"
    record = {"bucket": "media", "key": key, "etag": etag, "event_name": "ObjectCreated:PutObject"}
    doc = {"schema": "snapshot-deadletter/1", "recorded_at": "2026-12-01T00:00:00Z", "request_id": "req-dead",
           "function": "submit", "error": {"type": "RetryLater", "message": "ICE is down"}, "attempts": 3,
           "event": {"events": []}, "records": [record]}
    cloud.bucket().put_object(letter, json.dumps(doc))
    return letter


def _build_every_state(cloud, prefix: str, tiny_video: bytes) -> dict[str, str]:
    """Keys under ``prefix`` (outside the trigger's prefix, so only this test submits them), one per state."""
    from localcloud.media import make_garbage
    from snapshot_pipeline.publish import Publisher

    bucket = cloud.bucket()
    keys = {state: f"{prefix}{state}.mp4" for state in ("indexed", "failed", "pending", "dead", "stale", "missing",
                                                         "deleted", "orphaned")}
    for n, key in enumerate(keys.values()):
        bucket.put_object(key, (make_garbage(20_000) if key == keys["failed"] else tiny_video) + bytes([n]))
    bucket.put_object(f"{prefix}notes.txt", b"not a video")
    bucket.put_object(f"{prefix}empty.mp4", b"")
    for state in ("indexed", "failed", "stale", "deleted", "orphaned"):
        _indexed(cloud, keys[state])
    bucket.put_object(keys["stale"], tiny_video + b"v2")  # a second version nobody submits
    for state in ("deleted", "orphaned"):
        bucket.delete_object(keys[state])
    Publisher(cloud.settings(), cloud.ice_adapter(), cloud.store()).record_deletion(
        OssLocation("media", keys["deleted"]), deleted_at=time.time())  # the orphan's deletion is lost
    cloud.ice.hold_jobs(True)
    try:
        _submit(cloud, keys["pending"])
    finally:
        cloud.ice.hold_jobs(False)
    return keys


def test_audit_reports_every_state_and_fix_settles_them(cloud, tmp_path, monkeypatch, capsys, tiny_video):
    run = cli_runner(cloud, tmp_path / "state.json", monkeypatch, capsys)
    prefix = f"audit-{uuid.uuid4().hex[:8]}/"
    source = f"oss://media/{prefix}"
    letter = None
    try:
        keys = _build_every_state(cloud, prefix, tiny_video)
        letter = _dead_letter(cloud, keys["dead"], cloud.store().head("media", keys["dead"]).etag)

        code, out = run("--local", "audit", source, "--json")
        report = json.loads(out)
        assert code == 1 and not report["settled"]
        assert report["summary"] == {"indexed": 1, "failed": 1, "pending": 1, "dead-lettered": 1, "stale": 1,
                                     "missing": 1, "deleted": 1, "orphaned": 1, "error": 0}
        assert report["skipped"] == {"not a video suffix": 1, "zero-size object": 1}
        assert report["listed"] == 8 and report["fixed"] == []
        states = {o["key"]: o["state"] for o in report["objects"]}
        assert states == {keys["failed"]: "failed", keys["pending"]: "pending", keys["dead"]: "dead-lettered",
                          keys["stale"]: "stale", keys["missing"]: "missing", keys["deleted"]: "deleted",
                          keys["orphaned"]: "orphaned"}  # indexed videos are listed only with --list
        by_key = {o["key"]: o for o in report["objects"]}
        assert by_key[keys["failed"]]["code"] and "is Init" in by_key[keys["pending"]]["reason"]
        assert letter in by_key[keys["dead"]]["reason"] and by_key[keys["missing"]]["reason"].startswith("no index")

        code, out = run("--local", "audit", source, "--list")
        assert code == 1 and re.search(rf"^{re.escape(keys['indexed'])}\tdefault\tindexed\t", out, re.M), out
        assert re.search(r"^  missing +1$", out, re.M) and re.search(r"^  stale +1$", out, re.M), out

        cloud.ice.release_all()
        code, out = run("--local", "audit", source, "--fix", "--json")
        fixed = json.loads(out)
        actions = {f["key"]: (f["state"], f["action"]) for f in fixed["fixed"]}
        assert actions == {keys["missing"]: ("missing", "submitted"), keys["stale"]: ("stale", "submitted"),
                           keys["orphaned"]: ("orphaned", "recorded the deletion")}
        assert any(note.startswith("dead letters ") for note in fixed["notes"]), fixed["notes"]

        cloud.bucket().delete_object(letter)  # once replayed or given up: the video is missing, and --fix submits it
        wait_until(lambda: run("--local", "audit", source, "--fix")[0] == 0, "every video indexed or failed")
        code, out = run("--local", "audit", source, "--json")
        assert code == 0 and json.loads(out)["summary"] == {
            "indexed": 5, "failed": 1, "pending": 0, "dead-lettered": 0, "stale": 0, "missing": 0, "deleted": 2,
            "orphaned": 0, "error": 0}
    finally:
        cloud.ice.hold_jobs(False)
        cloud.ice.release_all()
        if letter is not None:
            cloud.bucket().delete_object(letter)


def test_audit_of_an_empty_prefix_is_settled(cloud, tmp_path, monkeypatch, capsys):
    run = cli_runner(cloud, tmp_path / "state.json", monkeypatch, capsys)
    code, out = run("--local", "audit", f"oss://media/nothing-{uuid.uuid4().hex[:8]}/", "--rate", "1000")
    assert code == 0 and "every video is indexed or failed" in out, out


def test_bad_audit_arguments_exit_2(cloud, tmp_path, monkeypatch, capsys):
    run = cli_runner(cloud, tmp_path / "state.json", monkeypatch, capsys)
    for argv in (["--concurrency", "0"], ["--rate", "0"]):
        assert run("--local", "audit", "oss://media/x/", *argv)[0] == 2
