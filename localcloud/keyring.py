"""The local cloud's credentials: one permanent AccessKey pair, and the STS triples it issued.

Both the local OSS and the local ICE look a request's AccessKey secret up here, so a function
instance's context credentials (an STS triple, as Function Compute gives) work at both, and a
made-up or expired SecurityToken works at neither. Each refusal is its own error type; each
service turns it into the code it answers (:mod:`localcloud.oss.auth`, :mod:`localcloud.ice.responses`).

An issued triple looks like what STS AssumeRole returns
(https://help.aliyun.com/zh/ram/developer-reference/api-sts-2015-04-01-assumerole): an
AccessKeyId starting ``STS.``, its secret, a SecurityToken and an expiry.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

#: STS's own bounds on DurationSeconds; Function Compute's context credentials last 36 hours,
#: so the local cloud allows that too (FC obtains them itself, beyond AssumeRole's usual 12 hours).
MIN_STS_DURATION_S = 900
MAX_STS_DURATION_S = 36 * 3600
STS_KEY_PREFIX = "STS."


class KeyringError(Exception):
    """The request's AccessKeyId/SecurityToken pair is not one this cloud accepts."""

    def __init__(self, access_key_id: str, message: str) -> None:
        super().__init__(message)
        self.access_key_id = access_key_id


class UnknownAccessKeyId(KeyringError):
    """No permanent key and no issued STS key has this AccessKeyId."""


class SecurityTokenMissing(KeyringError):
    """An STS AccessKeyId sent without its SecurityToken."""


class SecurityTokenInvalid(KeyringError):
    """A SecurityToken that is not the one issued with this AccessKeyId."""

    def __init__(self, access_key_id: str, message: str, *, issued_to_another_key: bool) -> None:
        super().__init__(access_key_id, message)
        #: True for a token this cloud issued, with another AccessKeyId; False for one it never issued.
        self.issued_to_another_key = issued_to_another_key


class SecurityTokenExpired(KeyringError):
    """The STS triple's expiry has passed."""


class SecurityTokenNotExpected(KeyringError):
    """A SecurityToken sent with the permanent AccessKeyId: OSS and the gateway take such a request
    for an STS request, and the permanent key is no STS key."""


@dataclass(frozen=True)
class StsCredentials:
    """One issued STS triple and when it stops working."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: datetime

    def as_context(self) -> dict[str, str]:
        """The ``credentials`` of an FC context (``access_key_id``, ``access_key_secret``, ``security_token``)."""
        return {"access_key_id": self.access_key_id, "access_key_secret": self.access_key_secret,
                "security_token": self.security_token}


class Keyring:
    """The permanent AccessKey pair and the STS triples issued from it (thread-safe)."""

    def __init__(self, access_key_id: str, access_key_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        if not access_key_id or not access_key_secret:
            raise ValueError("a Keyring needs a non-empty access_key_id and access_key_secret")
        if access_key_id.startswith(STS_KEY_PREFIX):
            raise ValueError(f"a permanent AccessKeyId must not start with {STS_KEY_PREFIX!r}")
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self._clock = clock
        self._issued: dict[str, StsCredentials] = {}
        self._key_of_token: dict[str, str] = {}
        self._issue_listeners: list[Callable[[StsCredentials], object]] = []
        self._lock = threading.Lock()

    @classmethod
    def generate(cls, *, clock: Callable[[], float] = time.time) -> Keyring:
        """A keyring with a fresh random permanent pair (``LTAI...``, as Alibaba Cloud's look)."""
        return cls("LTAI" + secrets.token_hex(8), secrets.token_urlsafe(24), clock=clock)

    @property
    def access_key_secret(self) -> str:
        return self._secret

    def __repr__(self) -> str:  # never show a secret
        return f"Keyring(access_key_id={self.access_key_id!r}, issued={len(self._issued)})"

    def issue_sts(self, duration_s: int = 3600) -> StsCredentials:
        """A new STS triple valid for ``duration_s`` seconds (900 to 36 hours)."""
        if not MIN_STS_DURATION_S <= duration_s <= MAX_STS_DURATION_S:
            raise ValueError(f"duration_s must be {MIN_STS_DURATION_S} to {MAX_STS_DURATION_S} s, got {duration_s}")
        alphabet = string.ascii_letters + string.digits
        credentials = StsCredentials(
            access_key_id=STS_KEY_PREFIX + "".join(secrets.choice(alphabet) for _ in range(24)),
            access_key_secret="".join(secrets.choice(alphabet) for _ in range(44)),
            security_token="CAIS" + secrets.token_urlsafe(192),
            expiration=datetime.fromtimestamp(int(self._clock()) + duration_s, timezone.utc),
        )
        self.accept(credentials)
        with self._lock:
            listeners = list(self._issue_listeners)
        for listener in listeners:
            listener(credentials)
        return credentials

    def accept(self, credentials: StsCredentials) -> None:
        """Take a triple another keyring of the same cloud issued (a service in another process)."""
        with self._lock:
            self._issued[credentials.access_key_id] = credentials
            self._key_of_token[credentials.security_token] = credentials.access_key_id

    def issued(self) -> list[StsCredentials]:
        """Every triple issued or accepted so far."""
        with self._lock:
            return list(self._issued.values())

    def on_issue(self, listener: Callable[[StsCredentials], object]) -> None:
        """Call ``listener(credentials)`` with every triple issued from now on."""
        with self._lock:
            self._issue_listeners.append(listener)

    def remove_issue_listener(self, listener: Callable[[StsCredentials], object]) -> None:
        """Stop calling ``listener`` (one never added is no error)."""
        with self._lock:
            if listener in self._issue_listeners:
                self._issue_listeners.remove(listener)

    def secret_for(self, access_key_id: str, security_token: str | None) -> str:
        """The secret that signs requests of this AccessKeyId and SecurityToken (None or "": none sent)."""
        if access_key_id == self.access_key_id:
            if security_token:
                raise SecurityTokenNotExpected(access_key_id, "A SecurityToken was sent with a permanent AccessKeyId.")
            return self._secret
        with self._lock:
            issued = self._issued.get(access_key_id)
            token_owner = self._key_of_token.get(security_token or "")
        if issued is None:
            raise UnknownAccessKeyId(access_key_id, f"The AccessKeyId {access_key_id!r} does not exist.")
        if not security_token:
            raise SecurityTokenMissing(access_key_id, "An STS AccessKeyId was sent without its SecurityToken.")
        if security_token != issued.security_token:
            raise SecurityTokenInvalid(access_key_id, "The SecurityToken was not issued with this AccessKeyId.",
                                       issued_to_another_key=token_owner is not None)
        if issued.expiration.timestamp() <= self._clock():
            raise SecurityTokenExpired(access_key_id, 
                                       f"The SecurityToken expired at {issued.expiration:%Y-%m-%dT%H:%M:%SZ}.")
        return issued.access_key_secret
