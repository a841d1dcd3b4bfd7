"""The local OSS and ICE in processes of their own (``LocalCloudOptions(own_processes=True)``, what the
benchmarks run on): the pipeline works through them as through the in-process ones, their controls
reach the children, STS credentials issued at any time work at both, and no child outlives its parent."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import oss2
import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.own_process import OssProcess
from snapshot_pipeline.credentials import Credentials
from snapshot_pipeline.ice import IceClient
from snapshot_pipeline.ports import IceError
from snapshot_pipeline.retry import Deadline
from tests.support import PIPELINE_TIMEOUT_S, assert_snapshots_show, coloured_video, default_result, jobs_for


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(LocalCloudOptions(bucket="own-processes", own_processes=True)) as running:
        yield running


def _gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet has exited too)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_an_upload_reaches_its_index_through_services_in_their_own_processes(cloud):
    assert {cloud.oss.pid, cloud.ice.pid} & {os.getpid(), None} == set()
    cloud.bucket().put_object("uploads/own/green.mp4", coloured_video((0, 200, 0)))
    index = cloud.wait_for_index("uploads/own/green.mp4", timeout=PIPELINE_TIMEOUT_S)
    assert default_result(index)["job"]["status"] == "Success"
    assert_snapshots_show(cloud, index, (64, 48), (0, 200, 0))
    [job] = jobs_for(cloud, "uploads/own/green.mp4")
    listed, _ = cloud.ice.model.list_jobs(page_size=100)  # the child's model, through the boundary
    assert job.job_id in {j.job_id for j in listed}
    assert cloud.ice.request_counts()["SubmitSnapshotJob"] >= 1
    assert cloud.oss.request_counts()["PutObject"] >= 2


def test_faults_set_here_apply_in_the_child_and_its_refusals_are_counted(cloud):
    ice = cloud.ice_adapter(budget_s=3)
    cloud.ice.reset_request_counts()
    cloud.ice.set_faults(qps_limits={"GetSnapshotJob": 0.001})
    try:
        with pytest.raises(IceError, match="JobNotFound"):  # the one token
            ice.get_snapshot_job("0" * 32)
        with pytest.raises(IceError) as refused:
            ice.get_snapshot_job("0" * 32)
        assert refused.value.code == "Throttling.User"
        assert cloud.ice.refusal_counts()["GetSnapshotJob:Throttling.User"] >= 1
    finally:
        cloud.ice.set_faults(qps_limits={})
    cloud.oss.set_faults(error_rate=1.0, methods=["GET"], key_prefix="faulty/")
    try:
        with pytest.raises(oss2.exceptions.ServerError):
            cloud.bucket().get_object("faulty/anything")
    finally:
        cloud.oss.set_faults(error_rate=0.0)


def test_sts_credentials_issued_after_the_start_work_at_both_children(cloud):
    sts = cloud.keyring.issue_sts(900)
    bucket = oss2.Bucket(oss2.StsAuth(sts.access_key_id, sts.access_key_secret, sts.security_token),
                         cloud.oss.endpoint, cloud.options.bucket)
    bucket.put_object("sts/hello.txt", b"hello")
    assert bucket.get_object("sts/hello.txt").read() == b"hello"
    ice = IceClient(endpoint=cloud.ice.endpoint, credentials=Credentials(sts.access_key_id, sts.access_key_secret,
                                                                         sts.security_token),
                    region=cloud.options.region, protocol="http", deadline=Deadline.after(30))
    assert ice.get_snapshot_template(cloud.template_id)["TemplateId"] == cloud.template_id
    made_up = oss2.Bucket(oss2.StsAuth(sts.access_key_id, sts.access_key_secret, "CAIS" + "x" * 40),
                          cloud.oss.endpoint, cloud.options.bucket)
    with pytest.raises(oss2.exceptions.ServerError) as refused:
        made_up.get_object("sts/hello.txt")
    assert refused.value.code == "InvalidSecurityToken"


def test_a_control_that_is_not_forwarded_is_named(cloud):
    with pytest.raises(AttributeError, match="forwarded"):
        cloud.oss.restore_everything()
    with pytest.raises(AttributeError, match="answers only"):
        cloud.ice.model.reset()


def test_a_data_dir_is_refused(tmp_path):
    with pytest.raises(ValueError, match="own_processes cannot keep a data dir"):
        LocalCloud(LocalCloudOptions(own_processes=True, data_dir=tmp_path))


def test_stopping_ends_the_child_and_frees_its_port():
    from localcloud.keyring import Keyring

    oss = OssProcess(keyring=Keyring.generate()).start()
    pid, port = oss.pid, int(oss.endpoint.rsplit(":", 1)[1])
    oss.stop()
    assert pid is not None and _gone(pid)
    with socket.socket() as probe, pytest.raises(OSError):
        probe.connect(("127.0.0.1", port))


def test_a_child_ends_when_its_parent_is_killed(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        from localcloud.keyring import Keyring
        from localcloud.own_process import OssProcess

        oss = OssProcess(keyring=Keyring.generate()).start()
        print(oss.pid, flush=True)
        time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        child = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(child), "the child outlived its killed parent"
    finally:
        parent.kill()


def test_a_service_that_cannot_start_raises_here_and_leaves_no_child():
    from localcloud.keyring import Keyring

    def my_children() -> set[int]:
        found: set[int] = set()
        for task in Path("/proc/self/task").iterdir():
            try:
                found.update(int(pid) for pid in (task / "children").read_text().split())
            except FileNotFoundError:  # a thread that ended since the listing
                continue
        return {pid for pid in found if not _gone(pid)}

    before = my_children()
    oss = OssProcess(keyring=Keyring.generate(), no_such_option=1)
    with pytest.raises(Exception, match="no_such_option"):
        oss.start()
    assert oss.pid is None and my_children() <= before


def test_a_failing_listener_stops_no_other_record():
    from localcloud.keyring import Keyring

    keyring = Keyring.generate()
    oss = OssProcess(keyring=keyring).start()
    try:
        oss.create_bucket("relay")
        seen: list[str] = []

        def failing(record: dict) -> None:
            raise RuntimeError("a listener that fails")

        oss.subscribe(failing)
        oss.subscribe(lambda record: seen.append(record["oss"]["object"]["key"]))
        bucket = oss2.Bucket(oss2.Auth(keyring.access_key_id, keyring.access_key_secret), oss.endpoint, "relay")
        for key in ("one", "two"):
            bucket.put_object(key, b"x")
        deadline = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == ["one", "two"]
    finally:
        oss.stop()
