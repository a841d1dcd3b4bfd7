"""Helpers the tests share: event records as OSS sends them, job counting, submit logs, index validation,
waiting on a condition."""
from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import jsonschema

from tests.conftest import ROOT, load_event

T = TypeVar("T")

# How long a test waits for the pipeline: far beyond what it takes on a loaded machine, because
# a wait that is met returns at once and only a broken pipeline ever waits this long.
PIPELINE_TIMEOUT_S = 120.0

INDEX_SCHEMAS = {f"snapshot-index/{n}": json.loads(
    (ROOT / "shared" / "snapshot_pipeline" / "schemas" / f"snapshot-index-{n}.json").read_text()) for n in (1, 2)}


def assert_valid_index(doc: dict) -> dict:
    """``doc`` against the schema its ``schema`` names (an index written before profiles is /1)."""
    jsonschema.validate(doc, INDEX_SCHEMAS[doc["schema"]])
    return doc


def oss_record(bucket: str, key: str, etag: str, size: int, event_name: str = "ObjectCreated:PutObject") -> dict:
    """One native OSS-trigger record, shaped like events/oss-put.json."""
    record = copy.deepcopy(load_event("oss-put.json")["events"][0])
    record["eventName"] = event_name
    record["oss"]["bucket"]["name"] = bucket
    record["oss"]["object"].update({"key": key, "eTag": etag, "size": size, "deltaSize": size})
    return record


def oss_event(*records: dict) -> bytes:
    return json.dumps({"events": list(records)}).encode()


def upload(cloud, key: str, data: bytes) -> dict:
    """Put an object without going through the trigger's prefix; return its OSS record."""
    result = cloud.bucket().put_object(key, data)
    return oss_record(cloud.options.bucket, key, result.etag.upper(), len(data))


def upload_of(cloud, record: dict):
    """The upload version an OSS record names, as the pipeline sees it (HEAD gives its Last-Modified)."""
    from snapshot_pipeline.domain import Upload

    bucket, obj = record["oss"]["bucket"]["name"], record["oss"]["object"]
    info = cloud.store().head(bucket, obj["key"])
    assert info is not None and info.etag == obj["eTag"], f"oss://{bucket}/{obj['key']} is not the version uploaded"
    return Upload.of_object(bucket, info)


def jobs_for(cloud, key: str) -> list:
    """Every ICE job whose input is ``key`` in the cloud's bucket."""
    ice, token, jobs = cloud.ice_adapter(), None, []
    while True:
        page = ice.list_snapshot_jobs(page_size=100, next_page_token=token)
        jobs += [j for j in page.jobs if j.input and j.input.key == key and j.input.bucket == cloud.options.bucket]
        token = page.next_page_token
        if not token:
            return jobs


def submit_records(cloud, key: str) -> list[dict]:
    """The submit function's ``submit.record`` log records for ``key``, oldest first."""
    records = []
    for line in list(cloud.fc.pools["submit"].logs):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if doc.get("event") == "submit.record" and doc.get("key") == key:
            records.append(doc)
    return records


class VirtualTime:
    """A clock that only moves when the code under test sleeps: pass ``clock`` and ``sleep`` to it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def wait_until(condition: Callable[[], T], what: str, timeout: float = PIPELINE_TIMEOUT_S) -> T:
    """Poll ``condition`` until it returns something truthy, and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)
    return result


def version_of(cloud, key: str, bucket: str | None = None) -> str:
    """The version name the pipeline gives the object now at ``key`` (its outputs' folder)."""
    from snapshot_pipeline.domain import Upload

    b = bucket or cloud.options.bucket
    info = cloud.store().head(b, key)
    assert info is not None, f"oss://{b}/{key} does not exist"
    return Upload.of_object(b, info).version


# --- what a reader sees of versions: flat-colour clips, their snapshots' pixels, each version's outputs ---
def coloured_video(rgb: tuple[int, int, int], width: int = 64, height: int = 48) -> bytes:
    """A one-second H.264 clip of one flat colour, a keyframe every 0.2 s: any snapshot of it shows
    which video it came from (its size and mean colour)."""
    import io

    import av
    import numpy as np

    out, picture = io.BytesIO(), np.full((height, width, 3), rgb, dtype=np.uint8)
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "x264-params": "keyint=2:min-keyint=2:scenecut=0"}
        for n in range(10):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
            frame.pts = n
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def snapshot_looks(cloud, index: dict) -> list[tuple[tuple[int, int], tuple[int, ...]]]:
    """(size, mean RGB) of every snapshot an index lists, read from OSS and decoded."""
    import io

    import numpy as np
    from PIL import Image

    looks = []
    for snap in default_result(index)["snapshots"]:
        image = Image.open(io.BytesIO(cloud.bucket(snap["bucket"]).get_object(snap["key"]).read())).convert("RGB")
        mean = np.asarray(image, dtype=np.float32).reshape(-1, 3).mean(axis=0)
        looks.append((image.size, tuple(int(c) for c in mean)))
    return looks


def assert_snapshots_show(cloud, index: dict, size: tuple[int, int], rgb: tuple[int, int, int]) -> None:
    """Every snapshot of ``index`` (at least one) is a ``size`` picture of the flat colour ``rgb``
    (within what H.264 and JPEG change of it)."""
    looks = snapshot_looks(cloud, index)
    assert looks, f"the index lists no snapshots: {index}"
    for got_size, mean in looks:
        near = max(abs(got - want) for got, want in zip(mean, rgb, strict=True)) <= 30
        assert got_size == size and near, f"a snapshot is {got_size} of mean colour {mean}, not {size} of {rgb}"


def output_versions(cloud, key: str, bucket: str | None = None) -> dict[str, int]:
    """Version folder -> number of output objects in it, for the source ``oss://bucket/key`` (the
    cloud's bucket by default); the index and the claims are not outputs."""
    from snapshot_pipeline.domain import OssLocation
    from snapshot_pipeline.layout import object_dir, version_of_dir_entry

    folder = object_dir("snapshots/", OssLocation(bucket or cloud.options.bucket, key))
    versions: dict[str, int] = {}
    for obj in cloud.store().list(cloud.options.bucket, folder):
        version = version_of_dir_entry(folder, obj.key)
        if version is not None:
            versions[version] = versions.get(version, 0) + 1
    return versions

def post_signed_callback(cloud, body: bytes) -> tuple[int, dict]:
    """POST ``body`` to the callback function with a valid signature made now, as ICE (or anyone
    holding the AuthKey) would; the HTTP status and the JSON answer."""
    import urllib.error
    import urllib.request

    from snapshot_pipeline.callback import signature

    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-ICE-TIMESTAMP": ts,
               "X-ICE-SIGNATURE": signature(cloud.callback_url, ts, cloud.callback_auth_key)}
    request = urllib.request.Request(cloud.callback_url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def function_log(cloud, function: str, event: str) -> list[dict]:
    """The JSON log records named ``event`` that ``function``'s instances wrote, oldest first."""
    records = []
    for line in list(cloud.fc.pools[function].logs):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict) and doc.get("event") == event:
            records.append(doc)
    return records


def cli_runner(cloud, state_file, monkeypatch, capsys) -> Callable[..., tuple[int, str]]:
    """``run(*argv)`` -> (exit code, stdout): the operator CLI against ``cloud``, whose state (what
    ``python -m localcloud up`` records) is written to ``state_file``."""
    from snapshot_pipeline import cli
    from snapshot_pipeline.cli import local_state

    local_state.write_local_state(state_file, cloud.describe())
    monkeypatch.setenv(local_state.LOCAL_STATE_ENV, str(state_file))

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()  # what the test printed before (library log lines) is not the CLI's
        code = cli.main(list(argv))
        return code, capsys.readouterr().out

    return run


def default_result(index: dict) -> dict:
    """What an index shows for the profile ``default`` (today's single-template settings)."""
    return index["profiles"]["default"]


def http_call(url: str, method: str = "GET", body: bytes | None = None,
              timeout: float = PIPELINE_TIMEOUT_S) -> tuple[int, bytes]:
    """(HTTP status, body) of one request: an error status is an answer here, not an exception."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def admin_json(url: str, method: str = "GET", payload: Any = None) -> tuple[int, Any]:
    """One call of a local service's admin endpoint: (HTTP status, decoded JSON answer)."""
    status, body = http_call(url, method, json.dumps(payload).encode() if payload is not None else None)
    return status, json.loads(body)


class MemoryStore:
    """The ObjectStore operations the unit tests' publishers and outboxes use, on a dict (ETag: the MD5)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_json(self, bucket: str, key: str, doc) -> None:
        self.objects[(bucket, key)] = json.dumps(doc).encode()

    def create_json(self, bucket: str, key: str, doc) -> bool:
        if (bucket, key) in self.objects:
            return False
        self.put_json(bucket, key, doc)
        return True

    def get_json(self, bucket: str, key: str):
        data = self.objects.get((bucket, key))
        return None if data is None else json.loads(data)

    def list(self, bucket: str, prefix: str, **_):
        from snapshot_pipeline.domain import ObjectInfo

        for (b, key), data in sorted(self.objects.items()):
            if b == bucket and key.startswith(prefix):
                yield ObjectInfo(key, len(data), hashlib.md5(data).hexdigest(), 0.0)

    def delete_many(self, bucket: str, keys) -> None:
        for key in keys:
            self.objects.pop((bucket, key), None)

    def keys(self, pattern: str) -> list[str]:
        return [key for _, key in self.objects if fnmatch.fnmatch(key, pattern)]
