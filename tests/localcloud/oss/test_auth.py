"""LocalOss authentication (V1): signed URLs and their expiry, STS tokens, wrong keys, anonymous and skewed requests.

V2 and V4, and each client with every version, are in test_signatures.py and test_oss_v2_client.py."""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate

import oss2
import pytest

from tests.localcloud.oss.support import AK, REGION, SK, error_of


def test_signed_url_works_then_expires(bucket):
    bucket.put_object("s/clip 1.mp4", b"signed content")
    url = bucket.sign_url("GET", "s/clip 1.mp4", 60)
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"signed content"
        assert resp.headers["x-oss-request-id"]

    expired = bucket.sign_url("GET", "s/clip 1.mp4", -1)  # its Expires is already in the past
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(expired)
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

    issued = server.keyring.issue_sts(900)
    sts = oss2.Bucket(oss2.StsAuth(issued.access_key_id, issued.access_key_secret, issued.security_token),
                      server.endpoint, bucket.bucket_name)
    url = sts.sign_url("GET", "one", 60)
    assert "security-token=" + urllib.parse.quote(issued.security_token, safe="") in url
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"1"
    # The token is checked against the one issued, and signed.
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url.replace("security-token=CAIS", "security-token=CAIT"))
    assert (err.value.code, error_of(err.value.read())["Code"]) == (403, "InvalidSecurityToken")


def test_sts_auth_header_requests(server, bucket):
    issued = server.keyring.issue_sts(900)
    sts = oss2.Bucket(oss2.StsAuth(issued.access_key_id, issued.access_key_secret, issued.security_token),
                      server.endpoint, bucket.bucket_name)
    sts.put_object("by-sts", b"ok", headers={"x-oss-meta-k": "v"})
    assert sts.get_object("by-sts").read() == b"ok"
    bad = oss2.Bucket(oss2.StsAuth(issued.access_key_id, "wrong", issued.security_token), server.endpoint,
                      bucket.bucket_name)
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        bad.get_object("by-sts")
    # A token this cloud never issued, and one sent with the permanent key (OSS then takes it for an STS key).
    made_up = oss2.StsAuth(issued.access_key_id, issued.access_key_secret, "made-up")
    with_permanent_key = oss2.StsAuth(AK, SK, issued.security_token)
    for auth, code in [(made_up, "InvalidSecurityToken"), (with_permanent_key, "InvalidAccessKeyId")]:
        with pytest.raises(oss2.exceptions.ServerError) as err:
            oss2.Bucket(auth, server.endpoint, bucket.bucket_name).get_object("by-sts")
        assert (err.value.status, err.value.code) == (403, code)


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
        oss2.Bucket(oss2.AuthV4("LTAI-unknown", SK), server.endpoint, name, region=REGION).get_object("private")
    assert (err.value.status, err.value.code) == (403, "InvalidAccessKeyId")


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

