"""``up --data-dir DIR``: what the local cloud keeps in DIR, so that a restart finds it again.

* ``oss/``: the objects' files and one record per object (:mod:`localcloud.oss.storage`).
* ``ice.json``: the local ICE's state (:meth:`IceModel.state`: templates, jobs, the event
  callback), written whole (temp file + rename) after every call that changes it and before that
  call is answered, so a kill -9 after an answer loses nothing. Jobs that were running when the
  cloud stopped are still ``Init`` there; the restarted cloud runs them again (their callback
  follows as for any job).
* ``credentials.json`` (mode 0600): the access key, its secret and the callback AuthKey, and
  ``ports.json``: the ports the first run was given, reused when not asked for explicitly. So
  clients, ``snapshots --local`` and the callback URLs jobs carry keep working across restarts.

Without a data dir everything is ephemeral, as before (objects in a temporary folder).
"""
from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localcloud.ice.models import STATE_CHANGING_METHODS, IceModel


def write_json_atomically(path: Path, data: Any, mode: int = 0o644) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``."""
    temp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out)
    os.replace(temp, path)


class DataDir:
    """The folder ``--data-dir`` names, and what each part of the local cloud keeps in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.oss = root / "oss"
        self._ice_state = root / "ice.json"
        self._credentials = root / "credentials.json"
        self._ports = root / "ports.json"
        self._save_lock = threading.Lock()
        self._last_saved: dict[str, Any] | None = None  # the ICE state as this process last wrote it
        root.mkdir(parents=True, exist_ok=True)

    def credentials(self, make: Callable[[], dict[str, str]]) -> dict[str, str]:
        """The kept credentials; the first time, ``make()``'s, kept from now on."""
        if self._credentials.is_file():
            kept: dict[str, str] = json.loads(self._credentials.read_text("utf-8"))
            return kept
        made = make()
        write_json_atomically(self._credentials, made, mode=0o600)
        return made

    def kept_ports(self) -> dict[str, int]:
        """The ports of the last run (``oss_port``, ``ice_port``, ``callback_port``), if any."""
        kept: dict[str, int] = json.loads(self._ports.read_text("utf-8")) if self._ports.is_file() else {}
        return kept

    def keep_ports(self, ports: dict[str, int]) -> None:
        write_json_atomically(self._ports, ports)

    def keep_ice(self, model: IceModel) -> None:
        """Restore the model's saved state, and save it after every change from now on."""
        if self._ice_state.is_file():
            model.restore(json.loads(self._ice_state.read_text("utf-8")))
        for name in STATE_CHANGING_METHODS:
            setattr(model, name, self._saving_after(model, getattr(model, name)))

    def _saving_after(self, model: IceModel, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def saving(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            with self._save_lock:  # the state is taken under the lock: the last write is the newest
                state = model.state()
                if state != self._last_saved:  # a repeated call (a duplicate finish...) writes nothing
                    write_json_atomically(self._ice_state, state)
                    self._last_saved = state
            return result
        return saving
