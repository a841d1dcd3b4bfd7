"""What every OSS signature version shares: the claim a request makes, and the canonical pieces.

A signed request claims an AccessKeyId (and maybe a SecurityToken) and carries a signature over a
string to sign; the server rebuilds that string from the request and signs it with the secret it
knows. Each version (:mod:`~localcloud.oss.auth`, :mod:`~localcloud.oss.auth_v2`,
:mod:`~localcloud.oss.auth_v4`) only builds a :class:`SignedClaim`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from localcloud.oss.wire import OssError, OssRequest, iso_now

#: OSS rejects a header-signed request whose date is further than this from the server clock.
MAX_CLOCK_SKEW_SECONDS = 15 * 60
#: The characters the SDKs' V2/V4 URI encoding leaves as they are (RFC 3986 unreserved).
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


@dataclass(frozen=True)
class SignedClaim:
    """What a request says about who signed it, and how to check that."""

    access_key_id: str
    security_token: str | None
    signature: str
    string_to_sign: str
    #: The secret -> the signature the request must carry.
    sign: Callable[[str], str]
    #: More elements for a SignatureDoesNotMatch <Error> (V4's CanonicalRequest).
    details: tuple[tuple[str, str], ...] = ()


def security_token(req: OssRequest) -> str | None:
    """The STS token, wherever the version puts it (every place is covered by its signature)."""
    return (req.headers.get("x-oss-security-token") or req.param("security-token")
            or req.param("x-oss-security-token"))


def header_text(value: str) -> str:
    """A header value as the client signed it: WSGI hands header bytes over as latin-1, the SDKs
    sign them as UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def uri_encode(text: str, *, keep_slashes: bool = False) -> str:
    """The SDKs' V2/V4 encoding: UTF-8, every byte but the unreserved ones as %XX (upper case)."""
    safe = _UNRESERVED | {ord("/")} if keep_slashes else _UNRESERVED
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in text.encode("utf-8"))


def canonical_query(query: list[tuple[str, str]], *, leave_out: str) -> str:
    """Every query parameter but ``leave_out`` (the signature itself), encoded, sorted, ``k=v`` or ``k``."""
    pairs = sorted((uri_encode(k), uri_encode(v)) for k, v in query if k != leave_out)
    return "&".join(f"{k}={v}" if v else k for k, v in pairs)


def hmac_sha256(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def base64_hmac(secret: str, text: str, digest: str) -> str:
    """base64 of HMAC-`digest` (a hashlib name: "sha1" for V1, "sha256" for V2) of `text` under `secret`."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), text.encode("utf-8"), digest).digest()).decode()


def malformed(message: str) -> OssError:
    """A signature OSS cannot even read (missing or unknown parts)."""
    return OssError(400, "InvalidArgument", message)


def request_expired(expires: str) -> OssError:
    return OssError(403, "AccessDenied", "Request has expired.", Expires=expires, ServerTime=iso_now())


def unexpired_epoch(expires: str | None) -> str:
    """A signed URL's absolute expiry (epoch seconds), refused once past; V1 and V2 also sign it."""
    if not expires or not expires.isdigit():
        raise OssError(403, "AccessDenied", "Invalid Expires in the signed URL.")
    if int(expires) < time.time():
        raise request_expired(expires)
    return expires


def check_clock_skew(date: str) -> None:
    """A header-signed request's RFC 1123 Date must be within 15 minutes of the server clock."""
    try:
        sent = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        raise OssError(403, "AccessDenied", f"Invalid or missing Date header: {date!r}.") from None
    check_skew_of(sent, date)


def check_skew_of(sent: float, shown: str) -> None:
    if abs(time.time() - sent) > MAX_CLOCK_SKEW_SECONDS:
        raise OssError(403, "RequestTimeTooSkewed",
                       "The difference between the request time and the current time is too large.",
                       RequestTime=shown, ServerTime=iso_now())
