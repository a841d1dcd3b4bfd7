"""Object-created notifications: one FC OSS-trigger event record per created object, per listener."""

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
class CreatedObject:
    """What a notification says about the object: upper-case ETag, size, and growth in bytes."""

    etag: str
    size: int
    delta_size: int


class Notifier:
    """Queues a record per created object and delivers it to every listener from its own thread.

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
        """Call ``listener(record)`` for every object created from now on; each gets its own ruleId."""
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

    def object_created(self, event_name: str, req: OssRequest, obj: CreatedObject) -> None:
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
                "object": {"deltaSize": obj.delta_size, "eTag": obj.etag, "key": req.key, "size": obj.size},
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
