"""The local ICE's gateway checks: signatures, keys, freshness, nonces and unknown actions.

Raw HTTP is used only where the SDK cannot produce the request under test (an altered query, a stale
date, an unsigned token); it is signed with the SDK's own signer.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import time
import types
import urllib.parse
from datetime import datetime, timedelta, timezone

from alibabacloud_tea_openapi.utils import Utils

from localcloud.ice.server import LocalIce
from localcloud.keyring import Keyring
from tests.localcloud.ice.support import AK, SK, client_error, sdk


def raw_call(ice, action, query, *, secret=SK, date=None, extra_headers=None, tamper=None, sign=True,
             omit_from_signature=()):
    """A request signed with the SDK's own signer (Utils.get_authorization), optionally altered."""
    headers = {"host": ice.endpoint, "x-acs-version": "2020-11-09", "x-acs-action": action,
               "x-acs-date": date or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "x-acs-signature-nonce": Utils.get_nonce(), "accept": "application/json",
               "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(), **(extra_headers or {})}
    if sign:
        signed = {k: v for k, v in headers.items() if k not in omit_from_signature}
        request = types.SimpleNamespace(pathname="/", method="POST", query=query, headers=signed)
        headers["Authorization"] = Utils.get_authorization(request, "ACS3-HMAC-SHA256",
                                                           headers["x-acs-content-sha256"], AK, secret)
    sent_query = dict(query, **(tamper or {}))
    connection = http.client.HTTPConnection(*ice.endpoint.split(":"), timeout=10)
    try:
        connection.request("POST", "/?" + urllib.parse.urlencode(sent_query), body=b"",
                           headers={k: v for k, v in headers.items() if k != "host"})
        response = connection.getresponse()
        return response.status, json.loads(response.read()), response.getheader("x-acs-request-id")
    finally:
        connection.close()



def test_sdk_auth_failures_use_gateway_codes(ice, client):
    error = client_error(sdk(ice, access_key_secret="not-the-secret").get_event_callback)
    assert (error.code, error.status_code) == ("SignatureDoesNotMatch", 400)
    assert SK not in json.dumps(error.data)
    error = client_error(sdk(ice, access_key_id="LTAIunknownKey").get_event_callback)
    assert (error.code, error.status_code) == ("InvalidAccessKeyId.NotFound", 404)
    issued = ice.keyring.issue_sts(900)
    sts = {"access_key_id": issued.access_key_id, "access_key_secret": issued.access_key_secret,
           "security_token": issued.security_token}
    assert sdk(ice, **sts).get_event_callback().status_code == 200
    refused = [({**sts, "security_token": "any-sts-token"}, "InvalidSecurityToken.Malformed", 400),
               ({"security_token": issued.security_token}, "InvalidSecurityToken.MismatchWithAccessKey", 400),
               ({**sts, "security_token": None}, "InvalidAccessKeyId.NotFound", 404)]
    for overrides, code, status in refused:
        error = client_error(sdk(ice, **overrides).get_event_callback)
        assert (error.code, error.status_code) == (code, status)


def test_raw_requests_must_be_signed_and_fresh(ice):
    status, body, request_id = raw_call(ice, "GetSnapshotJob", {"JobId": "abc"})
    assert (status, body["Code"]) == (404, "JobNotFound") and body["RequestId"] == request_id
    status, body, _ = raw_call(ice, "GetSnapshotJob", {"JobId": "abc"}, tamper={"JobId": "abd"})
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    status, body, _ = raw_call(ice, "GetSnapshotJob", {"JobId": "abc"}, sign=False)
    assert (status, body["Code"]) == (400, "IncompleteSignature")
    stale = (datetime.now(timezone.utc) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, body, _ = raw_call(ice, "GetSnapshotJob", {"JobId": "abc"}, date=stale)
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")
    status, body, _ = raw_call(ice, "GetSnapshotJob", {"JobId": "abc"},
                               extra_headers={"x-acs-security-token": "tok", "x-acs-accesskey-id": AK},
                               omit_from_signature=("x-acs-security-token",))
    assert (status, body["Code"]) == (400, "IncompleteSignature") and "x-acs-security-token" in body["Message"]
    status, body, _ = raw_call(ice, "StartTheReactor", {})
    assert (status, body["Code"]) == (403, "InvalidAction")
    nonce = {"x-acs-signature-nonce": "fixed-nonce-1"}
    assert raw_call(ice, "GetEventCallback", {}, extra_headers=nonce)[0] == 200
    status, body, _ = raw_call(ice, "GetEventCallback", {}, extra_headers=nonce)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")


def test_an_expired_sts_token_is_refused(oss):
    offset = [0.0]
    keyring = Keyring(AK, SK, clock=lambda: time.time() + offset[0])
    issued = keyring.issue_sts(900)
    with LocalIce(keyring=keyring, oss_endpoint=oss.endpoint) as ice:
        client = sdk(ice, access_key_id=issued.access_key_id, access_key_secret=issued.access_key_secret,
                     security_token=issued.security_token)
        assert client.get_event_callback().status_code == 200
        offset[0] = 901
        error = client_error(client.get_event_callback)
    assert (error.code, error.status_code) == ("InvalidSecurityToken.Expired", 400)
