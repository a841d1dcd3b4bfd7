"""OSS request authentication: signatures V1, V2 and V4, in the Authorization header or a signed URL,
and STS tokens checked against those the local cloud issued (:mod:`localcloud.keyring`).

V1 is ``oss2.auth.ProviderAuth``'s (``Authorization: OSS <id>:<signature>``; a URL with
``OSSAccessKeyId``, ``Expires`` and ``Signature``); V2 and V4 are in :mod:`~localcloud.oss.auth_v2`
and :mod:`~localcloud.oss.auth_v4`. What each failure answers, as OSS does:

* no signature: 403 ``AccessDenied``; an Authorization or signed URL that cannot be read, or a V4
  credential scope for another region or product: 400 ``InvalidArgument``;
* a signed URL past its expiry: 403 ``AccessDenied`` "Request has expired."; a header-signed
  request dated more than 15 minutes off: 403 ``RequestTimeTooSkewed``;
* an unknown AccessKeyId, an STS AccessKeyId without its token, or a token sent with the permanent
  AccessKeyId (OSS then takes the request for an STS one, error 0002-00000002): 403 ``InvalidAccessKeyId``;
* a token not issued with that STS AccessKeyId: 403 ``InvalidSecurityToken``; an expired one: 403
  ``SecurityTokenExpired``;
* a wrong secret or anything signed changed: 403 ``SignatureDoesNotMatch`` with the server's
  ``StringToSign`` (and V4's ``CanonicalRequest``), never a secret.
"""

from __future__ import annotations

import hmac

from localcloud import keyring as keys
from localcloud.oss import auth_v2, auth_v4
from localcloud.oss.signing import (
    SignedClaim,
    base64_hmac,
    check_clock_skew,
    header_text,
    malformed,
    security_token,
    unexpired_epoch,
)
from localcloud.oss.wire import SIGNED_SUBRESOURCES, OssError, OssRequest

#: Query parameters of a signed URL (every version), removed before moto sees the request.
QUERY_AUTH_PARAMS = frozenset({
    "OSSAccessKeyId", "Expires", "Signature", "security-token",
    "x-oss-signature-version", "x-oss-access-key-id", "x-oss-expires", "x-oss-additional-headers",
    "x-oss-signature", "x-oss-credential", "x-oss-date", "x-oss-security-token",
})
#: x-oss-* request headers that only serve authentication.
AUTH_HEADERS = frozenset({"x-oss-security-token", "x-oss-date", "x-oss-content-sha256"})


class OssAuthenticator:
    """Verifies a request's signature with the secret the keyring has for its key; raises the OssError OSS answers."""

    def __init__(self, keyring: keys.Keyring, *, region: str) -> None:
        self._keyring = keyring
        self._region = region

    def authenticate(self, req: OssRequest) -> None:
        claim = self._claim(req)
        expected = claim.sign(self._secret_for(claim))
        if not hmac.compare_digest(expected.encode(), claim.signature.encode("utf-8", "replace")):
            error = OssError(403, "SignatureDoesNotMatch",
                             "The request signature we calculated does not match the signature you "
                             "provided. Check your key and signing method.",
                             StringToSign=claim.string_to_sign, SignatureProvided=claim.signature,
                             OSSAccessKeyId=claim.access_key_id)
            error.extra.update(claim.details)  # V4 adds its CanonicalRequest
            raise error

    def _claim(self, req: OssRequest) -> SignedClaim:
        version = req.param("x-oss-signature-version")
        if version == "OSS2":
            return auth_v2.query_claim(req)
        if version == auth_v4.ALGORITHM:
            return auth_v4.query_claim(req, self._region)
        if version is not None:
            raise malformed(f"Unsupported x-oss-signature-version {version!r}; use OSS2 or {auth_v4.ALGORITHM}.")
        if req.param("OSSAccessKeyId") is not None and req.param("Signature") is not None:
            return _v1_query_claim(req)
        authorization = req.headers.get("authorization", "")
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme == "OSS":
            return _v1_header_claim(req, credential)
        if scheme == "OSS2":
            return auth_v2.header_claim(req, credential)
        if scheme == auth_v4.ALGORITHM:
            return auth_v4.header_claim(req, credential, self._region)
        if authorization:
            raise malformed(f"Authorization header is invalid: unknown scheme {scheme!r} (OSS signs with "
                            f"'OSS', 'OSS2' or '{auth_v4.ALGORITHM}').")
        raise OssError(403, "AccessDenied",
                       "Anonymous access is forbidden: LocalOss buckets are private; sign the request.")

    def _secret_for(self, claim: SignedClaim) -> str:
        key = claim.access_key_id
        try:
            return self._keyring.secret_for(key, claim.security_token)
        except keys.SecurityTokenInvalid:
            raise OssError(403, "InvalidSecurityToken", "The security token you provided is invalid.",
                           OSSAccessKeyId=key) from None
        except keys.SecurityTokenExpired:
            raise OssError(403, "SecurityTokenExpired", "The security token you provided has expired.",
                           OSSAccessKeyId=key) from None
        except keys.KeyringError:  # unknown key, STS key without token, token with the permanent key
            raise OssError(403, "InvalidAccessKeyId",
                           "The OSS Access Key Id you provided does not exist in our records.",
                           OSSAccessKeyId=key) from None


def canonical_resource(req: OssRequest) -> str:
    """``/bucket/key?signed-subresources`` exactly as oss2 builds it (raw key, sorted, unencoded)."""
    resource = f"/{req.bucket}/{req.key}" if req.bucket else "/"
    subresources = sorted((k, v) for k, v in req.query if k in SIGNED_SUBRESOURCES)
    if subresources:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
    return resource


def string_to_sign(req: OssRequest, date: str) -> str:
    """The OSS signature V1 string to sign (see ``oss2.auth.ProviderAuth``)."""
    oss_headers = "".join(f"{k}:{header_text(v)}\n" for k, v in sorted(req.headers.items()) if k.startswith("x-oss-"))
    return "\n".join([
        req.method,
        req.headers.get("content-md5", ""),
        req.headers.get("content-type", ""),
        date,
        oss_headers + canonical_resource(req),
    ])


def _v1_header_claim(req: OssRequest, credential: str) -> SignedClaim:
    access_key_id, _, signature = credential.strip().rpartition(":")
    date = req.headers.get("x-oss-date") or req.headers.get("date", "")
    check_clock_skew(date)
    return _v1_claim(req, access_key_id, signature, date)


def _v1_query_claim(req: OssRequest) -> SignedClaim:
    """A V1 signed URL: its Expires is also the date that was signed; refused once past."""
    expires = unexpired_epoch(req.param("Expires"))
    return _v1_claim(req, req.param("OSSAccessKeyId") or "", req.param("Signature") or "", expires)


def _v1_claim(req: OssRequest, access_key_id: str, signature: str, date: str) -> SignedClaim:
    signed = string_to_sign(req, date)
    return SignedClaim(access_key_id, security_token(req), signature, signed,
                       lambda secret: base64_hmac(secret, signed, "sha1"))
