"""Profiles through the local cloud: three profiles give three jobs and one index with all three
results for each upload, exactly once under duplicate deliveries and killed instances, in every
completion order; the uploader's poster time; a profile added later backfilled alone."""
from __future__ import annotations

import io
import itertools
import json
import re
import threading
import time
import uuid

import pytest
from PIL import Image

from bench import burst_kills
from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.fc import InvocationError
from localcloud.media import make_test_video, read_stamp
from snapshot_pipeline import cli
from snapshot_pipeline.claims import Claims
from snapshot_pipeline.cli import local_state
from snapshot_pipeline.publish import Publisher
from snapshot_pipeline.reconcile import Reconciler
from snapshot_pipeline.retry import Deadline
from tests.support import PIPELINE_TIMEOUT_S, assert_valid_index, jobs_for, oss_event, upload, upload_of, wait_until

FPS = 25
PROFILES = [
    {"name": "poster", "type": "Normal", "poster": True,
     "template_config": {"Type": "Normal", "FrameType": "normal", "Time": 0, "Count": 1}},
    {"name": "thumbs", "type": "Normal", "overrides": {"Count": 3, "Interval": 1},
     "template_config": {"Type": "Normal", "FrameType": "intra", "Time": 0, "Count": 5}},
    {"name": "storyboard", "type": "WebVtt", "prefixes": ["uploads/"],
     "template_config": {"Type": "WebVtt", "FrameType": "intra", "Time": 0, "Count": 4, "Interval": 1,
                         "IsSptFrag": True,
                         "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2, "CellWidth": 80, "CellHeight": 60}}},
]
NAMES = ("poster", "thumbs", "storyboard")


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(LocalCloudOptions(bucket="profiles-e2e", profiles=json.dumps(PROFILES))) as running:
        yield running


@pytest.fixture(scope="module")
def video() -> bytes:
    return make_test_video(duration_s=4.0, fps=FPS, width=320, height=240, gop_s=1.0)


def unique_key(name: str) -> str:
    return f"uploads/profiles-{uuid.uuid4().hex[:8]}/{name}"


def index_of(cloud, key: str) -> dict | None:
    try:
        return json.loads(cloud.bucket().get_object(f"snapshots/{cloud.options.bucket}/{key}/index.json").read())
    except Exception:  # not written yet
        return None


def wait_for_profiles(cloud, key: str, names=NAMES) -> dict:
    """The index once it shows every profile of ``names`` with a finished job (validated)."""
    return assert_valid_index(wait_until(
        lambda: (doc := index_of(cloud, key)) and set(doc["profiles"]) == set(names) and doc,
        f"the index of {key} with profiles {', '.join(names)}"))


def jobs_by_profile(cloud, key: str) -> dict[str, list[str]]:
    """The ids of ``key``'s jobs, by the profile folder their Output names."""
    found: dict[str, list[str]] = {}
    for job in jobs_for(cloud, key):
        rest = job.output.key.split(f"/{key}/", 1)[1].split("/")
        found.setdefault(rest[1] if len(rest) == 3 else "default", []).append(job.job_id)
    return found


def image(cloud, key: str) -> Image.Image:
    return Image.open(io.BytesIO(cloud.bucket().get_object(key).read())).convert("RGB")


def test_the_local_cloud_created_each_profiles_template(cloud):
    deployed = {p["name"]: p for p in cloud.describe()["profiles"]}
    assert list(deployed) == list(NAMES)
    for name in NAMES:
        template = cloud.ice_adapter().get_snapshot_template(deployed[name]["template_id"])
        config = json.loads(template["TemplateConfig"]) if isinstance(template["TemplateConfig"], str) \
            else template["TemplateConfig"]
        assert template["TemplateName"] == f"localcloud-profile-{name}"
        assert config["Type"] == PROFILES[NAMES.index(name)]["template_config"]["Type"]


def test_three_profiles_give_three_jobs_and_one_index_with_all_three(cloud, video):
    key = unique_key("three.mp4")
    cloud.bucket().put_object(key, video)
    index = wait_for_profiles(cloud, key)
    jobs = jobs_by_profile(cloud, key)
    assert {name: len(ids) for name, ids in jobs.items()} == {name: 1 for name in NAMES}
    version = index["source"]["version"]
    for name in NAMES:
        result = index["profiles"][name]
        assert result["job"]["id"] == jobs[name][0] and result["job"]["status"] == "Success"
        assert all(s["key"].startswith(f"snapshots/profiles-e2e/{key}/{version}/{name}/") for s in result["snapshots"])
    assert len(index["profiles"]["poster"]["snapshots"]) == 1
    assert [s["time"] for s in index["profiles"]["thumbs"]["snapshots"]] == [0.0, 1.0, 2.0]
    assert index["profiles"]["storyboard"]["job"]["type"] == "WebVtt" and index["profiles"]["storyboard"]["webvtt"]


def test_a_profile_whose_prefix_does_not_match_is_not_submitted(cloud, video):
    key = f"elsewhere/profiles-{uuid.uuid4().hex[:8]}/two.mp4"
    record = upload(cloud, key, video)  # outside uploads/: the trigger does not see it
    outcomes = json.loads(cloud.fc.invoke("submit", oss_event(record)))
    assert sorted(o["profile"] for o in outcomes) == ["poster", "thumbs"]
    wait_for_profiles(cloud, key, ("poster", "thumbs"))
    assert sorted(jobs_by_profile(cloud, key)) == ["poster", "thumbs"]


def test_duplicate_concurrent_deliveries_make_one_job_per_profile(cloud, video):
    key = unique_key("dup.mp4")
    record = upload(cloud, key, video)  # the trigger delivers it too
    errors = []

    def deliver():
        try:
            cloud.fc.invoke("submit", oss_event(record))
        except InvocationError as exc:  # a loser finds a claim busy: the platform retries it
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all("RetryLater" in e.error_type for e in errors)
    outcomes = json.loads(cloud.fc.invoke("submit", oss_event(record)))  # a retry: every profile settled
    assert sorted((o["profile"], o["outcome"]) for o in outcomes) == [("poster", "duplicate"),
                                                                      ("storyboard", "duplicate"),
                                                                      ("thumbs", "duplicate")]
    index = wait_for_profiles(cloud, key)
    jobs = jobs_by_profile(cloud, key)
    assert {name: len(ids) for name, ids in jobs.items()} == {name: 1 for name in NAMES}
    assert {name: index["profiles"][name]["job"]["id"] for name in NAMES} == {name: jobs[name][0] for name in NAMES}


def test_a_profile_whose_attempt_crashed_is_taken_over_alone(cloud, video):
    key = f"manual/profiles-{uuid.uuid4().hex[:8]}/crashed.mp4"  # outside the trigger: no storyboard
    record = upload(cloud, key, video)
    thumbs = upload_of(cloud, record).for_profile("thumbs")
    an_hour_ago = time.time() - 3600
    Claims(cloud.store(), cloud.options.bucket, "snapshots/", lease_s=60, clock=lambda: an_hour_ago).acquire(
        thumbs, owner="crashed")  # its owner died before submitting; the lease is long over
    outcomes = json.loads(cloud.fc.invoke("submit", oss_event(record)))
    assert [(o["profile"], o["outcome"]) for o in outcomes] == [("poster", "submitted"), ("thumbs", "submitted")]
    assert "adopted" not in outcomes[1].get("reason", "")  # the crashed attempt made no job: a new one
    wait_for_profiles(cloud, key, ("poster", "thumbs"))
    assert {name: len(ids) for name, ids in jobs_by_profile(cloud, key).items()} == {"poster": 1, "thumbs": 1}


def test_the_reconciler_takes_over_a_crashed_profile_alone(cloud, video):
    key = f"manual/profiles-{uuid.uuid4().hex[:8]}/reconciled.mp4"
    record = upload(cloud, key, video)
    thumbs = upload_of(cloud, record).for_profile("thumbs")
    Claims(cloud.store(), cloud.options.bucket, "snapshots/", lease_s=60).acquire(thumbs, owner="crashed")
    report = Reconciler(cloud.settings(), cloud.ice_adapter(), cloud.store(), deadline=Deadline.after(120),
                        clock=lambda: time.time() + burst_kills.PAST_THE_LEASES_S).run()
    assert not report.errors and report.claims_resubmitted == 1, report.to_dict()
    index = wait_for_profiles(cloud, key, ("thumbs",))  # its callback indexes it; nothing else was asked for
    assert sorted(jobs_by_profile(cloud, key)) == ["thumbs"] and list(index["profiles"]) == ["thumbs"]


@pytest.mark.parametrize("order", list(itertools.permutations(NAMES)), ids="-".join)
def test_every_completion_order_of_concurrent_callbacks_ends_with_every_result(cloud, video, order):
    key = unique_key("order.mp4")
    cloud.ice.hold_jobs(True)
    try:
        cloud.bucket().put_object(key, video)
        jobs = wait_until(lambda: (found := jobs_by_profile(cloud, key)) and len(found) == 3
                          and set(sum(found.values(), [])) <= set(cloud.ice.held_jobs()) and found,
                          f"the three held jobs of {key}")
        first, *rest = order
        assert cloud.ice.release_job(jobs[first][0]) == "Success"
        shown = wait_for_profiles(cloud, key, (first,))  # the first to finish shows up at once
        assert shown["profiles"][first]["job"]["id"] == jobs[first][0]
        releases = [threading.Thread(target=cloud.ice.release_job, args=(jobs[name][0],)) for name in rest]
        for release in releases:  # the others finish together: their callbacks race
            release.start()
        for release in releases:
            release.join()
    finally:
        cloud.ice.hold_jobs(False)
        cloud.ice.release_all()
    index = wait_for_profiles(cloud, key)
    assert {name: index["profiles"][name]["job"]["id"] for name in NAMES} == \
        {name: ids[0] for name, ids in jobs.items()}


def test_writers_racing_on_one_version_never_lose_a_result(cloud, video):
    # The publishers of the three profiles, started together again and again in every order: whichever
    # writes last, the index it leaves shows all three (each writer composes from every result it sees).
    key = unique_key("race.mp4")
    cloud.bucket().put_object(key, video)
    wait_for_profiles(cloud, key)
    jobs = {name: cloud.ice_adapter().get_snapshot_job(ids[0]) for name, ids in jobs_by_profile(cloud, key).items()}
    result_keys = [f"snapshots/profiles-e2e/{key}/{wait_for_profiles(cloud, key)['source']['version']}/_results/"
                   f"{name}.json" for name in NAMES]
    for order in itertools.permutations(NAMES):
        cloud.store().delete_many("profiles-e2e", result_keys)  # as if none had been written yet
        barrier = threading.Barrier(len(order))
        writers = [threading.Thread(target=publish_together, args=(cloud, jobs[name], barrier)) for name in order]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        index = assert_valid_index(index_of(cloud, key))
        assert {name: index["profiles"][name]["job"]["id"] for name in NAMES} == \
            {name: job.job_id for name, job in jobs.items()}, order


def publish_together(cloud, job, barrier: threading.Barrier) -> None:
    barrier.wait()
    Publisher(cloud.settings(), cloud.ice_adapter(), cloud.store()).publish(job)


def poster_frame_time(cloud, index: dict) -> float:
    (still,) = index["profiles"]["poster"]["snapshots"]
    return read_stamp(image(cloud, still["key"]), FPS)


def test_the_uploaders_poster_time_moves_the_poster_only(cloud, video):
    key = unique_key("poster.mp4")
    cloud.bucket().put_object(key, video, headers={"x-oss-meta-poster-time": "2.4"})
    index = wait_for_profiles(cloud, key)
    assert poster_frame_time(cloud, index) == pytest.approx(2.4, abs=0.5 / FPS)
    assert [s["time"] for s in index["profiles"]["thumbs"]["snapshots"]] == [0.0, 1.0, 2.0]  # not a poster
    first_thumb = index["profiles"]["thumbs"]["snapshots"][0]
    assert read_stamp(image(cloud, first_thumb["key"]), FPS) == pytest.approx(0.0, abs=0.5 / FPS)


def test_an_invalid_poster_time_is_logged_and_ignored(cloud, video):
    key = unique_key("bad-poster.mp4")
    cloud.bucket().put_object(key, video, headers={"x-oss-meta-poster-time": "soon"})
    index = wait_for_profiles(cloud, key)
    assert poster_frame_time(cloud, index) == pytest.approx(0.0, abs=0.5 / FPS)  # the template's Time
    logged = [json.loads(line) for line in list(cloud.fc.pools["submit"].logs) if "poster_time_ignored" in line]
    assert any(doc["key"] == key and doc["profile"] == "poster" and "'soon'" in doc["reason"] for doc in logged)


def test_a_profile_added_later_is_backfilled_alone(cloud, video, tmp_path, monkeypatch, capsys):
    prefix = f"uploads/profiles-{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}{n}.mp4" for n in range(3)]
    for key in keys:
        cloud.bucket().put_object(key, video)
    before = {key: wait_for_profiles(cloud, key) for key in keys}
    jobs_before = {key: jobs_by_profile(cloud, key) for key in keys}

    # The deployment gains a profile; the operator backfills that one over the existing videos.
    deployed = cloud.describe()["profiles"]
    cover = {"name": "cover", "type": "Normal", "template_id": deployed[0]["template_id"], "overrides": {"Count": 1}}
    state = tmp_path / "state.json"
    local_state.write_local_state(state, dict(cloud.describe(), profiles=[*deployed, cover]))
    monkeypatch.setenv(local_state.LOCAL_STATE_ENV, str(state))

    def backfill() -> dict:
        capsys.readouterr()
        code = cli.main(["--local", "backfill", f"oss://profiles-e2e/{prefix}", "--profile", "cover", "--json"])
        assert code == 0
        return json.loads(capsys.readouterr().out)

    report = backfill()
    assert report["submitted"] == 3 and [job["profile"] for job in report["jobs"]] == ["cover"] * 3, report
    for key in keys:
        index = wait_for_profiles(cloud, key, (*NAMES, "cover"))
        after = jobs_by_profile(cloud, key)
        assert {name: ids for name, ids in after.items() if name != "cover"} == jobs_before[key]  # the rest untouched
        assert len(after["cover"]) == 1
        assert {n: index["profiles"][n]["job"]["id"] for n in NAMES} == \
            {n: before[key]["profiles"][n]["job"]["id"] for n in NAMES}
    again = backfill()
    assert again["submitted"] == 0 and again["skipped"] == {"already indexed": 3}, again


def test_a_burst_with_killed_instances_ends_with_every_profile_indexed_once(cloud):
    figures = burst_kills.burst_with_kills(cloud, 12, prefix="uploads/profiles-kills/", submit_rounds=2, threads=6,
                                           timeout_s=PIPELINE_TIMEOUT_S)
    assert figures["kills"]["submit"] >= 2, figures
    assert all(run["errors"] == 0 for run in figures["reconcile_runs"]), figures
    assert figures["duplicates"] == 0 and figures["jobs"] >= 3 * figures["objects"], figures
    assert figures["indexes"] == figures["objects"] and figures["lost"] == 0, figures
    assert figures["stale"] == figures["failed"] == figures["orphans"] == 0, figures


def test_the_cli_submits_one_profile_shows_every_profile_and_audits_each(cloud, video, tmp_path, monkeypatch, capsys):
    state = tmp_path / "state.json"
    local_state.write_local_state(state, cloud.describe())
    monkeypatch.setenv(local_state.LOCAL_STATE_ENV, str(state))

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main(["--local", *argv])
        return code, capsys.readouterr().out

    prefix = f"manual/profiles-{uuid.uuid4().hex[:8]}/"  # outside the trigger: the CLI submits
    key = f"{prefix}cli.mp4"
    cloud.bucket().put_object(key, video)
    code, out = run("submit", f"oss://profiles-e2e/{key}", "--profile", "thumbs", "--json")
    assert code == 0 and json.loads(out)["profile"] == "thumbs" and json.loads(out)["outcome"] == "submitted"
    wait_for_profiles(cloud, key, ("thumbs",))
    assert sorted(jobs_by_profile(cloud, key)) == ["thumbs"]

    code, out = run("audit", f"oss://profiles-e2e/{prefix}", "--json")
    states = {(o["key"], o["profile"]): o["state"] for o in json.loads(out)["objects"]}
    assert code == 1 and states == {(key, "poster"): "missing"}  # thumbs indexed; storyboard does not apply
    code, out = run("audit", f"oss://profiles-e2e/{prefix}", "--profile", "thumbs", "--json")
    assert code == 0 and json.loads(out)["summary"]["indexed"] == 1

    code, out = run("submit", f"oss://profiles-e2e/{key}", "--json")  # every profile that applies
    assert code == 0 and sorted((j["profile"], j["outcome"]) for j in json.loads(out)["jobs"]) == [
        ("poster", "submitted"), ("thumbs", "duplicate")]
    wait_for_profiles(cloud, key, ("poster", "thumbs"))
    code, out = run("index", f"oss://profiles-e2e/{key}")
    assert code == 0 and "snapshot-index/2" in out
    for name in ("poster", "thumbs"):
        assert re.search(rf"^Profile:\s+{name}$", out, re.MULTILINE) and f"/{name}/00001.jpg" in out
    code, out = run("audit", f"oss://profiles-e2e/{prefix}", "--json")
    assert code == 0 and json.loads(out)["summary"]["indexed"] == 2
