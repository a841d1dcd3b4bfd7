"""`up --data-dir DIR`: objects, the index, templates, jobs, the credentials and the ports survive a
restart, even one by kill -9 right after the answers; a job that was running runs again; and
IceModel.state() / restore() round-trip."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import oss2

from localcloud.ice.models import IceModel
from snapshot_pipeline.credentials import Credentials
from snapshot_pipeline.ice import IceClient
from snapshot_pipeline.retry import Deadline
from tests.conftest import ROOT
from tests.support import default_result, wait_until

TEMPLATE = {"Type": "Normal", "FrameType": "intra", "Time": 0, "Count": 3}


@contextmanager
def local_cloud_up(data_dir: Path, home: Path, *flags: str, kill: bool = False) -> Iterator[dict]:
    """`python -m localcloud up --data-dir` in its own process group; its JSON line. ``kill``:
    end it with SIGKILL (the whole group: the function processes too) instead of Ctrl-C."""
    proc = subprocess.Popen([sys.executable, "-m", "localcloud", "up", "--data-dir", str(data_dir), *flags], cwd=home,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(home),
                                 "SNAPSHOTS_LOCAL_STATE": str(home / "state.json")})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.communicate(timeout=60)[1]
        yield json.loads(line)
    finally:
        if kill:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def _bucket(info: dict) -> oss2.Bucket:
    return oss2.Bucket(oss2.Auth(info["access_key_id"], info["access_key_secret"]), info["oss_endpoint"],
                       info["bucket"])


def _ice(info: dict) -> IceClient:
    return IceClient(endpoint=info["ice_endpoint"], credentials=Credentials(info["access_key_id"],
                     info["access_key_secret"]), region=info["region"], protocol="http",
                     deadline=Deadline.after(60))


def test_objects_index_templates_and_jobs_survive_restarts(small_video, tmp_path):
    data_dir = tmp_path / "data"
    index_key = "snapshots/media/uploads/kept.mp4/index.json"
    with local_cloud_up(data_dir, tmp_path, kill=True) as first:
        bucket = _bucket(first)
        bucket.put_object("uploads/kept.mp4", small_video)
        wait_until(lambda: bucket.object_exists(index_key), "an index for uploads/kept.mp4")
        index = json.loads(bucket.get_object(index_key).read())
        extra = _ice(first).create_snapshot_template("kept-template", TEMPLATE, 1)["TemplateId"]
        bucket.put_object("notes/removed", b"gone")
        bucket.delete_object("notes/removed")
    with local_cloud_up(data_dir, tmp_path) as second:
        kept = ("access_key_id", "access_key_secret", "template_id", "oss_endpoint", "ice_endpoint", "callback_url")
        assert {k: second[k] for k in kept} == {k: first[k] for k in kept}
        bucket = _bucket(second)
        assert bucket.get_object("uploads/kept.mp4").read() == small_video
        assert json.loads(bucket.get_object(index_key).read()) == index
        assert not bucket.object_exists("notes/removed")
        for snapshot in default_result(index)["snapshots"]:
            assert bucket.object_exists(snapshot["key"])
        ice = _ice(second)
        job = ice.get_snapshot_job(default_result(index)["job"]["id"])
        assert job.status == "Success"
        assert default_result(index)["job"]["id"] in [j.job_id for j in ice.list_snapshot_jobs().jobs]
        assert ice.get_snapshot_template(extra)["TemplateName"] == "kept-template"
    with local_cloud_up(data_dir, tmp_path) as third:  # and once more, after an orderly stop
        assert _bucket(third).get_object("uploads/kept.mp4").read() == small_video


def test_a_job_running_when_the_cloud_was_killed_runs_after_the_restart(small_video, tmp_path):
    data_dir = tmp_path / "data"
    index_key = "snapshots/media/uploads/interrupted.mp4/index.json"
    with local_cloud_up(data_dir, tmp_path, "--job-delay", "600", kill=True) as first:
        _bucket(first).put_object("uploads/interrupted.mp4", small_video)
        ice = _ice(first)
        wait_until(lambda: ice.list_snapshot_jobs(status="Init").jobs, "the upload's job submitted")
        [job] = ice.list_snapshot_jobs().jobs
    with local_cloud_up(data_dir, tmp_path) as second:
        bucket = _bucket(second)
        wait_until(lambda: bucket.object_exists(index_key), "an index once the job has run again")
        index = json.loads(bucket.get_object(index_key).read())
        assert default_result(index)["job"]["id"] == job.job_id and default_result(index)["job"]["status"] == "Success"
        assert _ice(second).get_snapshot_job(job.job_id).status == "Success"


def test_ice_state_round_trips_through_json():
    model = IceModel()
    template = model.create_template(name="t", type=2, subtype=None, template_config=TEMPLATE)
    jobs = [model.submit_snapshot_job(input={"Type": "OSS", "Media": f"oss://media/uploads/{n}.mp4"},
                                      output={"Type": "OSS", "Media": "oss://media/out/{Count}.jpg"},
                                      template_config={"TemplateId": template.template_id}, user_data="u")
            for n in range(3)]
    model.complete_job(jobs[0].job_id, snapshot_keys=["out/1.jpg"], count=1, vtt_key=None)
    model.fail_job(jobs[1].job_id, code="InvalidInput", message="no")
    state = json.loads(json.dumps(model.state()))
    restored = IceModel()
    restored.restore(state)
    assert restored.state() == state
    assert [restored.get_job(j.job_id) for j in jobs] == [model.get_job(j.job_id) for j in jobs]
    assert restored.get_template(template_id=template.template_id) == model.get_template(
        template_id=template.template_id)
    assert restored.unfinished_job_ids() == [jobs[2].job_id]
    assert restored.list_jobs()[0] == model.list_jobs()[0]


def test_a_change_is_written_once_and_a_repeated_call_writes_nothing(tmp_path, monkeypatch):
    from localcloud import data_dir

    written: list[dict] = []
    real_write = data_dir.write_json_atomically
    monkeypatch.setattr(data_dir, "write_json_atomically",
                        lambda path, state, *a: (written.append(state), real_write(path, state, *a)))
    kept, model = data_dir.DataDir(tmp_path), IceModel()
    kept.keep_ice(model)
    for _ in range(3):  # a deployment sets its event callback at every start
        model.set_event_callback(callback_type="HTTP", callback_url="http://127.0.0.1:9/cb", auth_key="LocalKey2026")
    assert len(written) == 1
    assert json.loads((tmp_path / "ice.json").read_text())["event_callback"] == written[0]["event_callback"]
    model.create_template(name="t", type=2, subtype=None, template_config=TEMPLATE)
    assert len(written) == 2  # a real change is still written before its call returns
