"""State and rules of the local ICE (IMS, API 2020-11-09) snapshot service.

Plain Python, no HTTP: templates, snapshot jobs and the event-callback setting of one account in
one region, and the rules the real service documents for them. Every rule that fails raises
:class:`IceError` carrying ICE's own error code, HTTP status and a message that names the field
(``The specified parameter "Output" is not valid: ...``). The wire format (query parameters,
JSON-string parameters, signatures, JSON bodies) lives in ``responses.py``; frame cutting lives in
``engine``; threads, HTTP and callbacks live in ``server.py``.

Reference: the team's ICE/FC reference (ice-fc-reference.md), sections 1-8, and the SDK models in
``alibabacloud_ice20201109`` 6.20.2 (the ground truth for field names).

The model is split the way moto splits a large backend: one module per kind of state
(``templates``, ``jobs``, ``media``, ``event_callbacks``), each a part :class:`IceModel` is made of, and
``base`` for what they share. Each module's docstring lists the assumptions taken for its calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from localcloud.ice.models.base import TIME_FORMAT, IceError, format_time, invalid_parameter, utcnow
from localcloud.ice.models.event_callbacks import SNAPSHOT_EVENT, CallbackTarget, EventCallback, EventCallbackBackend
from localcloud.ice.models.jobs import OssLocation, SnapshotJob, UrlPage
from localcloud.ice.models.media import MediaAsset, MediaBackend
from localcloud.ice.models.templates import Template

__all__ = [
    "SNAPSHOT_EVENT",
    "TIME_FORMAT",
    "CallbackTarget",
    "EventCallback",
    "IceError",
    "IceModel",
    "MediaAsset",
    "STATE_CHANGING_METHODS",
    "OssLocation",
    "SnapshotJob",
    "Template",
    "UrlPage",
    "format_time",
    "invalid_parameter",
]


#: The IceModel methods that change its state: whoever keeps the state (``localcloud.data_dir``)
#: saves it after each of them.
STATE_CHANGING_METHODS = ("create_template", "update_template", "delete_template", "set_default_template",
                          "submit_snapshot_job", "bulk_load_jobs", "complete_job", "fail_job",
                          "set_event_callback", "register_media_info")


class IceModel(MediaBackend, EventCallbackBackend):
    """One account's ICE snapshot state in one region. Thread-safe; :meth:`reset` empties it."""

    def __init__(self, region: str = "cn-hangzhou", account_id: str = "1000000000000001",
                 clock: Callable[[], datetime] = utcnow):
        self.region = region
        self.account_id = account_id
        self._clock = clock
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._templates = {}
            self._jobs = {}
            self._by_time = []
            self._reset_media()
            self._event_callback = EventCallback()
            self._seq = 0

    def state(self) -> dict[str, Any]:
        """Everything the model holds, as JSON-able data: one list or record per part."""
        with self._lock:
            return {"templates": self._templates_state(), "jobs": self._jobs_state(),
                    "media": self.media_state(), "event_callback": asdict(self._event_callback),
                    "seq": self._seq}

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the model's state by one :meth:`state` returned (jobs keep their status: a job
        still ``Init`` is one that was running; see :meth:`unfinished_job_ids`)."""
        with self._lock:
            self.reset()
            self._restore_templates(state.get("templates", []))
            self._restore_jobs(state.get("jobs", []))
            self.restore_media(state.get("media", []))
            self._event_callback = EventCallback(**state.get("event_callback", {}))
            self._seq = state.get("seq", 0)
