"""The signed GET URLs GetSnapshotUrls answers: OSS signature V1 in the query string.

Exactly what ``oss2.Bucket(...).sign_url("GET", key, expires, slash_safe=True)`` returns for the
local OSS's path-style (IP) endpoint, computed directly: oss2 builds request objects for each URL
(~16 us), and a callback for 1000 snapshots asks for 990 URLs at once, so the local ICE spent more
CPU signing than the benchmark's round trip. ``tests/localcloud/ice/test_url_signing.py`` checks
the two give the same URL, key for key.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import quote


def signed_get_url(endpoint: str, bucket: str, key: str, *, access_key_id: str, access_key_secret: str,
                   expires_s: int, clock: Callable[[], float] = time.time) -> str:
    """``endpoint/bucket/key?OSSAccessKeyId=…&Expires=…&Signature=…``, valid ``expires_s`` from now."""
    expires = str(int(clock()) + expires_s)
    to_sign = f"GET\n\n\n{expires}\n/{bucket}/{key}"
    digest = hmac.new(access_key_secret.encode(), to_sign.encode(), hashlib.sha1).digest()
    signature = base64.b64encode(digest).decode()
    query = "&".join(f"{name}={quote(value, '')}" for name, value in (
        ("OSSAccessKeyId", access_key_id), ("Expires", expires), ("Signature", signature)))
    return f"{endpoint.rstrip('/')}/{bucket}/{quote(key, '/')}?{query}"
