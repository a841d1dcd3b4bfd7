"""`python -m localcloud up`: the JSON line, a working pipeline behind it, and a clean Ctrl-C."""
import json
import signal
import subprocess
import sys
import urllib.request

import oss2

from tests.conftest import ROOT
from tests.support import default_result, wait_until

REQUIRED = {"oss_endpoint", "bucket", "ice_endpoint", "access_key_id", "access_key_secret", "callback_url",
            "callback_auth_key"}
STOP_TIMEOUT_S = 60  # stopping takes a second or two; a loaded machine must not fail the test


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
        index_key = f"snapshots/{info['bucket']}/uploads/from-up.mp4/index.json"
        wait_until(lambda: bucket.object_exists(index_key), "an index for uploads/from-up.mp4")
        index = json.loads(bucket.get_object(index_key).read())
        assert default_result(index)["job"]["status"] == "Success" and len(default_result(index)["snapshots"]) == 5
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"local cloud did not stop within {STOP_TIMEOUT_S} s of Ctrl-C") from None
    assert proc.returncode == 0, err
    assert "local cloud stopped" in err
    assert "Traceback" not in err
