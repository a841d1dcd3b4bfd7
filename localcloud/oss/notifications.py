"""OSS notifications: one FC OSS-trigger event record per created or removed object, per listener.

Record shape: the native OSS-trigger event of the FC docs ("Formats of event for different triggers",
OSS section), ``eventName`` without the ``oss:`` prefix. Created objects (``ObjectCreated:PutObject``,
``:CopyObject``, ``:CompleteMultipartUpload``) carry the new object's upper-case ``eTag``, ``size`` and
``deltaSize`` (its size minus the size of what it replaced). For a copy they are the destination's:
its ETag is the source's (OSS and S3 keep a simple object's content ETag; a copy of a multipart
object gets moto's plain MD5 here, which OSS may not give), its Last-Modified the copy time.

Removals (``ObjectRemoved:DeleteObject``, and one ``ObjectRemoved:DeleteObjects`` record per key of a
batch) have the same envelope. The OSS event-notification docs list these event types but show no
removal example, so this takes the conservative reading: the record names the ``key``; ``eTag`` is
"" and ``size`` 0 (a consumer must not learn which version was removed from it); ``deltaSize`` is
minus the bytes freed. A delete of a missing key succeeds on OSS (DeleteObject answers 204 and a
batch lists the key as Deleted), and the FC docs say a trigger fires once per successful call, so it
is notified too, with ``deltaSize`` 0: consumers must treat removals as idempotent.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localcloud.oss.wire import OssRequest, iso_now

log = logging.getLogger(__name__)

#: An FC OSS-trigger event record, as JSON.
EventRecord = dict[str, Any]
Listener = Callable[[EventRecord], None]


@dataclass(frozen=True)
class ObjectChange:
    """What a notification says about the object: upper-case ETag, size, and growth in bytes."""

    etag: str
    size: int
    delta_size: int

    @classmethod
    def removal(cls, freed_bytes: int) -> ObjectChange:
        """A removed object: no ETag or size (see the module docstring), minus the bytes freed."""
        return cls("", 0, -freed_bytes)


class Notifier:
    """Queues a record per created or removed object and delivers it to every listener from its own thread.

    Delivery happens after the write has returned, so a listener can read the object; a listener
    that raises is logged and the others still get the record.
    """

    def __init__(self, *, region: str, account_id: str) -> None:
        self._region = region
        self._account_id = account_id
        self._listeners: list[tuple[Listener, str]] = []
        self._listeners_lock = threading.Lock()
        self._records: queue.SimpleQueue[EventRecord | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(record)`` for every object created or removed from now on; each gets its own ruleId."""
        rule_id = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
        with self._listeners_lock:
            self._listeners.append((listener, rule_id))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._dispatch, name="localoss-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Deliver the records already queued, then end the dispatcher thread."""
        self._records.put(None)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def publish(self, event_name: str, req: OssRequest, key: str, obj: ObjectChange) -> None:
        """Queue the record of one object changed by ``req`` (a batch delete changes many keys)."""
        self._records.put({
            "eventName": event_name,
            "eventSource": "acs:oss",
            "eventTime": iso_now(),
            "eventVersion": "1.0",
            "oss": {
                "bucket": {
                    "arn": f"acs:oss:{self._region}:{self._account_id}:{req.bucket}",
                    "name": req.bucket,
                    "ownerIdentity": self._account_id,
                },
                "object": {"deltaSize": obj.delta_size, "eTag": obj.etag, "key": key, "size": obj.size},
                "ossSchemaVersion": "1.0",
                "ruleId": "",
            },
            "region": self._region,
            "requestParameters": {"sourceIPAddress": req.remote_addr},
            "responseElements": {"requestId": req.request_id},
            "userIdentity": {"principalId": self._account_id},
        })

    def _dispatch(self) -> None:
        while (record := self._records.get()) is not None:
            with self._listeners_lock:
                listeners = list(self._listeners)
            for listener, rule_id in listeners:
                delivered = copy.deepcopy(record)
                delivered["oss"]["ruleId"] = rule_id
                try:
                    listener(delivered)
                except Exception:
                    log.exception("LocalOss: listener %r failed on %s %s/%s", listener,
                                  record["eventName"], record["oss"]["bucket"]["name"],
                                  record["oss"]["object"]["key"])
