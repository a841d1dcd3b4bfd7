"""Wiring for the functions: settings, credentials and adapters, built once per instance.

Function Compute reuses a warm instance for many invocations: the settings and the
clients (with their connection pools) are cached; credentials are refreshed from each
invocation's context because the function role's STS token rotates. Each invocation gets
its own deadline (its start plus the function's timeout), and adapters bound to it: the
cached ones are never changed, so nothing of one invocation leaks into the next. What the SDKs
import but the functions never use is deferred (:mod:`.deferred_imports`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import credentials as creds
from . import deferred_imports
from .ice import IceClient
from .retry import Deadline
from .settings import Settings
from .store import OssStore

DEFAULT_TIMEOUT_S = 60
DEADLINE_RESERVE_S = 2.0


@dataclass(frozen=True)
class Services:
    settings: Settings
    ice: IceClient
    store: OssStore
    deadline: Deadline
    timeout_s: float
    request_id: str | None


@dataclass(frozen=True)
class _Clients:
    credentials: creds.Credentials
    ice: IceClient
    store: OssStore


_settings: Settings | None = None
_clients: _Clients | None = None


def function_timeout(context: Any) -> float:
    timeout = getattr(getattr(context, "function", None), "timeout", None)
    try:
        return float(timeout) if timeout else DEFAULT_TIMEOUT_S
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT_S


def _cached_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def _cached_clients(settings: Settings, credentials: creds.Credentials, deadline: Deadline) -> _Clients:
    """The instance's clients, rebuilt only when the credentials changed (a rotated STS token). They are
    never used as they are: each invocation binds them to its own deadline (``with_deadline``)."""
    global _clients
    if _clients is None or _clients.credentials != credentials:
        _clients = _Clients(
            credentials,
            IceClient(endpoint=settings.ice_endpoint, credentials=credentials, region=settings.region,
                      protocol=settings.ice_protocol, deadline=deadline),
            OssStore(endpoint=settings.oss_endpoint, credentials=credentials, deadline=deadline))
    return _clients


def services(context: Any = None, started: float | None = None) -> Services:
    """The adapters for this invocation. ``started`` is when the invocation began (monotonic). The
    SDKs are imported on the adapters' first use, after this: their unused modules stay unloaded."""
    deferred_imports.install()
    settings = _cached_settings()
    timeout = function_timeout(context)
    deadline = Deadline((started if started is not None else time.monotonic()) + timeout,
                        reserve_s=DEADLINE_RESERVE_S)
    clients = _cached_clients(settings, creds.resolve(context), deadline)
    return Services(settings, clients.ice.with_deadline(deadline), clients.store.with_deadline(deadline), deadline,
                    timeout, getattr(context, "request_id", None))
