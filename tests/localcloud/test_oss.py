"""LocalOss against the unmodified oss2 SDK: real HTTP, real signatures, no mocks.

Each test gets its own bucket on one server started for the module; notifications are recorded by
one listener subscribed for the whole module and filtered by bucket.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import logging
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate

import oss2
import pytest

from localcloud.oss import LocalOss

AK, SK = "LTAI-local-test-key", "local-test-secret"
ACCOUNT = "1000000000000001"
REGION = "cn-hangzhou"
SPECIAL_KEYS = ["dir/a b+c.mp4", "ü/视频 1.mov", "100%/x&y=z?.txt", "trailing/"]


class EventRecorder:
    """Collects notification records; tests wait for them (they arrive from a dispatcher thread)."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self._cond = threading.Condition()

    def __call__(self, record: dict) -> None:
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()

    def for_bucket(self, bucket: str) -> list[dict]:
        with self._cond:
            return [r for r in self.records if r["oss"]["bucket"]["name"] == bucket]

    def wait_for(self, bucket: str, key: str, timeout: float = 5.0, count: int = 1) -> list[dict]:
        """Block until ``count`` events for bucket/key arrived; return all events of that bucket so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(r["oss"]["object"]["key"] == key for r in self.for_bucket(bucket)) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no notification for {bucket}/{key}; got {self.for_bucket(bucket)}"
                self._cond.wait(remaining)
            return self.for_bucket(bucket)


@pytest.fixture(scope="module")
def server():
    with LocalOss(access_key_id=AK, access_key_secret=SK, region=REGION, account_id=ACCOUNT) as oss:
        yield oss


@pytest.fixture(scope="module")
def events(server):
    recorder = EventRecorder()
    server.subscribe(recorder)
    return recorder


@pytest.fixture
def bucket(server, events) -> oss2.Bucket:
    name = f"test-{uuid.uuid4().hex[:12]}"
    server.create_bucket(name)
    return oss2.Bucket(oss2.Auth(AK, SK), server.endpoint, name)


def error_of(resp_body: bytes) -> dict:
    return {child.tag: child.text for child in ElementTree.fromstring(resp_body)}


def upper_md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


# ---------------------------------------------------------------------------- objects


def test_put_get_head_roundtrip_with_user_metadata(bucket):
    data = b"frame data " * 100
    put = bucket.put_object("v/clip.mp4", data, headers={"x-oss-meta-source": "camera-7",
                                                         "Content-Type": "video/mp4"})
    assert put.etag == upper_md5(data)  # OSS ETags are upper-case hex; oss2 strips the quotes
    assert re.fullmatch(r"[0-9A-F]{24}", put.request_id)

    got = bucket.get_object("v/clip.mp4")
    assert got.read() == data
    assert got.headers["x-oss-meta-source"] == "camera-7"
    assert got.object_type == "Normal"
    assert got.content_type == "video/mp4"

    head = bucket.head_object("v/clip.mp4")
    assert head.content_length == len(data)
    assert head.etag == put.etag
    assert head.headers["x-oss-meta-source"] == "camera-7"
    assert not any(name.lower().startswith("x-amz") for name in head.headers)

    meta = bucket.get_object_meta("v/clip.mp4")
    assert (meta.content_length, meta.etag) == (len(data), put.etag)


def test_range_reads(bucket):
    data = bytes(range(256)) * 4
    bucket.put_object("r.bin", data)
    assert bucket.get_object("r.bin", byte_range=(10, 19)).read() == data[10:20]
    tail = bucket.get_object("r.bin", headers={"Range": "bytes=1000-"})
    assert tail.status == 206
    assert tail.read() == data[1000:]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_special_keys_roundtrip_and_list(bucket, key):
    bucket.put_object(key, key.encode())
    assert bucket.get_object(key).read() == key.encode()
    assert [o.key for o in bucket.list_objects().object_list] == [key]
    assert [o.key for o in bucket.list_objects_v2().object_list] == [key]


def test_exists_and_not_found_errors(server, bucket):
    bucket.put_object("here", b"1")
    assert bucket.object_exists("here")
    assert not bucket.object_exists("missing")

    with pytest.raises(oss2.exceptions.NoSuchKey) as err:
        bucket.get_object("missing")
    assert err.value.status == 404
    assert err.value.request_id and err.value.details["RequestId"] == err.value.request_id

    # HEAD has no body: the error code travels base64-encoded in x-oss-err, as on OSS.
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.head_object("missing")

    nobucket = oss2.Bucket(oss2.Auth(AK, SK), server.endpoint, f"nope-{uuid.uuid4().hex[:8]}")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        nobucket.get_object("x")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        nobucket.object_exists("x")


def test_copy_keeps_metadata(bucket):
    src = "src/ü 1.mp4"
    bucket.put_object(src, b"payload", headers={"x-oss-meta-origin": "upload"})
    copied = bucket.copy_object(bucket.bucket_name, src, "dst/copy.mp4")
    assert copied.etag == upper_md5(b"payload")
    assert bucket.get_object("dst/copy.mp4").read() == b"payload"
    assert bucket.head_object("dst/copy.mp4").headers["x-oss-meta-origin"] == "upload"


def test_delete_and_batch_delete(bucket):
    keys = ["a", "b/c d", "ü%&"]
    for key in keys:
        bucket.put_object(key, b"x")
    bucket.put_object("single", b"x")
    bucket.delete_object("single")
    assert not bucket.object_exists("single")

    result = bucket.batch_delete_objects(keys)
    assert sorted(result.deleted_keys) == sorted(keys)
    assert bucket.list_objects_v2().object_list == []


# ---------------------------------------------------------------------------- listing


def test_list_v1_pages_keys_and_common_prefixes_together(bucket):
    for key in ["a/1", "a/2", "b/1", "c", "d/x/y", "e", "f"]:
        bucket.put_object(key, b"x")
    seen, marker, pages = [], "", 0
    while True:
        page = bucket.list_objects(delimiter="/", marker=marker, max_keys=2)
        seen += [o.key for o in page.object_list] + page.prefix_list
        pages += 1
        if not page.is_truncated:
            break
        assert page.next_marker == max([o.key for o in page.object_list] + page.prefix_list)
        marker = page.next_marker
    assert sorted(seen) == ["a/", "b/", "c", "d/", "e", "f"]  # each exactly once
    assert pages == 3

    under_a = bucket.list_objects(prefix="a/")
    assert [o.key for o in under_a.object_list] == ["a/1", "a/2"]
    assert under_a.object_list[0].type == "Normal"
    assert under_a.object_list[0].etag == upper_md5(b"x")


def test_list_v2_continuation_start_after_and_owner(bucket):
    keys = [f"k{i:02d}" for i in range(7)]
    for key in keys:
        bucket.put_object(key, b"x")
    seen, token, pages = [], "", 0
    while True:
        page = bucket.list_objects_v2(continuation_token=token, max_keys=3)
        seen += [o.key for o in page.object_list]
        pages += 1
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    assert (seen, pages) == (keys, 3)

    assert [o.key for o in bucket.list_objects_v2(start_after="k04").object_list] == ["k05", "k06"]
    assert bucket.list_objects_v2(max_keys=1).object_list[0].owner is None
    owner = bucket.list_objects_v2(max_keys=1, fetch_owner=True).object_list[0].owner
    assert owner.id == ACCOUNT


def test_iterators_over_more_than_1000_objects(bucket):
    keys = sorted(f"many/{i:04d}" for i in range(1001))  # one more than the largest page
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda k: bucket.put_object(k, b""), keys))
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="many/", max_keys=1000)] == keys
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="many/", max_keys=1000)] == keys
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="many/00", max_keys=7)] == keys[:100]
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="many/01", max_keys=9)] == keys[100:200]


# ---------------------------------------------------------------------------- forbid-overwrite


def test_forbid_overwrite_rejects_existing_key(bucket):
    forbid = {"x-oss-forbid-overwrite": "true"}
    bucket.put_object("marker.json", b"first", headers=forbid)
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.put_object("marker.json", b"second", headers=forbid)
    assert (err.value.status, err.value.code) == (409, "FileAlreadyExists")
    assert bucket.get_object("marker.json").read() == b"first"
    bucket.put_object("marker.json", b"third")  # without the header, overwriting is allowed
    assert bucket.get_object("marker.json").read() == b"third"
    with pytest.raises(oss2.exceptions.ServerError, match="FileAlreadyExists"):
        bucket.copy_object(bucket.bucket_name, "marker.json", "marker.json", headers=forbid)


def test_forbid_overwrite_is_atomic_under_concurrency(bucket):
    """Racing forbid-overwrite PUTs of one key: exactly one wins, the others get FileAlreadyExists.

    Without the server's per-key lock, about a third of the rounds have two winners once the GIL
    switches threads often enough (measured), so 20 rounds catch a non-atomic check-then-write.
    """
    contenders, rounds = 8, 20
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for round_no in range(rounds):
            key = f"race/{round_no}"
            barrier = threading.Barrier(contenders)

            def attempt(i: int) -> str:
                barrier.wait()
                try:
                    bucket.put_object(key, f"writer-{i}".encode(), headers={"x-oss-forbid-overwrite": "true"})
                    return f"writer-{i}"
                except oss2.exceptions.ServerError as err:
                    assert err.code == "FileAlreadyExists", err
                    return ""

            with ThreadPoolExecutor(contenders) as pool:
                winners = [w for w in pool.map(attempt, range(contenders)) if w]
            assert len(winners) == 1, f"round {round_no}: {winners}"
            assert bucket.get_object(key).read() == winners[0].encode()
    finally:
        sys.setswitchinterval(switch_interval)


# ---------------------------------------------------------------------------- multipart


def test_multipart_upload_and_list_parts(bucket):
    part1, part2 = b"a" * (100 * 1024), b"tail"
    upload_id = bucket.init_multipart_upload("big.mp4").upload_id
    etag1 = bucket.upload_part("big.mp4", upload_id, 1, part1).etag
    etag2 = bucket.upload_part("big.mp4", upload_id, 2, part2).etag
    assert etag1 == upper_md5(part1)

    parts = bucket.list_parts("big.mp4", upload_id).parts
    assert [(p.part_number, p.etag, p.size) for p in parts] == [(1, etag1, len(part1)), (2, etag2, 4)]

    done = bucket.complete_multipart_upload(
        "big.mp4", upload_id, [oss2.models.PartInfo(1, etag1), oss2.models.PartInfo(2, etag2)])
    assert re.fullmatch(r"[0-9A-F]{32}-2", done.etag)
    assert bucket.get_object("big.mp4").read() == part1 + part2
    assert bucket.head_object("big.mp4").object_type == "Multipart"


def test_multipart_enforces_oss_minimum_part_size(bucket):
    upload_id = bucket.init_multipart_upload("small.bin").upload_id
    parts = [oss2.models.PartInfo(n, bucket.upload_part("small.bin", upload_id, n, b"x" * 1000).etag)
             for n in (1, 2)]
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.complete_multipart_upload("small.bin", upload_id, parts)
    assert err.value.code == "EntityTooSmall"


def test_resumable_upload_in_parts(bucket, tmp_path):
    data = bytes(range(256)) * 1300  # 332,800 bytes: 4 parts of 100 KB
    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    oss2.resumable_upload(bucket, "up/video.mp4", str(path), multipart_threshold=100 * 1024,
                          part_size=100 * 1024, num_threads=2,
                          store=oss2.ResumableStore(root=str(tmp_path)))
    assert bucket.get_object("up/video.mp4").read() == data
    assert bucket.head_object("up/video.mp4").object_type == "Multipart"


# ---------------------------------------------------------------------------- notifications


def test_put_notification_record_shape(bucket, events):
    key = "in/a b+ü.mp4"  # the record carries the raw key, not URL-encoded
    put = bucket.put_object(key, b"12345")
    record = events.wait_for(bucket.bucket_name, key)[-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record.pop("eventTime"))
    assert re.fullmatch(r"[0-9a-f]{40}", record["oss"].pop("ruleId"))
    assert record == {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {"arn": f"acs:oss:{REGION}:{ACCOUNT}:{bucket.bucket_name}",
                       "name": bucket.bucket_name, "ownerIdentity": ACCOUNT},
            "object": {"deltaSize": 5, "eTag": put.etag, "key": key, "size": 5},
            "ossSchemaVersion": "1.0",
        },
        "region": REGION,
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"requestId": put.request_id},
        "userIdentity": {"principalId": ACCOUNT},
    }

    bucket.put_object(key, b"12")  # overwrite: deltaSize is the change in size
    overwrite = events.wait_for(bucket.bucket_name, key, count=2)
    assert [(r["oss"]["object"]["size"], r["oss"]["object"]["deltaSize"]) for r in overwrite] == [(5, 5), (2, -3)]


def test_notifications_per_operation_and_none_for_parts(bucket, events):
    upload_id = bucket.init_multipart_upload("mp.mp4").upload_id
    etags = [bucket.upload_part("mp.mp4", upload_id, n, b"p" * (100 * 1024)).etag for n in (1, 2, 3)]
    bucket.complete_multipart_upload("mp.mp4", upload_id,
                                     [oss2.models.PartInfo(n, e) for n, e in zip((1, 2, 3), etags)])
    bucket.copy_object(bucket.bucket_name, "mp.mp4", "copy.mp4")
    with pytest.raises(oss2.exceptions.ServerError):
        bucket.put_object("copy.mp4", b"", headers={"x-oss-forbid-overwrite": "true"})
    bucket.put_object("last", b"")  # events are delivered in order: once this one is in, all are
    seen = [(r["eventName"], r["oss"]["object"]["key"]) for r in events.wait_for(bucket.bucket_name, "last")]
    assert seen == [
        ("ObjectCreated:CompleteMultipartUpload", "mp.mp4"),
        ("ObjectCreated:CopyObject", "copy.mp4"),
        ("ObjectCreated:PutObject", "last"),
    ]
    complete = events.for_bucket(bucket.bucket_name)[0]["oss"]["object"]
    assert complete["size"] == 3 * 100 * 1024 and complete["eTag"].endswith("-3")


def test_listener_can_read_the_object_and_a_failing_listener_is_isolated(caplog):
    with LocalOss(access_key_id=AK, access_key_secret=SK) as oss:
        name = f"notify-{uuid.uuid4().hex[:8]}"
        oss.create_bucket(name)
        bucket = oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, name)
        read_back: list[bytes] = []
        done = threading.Event()

        def failing(record: dict) -> None:
            raise RuntimeError("listener bug")

        def reader(record: dict) -> None:
            read_back.append(bucket.get_object(record["oss"]["object"]["key"]).read())
            done.set()

        oss.subscribe(failing)
        oss.subscribe(reader)
        with caplog.at_level(logging.ERROR, logger="localcloud.oss"):
            bucket.put_object("fresh.mp4", b"just written")
            assert done.wait(5)
            bucket.put_object("second", b"server still fine")
            assert bucket.get_object("second").read() == b"server still fine"
    assert read_back[0] == b"just written"
    assert "listener" in caplog.text and "listener bug" in caplog.text
    assert SK not in caplog.text


# ---------------------------------------------------------------------------- authentication


def test_signed_url_works_then_expires(bucket):
    bucket.put_object("s/clip 1.mp4", b"signed content")
    url = bucket.sign_url("GET", "s/clip 1.mp4", 60)
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"signed content"
        assert resp.headers["x-oss-request-id"]

    short = bucket.sign_url("GET", "s/clip 1.mp4", 1)
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(short)
    assert err.value.code == 403
    body = error_of(err.value.read())
    assert (body["Code"], body["Message"]) == ("AccessDenied", "Request has expired.")
    assert body["RequestId"] == err.value.headers["x-oss-request-id"]


def test_signed_url_is_bound_to_its_key_and_to_sts_tokens(server, bucket):
    bucket.put_object("one", b"1")
    bucket.put_object("two", b"2")
    tampered = bucket.sign_url("GET", "one", 60).replace("/one?", "/two?")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(tampered)
    assert (err.value.code, error_of(err.value.read())["Code"]) == (403, "SignatureDoesNotMatch")

    sts = oss2.Bucket(oss2.StsAuth(AK, SK, "sts-token-123"), server.endpoint, bucket.bucket_name)
    url = sts.sign_url("GET", "one", 60)
    assert "security-token=sts-token-123" in url
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"1"
    # The token is signed: changing it breaks the signature.
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url.replace("sts-token-123", "sts-token-999"))


def test_sts_auth_header_requests(server, bucket):
    sts = oss2.Bucket(oss2.StsAuth(AK, SK, "tok"), server.endpoint, bucket.bucket_name)
    sts.put_object("by-sts", b"ok", headers={"x-oss-meta-k": "v"})
    assert sts.get_object("by-sts").read() == b"ok"
    bad = oss2.Bucket(oss2.StsAuth(AK, "wrong", "tok"), server.endpoint, bucket.bucket_name)
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        bad.get_object("by-sts")


def test_wrong_secret_unknown_key_and_anonymous_are_rejected(server, bucket):
    bucket.put_object("private", b"secret stuff")
    name = bucket.bucket_name
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as err:
        oss2.Bucket(oss2.Auth(AK, "not-the-secret"), server.endpoint, name).get_object("private")
    assert err.value.status == 403
    assert err.value.details["StringToSign"].endswith(f"/{name}/private")  # helps debugging, as on OSS
    with pytest.raises(oss2.exceptions.ServerError) as err:
        oss2.Bucket(oss2.Auth("LTAI-unknown", SK), server.endpoint, name).put_object("x", b"")
    assert (err.value.status, err.value.code) == (403, "InvalidAccessKeyId")
    with pytest.raises(oss2.exceptions.AccessDenied):
        oss2.Bucket(oss2.AnonymousAuth(), server.endpoint, name).get_object("private")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object("x")  # nothing was written by the rejected PUT
    with pytest.raises(oss2.exceptions.ServerError) as err:
        oss2.Bucket(oss2.AuthV4(AK, SK), server.endpoint, name, region=REGION).get_object("private")
    assert (err.value.status, err.value.code) == (501, "NotImplemented")


def test_header_signature_rejects_a_skewed_date(server, bucket):
    """A raw request signed correctly but dated an hour ago: OSS answers RequestTimeTooSkewed."""
    date = formatdate(time.time() - 3600, usegmt=True)
    resource = f"/{bucket.bucket_name}/k"
    string_to_sign = f"GET\n\n\n{date}\n{resource}"
    signature = base64.b64encode(hmac.new(SK.encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()
    host = urllib.parse.urlsplit(server.endpoint).netloc
    conn = http.client.HTTPConnection(host, timeout=5)
    conn.request("GET", resource, headers={"Date": date, "Authorization": f"OSS {AK}:{signature}"})
    resp = conn.getresponse()
    assert resp.status == 403
    assert error_of(resp.read())["Code"] == "RequestTimeTooSkewed"
    conn.close()


# ---------------------------------------------------------------------------- lifecycle


def test_every_response_has_a_request_id(server, bucket):
    host = urllib.parse.urlsplit(server.endpoint).netloc
    for method, path in [("GET", f"/{bucket.bucket_name}/x"), ("HEAD", "/"), ("DELETE", "/b/k")]:
        conn = http.client.HTTPConnection(host, timeout=5)
        conn.request(method, path)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 403
        assert re.fullmatch(r"[0-9A-F]{24}", resp.getheader("x-oss-request-id"))
        conn.close()


def test_start_picks_a_free_port_and_stop_is_idempotent():
    oss = LocalOss(access_key_id=AK, access_key_secret=SK).start()
    port = int(oss.endpoint.rsplit(":", 1)[1])
    assert port > 0 and SK not in repr(oss)
    oss.stop()
    oss.stop()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


def test_oss_only_apis_and_bad_bucket_names_fail_clearly(server, bucket):
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.append_object("log.txt", 0, b"line")
    assert (err.value.status, err.value.code) == (501, "NotImplemented")
    assert "append" in err.value.message
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.put_symlink("target", "link")
    assert err.value.code == "NotImplemented"
    assert not bucket.object_exists("link")  # moto never saw the request
    with pytest.raises(ValueError, match="InvalidBucketName"):
        server.create_bucket("Not_Valid")
