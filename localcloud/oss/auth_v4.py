"""OSS signature V4 (OSS4-HMAC-SHA256), as ``oss2.auth.ProviderAuthV4`` and ``alibabacloud_oss_v2``'s
``SignerV4`` build it.

Header: ``Authorization: OSS4-HMAC-SHA256 Credential=<id>/<yyyymmdd>/<region>/oss/aliyun_v4_request,
AdditionalHeaders=<h1;h2>, Signature=<hex>`` (the SDKs order and space the three parts differently),
with ``x-oss-date`` (``yyyymmddThhmmssZ``) and ``x-oss-content-sha256: UNSIGNED-PAYLOAD``. Signed URL:
``x-oss-signature-version=OSS4-HMAC-SHA256``, ``x-oss-credential``, ``x-oss-date``, ``x-oss-expires``
(seconds after x-oss-date), ``x-oss-additional-headers`` and ``x-oss-signature``.

The credential scope must name this OSS's region and the product ``oss``; the SDKs only ever send
``UNSIGNED-PAYLOAD``, so a payload hash is not checked against the body, and any other value is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone

from localcloud.oss.signing import (
    SignedClaim,
    canonical_query,
    check_skew_of,
    header_text,
    hmac_sha256,
    malformed,
    request_expired,
    security_token,
    uri_encode,
)
from localcloud.oss.wire import OssRequest

ALGORITHM = "OSS4-HMAC-SHA256"
PRODUCT = "oss"
SCOPE_TERMINATOR = "aliyun_v4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SIGNATURE_PARAM = "x-oss-signature"
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
#: Headers V4 always signs when present, besides every x-oss-* header.
_DEFAULT_SIGNED = frozenset({"content-type", "content-md5"})


def header_claim(req: OssRequest, credential: str, region: str) -> SignedClaim:
    """The claim of ``Authorization: OSS4-HMAC-SHA256 <credential>``."""
    fields = dict(part.strip().partition("=")[::2] for part in credential.split(","))
    unknown = set(fields) - {"Credential", "AdditionalHeaders", "Signature"}
    if unknown or not fields.get("Credential") or not fields.get("Signature"):
        raise malformed(f"The {ALGORITHM} Authorization header is invalid: expected 'Credential=<id>/<date>/"
                        f"<region>/oss/{SCOPE_TERMINATOR}, AdditionalHeaders=<h1;h2>, Signature=<signature>'.")
    stamp = req.headers.get("x-oss-date", "")
    check_skew_of(_parse_stamp(stamp).timestamp(), stamp)
    return _claim(req, fields["Credential"], fields["Signature"], fields.get("AdditionalHeaders", ""), stamp, region)


def query_claim(req: OssRequest, region: str) -> SignedClaim:
    """The claim of a URL signed with ``x-oss-signature-version=OSS4-HMAC-SHA256``; refused once expired."""
    credential, signature = req.param("x-oss-credential"), req.param(SIGNATURE_PARAM)
    stamp, expires = req.param("x-oss-date") or "", req.param("x-oss-expires") or ""
    if not credential or not signature or not expires.isdigit():
        raise malformed(f"An {ALGORITHM} signed URL needs x-oss-credential, x-oss-date, x-oss-expires "
                        "(seconds) and x-oss-signature.")
    expiry = _parse_stamp(stamp).timestamp() + int(expires)
    if expiry < datetime.now(timezone.utc).timestamp():
        raise request_expired(datetime.fromtimestamp(expiry, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _claim(req, credential, signature, req.param("x-oss-additional-headers") or "", stamp, region)


def _parse_stamp(stamp: str) -> datetime:
    try:
        return datetime.strptime(stamp, _DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise malformed(f"x-oss-date must be {_DATE_FORMAT} (UTC), got {stamp!r}.") from None


def _scope(credential: str, stamp: str, region: str) -> tuple[str, str]:
    """(AccessKeyId, scope) of ``<id>/<date>/<region>/oss/aliyun_v4_request``, checked against this OSS."""
    access_key_id, _, scope = credential.partition("/")
    parts = scope.split("/")
    if not access_key_id or len(parts) != 4 or parts[3] != SCOPE_TERMINATOR:
        raise malformed(f"The credential must be <AccessKeyId>/<yyyymmdd>/<region>/oss/{SCOPE_TERMINATOR}, "
                        f"got {credential!r}.")
    date, signed_region, product, _ = parts
    if date != stamp[:8]:
        raise malformed(f"The date of the credential scope ({date}) is not the day of x-oss-date ({stamp}).")
    if signed_region != region:
        # OSS's own message (oss2's signing tests compare it); the regions go in elements of their own.
        error = malformed("The signing region in credential is invalid.")
        error.extra.update(SignedRegion=signed_region, Region=region)
        raise error
    if product != PRODUCT:
        raise malformed(f"Invalid signing product in the credential scope: {product!r}; expected {PRODUCT!r}.")
    return access_key_id, scope


def _claim(req: OssRequest, credential: str, signature: str, additional: str, stamp: str,
           region: str) -> SignedClaim:
    access_key_id, scope = _scope(credential, stamp, region)
    canonical = _canonical_request(req, sorted({h.strip().lower() for h in additional.split(";") if h.strip()}))
    string_to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])

    def sign(secret: str) -> str:
        key = ("aliyun_v4" + secret).encode("utf-8")
        for part in (stamp[:8], region, PRODUCT, SCOPE_TERMINATOR):
            key = hmac_sha256(key, part)
        return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()

    return SignedClaim(access_key_id, security_token(req), signature, string_to_sign, sign,
                       details=(("CanonicalRequest", canonical),))


def _canonical_request(req: OssRequest, additional: list[str]) -> str:
    payload = req.headers.get("x-oss-content-sha256", UNSIGNED_PAYLOAD)
    if payload != UNSIGNED_PAYLOAD:
        raise malformed(f"x-oss-content-sha256 must be {UNSIGNED_PAYLOAD}, got {payload!r}.")
    headers = "".join(f"{name}:{header_text(value)}\n" for name, value in sorted(req.headers.items())
                      if name.startswith("x-oss-") or name in _DEFAULT_SIGNED or name in additional)
    return "\n".join([
        req.method,
        uri_encode(f"/{req.bucket}/{req.key}" if req.bucket else "/", keep_slashes=True),
        canonical_query(req.query, leave_out=SIGNATURE_PARAM),
        headers,
        ";".join(additional),
        payload,
    ])
