"""OSS signatures V1, V2 and V4 with oss2 (``Auth``, ``AuthV2``, ``AuthV4`` and ``StsAuth`` with an issued
token): every operation the product and its users need, presigned URLs and their expiry, and what is
refused (a wrong secret, a changed header or query, an expired URL, another region, a made-up or
expired STS token), with the codes OSS answers.

The module has its own LocalOss, whose keyring runs on a clock the tests can move.
"""
from __future__ import annotations

import time
import urllib.parse
import uuid
from datetime import datetime, timedelta

import oss2
import pytest
import requests

from localcloud import keyring as keys
from localcloud.keyring import Keyring
from localcloud.oss import LocalOss
from tests.localcloud.oss.support import error_of

AK, SK = "LTAI-signature-tests", "signature-tests-secret"
REGION = "cn-hangzhou"
PART = 100 * 1024  # OSS's minimum part size
KEY = "dir/a b+c&d=e/ü#1.txt"  # everything the encodings of V1, V2 and V4 must agree on


class MovableClock:
    """The keyring's clock: real time plus an offset a test sets (to let an STS token expire)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def clock():
    return MovableClock()


@pytest.fixture(scope="module")
def local_oss(clock):
    with LocalOss(keyring=Keyring(AK, SK, clock=clock), region=REGION) as oss:
        yield oss


def sts_auth(keyring: Keyring, version: str) -> oss2.StsAuth:
    issued = keyring.issue_sts(900)
    return oss2.StsAuth(issued.access_key_id, issued.access_key_secret, issued.security_token, auth_version=version)


AUTHS = {
    "v1": lambda keyring: oss2.Auth(AK, SK),
    "v2": lambda keyring: oss2.AuthV2(AK, SK),
    "v4": lambda keyring: oss2.AuthV4(AK, SK),
    "sts-v1": lambda keyring: sts_auth(keyring, "v1"),
    "sts-v2": lambda keyring: sts_auth(keyring, "v2"),
    "sts-v4": lambda keyring: sts_auth(keyring, "v4"),
}


def new_bucket(local_oss: LocalOss, auth, region: str = REGION) -> oss2.Bucket:
    name = f"sig-{uuid.uuid4().hex[:12]}"
    local_oss.create_bucket(name)
    return oss2.Bucket(auth, local_oss.endpoint, name, region=region)


@pytest.fixture(params=sorted(AUTHS))
def bucket(request, local_oss) -> oss2.Bucket:
    return new_bucket(local_oss, AUTHS[request.param](local_oss.keyring))


def server_error(call, *args, **kwargs) -> oss2.exceptions.ServerError:
    with pytest.raises(oss2.exceptions.ServerError) as err:
        call(*args, **kwargs)
    return err.value


def test_objects_put_get_range_head_copy_delete(bucket):
    bucket.put_object(KEY, b"0123456789", headers={"Content-Type": "text/plain", "x-oss-meta-origin": "tests"})
    assert bucket.get_object(KEY).read() == b"0123456789"
    assert bucket.get_object(KEY, byte_range=(2, 5)).read() == b"2345"
    head = bucket.head_object(KEY)
    assert (head.content_length, head.headers["x-oss-meta-origin"]) == (10, "tests")
    bucket.copy_object(bucket.bucket_name, KEY, "copy/of it")
    assert bucket.get_object("copy/of it").read() == b"0123456789"
    bucket.delete_object("copy/of it")
    assert not bucket.object_exists("copy/of it")
    bucket.put_object("batch/2", b"2")
    assert sorted(bucket.batch_delete_objects([KEY, "batch/2"]).deleted_keys) == sorted([KEY, "batch/2"])
    assert not bucket.object_exists(KEY)


def test_listing_v1_and_v2_page_with_delimiters(bucket):
    keys = ["l/a/1", "l/a/2", "l/b/1", "l/c", "l/d e", "l/f+g"]
    for key in keys:
        bucket.put_object(key, b"x")
    expected = ["l/a/", "l/b/", "l/c", "l/d e", "l/f+g"]
    for iterator in (oss2.ObjectIterator, oss2.ObjectIteratorV2):
        listed = [obj.key for obj in iterator(bucket, prefix="l/", delimiter="/", max_keys=2)]
        assert listed == expected, iterator
    first = bucket.list_objects(prefix="l/", delimiter="/", max_keys=2)
    assert first.is_truncated and first.prefix_list == ["l/a/", "l/b/"]
    second = bucket.list_objects(prefix="l/", delimiter="/", max_keys=2, marker=first.next_marker)
    assert [o.key for o in second.object_list] == ["l/c", "l/d e"]
    page = bucket.list_objects_v2(prefix="l/", max_keys=3)
    rest = bucket.list_objects_v2(prefix="l/", max_keys=3, continuation_token=page.next_continuation_token)
    assert [o.key for o in page.object_list + rest.object_list] == keys
    assert [o.key for o in bucket.list_objects_v2(prefix="l/a/", start_after="l/a/1").object_list] == ["l/a/2"]


def test_multipart_with_part_copy_list_parts_abort_complete(bucket):
    source = bytes(range(256)) * 1024  # 256 KiB
    bucket.put_object("mp/source", source)
    upload_id = bucket.init_multipart_upload("mp/target").upload_id
    first = bucket.upload_part("mp/target", upload_id, 1, source[:PART])
    copied = bucket.upload_part_copy(bucket.bucket_name, "mp/source", (PART, 2 * PART - 1), "mp/target", upload_id, 2)
    last = bucket.upload_part("mp/target", upload_id, 3, b"the end")
    listed = bucket.list_parts("mp/target", upload_id)
    assert [(p.part_number, p.size) for p in listed.parts] == [(1, PART), (2, PART), (3, 7)]
    parts = [oss2.models.PartInfo(n, r.etag) for n, r in ((1, first), (2, copied), (3, last))]
    bucket.complete_multipart_upload("mp/target", upload_id, parts)
    assert bucket.get_object("mp/target").read() == source[:2 * PART] + b"the end"

    abandoned = bucket.init_multipart_upload("mp/abandoned").upload_id
    bucket.upload_part("mp/abandoned", abandoned, 1, b"lost")
    bucket.abort_multipart_upload("mp/abandoned", abandoned)
    assert server_error(bucket.list_parts, "mp/abandoned", abandoned).code == "NoSuchUpload"


def test_list_multipart_uploads(bucket):
    upload_id = bucket.init_multipart_upload("mpu/open").upload_id
    assert [u.upload_id for u in bucket.list_multipart_uploads(prefix="mpu/").upload_list] == [upload_id]


def test_presigned_get_and_put_urls_work_then_expire(bucket, monkeypatch):
    put_url = bucket.sign_url("PUT", KEY, 60)
    assert requests.put(put_url, data=b"by url").status_code == 200
    assert requests.get(bucket.sign_url("GET", KEY, 60)).content == b"by url"

    expired = requests.get(expired_url(bucket, KEY, monkeypatch))
    assert expired.status_code == 403
    assert (error_of(expired.content)["Code"], error_of(expired.content)["Message"]) == ("AccessDenied",
                                                                                         "Request has expired.")


def expired_url(bucket: oss2.Bucket, key: str, monkeypatch) -> str:
    """A GET URL that expired a minute ago: V1 and V2 take an absolute expiry, V4 a lifetime after its date."""
    if bucket.auth.auth_version() != "v4":
        return bucket.sign_url("GET", key, -60)
    signed_earlier(monkeypatch, hours=1)
    return bucket.sign_url("GET", key, 3540)


def signed_earlier(monkeypatch, *, hours: float) -> None:
    """Make oss2's V4 signer (which reads datetime.utcnow) sign as if its clock were ``hours`` behind."""

    class EarlierDatetime(datetime):
        @classmethod
        def utcnow(cls):
            return datetime.utcnow() - timedelta(hours=hours)

    monkeypatch.setattr(oss2.auth, "datetime", EarlierDatetime)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("auth", [oss2.Auth, oss2.AuthV2, oss2.AuthV4])
def test_wrong_secret_answers_the_servers_string_to_sign(local_oss, auth):
    bucket = new_bucket(local_oss, auth(AK, "not-the-secret"))
    err = server_error(bucket.get_object, KEY)
    assert (err.status, err.code) == (403, "SignatureDoesNotMatch")
    assert err.details["OSSAccessKeyId"] == AK
    assert SK not in str(err.details)
    if auth is oss2.AuthV4:
        assert err.details["StringToSign"].startswith("OSS4-HMAC-SHA256\n")
        assert err.details["CanonicalRequest"].startswith(f"GET\n/{bucket.bucket_name}/dir/a%20b%2Bc%26d%3De/")
    else:
        assert "/dir/" in urllib.parse.unquote(err.details["StringToSign"])


@pytest.mark.parametrize("auth", [oss2.Auth, oss2.AuthV2, oss2.AuthV4])
def test_a_changed_signed_header_is_refused(local_oss, auth):
    bucket = new_bucket(local_oss, auth(AK, SK))
    url = f"{local_oss.endpoint}/{bucket.bucket_name}/{urllib.parse.quote(KEY)}"
    req = oss2.http.Request("PUT", url, data=b"x", headers={"x-oss-meta-who": "me"}, region=REGION, product="oss")
    bucket.auth._sign_request(req, bucket.bucket_name, KEY)
    assert requests.put(url, data=b"x", headers=dict(req.headers)).status_code == 200
    changed = requests.put(url, data=b"x", headers={**req.headers, "x-oss-meta-who": "someone else"})
    assert (changed.status_code, error_of(changed.content)["Code"]) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("auth", [oss2.AuthV2, oss2.AuthV4])
def test_v2_and_v4_urls_sign_every_query_parameter(local_oss, auth):
    bucket = new_bucket(local_oss, auth(AK, SK))
    bucket.put_object(KEY, b"x")
    url = bucket.sign_url("GET", KEY, 60)
    for changed in (url + "&response-content-type=text%2Fhtml", url.replace("x-oss-expires=", "x-oss-expires=1")):
        resp = requests.get(changed)
        assert (resp.status_code, error_of(resp.content)["Code"]) == (403, "SignatureDoesNotMatch"), changed


def test_v4_scope_of_another_region_is_refused(local_oss):
    bucket = new_bucket(local_oss, oss2.AuthV4(AK, SK), region="cn-shanghai")
    err = server_error(bucket.get_object, KEY)
    assert (err.status, err.code) == (400, "InvalidArgument")
    assert err.message == "The signing region in credential is invalid."  # OSS's words
    assert err.details["SignedRegion"] == "cn-shanghai"
    resp = requests.get(bucket.sign_url("GET", KEY, 60))
    assert (resp.status_code, error_of(resp.content)["Code"]) == (400, "InvalidArgument")


def test_v4_header_dated_an_hour_off_is_refused(local_oss, monkeypatch):
    bucket = new_bucket(local_oss, oss2.AuthV4(AK, SK))
    signed_earlier(monkeypatch, hours=1)
    err = server_error(bucket.get_object, KEY)
    assert (err.status, err.code) == (403, "RequestTimeTooSkewed")


def test_sts_tokens_must_be_issued_current_and_sent_with_their_key(local_oss, clock):
    issued = local_oss.keyring.issue_sts(900)
    refused = {
        "InvalidSecurityToken": oss2.StsAuth(issued.access_key_id, issued.access_key_secret, "CAISmade-up", "v4"),
        "InvalidAccessKeyId": oss2.StsAuth(AK, SK, issued.security_token, "v4"),  # the permanent key
    }
    for code, auth in refused.items():
        err = server_error(new_bucket(local_oss, auth).get_object, KEY)
        assert (err.status, err.code) == (403, code)
    without_token = new_bucket(local_oss, oss2.AuthV4(issued.access_key_id, issued.access_key_secret))
    assert server_error(without_token.get_object, KEY).code == "InvalidAccessKeyId"

    bucket = new_bucket(local_oss, oss2.StsAuth(issued.access_key_id, issued.access_key_secret,
                                                issued.security_token, "v4"))
    bucket.put_object("sts", b"ok")
    clock.offset = 901
    try:
        err = server_error(bucket.get_object, "sts")
    finally:
        clock.offset = 0
    assert (err.status, err.code) == (403, "SecurityTokenExpired")


def test_keyring_issues_sts_triples_as_sts_does():
    keyring = Keyring(AK, SK)
    issued = keyring.issue_sts(3600)
    assert issued.access_key_id.startswith("STS.") and issued.security_token
    assert 3590 < issued.expiration.timestamp() - time.time() <= 3600
    assert keyring.secret_for(issued.access_key_id, issued.security_token) == issued.access_key_secret
    assert keyring.secret_for(AK, None) == SK
    assert issued.security_token not in repr(issued) and issued.access_key_secret not in repr(issued)
    for duration in (899, 36 * 3600 + 1):
        with pytest.raises(ValueError):
            keyring.issue_sts(duration)
    other = keyring.issue_sts(900)
    refusals = [(("LTAI-unknown", None), keys.UnknownAccessKeyId),
                ((issued.access_key_id, None), keys.SecurityTokenMissing),
                ((issued.access_key_id, "CAISmade-up"), keys.SecurityTokenInvalid),
                ((issued.access_key_id, other.security_token), keys.SecurityTokenInvalid),
                ((AK, issued.security_token), keys.SecurityTokenNotExpected)]
    for (access_key_id, token), error in refusals:
        with pytest.raises(error):
            keyring.secret_for(access_key_id, token)
    with pytest.raises(keys.SecurityTokenInvalid) as err:
        keyring.secret_for(issued.access_key_id, other.security_token)
    assert err.value.issued_to_another_key
