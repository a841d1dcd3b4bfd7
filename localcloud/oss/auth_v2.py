"""OSS signature V2 (HMAC-SHA256 over every query parameter), as ``oss2.auth.ProviderAuthV2`` builds it.

Header: ``Authorization: OSS2 AccessKeyId:<id>,AdditionalHeaders:<h1;h2>,Signature:<base64>``, dated
by ``Date``. Signed URL: ``x-oss-signature-version=OSS2``, ``x-oss-access-key-id``, ``x-oss-expires``
(epoch seconds, also the date that is signed), ``x-oss-additional-headers`` and ``x-oss-signature``.
"""

from __future__ import annotations

from localcloud.oss.signing import (
    SignedClaim,
    base64_hmac,
    canonical_query,
    check_clock_skew,
    header_text,
    malformed,
    security_token,
    unexpired_epoch,
    uri_encode,
)
from localcloud.oss.wire import OssRequest

SIGNATURE_PARAM = "x-oss-signature"


def header_claim(req: OssRequest, credential: str) -> SignedClaim:
    """The claim of ``Authorization: OSS2 <credential>``."""
    fields = dict(part.strip().partition(":")[::2] for part in credential.split(","))
    unknown = set(fields) - {"AccessKeyId", "AdditionalHeaders", "Signature"}
    if unknown or not fields.get("AccessKeyId") or not fields.get("Signature"):
        raise malformed("The OSS2 Authorization header is invalid: expected "
                        "'OSS2 AccessKeyId:<id>,AdditionalHeaders:<h1;h2>,Signature:<signature>'.")
    date = req.headers.get("date", "")
    check_clock_skew(date)
    return _claim(req, fields["AccessKeyId"], fields["Signature"], fields.get("AdditionalHeaders", ""), date)


def query_claim(req: OssRequest) -> SignedClaim:
    """The claim of a URL signed with ``x-oss-signature-version=OSS2``."""
    access_key_id, signature = req.param("x-oss-access-key-id"), req.param(SIGNATURE_PARAM)
    if not access_key_id or not signature:
        raise malformed("An OSS2 signed URL needs x-oss-access-key-id and x-oss-signature.")
    expires = unexpired_epoch(req.param("x-oss-expires"))
    return _claim(req, access_key_id, signature, req.param("x-oss-additional-headers") or "", expires)


def _claim(req: OssRequest, access_key_id: str, signature: str, additional: str, date: str) -> SignedClaim:
    string_to_sign = _string_to_sign(req, _header_names(additional), date)
    return SignedClaim(access_key_id, security_token(req), signature, string_to_sign,
                       lambda secret: base64_hmac(secret, string_to_sign, "sha256"))


def _header_names(additional: str) -> list[str]:
    return sorted({name.strip().lower() for name in additional.split(";") if name.strip()})


def _string_to_sign(req: OssRequest, additional: list[str], date: str) -> str:
    headers = "".join(f"{name}:{header_text(value)}\n" for name, value in sorted(req.headers.items())
                      if name.startswith("x-oss-") or name in additional)
    resource = uri_encode(f"/{req.bucket}/{req.key}" if req.bucket else "/")
    query = canonical_query(req.query, leave_out=SIGNATURE_PARAM)
    return "\n".join([
        req.method,
        req.headers.get("content-md5", ""),
        req.headers.get("content-type", ""),
        date,
        headers + ";".join(additional),
        resource + ("?" + query if query else ""),
    ])
