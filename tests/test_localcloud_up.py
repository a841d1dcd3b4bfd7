"""`python -m localcloud up`: the JSON line, a working pipeline behind it, and a clean Ctrl-C."""
import json
import signal
import subprocess
import sys
import time
import urllib.request

import oss2

from tests.conftest import ROOT

REQUIRED = {"oss_endpoint", "bucket", "ice_endpoint", "access_key_id", "access_key_secret", "callback_url",
            "callback_auth_key"}


def test_up_prints_json_line_runs_pipeline_and_stops_on_ctrl_c(small_video, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "localcloud", "up", "--qps-limit", "SubmitSnapshotJob=50",
                             "--latency", "0.01", "--fault-seed", "1"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "SNAPSHOTS_LOCAL_STATE": str(tmp_path / "state.json")})
    try:
        info = json.loads(proc.stdout.readline())
        assert REQUIRED <= set(info)
        assert json.loads((tmp_path / "state.json").read_text())["oss_endpoint"] == info["oss_endpoint"]
        with urllib.request.urlopen(f"http://{info['ice_endpoint']}/__localcloud/faults", timeout=10) as resp:
            faults = json.loads(resp.read())
        assert faults["qps_limits"] == {"SubmitSnapshotJob": 50.0} and faults["latency_s"] == 0.01
        bucket = oss2.Bucket(oss2.Auth(info["access_key_id"], info["access_key_secret"]), info["oss_endpoint"],
                             info["bucket"])
        bucket.put_object("uploads/from-up.mp4", small_video)
        deadline = time.monotonic() + 60
        index_key = "snapshots/uploads/from-up.mp4/index.json"
        while not bucket.object_exists(index_key):
            assert time.monotonic() < deadline, "no index within 60 s"
            time.sleep(0.2)
        index = json.loads(bucket.get_object(index_key).read())
        assert index["job"]["status"] == "Success" and len(index["snapshots"]) == 5
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("local cloud did not stop within 20 s of Ctrl-C")
    assert proc.returncode == 0, err
    assert "local cloud stopped" in err
    assert "Traceback" not in err
