"""V2 (RPC, HMAC-SHA1) signatures at the local ICE: real V2 clients, then the gateway's checks.

The clients are tea-openapi with ``signature_algorithm='v2'`` (SDK 6.20.2) and
``aliyun-python-sdk-core`` (GET with query parameters, POST with a form body). The gateway checks are
raw requests signed here from the published algorithm (``METHOD&%2F&percentEncode(sorted query)``,
key ``secret&``), then altered one way each.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest

from localcloud.ice.server import LocalIce
from tests.localcloud.ice.support import AK, NORMAL, SK, client_error, sdk

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@pytest.fixture(scope="module")
def ice(oss):
    """This module's own local ICE (the package's OSS is not used: no job runs here)."""
    server = LocalIce(access_key_id=AK, access_key_secret=SK, oss_endpoint=oss.endpoint).start()
    yield server
    server.stop()


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="~")


def signed_params(action: str, params: dict[str, str], *, method: str = "GET", secret: str = SK,
                  timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
    """``params`` with the V2 common parameters and their Signature, computed as the docs give it."""
    signed = {"Action": action, "Version": "2020-11-09", "Format": "JSON", "AccessKeyId": AK,
              "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
              "SignatureNonce": nonce or uuid.uuid4().hex,
              "Timestamp": timestamp or datetime.now(timezone.utc).strftime(TIME_FORMAT), **params}
    canonical = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(signed.items()))
    string_to_sign = f"{method}&%2F&{_quote(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return {**signed, "Signature": base64.b64encode(digest).decode()}


def raw_get(ice: LocalIce, params: dict[str, str]) -> tuple[int, dict]:
    url = f"http://{ice.endpoint}/?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def acs_request(ice: LocalIce, action: str, method: str, **params: str) -> CommonRequest:
    request = CommonRequest(domain=ice.endpoint, version="2020-11-09", action_name=action)
    request.set_protocol_type("http")
    request.set_method(method)
    for name, value in params.items():
        if method == "POST":
            request.add_body_params(name, value)
        else:
            request.add_query_param(name, value)
    return request


def test_tea_openapi_v2_signs_every_call(ice):
    client = sdk(ice, signature_algorithm="v2")
    from alibabacloud_ice20201109 import models as m

    created = client.create_custom_template(m.CreateCustomTemplateRequest(
        name="v2 template", type=2, subtype=1, template_config=json.dumps(NORMAL))).body.custom_template
    fetched = client.get_custom_template(m.GetCustomTemplateRequest(template_id=created.template_id))
    assert fetched.body.custom_template.template_name == "v2 template"
    sts = ice.keyring.issue_sts()
    assert sdk(ice, signature_algorithm="v2", access_key_id=sts.access_key_id, access_key_secret=sts.access_key_secret,
               security_token=sts.security_token).get_event_callback().status_code == 200
    error = client_error(sdk(ice, signature_algorithm="v2", security_token="made-up-token").get_event_callback)
    assert (error.code, error.status_code) == ("InvalidSecurityToken.MismatchWithAccessKey", 400)
    error = client_error(sdk(ice, signature_algorithm="v2", access_key_secret="not-the-secret").get_event_callback)
    assert (error.code, error.status_code) == ("SignatureDoesNotMatch", 400) and SK not in json.dumps(error.data)
    error = client_error(sdk(ice, signature_algorithm="v2", access_key_id="LTAIunknownKey").get_event_callback)
    assert (error.code, error.status_code) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_aliyun_python_sdk_core_query_and_form_body(ice, method):
    client = AcsClient(AK, SK, "cn-hangzhou")
    created = json.loads(client.do_action_with_exception(acs_request(
        ice, "CreateCustomTemplate", method, Name=f"core {method} a+b*~", Type="2", Subtype="1",
        TemplateConfig=json.dumps(NORMAL))))
    template_id = created["CustomTemplate"]["TemplateId"]
    fetched = json.loads(client.do_action_with_exception(acs_request(ice, "GetCustomTemplate", method,
                                                                     TemplateId=template_id)))
    assert fetched["CustomTemplate"]["TemplateName"] == f"core {method} a+b*~"
    with pytest.raises(ServerException) as caught:
        AcsClient(AK, "not-the-secret", "cn-hangzhou").do_action_with_exception(
            acs_request(ice, "GetCustomTemplate", method, TemplateId=template_id))
    assert (caught.value.get_error_code(), caught.value.get_http_status()) == ("SignatureDoesNotMatch", 400)


def test_raw_v2_request_is_checked_like_a_v3_one(ice):
    assert raw_get(ice, signed_params("GetEventCallback", {}))[0] == 200
    altered = {**signed_params("GetSnapshotJob", {"JobId": "abc"}), "JobId": "abd"}
    assert raw_get(ice, altered)[1]["Code"] == "SignatureDoesNotMatch"
    stale = (datetime.now(timezone.utc) - timedelta(minutes=20)).strftime(TIME_FORMAT)
    status, body = raw_get(ice, signed_params("GetEventCallback", {}, timestamp=stale))
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired") and "Timestamp" in body["Message"]
    status, body = raw_get(ice, signed_params("GetEventCallback", {}, timestamp="2026-12-01 10:00:00"))
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Format")
    assert raw_get(ice, signed_params("GetEventCallback", {}, nonce="v2-fixed-nonce"))[0] == 200
    status, body = raw_get(ice, signed_params("GetEventCallback", {}, nonce="v2-fixed-nonce"))
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")


@pytest.mark.parametrize("name", ["SignatureNonce", "Timestamp", "AccessKeyId", "SignatureMethod"])
def test_raw_v2_request_without_a_common_parameter(ice, name):
    params = signed_params("GetEventCallback", {})
    del params[name]
    status, body = raw_get(ice, params)
    assert (status, body["Code"]) == (400, "MissingParameter") and f'"{name}"' in body["Message"]


def test_raw_v2_request_with_another_algorithm(ice):
    status, body = raw_get(ice, signed_params("GetEventCallback", {"SignatureMethod": "HMAC-SHA256"}))
    assert (status, body["Code"]) == (400, "IncompleteSignature") and "HMAC-SHA1" in body["Message"]


def test_unsigned_request_names_both_signature_versions(ice):
    status, body = raw_get(ice, {"Action": "GetEventCallback", "Version": "2020-11-09"})
    assert (status, body["Code"]) == (400, "IncompleteSignature")
    assert "Authorization" in body["Message"] and "Signature" in body["Message"]


def test_a_request_that_fails_its_signature_does_not_use_up_its_nonce(ice):
    """The nonce is kept only once the signature holds: anyone could otherwise fill the replay store
    with the nonces a real client is about to send."""
    forged = signed_params("GetEventCallback", {}, secret="not-the-secret", nonce="v2-nonce-of-a-forgery")
    assert raw_get(ice, forged)[1]["Code"] == "SignatureDoesNotMatch"
    assert raw_get(ice, signed_params("GetEventCallback", {}, nonce="v2-nonce-of-a-forgery"))[0] == 200
