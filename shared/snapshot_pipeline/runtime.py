"""Wiring for the functions: settings, credentials and adapters, built once per instance.

Function Compute reuses a warm instance for many invocations: the settings and the
clients (with their connection pools) are cached; credentials are refreshed from each
invocation's context because the function role's STS token rotates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import credentials as creds
from .ice import Ice
from .settings import Settings
from .store import ObjectStore


@dataclass
class Services:
    settings: Settings
    ice: Ice
    store: ObjectStore


_cache: dict[str, Any] = {}


def services(context: Any = None) -> Services:
    settings = _cache.get("settings")
    if settings is None:
        settings = _cache["settings"] = Settings.from_env()
    credentials = creds.resolve(context)
    cached = _cache.get("services")
    if cached is not None and _cache.get("credentials") == credentials:
        return cached
    built = Services(
        settings=settings,
        ice=Ice(endpoint=settings.ice_endpoint, credentials=credentials, region=settings.region,
                protocol=settings.ice_protocol),
        store=ObjectStore(endpoint=settings.oss_endpoint, credentials=credentials),
    )
    _cache["services"], _cache["credentials"] = built, credentials
    return built
