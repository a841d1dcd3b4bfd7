"""The local ICE's admin endpoint: test controls over HTTP, under ``/__localcloud/`` on the ICE port.

Not part of ICE: no auth, loopback clients only, JSON in and out. Each call mirrors a method of
:class:`~localcloud.ice.server.LocalIce` (see there for what each control models):

* ``GET /__localcloud/faults``; ``POST /__localcloud/faults`` with the keys of ``set_faults``
  (answers the faults now in force).
* ``GET /__localcloud/deliveries``: the callback delivery log.
* ``POST /__localcloud/reset``.
* ``GET /__localcloud/jobs/held``: ``{"holding": bool, "held": [job ids in submit order]}``;
  ``POST /__localcloud/jobs/hold`` with ``{"hold": true|false}`` answers the same.
* ``POST /__localcloud/jobs/release`` with ``{"job_id": ...}``: processes that held job and answers
  ``{"job_id", "status"}`` once it finished (404 if it is not held); ``POST
  /__localcloud/jobs/release-all`` answers ``{"released": [job ids]}``.
* ``POST /__localcloud/callbacks/redeliver`` with ``{"job_id": ...}``: posts the job's completion
  event once more and answers ``{"job_id", "status"}`` (the receiver's HTTP status, null when it
  could not be reached); 404 for an unknown job, 409 for one without an event to redeliver.

A body that is not a JSON object, or has the wrong keys, answers 400 ``{"error": ...}``.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from localcloud.admin_json import json_object
from localcloud.ice.callbacks import NothingToRedeliver

if TYPE_CHECKING:
    from localcloud.ice.server import LocalIce

PREFIX = "/__localcloud/"

Answer = tuple[int, dict[str, str], bytes]


def _json_answer(status: int, payload: Any) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()



def _job_id(body: bytes) -> str:
    job_id = json_object(body).get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise ValueError('the body must be {"job_id": "<job id>"}')
    return job_id


def _set_faults(ice: LocalIce, body: bytes) -> Answer:
    ice.set_faults(**json_object(body))
    return _json_answer(200, ice.faults())


def _reset(ice: LocalIce, body: bytes) -> Answer:
    ice.reset()
    return _json_answer(200, {"reset": True})


def _holds(ice: LocalIce) -> Answer:
    return _json_answer(200, {"holding": ice.holding(), "held": ice.held_jobs()})


def _hold(ice: LocalIce, body: bytes) -> Answer:
    hold = json_object(body).get("hold")
    if not isinstance(hold, bool):
        raise ValueError('the body must be {"hold": true} or {"hold": false}')
    ice.hold_jobs(hold)
    return _holds(ice)


def _release(ice: LocalIce, body: bytes) -> Answer:
    job_id = _job_id(body)
    return _json_answer(200, {"job_id": job_id, "status": ice.release_job(job_id)})


def _redeliver(ice: LocalIce, body: bytes) -> Answer:
    job_id = _job_id(body)
    return _json_answer(200, {"job_id": job_id, "status": ice.redeliver_callback(job_id)})


#: The admin calls: (method, name) -> what answers it.
_CALLS: dict[tuple[str, str], Callable[[LocalIce, bytes], Answer]] = {
    ("GET", "faults"): lambda ice, body: _json_answer(200, ice.faults()),
    ("POST", "faults"): _set_faults,
    ("GET", "deliveries"): lambda ice, body: _json_answer(200, ice.deliveries()),
    ("POST", "reset"): _reset,
    ("GET", "jobs/held"): lambda ice, body: _holds(ice),
    ("POST", "jobs/hold"): _hold,
    ("POST", "jobs/release"): _release,
    ("POST", "jobs/release-all"): lambda ice, body: _json_answer(200, {"released": ice.release_all()}),
    ("POST", "callbacks/redeliver"): _redeliver,
}


def answer(ice: LocalIce, method: str, name: str, body: bytes, loopback: bool) -> Answer:
    """The answer to the admin call ``method`` ``PREFIX + name``."""
    if not loopback:
        return _json_answer(403, {"error": "the admin endpoint answers loopback clients only"})
    call = _CALLS.get((method, name))
    if call is None:
        return _json_answer(404, {"error": f"unknown admin call {method} {PREFIX}{name}"})
    try:
        return call(ice, body)
    except NothingToRedeliver as exc:
        return _json_answer(409, {"error": str(exc)})
    except LookupError as exc:  # no such job (held, or at all)
        return _json_answer(404, {"error": str(exc)})
    except (ValueError, TypeError) as exc:
        return _json_answer(400, {"error": str(exc)})
