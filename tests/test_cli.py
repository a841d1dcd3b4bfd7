"""`snapshots`, the operator CLI, driven against the local cloud (in process, and once as the real script)."""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from snapshot_pipeline import backfill, cli
from snapshot_pipeline.cli import jobs as jobs_command
from snapshot_pipeline.cli import local_state
from snapshot_pipeline.cli.errors import CliError
from snapshot_pipeline.cli.output import Fields, Output, ProgressBar, Table
from tests.support import PIPELINE_TIMEOUT_S, VirtualTime, default_result, version_of, wait_until

pytestmark = pytest.mark.usefixtures("local_env")


@pytest.fixture(scope="module")
def state_file(cloud, tmp_path_factory) -> Path:
    """The state `python -m localcloud up` records, for the session's local cloud."""
    path = tmp_path_factory.mktemp("localcloud") / "state.json"
    local_state.write_local_state(path, cloud.describe())
    return path


@pytest.fixture
def local_env(monkeypatch, state_file):
    monkeypatch.setenv(local_state.LOCAL_STATE_ENV, str(state_file))


@pytest.fixture(scope="module")
def tiny_video() -> bytes:
    from localcloud.media import make_test_video

    return make_test_video(duration_s=1.0, width=64, height=48)


@pytest.fixture
def run(cloud, capsys):
    """``run(*argv)`` -> (exit code, stdout, stderr); no secret of the local cloud is ever printed."""
    secrets = (cloud.access_key_secret, cloud.callback_auth_key)

    def invoke(*argv: str, seams: cli.Seams | None = None) -> tuple[int, str, str]:
        code = cli.main(list(argv), seams=seams)
        out, err = capsys.readouterr()
        for secret in secrets:
            assert secret not in out and secret not in err
        return code, out, err

    return invoke


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snapshots: error: "), err
    return lines[0]


def wait_for_job(run, job_id: str) -> dict:
    def finished() -> dict | None:
        code, out, _ = run("--local", "job", "get", job_id, "--json")
        assert code == 0
        job = json.loads(out)
        return job if job["Status"] in ("Success", "Fail") else None

    return wait_until(finished, f"job {job_id} finished")


# --- the official sample's workflow ---------------------------------------------------------------
def test_template_created_by_the_cli_makes_the_job_it_submits_and_lists_its_urls(cloud, run, tiny_video):
    code, out, _ = run("--local", "template", "create", "--type", "normal", "--count", "3", "--frame-type", "normal",
                       "--name", "cli-three", "--json")
    assert code == 0
    template = json.loads(out)
    template_id = template["TemplateId"]
    assert template["TemplateConfig"] == {"Type": "Normal", "FrameType": "normal", "Time": 0, "Count": 3}

    code, out, _ = run("--local", "template", "list")
    assert code == 0 and template_id in out and "cli-three" in out
    code, out, _ = run("--local", "template", "get", template_id)
    assert code == 0 and '"Count":3' in out and "Normal" in out

    key = f"manual-{uuid.uuid4().hex[:8]}/clip one.mp4"  # outside the trigger's uploads/ prefix
    etag = cloud.bucket().put_object(key, tiny_video).etag.upper()
    code, out, _ = run("--local", "submit", f"oss://media/{key}", "--template", template_id, "--json")
    assert code == 0, out
    submitted = json.loads(out)
    assert submitted["outcome"] == "submitted" and submitted["etag"] == etag
    assert submitted["output"] == f"oss://media/snapshots/media/{key}/{version_of(cloud, key)}/{{Count}}.jpg"
    job_id = submitted["job_id"]

    code, out, _ = run("--local", "submit", f"oss://media/{key}", "--template", template_id)
    assert code == 0 and f"already submitted as job {job_id}" in out  # the same claims as the function

    job = wait_for_job(run, job_id)
    assert job["Status"] == "Success" and job["TemplateId"] == template_id
    user_data = json.loads(job["UserData"])
    version = version_of(cloud, key)
    assert user_data == {"source": {"bucket": "media", "key": key, "etag": etag, "version": version,
                                    "last_modified": user_data["source"]["last_modified"]},
                         "NotifyAddress": cloud.callback_url}
    assert user_data["source"]["last_modified"].replace("-", "").replace(":", "") == version.split("-")[0]
    code, out, _ = run("--local", "job", "get", job_id)
    assert code == 0 and "Success" in out and f"oss://media/{key}" in out

    code, out, _ = run("--local", "urls", job_id, "--json")
    assert code == 0
    urls = json.loads(out)
    assert urls["total"] == 3 and len(urls["urls"]) == 3
    folder = f"/snapshots/media/{key.replace(' ', '%20')}/{version}"
    assert all(f"{folder}/0000{n}.jpg" in u for n, u in enumerate(urls["urls"], 1))
    code, out, _ = run("--local", "urls", job_id)
    assert code == 0 and len([line for line in out.splitlines()[1:] if "http" in line]) == 3

    index = cloud.wait_for_index(key, timeout=PIPELINE_TIMEOUT_S)
    code, out, _ = run("--local", "index", f"oss://media/{key}", "--json")
    assert code == 0 and json.loads(out) == index
    code, out, _ = run("--local", "index", f"oss://media/{key}")
    assert code == 0 and job_id in out and out.count(f"oss://media/snapshots/media/{key}/{version}/0000") == 3

    code, out, _ = run("--local", "template", "delete", template_id)
    assert code == 0 and f"deleted template {template_id}" in out
    code, _, err = run("--local", "template", "get", template_id)
    assert code == 1 and "ResourceNotFound" in one_line_error(err)


def test_submit_names_outputs_after_the_templates_type(cloud, run, tiny_video):
    code, out, _ = run("--local", "template", "create", "--type", "sprite", "--count", "4", "--columns", "2",
                       "--lines", "2", "--json")
    assert code == 0
    template = json.loads(out)
    assert template["TemplateConfig"]["SpriteSnapshotConfig"] == {"Columns": 2, "Lines": 2}
    code, out, _ = run("--local", "template", "update", template["TemplateId"], "--cell-width", "32", "--json")
    assert code == 0
    assert json.loads(out)["TemplateConfig"]["SpriteSnapshotConfig"] == {"Columns": 2, "Lines": 2, "CellWidth": 32}

    key = f"manual-{uuid.uuid4().hex[:8]}/sprite.mp4"
    cloud.bucket().put_object(key, tiny_video)
    code, out, _ = run("--local", "submit", f"oss://media/{key}", "--template", template["TemplateId"], "--json")
    assert code == 0
    submitted = json.loads(out)
    assert submitted["output"] == f"oss://media/snapshots/media/{key}/{version_of(cloud, key)}/sprite-{{TileCount}}.jpg"
    assert wait_for_job(run, submitted["job_id"])["Status"] == "Success"


def test_submit_refuses_what_the_function_would_skip(cloud, run):
    cloud.bucket().put_object("manual/notes.txt", b"text")
    code, _, err = run("--local", "submit", "oss://media/manual/notes.txt")
    assert code == 1 and "not a video suffix" in one_line_error(err)
    code, _, err = run("--local", "submit", "oss://media/manual/missing.mp4")
    assert code == 1 and "no such object" in one_line_error(err)


# --- backfill -------------------------------------------------------------------------------------
class Interrupt:
    """Stands for Ctrl-C after ``after`` submissions."""

    def __init__(self, after: int):
        self.after, self.seen = after, 0

    def __call__(self, outcome) -> None:
        self.seen += 1
        if self.seen == self.after:
            raise KeyboardInterrupt


def test_backfill_interrupted_half_way_and_rerun_submits_each_video_once(cloud, run, tiny_video):
    prefix = f"archive-{uuid.uuid4().hex[:8]}/"
    bucket = cloud.bucket()
    keys = [f"{prefix}{n:02d}.mp4" for n in range(25)]
    for n, key in enumerate(keys):
        bucket.put_object(key, tiny_video + bytes([n]))  # distinct etags, still decodable
    bucket.put_object(f"{prefix}notes.txt", b"not a video")
    bucket.put_object(f"{prefix}empty.mp4", b"")
    source = f"oss://media/{prefix}"

    code, out, _ = run("--local", "backfill", source, "--dry-run", "--json")
    assert code == 0
    plan = json.loads(out)
    assert sorted(w["key"] for w in plan["would_submit"]) == keys and plan["submitted"] == 0
    assert plan["skipped"] == {"not a video suffix": 1, "zero-size object": 1}

    fake = VirtualTime(now=1000.0)
    code, out, _ = run("--local", "backfill", source, "--rate", "4", "--concurrency", "1", "--json",
                       seams=cli.Seams(clock=fake.clock, sleep=fake.sleep, after_submit=Interrupt(12)))
    first = json.loads(out)
    assert code == 130 and first["interrupted"] and first["submitted"] == 12
    assert fake.sleeps == [pytest.approx(0.25)] * 11  # 12 submissions, at most 4 a second

    code, out, _ = run("--local", "backfill", source, "--rate", "1000", "--restart", "--json")  # every object
    second = json.loads(out)
    assert code == 0 and second["submitted"] == 13 and not second["interrupted"]
    assert sum(second["skipped"].values()) == 12 + 2
    assert {j["key"] for j in first["jobs"]} | {j["key"] for j in second["jobs"]} == set(keys)

    code, out, _ = run("--local", "backfill", source, "--rate", "1000")
    assert code == 0 and re.search(r"^  submitted +0$", out, re.M), out
    code, out, _ = run("--local", "backfill", source, "--json")
    assert json.loads(out)["submitted"] == 0

    code, out, _ = run("--local", "jobs", "list", "--input", source, "--limit", "0", "--json")
    assert code == 0
    jobs = json.loads(out)
    assert len(jobs) == 25
    assert sorted(j["Input"]["Media"] for j in jobs) == [f"oss://media/{k}" for k in keys]


def test_rate_limiter_spaces_acquisitions():
    fake = VirtualTime(now=1000.0)
    limiter = backfill.RateLimiter(2, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        limiter.acquire()
    assert fake.sleeps == [0.5] * 4
    fake.now += 10  # idle for a while: no burst is saved up beyond one token
    limiter.acquire()
    limiter.acquire()
    assert fake.sleeps == [0.5] * 5


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal():
    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        with ProgressBar("backfill", stream) as bar:
            bar.update(1, 4, "submitted 1")
            bar.update(4, 4, "submitted 4")
    assert "backfill" in tty.getvalue() and "4/4" in tty.getvalue() and "submitted 4" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_tables_are_rich_on_a_terminal_and_tab_separated_in_a_pipe():
    def render(stream: io.StringIO) -> str:
        Output(as_json=False, stream=stream).emit({}, lambda: [
            Table(("JOB", "INPUT"), [("j1", "oss://media/a b.mp4"), ("j2", None)]), "",
            Fields([("Job", "j1"), ("Error", None)]), Fields([("submitted", 0)], title="backfill")])
        return stream.getvalue()

    assert render(io.StringIO()).splitlines() == [
        "JOB\tINPUT", "j1\toss://media/a b.mp4", "j2\t", "", "Job:  j1", "backfill", "  submitted  0"]
    drawn = re.sub(r"\x1b\[[0-9;]*m", "", render(Tty()))  # without the colour codes
    assert "\t" not in drawn and re.search(r"JOB +INPUT", drawn) and "oss://media/a b.mp4" in drawn
    assert "Error" not in drawn and re.search(r"submitted +0", drawn)


def test_first_ctrl_c_finishes_the_object_at_hand_second_stops_at_once():
    previous = signal.getsignal(signal.SIGINT)
    with backfill.GracefulInterrupt() as interrupt:
        signal.raise_signal(signal.SIGINT)  # the handler has run when this returns
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous


# --- jobs, index, callback, reconcile --------------------------------------------------------------
def test_jobs_list_follows_pages_and_filters(cloud, run, monkeypatch, tiny_video):
    for n in range(3):  # jobs of its own, whatever ran before
        key = f"listing-{uuid.uuid4().hex[:6]}/{n}.mp4"
        cloud.bucket().put_object(key, tiny_video)
        assert run("--local", "submit", f"oss://media/{key}")[0] == 0
    ice, every, token = cloud.ice_adapter(), [], None
    while True:
        page = ice.list_snapshot_jobs(page_size=100, next_page_token=token)
        every += [j.job_id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    monkeypatch.setattr(jobs_command, "JOBS_PAGE_SIZE", 2)  # several pages: NextPageToken is followed

    code, out, _ = run("--local", "jobs", "list", "--limit", "5", "--json")
    assert code == 0 and [j["JobId"] for j in json.loads(out)] == every[:5]
    code, out, _ = run("--local", "jobs", "list", "--limit", "0", "--order", "asc", "--json")
    assert [j["JobId"] for j in json.loads(out)] == every[::-1]
    code, out, _ = run("--local", "jobs", "list", "--status", "Success", "--since", "1h", "--json", "--limit", "0")
    succeeded = json.loads(out)
    assert code == 0 and succeeded and all(j["Status"] == "Success" for j in succeeded)
    code, out, _ = run("--local", "jobs", "list", "--until", "2001-01-01")
    assert code == 0 and out.strip() == "no jobs"
    code, out, _ = run("--local", "jobs", "list", "--limit", "2")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["JOB", "STATUS"] and len(out.splitlines()) == 3


def test_index_explains_a_missing_index(cloud, run, tiny_video):
    key = f"manual-{uuid.uuid4().hex[:8]}/never.mp4"
    cloud.bucket().put_object(key, tiny_video)
    code, _, err = run("--local", "index", f"oss://media/{key}")
    assert code == 1 and "never submitted" in one_line_error(err)
    code, _, err = run("--local", "index", "oss://media/manual/nothing-here.mp4")
    assert code == 1 and "no such object" in one_line_error(err)


def test_callback_set_and_show_never_echo_the_key(cloud, run, monkeypatch):
    other_key = "Other" + uuid.uuid4().hex[:10] + "9"
    monkeypatch.setenv("OPS_CALLBACK_KEY", other_key)
    try:
        code, out, err = run("--local", "callback", "set", "--url", cloud.callback_url + "ops",
                             "--auth-key-env", "OPS_CALLBACK_KEY")
        assert code == 0 and "authentication on (AuthKey from OPS_CALLBACK_KEY)" in out
        assert other_key not in out + err
        code, out, err = run("--local", "callback", "show", "--json")
        shown = json.loads(out)
        assert shown["callback_url"] == cloud.callback_url + "ops" and shown["auth_key_set"]
        assert shown["auth_key_matches_pipeline"] is False and shown["event_types"] == ["SnapshotComplete"]
        assert other_key not in out + err
    finally:
        code, out, _ = run("--local", "callback", "set")  # back to the pipeline's URL and key
    assert code == 0
    code, out, _ = run("--local", "callback", "show")
    assert code == 0 and cloud.callback_url in out and "matches ICE_CALLBACK_AUTH_KEY" in out
    setting = cloud.ice_adapter().get_event_callback()
    assert (setting.callback_url, setting.auth_key, setting.auth_switch) == \
        (cloud.callback_url, cloud.callback_auth_key, "on")

    monkeypatch.setenv("WEAK_KEY", "alllowercase")
    code, _, err = run("--local", "callback", "set", "--auth-key-env", "WEAK_KEY")
    assert code == 2 and "upper-case" in one_line_error(err) and "alllowercase" not in err
    code, _, err = run("--local", "callback", "set", "--auth-key-env", "NOT_SET_ANYWHERE")
    assert code == 2 and "NOT_SET_ANYWHERE" in one_line_error(err)


def test_reconcile_on_demand_reports_in_json(cloud, run, tiny_video):
    key = f"uploads/reconcile-{uuid.uuid4().hex[:8]}.mp4"  # at least one finished job in the window
    cloud.bucket().put_object(key, tiny_video)
    cloud.wait_for_index(key, timeout=PIPELINE_TIMEOUT_S)
    code, out, _ = run("--local", "reconcile", "--since", "2h", "--json")
    report = json.loads(out)  # the library's log lines do not leak into stdout
    assert code == 0, report
    assert report["complete"] and report["jobs_seen"] >= report["jobs_finished"] >= 1
    code, out, _ = run("--local", "reconcile")
    assert code == 0 and "indexes written" in out


# --- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    [],
    ["bogus"],
    ["submit", "media/key.mp4"],
    ["index", "oss://media/"],
    ["jobs", "list", "--limit", "-1"],
    ["jobs", "list", "--since", "yesterday-ish"],
    ["backfill", "oss://media/x/", "--rate", "0"],
    ["template", "create", "--type", "gif"],
    ["template", "create", "--type", "normal", "--config", "[1]"],
])
def test_bad_arguments_exit_2_with_one_line(run, argv):
    code, out, err = run("--local", *argv)
    assert code == 2 and out == ""
    one_line_error(err)


def test_contradicting_template_options_exit_2(run):
    code, _, err = run("--local", "template", "create", "--type", "normal", "--config", '{"Type":"Sprite"}')
    assert code == 2 and "Type" in one_line_error(err)
    code, _, err = run("--local", "template", "create", "--type", "normal", "--config", "{}", "--count", "3")
    assert code == 2 and "--config" in one_line_error(err)


def test_unknown_job_shows_the_ice_code_and_request_id(run):
    code, out, err = run("--local", "job", "get", "0" * 32)
    line = one_line_error(err)
    assert code == 1 and out == "" and "JobNotFound" in line and "RequestId" in line


def test_missing_credentials_is_one_line(run, monkeypatch, tmp_path):
    from alibabacloud_credentials.utils import auth_util

    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
                 "ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "true")  # no metadata service probe
    code, out, err = run("--region", "cn-shanghai", "job", "get", "x")
    assert code == 3 and out == "" and "no Alibaba Cloud credentials" in one_line_error(err)


def test_local_cloud_discovery(tmp_path, monkeypatch, cloud):
    monkeypatch.delenv(local_state.LOCAL_STATE_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state = dict(cloud.describe(), pid=os.getpid())
    project, below = tmp_path / "project", tmp_path / "project" / "a" / "b"
    below.mkdir(parents=True)
    local_state.write_local_state(project / ".localcloud" / "state.json", state)
    assert local_state.find_local_state(os.environ, below)["pid"] == os.getpid()  # the nearest project's, upwards
    assert (project / ".localcloud" / "state.json").stat().st_mode & 0o077 == 0

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    local_state.write_local_state(project / ".localcloud" / "state.json", dict(state, pid=gone.pid))
    with pytest.raises(CliError, match="stale") as err:
        local_state.find_local_state(os.environ, below)  # a dead `up` is passed over
    assert err.value.exit_code == 3
    local_state.write_local_state(local_state.user_state_file(os.environ), dict(state, region="per-user"))
    assert local_state.find_local_state(os.environ, below)["region"] == "per-user"

    monkeypatch.setenv(local_state.LOCAL_STATE_ENV, str(tmp_path / "absent.json"))
    with pytest.raises(CliError, match="does not exist"):
        local_state.find_local_state(os.environ, below)  # an explicit file is the only candidate


def test_the_console_script_runs_against_the_local_cloud(cloud, state_file):
    script = Path(sys.executable).with_name("snapshots")
    assert script.exists(), "the `snapshots` entry point is not installed: pip install -e ."
    env = {**os.environ, local_state.LOCAL_STATE_ENV: str(state_file)}
    done = subprocess.run([str(script), "template", "list", "--local", "--json"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert cloud.template_id in [t["TemplateId"] for t in json.loads(done.stdout)]
    assert cloud.access_key_secret not in done.stdout + done.stderr


def test_backfill_retry_failed_resubmits_only_the_latest_failure(cloud, run, tiny_video):
    from localcloud.media import make_garbage
    from snapshot_pipeline.domain import OssLocation
    from snapshot_pipeline.layout import index_key

    prefix = f"retry-{uuid.uuid4().hex[:8]}/"
    good, broken = f"{prefix}good.mp4", f"{prefix}broken.mp4"
    cloud.bucket().put_object(good, tiny_video)
    cloud.bucket().put_object(broken, make_garbage(20_000))
    source = f"oss://media/{prefix}"

    def index_of(key: str) -> dict:
        return json.loads(cloud.wait_for_object(index_key("snapshots/", OssLocation("media", key)),
                                                timeout=PIPELINE_TIMEOUT_S))

    code, out, _ = run("--local", "backfill", source, "--overwrite", '{"Count": -1}', "--json")
    assert code == 1 and json.loads(out)["rejected"] == 2  # a bad override: ICE refuses both
    assert default_result(index_of(good))["job"]["error"]["stage"] == "submit"

    code, out, _ = run("--local", "backfill", source, "--json")
    assert json.loads(out)["submitted"] == 0  # failures are final, unless the operator asks

    code, out, _ = run("--local", "backfill", source, "--retry-failed", "--json")
    assert code == 0 and json.loads(out)["submitted"] == 2
    wait_until(lambda: default_result(index_of(good))["job"]["status"] == "Success"
               and default_result(index_of(broken))["job"]["id"],
               "both retried videos indexed with a job")
    assert default_result(index_of(broken))["job"]["status"] == "Fail"

    cloud.ice.set_faults(job_delay_s=5.0)  # the retried job stays Init: its index still shows the old failure
    try:
        code, out, _ = run("--local", "backfill", source, "--retry-failed", "--json")
        assert json.loads(out)["submitted"] == 1  # the failed job only; the good video is done
        code, out, _ = run("--local", "backfill", source, "--retry-failed", "--json")
        assert json.loads(out)["submitted"] == 0  # that failure was already retried: no duplicate
    finally:
        cloud.ice.set_faults(job_delay_s=0.0)
    code, out, _ = run("--local", "jobs", "list", "--input", source, "--limit", "0", "--json")
    assert sorted(j["Input"]["Media"].rsplit("/", 1)[1] for j in json.loads(out)) == \
        ["broken.mp4", "broken.mp4", "good.mp4"]
