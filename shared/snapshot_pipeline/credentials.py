"""Where the functions' Alibaba Cloud credentials come from.

Order: Function Compute's ``context.credentials`` (python3.10 and older runtimes: the
function role's STS token), then the ``ALIBABA_CLOUD_*`` environment variables
(python3.12 exposes them there), then the ``alibabacloud_credentials`` default chain
(profiles, ECS RAM role, OIDC...). The chain is imported only when it is needed: it costs
a tenth of a second of cold start.

Secrets never appear in ``repr`` or logs.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class CredentialsError(RuntimeError):
    """No credentials could be found."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


def from_context(context: Any) -> Credentials | None:
    creds = getattr(context, "credentials", None)
    if creds is None:
        return None
    ak = getattr(creds, "access_key_id", None) or getattr(creds, "accessKeyId", None)
    sk = getattr(creds, "access_key_secret", None) or getattr(creds, "accessKeySecret", None)
    token = getattr(creds, "security_token", None) or getattr(creds, "securityToken", None)
    if ak and sk:
        return Credentials(ak, sk, token or None)
    return None


def from_env(env: Mapping[str, str] | None = None) -> Credentials | None:
    env = os.environ if env is None else env
    ak = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    sk = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if ak and sk:
        return Credentials(ak, sk, env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)
    return None


def from_default_chain() -> Credentials:
    try:
        from alibabacloud_credentials.client import Client as CredentialClient

        cred = CredentialClient().get_credential()
    except Exception as exc:  # the chain raises many types; the message is what matters
        raise CredentialsError(
            "no Alibaba Cloud credentials: not in the function context, not in "
            "ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET, and the default "
            f"credential chain failed: {exc}"
        ) from None
    if not cred.access_key_id or not cred.access_key_secret:
        raise CredentialsError("the default credential chain returned no access key")
    return Credentials(cred.access_key_id, cred.access_key_secret, cred.security_token or None)


def resolve(context: Any = None, env: Mapping[str, str] | None = None) -> Credentials:
    return from_context(context) or from_env(env) or from_default_chain()
