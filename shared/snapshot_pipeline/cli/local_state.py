"""The local cloud's state file: written by ``python -m localcloud up``, read by ``snapshots --local``.

It holds what a client needs to talk to a running local cloud (endpoints, bucket, the local
credentials) and the pid of the ``up`` process, so a state whose process is gone is recognised
as stale. Both sides use this module, so they agree on every path.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import EXIT_NO_ACCESS, CliError

#: A state file to use instead of searching (then only that file).
LOCAL_STATE_ENV = "SNAPSHOTS_LOCAL_STATE"
#: Relative to a project directory: ``up`` writes it in its working directory, ``--local`` looks upwards.
PROJECT_STATE_FILE = Path(".localcloud") / "state.json"
REQUIRED_FIELDS = ("oss_endpoint", "bucket", "region", "ice_endpoint", "access_key_id", "access_key_secret")


def user_state_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where ``python -m localcloud up`` records the running local cloud for this user."""
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "video-snapshot-pipeline" / "localcloud.json"


def files_up_writes(environ: Mapping[str, str] = os.environ) -> tuple[Path, Path]:
    """The state files ``up`` writes: the project's (in the working directory), and
    ``$SNAPSHOTS_LOCAL_STATE`` if set, else the per-user file."""
    return PROJECT_STATE_FILE, Path(environ.get(LOCAL_STATE_ENV) or user_state_file(environ))


def write_local_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write the state atomically, readable by this user only (it holds the local credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(dict(state), f)
    os.replace(tmp, path)


def remove_local_state(path: Path, pid: int) -> None:
    """Remove the state file if it still describes the local cloud of process ``pid``."""
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def _process_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or os.name != "posix":
        return True  # nothing to check against
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else
    return True


def _candidates(environ: Mapping[str, str], cwd: Path) -> list[Path]:
    explicit = environ.get(LOCAL_STATE_ENV)
    if explicit:
        return [Path(explicit)]
    return [d / PROJECT_STATE_FILE for d in (cwd, *cwd.parents)] + [user_state_file(environ)]


def find_local_state(environ: Mapping[str, str], cwd: Path) -> dict[str, Any]:
    """The running local cloud: ``$SNAPSHOTS_LOCAL_STATE`` if set (and only it), else the nearest
    ``.localcloud/state.json`` from ``cwd`` up, else the per-user file ``up`` writes. A state whose
    ``pid`` is no longer running is stale and passed over."""
    explicit = bool(environ.get(LOCAL_STATE_ENV))
    stale = []
    for path in _candidates(environ, cwd):
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            if explicit:
                raise CliError(f"{LOCAL_STATE_ENV}={path} does not exist", EXIT_NO_ACCESS) from None
            continue
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read the local cloud state {path}: {exc}", EXIT_NO_ACCESS) from None
        missing = [f for f in REQUIRED_FIELDS if not (isinstance(state, dict) and state.get(f))]
        if missing:
            raise CliError(f"local cloud state {path} lacks {', '.join(missing)}", EXIT_NO_ACCESS)
        if not _process_alive(state.get("pid")):
            stale.append(str(path))
            continue
        return state
    detail = f" (stale: {', '.join(stale)})" if stale else ""
    raise CliError("no running local cloud: start one with `python -m localcloud up`, or set "
                   f"{LOCAL_STATE_ENV} to its state file{detail}", EXIT_NO_ACCESS)
