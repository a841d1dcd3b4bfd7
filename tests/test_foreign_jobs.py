"""What comes from outside the pipeline: other applications' jobs (issue 10, case 2), hostile callback
bodies and keys with dot segments (case 8). Each test asserts what a reader of the bucket sees:
no index appears that the pipeline had no business writing, and the ones it writes can be read."""
from __future__ import annotations

import io
import json
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from PIL import Image

from localcloud.cloud import LocalCloud, LocalCloudOptions
from snapshot_pipeline import layout
from snapshot_pipeline.claims import CLAIMS_DIR
from snapshot_pipeline.domain import OssLocation, Upload
from snapshot_pipeline.reconcile import Reconciler
from snapshot_pipeline.retry import Deadline
from tests.support import (
    PIPELINE_TIMEOUT_S,
    assert_valid_index,
    cli_runner,
    default_result,
    function_log,
    post_signed_callback,
    wait_until,
)

#: Buckets of this module's own: the local OSS keeps every cloud's buckets in one store per process.
BUCKET = "foreign-jobs"
#: Another application's bucket in the same account: its jobs' callbacks reach ours too.
TEAM2_BUCKET = "team2-media"
PREFIX = "snapshots/"


@pytest.fixture(scope="module")
def cloud():
    """A cloud of this module's own, so listing a bucket before and after shows only this module's writes."""
    with LocalCloud(LocalCloudOptions(bucket=BUCKET)) as running:
        running.oss.create_bucket(TEAM2_BUCKET)
        yield running


@pytest.fixture(autouse=True)
def clear_faults(cloud):
    yield
    cloud.ice.set_faults(callback_drop_rate=0.0)


def unique() -> str:
    return uuid.uuid4().hex[:8]


def keys_in(cloud, bucket: str) -> set[str]:
    import oss2

    return {obj.key for obj in oss2.ObjectIterator(cloud.bucket(bucket))}


def everything(cloud) -> dict[str, set[str]]:
    return {bucket: keys_in(cloud, bucket) for bucket in (BUCKET, TEAM2_BUCKET)}


def new_keys(before: dict[str, set[str]], after: dict[str, set[str]]) -> set[str]:
    return {f"oss://{bucket}/{key}" for bucket in after for key in after[bucket] - before[bucket]}


def assert_only_the_jobs_own_outputs_appeared(before: dict[str, set[str]], after: dict[str, set[str]]) -> None:
    """ICE wrote the jobs' JPEGs; the pipeline wrote nothing (no index, no claim) anywhere."""
    appeared = new_keys(before, after)
    assert appeared, "the jobs wrote their outputs"
    assert all(uri.endswith(".jpg") for uri in appeared), sorted(appeared)
    assert not [uri for uri in appeared if CLAIMS_DIR in uri or uri.endswith(layout.INDEX_FILE)]


def indexes_naming(cloud, source: OssLocation) -> list[str]:
    """Every index.json in the output bucket whose source is ``source``."""
    found = []
    for key in keys_in(cloud, BUCKET):
        if key.endswith(layout.INDEX_FILE):
            doc = json.loads(cloud.bucket(BUCKET).get_object(key).read())
            if (doc.get("source") or {}).get("key") == source.key and doc["source"].get("bucket") == source.bucket:
                found.append(key)
    return found


def submit_foreign(cloud, source: OssLocation, output: OssLocation, user_data: dict | None = None) -> str:
    """A job submitted straight to ICE, as another application of the account does."""
    return cloud.ice_adapter().submit_snapshot_job(
        input=source, output=output, template_id=cloud.template_id,
        user_data=json.dumps(user_data) if user_data is not None else None)


def settle(cloud, job_ids: list[str]) -> None:
    """Wait until the jobs finished and ICE delivered (or gave up delivering) their callbacks."""
    ice = cloud.ice_adapter()
    wait_until(lambda: all(ice.get_snapshot_job(j).finished for j in job_ids), f"jobs {job_ids} finished")
    assert cloud.ice.wait_idle(PIPELINE_TIMEOUT_S) and cloud.fc.wait_idle(PIPELINE_TIMEOUT_S)


def callback_body(job_id: str) -> bytes:
    return json.dumps({"EventType": "SnapshotComplete", "MessageBody": {"JobId": job_id, "Status": "Success"}}).encode()


def assert_refused_as_foreign(cloud, job_id: str) -> None:
    """ICE's own deliveries and a signed POST of ours are answered 404, and the callback logged why."""
    deliveries = [d for d in cloud.ice.deliveries() if d["job_id"] == job_id]
    assert deliveries and all(d["status"] == 404 for d in deliveries), deliveries
    status, payload = post_signed_callback(cloud, callback_body(job_id))
    assert status == 404 and "not a job of this pipeline" in payload["error"], payload
    assert [r for r in function_log(cloud, "callback", "publish.foreign") if r.get("job_id") == job_id]


def put_video(cloud, key: str, data: bytes, bucket: str = BUCKET) -> Upload:
    """Upload outside the trigger's prefix (no job of ours); the upload as the pipeline sees it."""
    cloud.bucket(bucket).put_object(key, data)
    info = cloud.store().head(bucket, key)
    assert info is not None
    return Upload.of_object(bucket, info)


def ours_at(upload: Upload) -> OssLocation:
    """Exactly where this pipeline puts ``upload``'s snapshots."""
    return layout.output_location(layout.output_bucket(BUCKET, upload.bucket), PREFIX, "Normal", upload)


# --- A. foreign jobs (issue 10, case 2) -------------------------------------------------------------
def test_another_applications_job_is_answered_404_and_writes_nothing(cloud, small_video):
    """Case 2: another application's jobs reach our callback (ICE's event callback is account-wide)."""
    team2 = put_video(cloud, f"team2/{unique()}/in.mp4", small_video)
    before = everything(cloud)
    output = OssLocation(BUCKET, f"private/team2/{unique()}/{{Count}}.jpg")
    job_ids = [submit_foreign(cloud, team2.location, output, user_data)
               for user_data in (None, {"team": "team2", "ticket": 7},
                                 {"source": {"bucket": BUCKET, "key": team2.key}})]  # looks like ours, is not
    settle(cloud, job_ids)
    for job_id in job_ids:
        assert_refused_as_foreign(cloud, job_id)
    after = everything(cloud)
    assert_only_the_jobs_own_outputs_appeared(before, after)
    assert all(uri.startswith(f"oss://{BUCKET}/{output.key.rsplit('/', 1)[0]}/") for uri in new_keys(before, after))
    assert not [key for key in after[BUCKET] if key.startswith("private/") and key.endswith(layout.INDEX_FILE)]
    assert indexes_naming(cloud, team2.location) == []


def test_a_job_under_our_prefix_naming_another_source_than_its_input_is_foreign(cloud, small_video):
    """Case 2: a job whose Output is under our prefix, even exactly where the layout puts a version's
    snapshots, but whose UserData names another source than its Input, must not index that source."""
    folder = f"manual/{unique()}"
    named = put_video(cloud, f"{folder}/named.mp4", small_video)
    actual = put_video(cloud, f"{folder}/actual.mp4", small_video)
    before = everything(cloud)
    claimed = {"source": named.to_doc(), "NotifyAddress": cloud.callback_url}
    job_ids = [submit_foreign(cloud, actual.location, ours_at(named), claimed),  # the named source's outputs
               submit_foreign(cloud, actual.location, ours_at(actual), claimed)]  # the Input's own outputs
    settle(cloud, job_ids)
    for job_id in job_ids:
        assert_refused_as_foreign(cloud, job_id)
    assert_only_the_jobs_own_outputs_appeared(before, everything(cloud))
    assert indexes_naming(cloud, named.location) == [] and indexes_naming(cloud, actual.location) == []


def test_a_job_of_another_bucket_is_foreign(cloud, small_video):
    """Case 2: a job in another bucket of the account, even at our layout's path in that bucket."""
    theirs = put_video(cloud, f"clips/{unique()}.mp4", small_video, bucket=TEAM2_BUCKET)
    before = everything(cloud)
    at_our_layout_in_their_bucket = OssLocation(TEAM2_BUCKET, layout.version_dir(PREFIX, theirs) + "{Count}.jpg")
    job_ids = [submit_foreign(cloud, theirs.location, OssLocation(TEAM2_BUCKET, f"private/{unique()}/{{Count}}.jpg")),
               submit_foreign(cloud, theirs.location, at_our_layout_in_their_bucket, {"source": theirs.to_doc()})]
    settle(cloud, job_ids)
    for job_id in job_ids:
        assert_refused_as_foreign(cloud, job_id)
    after = everything(cloud)
    assert_only_the_jobs_own_outputs_appeared(before, after)
    assert after[BUCKET] == before[BUCKET]
    assert indexes_naming(cloud, theirs.location) == []


def test_the_reconciler_counts_foreign_jobs_and_writes_nothing(cloud, small_video):
    """Case 2: with their callbacks lost, the reconciler meets the same foreign jobs: counted, not indexed."""
    folder = f"manual/{unique()}"
    named = put_video(cloud, f"{folder}/named.mp4", small_video)
    actual = put_video(cloud, f"{folder}/actual.mp4", small_video)
    theirs = put_video(cloud, f"clips/{unique()}.mp4", small_video, bucket=TEAM2_BUCKET)
    cloud.ice.set_faults(callback_drop_rate=1.0)
    since = time.time() - 1
    job_ids = [submit_foreign(cloud, actual.location, OssLocation(BUCKET, f"private/team2/{unique()}/{{Count}}.jpg")),
               submit_foreign(cloud, actual.location, ours_at(actual), {"source": named.to_doc()}),
               submit_foreign(cloud, theirs.location, OssLocation(TEAM2_BUCKET, f"private/{unique()}/{{Count}}.jpg"),
                              {"source": theirs.to_doc()})]
    settle(cloud, job_ids)
    before = everything(cloud)

    report = Reconciler(cloud.settings(), cloud.ice_adapter(), cloud.store(), deadline=Deadline.after(300)).run(
        since=since)
    assert report.errors == [] and report.complete
    assert report.jobs_foreign >= len(job_ids) and report.indexes_written == 0
    timer = json.loads(cloud.fc.fire_timer("reconcile"))  # the deployed function, over its whole window
    assert timer["errors"] == [] and timer["jobs_foreign"] >= len(job_ids)
    after = everything(cloud)
    assert new_keys(before, after) <= {f"oss://{BUCKET}/{PREFIX}_reconcile/cursor.json"}  # its own state only
    assert all(before[bucket] <= after[bucket] for bucket in before)  # and nothing removed
    assert indexes_naming(cloud, named.location) == [] and indexes_naming(cloud, actual.location) == []


# --- B. hostile bodies (issue 10, case 8) -----------------------------------------------------------
#: Deep enough to exhaust any JSON parser's recursion, small enough to pass the 64 KiB body limit
#: (a bigger body is refused before it is parsed).
DEPTH = 30_000
DEEP = "[" * DEPTH + "]" * DEPTH
HUGE_NUMBER = "9" * 5000  # beyond Python's 4300-digit limit for converting a decimal string to int


@pytest.mark.parametrize("body", [
    DEEP,
    json.dumps({"EventType": "SnapshotComplete", "MessageBody": {"JobId": "j"}})[:-1] + f', "Count": {HUGE_NUMBER}}}',
    json.dumps({"EventType": "SnapshotComplete", "MessageBody": DEEP}),
    json.dumps({"EventType": "SnapshotComplete", "MessageBody": f'{{"JobId": "j", "Count": {HUGE_NUMBER}}}'}),
], ids=["deeply-nested", "huge-number", "nested-message-body", "huge-number-in-message-body"])
def test_a_validly_signed_hostile_body_is_a_400_without_a_traceback(cloud, body):
    """Case 8: a deeply nested or huge-number body, signed with the right key, answered 502 with a traceback."""
    before, logged_before = everything(cloud), len(cloud.fc.pools["callback"].logs)
    status, payload = post_signed_callback(cloud, body.encode())
    assert status == 400, payload
    assert payload["error"]
    lines = list(cloud.fc.pools["callback"].logs)[logged_before:]
    assert lines and not [line for line in lines if "Traceback" in line]
    answers = [json.loads(line) for line in lines if line.startswith("{")]
    assert [a for a in answers if a.get("event") == "callback" and a.get("http_status") == 400]
    assert everything(cloud) == before


# --- C. keys with dot segments (issue 10, case 8) ---------------------------------------------------
@pytest.fixture
def run(cloud, monkeypatch, capsys, tmp_path: Path):
    return cli_runner(cloud, tmp_path / "state.json", monkeypatch, capsys)


def normalised(url: str) -> str:
    """``url`` as a client normalises it (RFC 3986 dot-segment removal, as urljoin does)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urljoin(url, parts.path) + (f"?{parts.query}" if parts.query else "")


def url_safe(path: str) -> bool:
    return not [segment for segment in path.split("/")[1:] if segment in ("", ".", "..")]


@pytest.mark.parametrize("name", ["a/../dots.mp4", "./dot.mp4", "/double.mp4"], ids=["dot-dot", "dot", "double-slash"])
def test_a_key_with_dot_segments_gets_urls_that_survive_normalisation(cloud, run, small_video, name):
    """Case 8: keys with ``..``, ``.`` or ``//`` get outputs whose URLs a client does not rewrite."""
    key = f"uploads/{unique()}/{name}"
    cloud.bucket().put_object(key, small_video)
    assert keys_in(cloud, BUCKET) >= {key}, "the local OSS keeps the key verbatim"
    index = assert_valid_index(cloud.wait_for_index(key, timeout=PIPELINE_TIMEOUT_S))
    assert index["source"]["key"] == key and default_result(index)["job"]["status"] == "Success"
    assert layout.index_key(PREFIX, OssLocation(BUCKET, key)).startswith(PREFIX + layout.HASHED_DIR)
    assert len(default_result(index)["snapshots"]) == 5
    for snap in default_result(index)["snapshots"]:
        assert snap["key"].startswith(PREFIX + layout.HASHED_DIR) and url_safe("/" + snap["key"]), snap["key"]
        assert url_safe(urllib.parse.urlsplit(snap["url"]).path), snap["url"]
        assert normalised(snap["url"]) == snap["url"]
        with urllib.request.urlopen(normalised(snap["url"]), timeout=30) as resp:
            image = Image.open(io.BytesIO(resp.read()))
        assert image.format == "JPEG" and image.size == (320, 240)

    code, out = run("--local", "index", f"oss://{BUCKET}/{key}", "--json")
    assert code == 0 and json.loads(out)["source"]["key"] == key
