"""One LocalOss for every OSS test, one notification recorder on it, and a fresh bucket per test.

The server lives for the package; each test gets its own bucket, and the recorder's records are
filtered by bucket, so tests do not see each other's objects or events.
"""
from __future__ import annotations

import uuid

import oss2
import pytest

from localcloud.oss import LocalOss
from tests.localcloud.oss.support import ACCOUNT, AK, REGION, SK, EventRecorder


@pytest.fixture(scope="package")
def server():
    with LocalOss(access_key_id=AK, access_key_secret=SK, region=REGION, account_id=ACCOUNT) as oss:
        yield oss


@pytest.fixture(scope="package")
def events(server):
    recorder = EventRecorder()
    server.subscribe(recorder)
    return recorder


@pytest.fixture
def bucket(server, events) -> oss2.Bucket:
    name = f"test-{uuid.uuid4().hex[:12]}"
    server.create_bucket(name)
    return oss2.Bucket(oss2.Auth(AK, SK), server.endpoint, name)
