"""V2 RPC signatures (HMAC-SHA1), as the older Alibaba Cloud clients compute them.

``aliyun-python-sdk-core``, Node ``@alicloud/pop-core`` and tea-openapi with
``Config(signature_algorithm='v2')`` send the common parameters ``AccessKeyId``, ``Signature``,
``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``, ``SignatureNonce``, ``Timestamp``
(UTC ``YYYY-MM-DDTHH:MM:SSZ``), ``Action``, ``Version`` and ``Format`` in the query string or, for
a POST, in a form body. The string to sign is ``METHOD&%2F&percentEncode(canonicalized query)``
over every parameter but ``Signature``, sorted by name and RFC 3986-encoded; the key is the secret
followed by ``&``; the signature is base64. Reference:
https://www.alibabacloud.com/help/en/sdk/product-overview/rpc-mechanism

Pure functions only: which key signs a request, the time and the nonce are checked by
:class:`localcloud.ice.responses.Authenticator`, the same way as for V3 signatures.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

from localcloud.ice.models import IceError
from localcloud.ice.models.base import missing_parameter

SIGNATURE_METHOD = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"


def canonical_query(params: dict[str, str]) -> str:
    """Parameters sorted by name, names and values percent-encoded as RFC 3986 (``~`` kept, space ``%20``).

    Unlike V3's canonical query (tea-openapi encodes values only), V2 encodes the names too."""
    return "&".join(f"{quote(key, safe='~')}={quote(params[key], safe='~')}" for key in sorted(params))


def is_v2(params: dict[str, str]) -> bool:
    return "Signature" in params


@dataclass(frozen=True)
class V2Request:
    """The signing parameters of one V2-signed request."""

    access_key_id: str
    signature: str
    nonce: str
    timestamp: str
    security_token: str | None


def signing_parameters(params: dict[str, str]) -> V2Request:
    """The common parameters, checked: each present, HMAC-SHA1, version 1.0 (the gateway's codes)."""
    for name in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"):
        if not params.get(name):
            raise missing_parameter(name)
    if params["SignatureMethod"] != SIGNATURE_METHOD:
        raise IceError("IncompleteSignature", f'Specified SignatureMethod "{params["SignatureMethod"]}" is not '
                                              f"supported; use {SIGNATURE_METHOD}.", 400)
    if params["SignatureVersion"] != SIGNATURE_VERSION:
        raise IceError("IncompleteSignature", f'Specified SignatureVersion "{params["SignatureVersion"]}" is not '
                                              f"supported; use {SIGNATURE_VERSION}.", 400)
    return V2Request(access_key_id=params["AccessKeyId"], signature=params["Signature"],
                     nonce=params["SignatureNonce"], timestamp=params["Timestamp"],
                     security_token=params.get("SecurityToken"))


def string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = canonical_query({key: value for key, value in params.items() if key != "Signature"})
    return f"{method}&{quote('/', safe='')}&{quote(canonical, safe='~')}"


def sign(access_key_secret: str, text: str) -> str:
    digest = hmac.new(f"{access_key_secret}&".encode(), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")
