"""Alibaba Cloud's official ICE snapshot-job sample against the local cloud, with the SDK version it
pins (``alibabacloud_ice20201109==1.3.11``) and with today's pin (pyproject.toml: 6.20.2), each in its
own interpreter: template created, job Success, job listed, 10 URLs.

How the sample is carried: it is published on the documentation site (``SAMPLE_PAGE``) under the
site's terms, not an open-source licence, so it is not committed. The test reads it from the file
``$ICE_OFFICIAL_SAMPLE``, else from the cache ``.localcloud/official-sample/sample.py``, else
downloads the page once and caches the page's Python block that pins 1.3.11; with none of these
(offline, nothing cached) that test skips and says how to provide it. It is run with exactly the text
substitutions in :func:`localize`: its endpoint and protocol pointed at the local ICE, and a real
MediaId in place of the placeholder IDs (``****...****``); credentials reach its default credential
chain through the environment, as the sample expects.

The sample's steps, written here (``official_sample/snapshot_job_steps.py``), always run: with both
SDK versions and with V3 and V2 signatures. The SDK 1.3.11 interpreter is a venv cached under
``.localcloud/venvs/`` (first run: ``pip install``, about a minute; marked slow).
"""
from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from importlib.metadata import version as version_of
from pathlib import Path

import oss2
import pytest

from localcloud.ice.server import LocalIce
from localcloud.media import make_test_video
from localcloud.oss import LocalOss
from tests.conftest import ROOT

SAMPLE_PAGE = "https://www.alibabacloud.com/help/en/ims/developer-reference/screenshot-task-1"
SAMPLE_PIN = "alibabacloud_ice20201109==1.3.11"
CACHE = ROOT / ".localcloud"
STEPS = Path(__file__).parent / "official_sample" / "snapshot_job_steps.py"
REGION = "cn-shanghai"  # the sample's region
AK, SK = "LTAIofficialSample01", "official-sample-secret-0123456789"
MEDIA_BUCKET, OUT_BUCKET = "official-sample-media", "official-sample-out"
URL_COUNT = 10  # the sample's template asks for Count 10
PLACEHOLDER_ID = re.compile(r"\*{2,}[0-9A-Za-z]+\*{2,}")
TODAYS_PIN = version_of("alibabacloud_ice20201109")  # pyproject's, in this interpreter
SDK_VERSIONS = [pytest.param("1.3.11", marks=pytest.mark.slow), TODAYS_PIN]


@pytest.fixture(scope="module")
def oss():
    server = LocalOss(access_key_id=AK, access_key_secret=SK, host="127.0.0.1").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ice(oss):
    server = LocalIce(access_key_id=AK, access_key_secret=SK, oss_endpoint=oss.endpoint, region=REGION).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def media_id(oss, ice) -> str:
    """A registered media asset: a 12 s clip (ten stills fit it) in this module's bucket."""
    for name in (MEDIA_BUCKET, OUT_BUCKET):
        oss.create_bucket(name)
    bucket = oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, MEDIA_BUCKET)
    bucket.put_object("library/sample.mp4", make_test_video(duration_s=12.0, fps=5, width=96, height=64, gop_s=1.0))
    return ice.model.register_media_info(input_url=f"oss://{MEDIA_BUCKET}/library/sample.mp4").media_id


def sdk_python(version: str) -> str:
    """An interpreter with ``alibabacloud_ice20201109==version`` (and the credentials client)."""
    if version == TODAYS_PIN:
        return sys.executable
    venv = CACHE / "venvs" / f"ice-{version}"
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
        pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              f"alibabacloud_ice20201109=={version}", "alibabacloud_credentials"],
                             capture_output=True, text=True, timeout=600)
        if pip.returncode != 0:
            pytest.skip(f"could not install alibabacloud_ice20201109=={version}: {pip.stderr.strip()[-300:]}")
        (venv / ".installed").touch()
    return str(python)


def run_script(python: str, script: Path, home: Path, **env: str) -> str:
    """Run ``script`` with ``home`` as HOME; its standard output. Only the credentials and ``env`` reach it."""
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONIOENCODING": "utf-8",
                   "ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK, **env}
    done = subprocess.run([python, str(script)], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def newest_job_on(ice: LocalIce, media_id: str):
    """The newest job whose Input is the media asset, as the local ICE holds it."""
    jobs, _ = ice.model.list_jobs(page_size=100)
    return next(job for job in jobs if (job.input.type, job.input.media) == ("Media", media_id))


@pytest.mark.parametrize("signature", ["v3", "v2"])
@pytest.mark.parametrize("version", SDK_VERSIONS)
def test_the_samples_steps(ice, media_id, version, signature, tmp_path):
    printed = run_script(sdk_python(version), STEPS, tmp_path, ICE_ENDPOINT=ice.endpoint, ICE_PROTOCOL="http",
                         MEDIA_ID=media_id, OUTPUT_MEDIA=f"oss://{OUT_BUCKET}/sample/{uuid.uuid4().hex}/output-{{Count}}.jpg",
                         **({"SIGNATURE_ALGORITHM": "v2"} if signature == "v2" else {}))
    lines = printed.splitlines()
    job = newest_job_on(ice, media_id)
    assert lines[:5] == [lines[0], f"job id: {job.job_id}", "job status: Success", "job listed: True",
                         f"snapshot urls: {URL_COUNT}"] and lines[0].startswith("template id: "), printed
    assert len(lines[5:]) == URL_COUNT and all(OUT_BUCKET in url for url in lines[5:]), printed
    assert (job.status, len(job.snapshot_keys)) == ("Success", URL_COUNT)


def official_sample() -> str | None:
    """The official sample's text (``$ICE_OFFICIAL_SAMPLE``, the cache, or the page), or None."""
    if os.environ.get("ICE_OFFICIAL_SAMPLE"):
        return Path(os.environ["ICE_OFFICIAL_SAMPLE"]).read_text(encoding="utf-8")
    cached = CACHE / "official-sample" / "sample.py"
    if not cached.exists():
        try:
            with urllib.request.urlopen(SAMPLE_PAGE, timeout=20) as response:
                page = response.read().decode("utf-8", errors="replace")
        except OSError:
            return None
        blocks = [html.unescape(re.sub(r"<[^>]+>", "", b)) for b in re.findall(r"<pre[^>]*>(.*?)</pre>", page, re.S)]
        sample = next((b for b in blocks if SAMPLE_PIN in b), None)
        if sample is None:
            return None
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(sample, encoding="utf-8")
    return cached.read_text(encoding="utf-8")


def localize(sample: str, *, endpoint: str, media_id: str) -> str:
    """The sample with its endpoint and protocol pointed at the local ICE and ``media_id`` in place of
    its placeholder IDs: the only changes made to it."""
    pointed, count = re.subn(r"^(\s*)(\w+)\.endpoint\s*=.*$",
                             lambda m: f"{m[1]}{m[2]}.endpoint = {endpoint!r}\n{m[1]}{m[2]}.protocol = 'http'",
                             sample, flags=re.M)
    assert count >= 1, "the sample sets no endpoint: the substitution no longer applies"
    return PLACEHOLDER_ID.sub(media_id, pointed)


@pytest.mark.parametrize("version", SDK_VERSIONS)
def test_the_official_sample(oss, ice, media_id, version, tmp_path):
    sample = official_sample()
    if sample is None:
        pytest.skip(f"the official sample is not at hand: save the Python block of {SAMPLE_PAGE} (the one "
                    f"with {SAMPLE_PIN}) and set ICE_OFFICIAL_SAMPLE to its path, or run once online")
    for bucket in set(re.findall(r"oss://([a-z0-9-]{3,63})/", sample) +
                      re.findall(r"https?://([a-z0-9-]{3,63})\.oss-", sample)):
        oss.create_bucket(bucket)  # the sample's own output bucket
    script = tmp_path / "sample.py"
    script.write_text(localize(sample, endpoint=ice.endpoint, media_id=media_id), encoding="utf-8")
    before = {job.job_id for job in ice.model.list_jobs(page_size=100)[0]}
    run_script(sdk_python(version), script, tmp_path)
    job = newest_job_on(ice, media_id)
    assert job.job_id not in before and ice.wait_idle(60)
    job = ice.model.get_job(job.job_id)
    assert (job.status, len(job.snapshot_keys)) == ("Success", URL_COUNT)


def test_localize_changes_only_the_endpoint_protocol_and_placeholder_ids():
    lines = ["config = Config(credential = cred)", "        config.endpoint = 'ice.' + region + '.aliyuncs.com'",
             "request.input = Input(type='Media', media='****20b48fb04483915d4f2cd8ac****')",
             "request.output = Output(type='OSS', media='oss://test-bucket/output-{Count}.jpg')"]
    localized = localize("\n".join(lines), endpoint="127.0.0.1:9", media_id="m" * 32).splitlines()
    assert localized == [lines[0], "        config.endpoint = '127.0.0.1:9'", "        config.protocol = 'http'",
                         f"request.input = Input(type='Media', media='{'m' * 32}')", lines[3]]
