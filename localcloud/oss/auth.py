"""OSS signature V1: verify a request signed in the Authorization header or in the query string.

The string to sign is the one ``oss2.auth.ProviderAuth`` builds. STS requests
(``x-oss-security-token``) are accepted for the configured key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from email.utils import parsedate_to_datetime

from localcloud.oss.wire import SIGNED_SUBRESOURCES, OssError, OssRequest, iso_now

#: OSS rejects a header-signed request whose Date is further than this from the server clock.
MAX_CLOCK_SKEW_SECONDS = 15 * 60


def canonical_resource(req: OssRequest) -> str:
    """``/bucket/key?signed-subresources`` exactly as oss2 builds it (raw key, sorted, unencoded)."""
    resource = f"/{req.bucket}/{req.key}" if req.bucket else "/"
    subresources = sorted((k, v) for k, v in req.query if k in SIGNED_SUBRESOURCES)
    if subresources:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
    return resource


def string_to_sign(req: OssRequest, date: str) -> str:
    """The OSS signature V1 string to sign (see ``oss2.auth.ProviderAuth``)."""
    oss_headers = "".join(f"{k}:{v}\n" for k, v in sorted(req.headers.items()) if k.startswith("x-oss-"))
    return "\n".join([
        req.method,
        req.headers.get("content-md5", ""),
        req.headers.get("content-type", ""),
        date,
        oss_headers + canonical_resource(req),
    ])


class SignatureV1:
    """Verifies OSS V1 signatures for one AccessKey pair; raises the OssError OSS would answer."""

    def __init__(self, access_key_id: str, access_key_secret: str) -> None:
        self._access_key_id = access_key_id
        self._access_key_secret = access_key_secret.encode("utf-8")

    def authenticate(self, req: OssRequest) -> None:
        access_key_id, signature, date = self._credentials(req)
        signed = string_to_sign(req, date)
        expected = base64.b64encode(
            hmac.new(self._access_key_secret, signed.encode("utf-8"), hashlib.sha1).digest()
        ).decode("ascii")
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise OssError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature you "
                           "provided. Check your key and signing method.",
                           StringToSign=signed, SignatureProvided=signature,
                           OSSAccessKeyId=access_key_id)

    def _credentials(self, req: OssRequest) -> tuple[str, str, str]:
        """(AccessKeyId, signature, the date that was signed) from the query string or the header."""
        access_key_id, signature = req.param("OSSAccessKeyId"), req.param("Signature")
        if access_key_id is not None and signature is not None:
            self._check_access_key(access_key_id)
            return access_key_id, signature, self._unexpired(req.param("Expires") or "")
        authorization = req.headers.get("authorization", "")
        if authorization.startswith("OSS "):
            access_key_id, _, signature = authorization[4:].strip().rpartition(":")
            self._check_access_key(access_key_id)
            date = req.headers.get("x-oss-date") or req.headers.get("date", "")
            _check_clock_skew(date)
            return access_key_id, signature, date
        if authorization:
            raise OssError(501, "NotImplemented",
                           "LocalOss verifies only OSS signature V1 ('Authorization: OSS <AccessKeyId>:"
                           "<Signature>'); use oss2.Auth or oss2.StsAuth with the default auth_version.")
        raise OssError(403, "AccessDenied",
                       "Anonymous access is forbidden: LocalOss buckets are private; sign the request.")

    def _check_access_key(self, access_key_id: str) -> None:
        if access_key_id != self._access_key_id:
            raise OssError(403, "InvalidAccessKeyId",
                           "The OSS Access Key Id you provided does not exist in our records.",
                           OSSAccessKeyId=access_key_id)

    @staticmethod
    def _unexpired(expires: str) -> str:
        """The Expires of a signed URL, which is also what it signed; refused once past."""
        if not expires.isdigit():
            raise OssError(403, "AccessDenied", "Invalid Expires in the signed URL.")
        if int(expires) < time.time():
            raise OssError(403, "AccessDenied", "Request has expired.", Expires=expires, ServerTime=iso_now())
        return expires


def _check_clock_skew(date: str) -> None:
    try:
        skew = abs(time.time() - parsedate_to_datetime(date).timestamp())
    except (TypeError, ValueError):
        raise OssError(403, "AccessDenied", f"Invalid or missing Date header: {date!r}.") from None
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise OssError(403, "RequestTimeTooSkewed",
                       "The difference between the request time and the current time is too large.",
                       RequestTime=date, ServerTime=iso_now())
