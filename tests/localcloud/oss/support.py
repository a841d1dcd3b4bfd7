"""What the LocalOss tests share: the keys, the account, a notification recorder and two small decoders."""
from __future__ import annotations

import hashlib
import threading
import time
import xml.etree.ElementTree as ElementTree

from tests.support import PIPELINE_TIMEOUT_S

AK, SK = "LTAI-local-test-key", "local-test-secret"
ACCOUNT = "1000000000000001"
REGION = "cn-hangzhou"


class EventRecorder:
    """Collects notification records; tests wait for them (they arrive from a dispatcher thread)."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self._cond = threading.Condition()

    def __call__(self, record: dict) -> None:
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()

    def for_bucket(self, bucket: str) -> list[dict]:
        with self._cond:
            return [r for r in self.records if r["oss"]["bucket"]["name"] == bucket]

    def wait_for(self, bucket: str, key: str, timeout: float = PIPELINE_TIMEOUT_S, count: int = 1) -> list[dict]:
        """Block until ``count`` events for bucket/key arrived; return all events of that bucket so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(r["oss"]["object"]["key"] == key for r in self.for_bucket(bucket)) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no notification for {bucket}/{key}; got {self.for_bucket(bucket)}"
                self._cond.wait(remaining)
            return self.for_bucket(bucket)


def error_of(resp_body: bytes) -> dict:
    return {child.tag: child.text for child in ElementTree.fromstring(resp_body)}


def upper_md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()
