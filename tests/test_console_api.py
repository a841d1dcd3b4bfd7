"""The console's API without a browser: both index shapes read by one accessor, pages of uploads that
cost one listing page however many objects there are, and, against a local cloud, answers that carry
no credential or secret and a read-only console that refuses uploads."""
from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from snapshot_pipeline.console import ConsoleApi, ConsoleConfig, ConsoleServer, UrlSigner
from snapshot_pipeline.console.results import profile_results, result_view, storyboard_vtt
from snapshot_pipeline.domain import ObjectInfo, OssLocation
from snapshot_pipeline.index import parse_vtt
from snapshot_pipeline.settings import Settings
from tests.conftest import ROOT
from tests.support import http_call, wait_until

STILL = {"index": 1, "bucket": "media", "key": "snapshots/media/a.mp4/v/00001.jpg", "url": "u", "time": 2.0}
JOB = {"id": "j1", "status": "Success", "type": "Normal"}
V1 = {"schema": "snapshot-index/1", "source": {"bucket": "media", "key": "a.mp4", "etag": "E"}, "job": JOB,
      "snapshots": [STILL], "generated_at": "2026-12-01T00:00:00Z"}
BOARD_KEY = "snapshots/media/a.mp4/v/storyboard-player.json"
SHEET = "snapshots/media/a.mp4/v/sprite-00001.jpg"
V2 = {"schema": "snapshot-index/2", "source": V1["source"], "generated_at": "2026-12-01T00:00:00Z",
      "profiles": {"poster": {"job": JOB, "snapshots": [STILL]},
                   "storyboard": {"job": dict(JOB, id="j2", type="Sprite"), "snapshots": [dict(STILL, key=SHEET)],
                                  "sprite": {"tiles": []},
                                  "player": {"json": {"key": BOARD_KEY, "url": None}}}}}
BOARD = {"images": [{"key": SHEET}], "tile_width": 80, "tile_height": 60,
         "tiles": [{"start": 0.0, "end": 1.0, "x": 0, "y": 0, "image": 0},
                   {"start": 1.0, "end": 2.0, "x": 80, "y": 0, "image": 0}]}


def sign(bucket: str, key: str) -> str:
    return f"https://signed.example/{bucket}/{key}?Signature=s"


def test_one_accessor_reads_both_index_shapes() -> None:
    assert [name for name, _ in profile_results(V1)] == ["default"]
    assert [name for name, _ in profile_results(V2)] == ["poster", "storyboard"]
    assert profile_results(None) == [] and profile_results({"schema": "snapshot-index/2", "profiles": {}}) == []
    views = [result_view(name, result, sign, f"/vtt/{name}") for name, result in profile_results(V2)]
    assert views[0]["stills"][0] == {"index": 1, "key": STILL["key"], "time": 2.0, "url": sign("media", STILL["key"])}
    assert views[0]["storyboard_vtt"] is None  # stills: no storyboard
    assert views[1]["sheets"] and not views[1]["stills"] and views[1]["storyboard_vtt"] == "/vtt/storyboard"


def test_the_storyboard_vtt_names_signed_images_with_the_boards_tiles() -> None:
    result = V2["profiles"]["storyboard"]
    vtt = storyboard_vtt(result, {BOARD_KEY: BOARD}.get, lambda key: sign("media", key))
    assert vtt is not None
    cues = parse_vtt(vtt.decode())
    assert [(c["start"], c["end"], c["xywh"]) for c in cues] == [(0.0, 1.0, [0, 0, 80, 60]),
                                                                  (1.0, 2.0, [80, 0, 80, 60])]
    assert {c["image"] for c in cues} == {sign("media", SHEET)}
    assert storyboard_vtt(V2["profiles"]["poster"], {}.get, str) is None


class ListingStore:
    """An OSS with ``n`` videos and nothing written by the pipeline; counts the listed objects it yields."""

    def __init__(self, n: int):
        self.keys = [f"uploads/v{i:05d}.mp4" for i in range(n)]
        self.yielded = 0
        self.page_sizes: list[int] = []  # what each listing of the uploads asked OSS for (max-keys)
        self.reads: Counter[str] = Counter()

    def list(self, bucket: str, prefix: str, *, page_size: int = 1000, start_after: str = "") -> Iterator[ObjectInfo]:
        if prefix.startswith("uploads/"):
            self.page_sizes.append(page_size)
        for key in self.keys:
            if key.startswith(prefix) and key > start_after:
                self.yielded += 1
                yield ObjectInfo(key, 100, "ETAG", 1.8e9)

    def get_json(self, bucket: str, key: str) -> Any:
        self.reads[key] += 1
        return None

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        return ObjectInfo(key, 100, "ETAG", 1.8e9) if key in self.keys else None

    def list_folders(self, bucket: str, prefix: str) -> Iterator[str]:
        return iter(())


def _api(store: Any, allow_upload: bool = False) -> ConsoleApi:
    settings = Settings.from_env({"REGION": "cn-hangzhou", "SNAPSHOT_TEMPLATE_ID": "t", "OSS_ENDPOINT": "http://x"})
    return ConsoleApi(settings, lambda: (None, store), sign,  # type: ignore[arg-type]
                      ConsoleConfig(OssLocation("media", "uploads/"), allow_upload))


def test_a_page_of_10000_uploads_reads_one_page_of_the_listing() -> None:
    store = ListingStore(10_000)
    api = _api(store)
    seen: list[str] = []
    after = ""
    for _ in range(3):
        before = store.yielded
        page = api.uploads(after=after, limit=25)
        assert store.yielded - before <= 26  # the page and the one object that says another page follows
        assert {item["state"] for item in page["items"]} == {"missing"}
        seen += [item["key"] for item in page["items"]]
        after = page["next"]
    assert seen == store.keys[:75]  # pages follow each other without a gap or a repeat
    assert max(store.page_sizes) <= 26  # nor does OSS send more in one listing page
    found = api.uploads(query="v01234")
    assert [item["key"] for item in found["items"]] == ["uploads/v01234.mp4"] and found["next"] is None


def test_a_video_page_reads_each_object_once() -> None:
    store = ListingStore(3)
    page = _api(store).video("uploads/v00001.mp4")
    assert page["state"] == "missing" and store.reads and max(store.reads.values()) == 1, store.reads


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    stills = {"Type": "Normal", "FrameType": "intra", "Time": 0, "Count": 3, "Interval": 1}
    options = LocalCloudOptions(bucket=f"console-api-{secrets.token_hex(4)}", template_config=stills,
                                webhook_url="http://127.0.0.1:9/hook")
    with LocalCloud(options) as running:
        running.start_console()
        yield running


def _get(url: str) -> tuple[int, bytes]:
    return http_call(url, timeout=30)


def test_no_answer_carries_a_credential_or_secret(cloud: LocalCloud, small_video: bytes) -> None:
    assert cloud.console is not None
    base = cloud.console.url
    upload = urllib.request.Request(base + "api/upload?name=plain.mp4", data=small_video, method="POST")
    assert json.load(urllib.request.urlopen(upload, timeout=60))["key"] == "uploads/plain.mp4"
    video = wait_until(lambda: (doc := json.loads(_get(base + "api/video?key=uploads/plain.mp4")[1]))["state"]
                       == "indexed" and doc, "the console showing the upload indexed")
    assert [s["time"] for s in video["results"][0]["stills"]] == [0.0, 1.0, 2.0]
    assert _get(base + "api/storyboard.vtt?key=uploads/plain.mp4&profile=default")[0] == 404  # stills only
    answers = [_get(base + path)[1] for path in (
        "", "video?key=uploads/plain.mp4", "static/app.js", "static/app.css", "api/about", "api/uploads",
        "api/video?key=uploads/plain.mp4")]
    for secret in (cloud.access_key_secret, cloud.callback_auth_key, cloud.webhook_secret):
        assert not any(secret.encode() in body for body in answers)


def test_a_read_only_console_refuses_uploads_and_keys_outside_its_prefix(cloud: LocalCloud) -> None:
    assert cloud.oss is not None
    ice, store = cloud.ice_adapter(), cloud.store()
    api = ConsoleApi(cloud.settings(), lambda: (ice, store), UrlSigner(store),
                     ConsoleConfig(OssLocation(cloud.options.bucket, "uploads/")))
    server = ConsoleServer(api).start()
    try:
        refused = urllib.request.Request(server.url + "api/upload?name=x.mp4", data=b"video", method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(refused, timeout=30)
        assert caught.value.code == 403 and not cloud.bucket().object_exists("uploads/x.mp4")
        assert json.loads(_get(server.url + "api/about")[1])["allow_upload"] is False
        assert _get(server.url + "api/video?key=snapshots/_claims/x")[0] == 404
        assert _get(server.url + "static/../api.py")[0] == 404
    finally:
        server.stop()


def test_snapshots_console_serves_read_only_with_the_operators_credentials(cloud: LocalCloud) -> None:
    """The production path: settings and credentials from the environment, as an operator runs it."""
    env = {**os.environ, **cloud.function_env(), "ALIBABA_CLOUD_ACCESS_KEY_ID": cloud.access_key_id,
           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": cloud.access_key_secret,
           "PYTHONFAULTHANDLER": "1"}  # a console that does not stop shows where it is stuck (SIGABRT below)
    process = subprocess.Popen([sys.executable, "-m", "snapshot_pipeline.cli", "--json", "console",
                                f"oss://{cloud.options.bucket}/uploads/"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        started = json.loads("".join(iter(process.stdout.readline, "}\n")) + "}")
        assert started["console_url"].startswith("http://127.0.0.1:") and started["allow_upload"] is False
        assert json.loads(_get(started["console_url"] + "api/about")[1])["allow_upload"] is False
        assert _get(started["console_url"] + "api/uploads")[0] == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=30)  # read to the end: a full pipe must not stop it
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack
            out, err = process.communicate(timeout=30)
            raise AssertionError(f"the console did not stop within 30 s of Ctrl-C; its threads:\n{err}") from None
    assert process.returncode == 0, err


def test_requests_from_elsewhere_are_refused(cloud: LocalCloud) -> None:
    """A page of another site that rebinds its name to 127.0.0.1 sends its own Host; its forms, their Origin."""
    assert cloud.console is not None
    rebound = urllib.request.Request(cloud.console.url + "api/uploads", headers={"Host": "attacker.example"})
    forged = urllib.request.Request(cloud.console.url + "api/upload?name=forged.mp4", data=b"video", method="POST",
                                    headers={"Origin": "https://attacker.example"})
    for request in (rebound, forged):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code == 403
    assert not cloud.bucket().object_exists("uploads/forged.mp4")


def test_an_upload_without_a_valid_length_is_refused_before_its_body_is_read(cloud: LocalCloud) -> None:
    assert cloud.console is not None
    port = urlsplit(cloud.console.url).port
    for length in ("-1", "many"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.putrequest("POST", "/api/upload?name=endless.mp4")
            connection.putheader("Content-Length", length)
            connection.endheaders(b"video")  # the connection stays open: a read to its end never returns
            assert connection.getresponse().status == 411
        finally:
            connection.close()
    assert not cloud.bucket().object_exists("uploads/endless.mp4")


def test_a_deleted_video_leaves_the_uploads_for_the_deleted_list(cloud: LocalCloud, small_video: bytes) -> None:
    assert cloud.console is not None
    base, key = cloud.console.url, "uploads/gone/short-lived.mp4"
    cloud.bucket().put_object(key, small_video)
    cloud.wait_for_index(key)
    cloud.bucket().delete_object(key)
    wait_until(lambda: "deleted" in cloud.wait_for_index(key), "the tombstone")
    assert json.loads(_get(base + "api/uploads?q=gone/")[1])["items"] == []
    gone = json.loads(_get(base + "api/gone?q=gone/")[1])
    assert [(row["key"], row["state"]) for row in gone["items"]] == [(key, "deleted")] and gone["next"] is None
    assert json.loads(_get(base + "api/video?key=" + key)[1])["state"] == "deleted"


def test_localcloud_up_names_its_console_in_the_json_line(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "localcloud", "up"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True,
                               env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                    "SNAPSHOTS_LOCAL_STATE": str(tmp_path / "state.json")})
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        status, page = _get(info["console_url"])
        assert status == 200 and b"/static/plyr/plyr.min.js" in page
        assert json.loads(_get(info["console_url"] + "api/about")[1]) == {
            "bucket": info["bucket"], "prefix": "uploads/", "allow_upload": True, "page_size": 25}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
