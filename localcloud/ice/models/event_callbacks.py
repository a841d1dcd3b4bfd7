"""The event-callback setting (SetEventCallback) and where a finished job's event goes.

Assumptions (the docs are silent; the conservative reading is taken):
* SetEventCallback requires ``CallbackType``; HTTP requires ``CallbackURL`` (http/https, <= 256
  bytes); MNS requires ``CallbackQueueName`` starting ``ice-callback-``; ``AuthKey`` <= 32 chars with
  upper, lower case and digits; ``AuthSwitch=on`` needs a key. An empty ``EventTypeList`` means every
  event type.
* Callback target: ``UserData.NotifyAddress`` (http/https) first, else the SetEventCallback URL when
  its type is HTTP and its EventTypeList admits ``SnapshotComplete``. The AuthSwitch/AuthKey of the
  event-callback setting sign every HTTP callback, a per-job NotifyAddress too (with that URL).
  A NotifyAddress naming an MNS queue (``ice-callback-*``) is recorded but not delivered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from localcloud.ice.models.base import ModelState, invalid_parameter, missing_parameter
from localcloud.ice.models.jobs import SnapshotJob

SNAPSHOT_EVENT = "SnapshotComplete"
CALLBACK_URL_MAX_BYTES = 256
AUTH_KEY_MAX_CHARS = 32


@dataclass(frozen=True)
class EventCallback:
    callback_type: str | None = None
    callback_url: str | None = None
    callback_queue_name: str | None = None
    event_type_list: str | None = None
    auth_switch: str = "off"
    auth_key: str | None = None

    def admits(self, event_type: str) -> bool:
        names = [n.strip() for n in (self.event_type_list or "").split(",") if n.strip()]
        return not names or event_type in names


@dataclass(frozen=True)
class CallbackTarget:
    """Where a job's completion event goes: ``kind`` is ``HTTP`` or ``MNS``."""

    kind: str
    address: str
    auth_key: str | None


class EventCallbackBackend(ModelState):
    """The event-callback setting of one account in one region."""

    _event_callback: EventCallback

    def set_event_callback(self, *, callback_type: str | None, callback_url: str | None = None,
                           callback_queue_name: str | None = None, event_type_list: str | None = None,
                           auth_switch: str | None = None, auth_key: str | None = None) -> EventCallback:
        if not callback_type:
            raise missing_parameter("CallbackType")
        if callback_type == "HTTP":
            _check_callback_url(callback_url)
        elif callback_type == "MNS":
            _check_queue_name(callback_queue_name)
        else:
            raise invalid_parameter("CallbackType", f"must be HTTP or MNS, got {callback_type!r}.")
        auth_switch = auth_switch or "off"
        if auth_switch not in ("on", "off"):
            raise invalid_parameter("AuthSwitch", f"must be on or off, got {auth_switch!r}.")
        if auth_key is not None:
            _check_auth_key(auth_key)
        with self._lock:
            if auth_key is None and callback_type == "HTTP":
                auth_key = self._event_callback.auth_key
            if auth_switch == "on" and callback_type == "HTTP" and not auth_key:
                raise missing_parameter("AuthKey")
            self._event_callback = EventCallback(
                callback_type=callback_type,
                callback_url=callback_url if callback_type == "HTTP" else None,
                callback_queue_name=callback_queue_name if callback_type == "MNS" else None,
                event_type_list=event_type_list, auth_switch=auth_switch, auth_key=auth_key)
            return self._event_callback

    def get_event_callback(self) -> EventCallback:
        with self._lock:
            return self._event_callback

    def callback_target(self, job: SnapshotJob) -> CallbackTarget | None:
        """Where ``job``'s completion event goes, or None when nobody asked for one."""
        with self._lock:
            setting = self._event_callback
        auth_key = setting.auth_key if setting.callback_type == "HTTP" and setting.auth_switch == "on" else None
        notify = None
        try:
            user_data = json.loads(job.user_data) if job.user_data else None
        except ValueError:
            user_data = None
        if isinstance(user_data, dict) and isinstance(user_data.get("NotifyAddress"), str):
            notify = user_data["NotifyAddress"]
        if notify and re.match(r"^https?://", notify):
            return CallbackTarget("HTTP", notify, auth_key)
        if notify and notify.startswith("ice-callback-"):
            return CallbackTarget("MNS", notify, None)
        if setting.callback_type == "HTTP" and setting.callback_url and setting.admits(SNAPSHOT_EVENT):
            return CallbackTarget("HTTP", setting.callback_url, auth_key)
        if setting.callback_type == "MNS" and setting.callback_queue_name and setting.admits(SNAPSHOT_EVENT):
            return CallbackTarget("MNS", setting.callback_queue_name, None)
        return None


def _check_callback_url(callback_url: str | None) -> None:
    if not callback_url:
        raise missing_parameter("CallbackURL")
    if not re.match(r"^https?://[^/\s]+", callback_url):
        raise invalid_parameter("CallbackURL", "must be an http:// or https:// URL.")
    if len(callback_url.encode("utf-8")) > CALLBACK_URL_MAX_BYTES:
        raise invalid_parameter("CallbackURL", f"must be at most {CALLBACK_URL_MAX_BYTES} bytes.")


def _check_queue_name(callback_queue_name: str | None) -> None:
    if not callback_queue_name:
        raise missing_parameter("CallbackQueueName")
    if not callback_queue_name.startswith("ice-callback-"):
        raise invalid_parameter("CallbackQueueName", 'must start with "ice-callback-".')


def _check_auth_key(auth_key: str) -> None:
    if not (0 < len(auth_key) <= AUTH_KEY_MAX_CHARS and re.search(r"[A-Z]", auth_key)
            and re.search(r"[a-z]", auth_key) and re.search(r"[0-9]", auth_key)):
        raise invalid_parameter("AuthKey", f"must be 1 to {AUTH_KEY_MAX_CHARS} characters and contain "
                                           "upper-case letters, lower-case letters and digits.")
