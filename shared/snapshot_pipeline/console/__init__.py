"""The web console: uploads and their states, a video's pictures and player, an upload box.

Served by ``snapshots console`` (the operator's credentials, read only unless ``--allow-upload``)
and by ``python -m localcloud up`` (its ``console_url``). Never deployed: no function imports it.
"""
from __future__ import annotations

from .api import ConsoleApi, ConsoleConfig, UrlSigner
from .server import ConsoleServer

__all__ = ["ConsoleApi", "ConsoleConfig", "ConsoleServer", "UrlSigner"]
