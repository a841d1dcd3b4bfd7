"""Wiring for the functions: settings, credentials and adapters, built once per instance.

Function Compute reuses a warm instance for many invocations: the settings and the
clients (with their connection pools) are cached; credentials are refreshed from each
invocation's context because the function role's STS token rotates; each invocation gets
its own deadline (its start plus the function's timeout) for the retries.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import credentials as creds
from .ice import Ice
from .retry import Deadline
from .settings import Settings
from .store import ObjectStore

DEFAULT_TIMEOUT_S = 60
DEADLINE_RESERVE_S = 2.0


@dataclass
class Services:
    settings: Settings
    ice: Ice
    store: ObjectStore
    timeout_s: float
    request_id: str | None


_cache: dict[str, Any] = {}


def function_timeout(context: Any) -> float:
    timeout = getattr(getattr(context, "function", None), "timeout", None)
    try:
        return float(timeout) if timeout else DEFAULT_TIMEOUT_S
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT_S


def services(context: Any = None, started: float | None = None) -> Services:
    """The adapters for this invocation. ``started`` is when the invocation began (monotonic)."""
    settings = _cache.get("settings")
    if settings is None:
        settings = _cache["settings"] = Settings.from_env()
    credentials = creds.resolve(context)
    if _cache.get("credentials") != credentials:
        _cache["ice"] = Ice(endpoint=settings.ice_endpoint, credentials=credentials, region=settings.region,
                            protocol=settings.ice_protocol)
        _cache["store"] = ObjectStore(endpoint=settings.oss_endpoint, credentials=credentials)
        _cache["credentials"] = credentials
    timeout = function_timeout(context)
    deadline = Deadline((started if started is not None else time.monotonic()) + timeout,
                        reserve_s=DEADLINE_RESERVE_S)
    ice, store = _cache["ice"], _cache["store"]
    ice.deadline = store.deadline = deadline
    return Services(settings, ice, store, timeout, getattr(context, "request_id", None))
