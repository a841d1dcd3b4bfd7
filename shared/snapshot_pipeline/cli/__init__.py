"""``snapshots``: the operator's command line, built on the same library as the functions.

Templates, one-off submissions (the submit function's claims, output naming and UserData), jobs,
snapshot URLs, indexes, the region's event callback, backfilling a bucket that already holds
videos, and the reconciler on demand. ``--local`` talks to a local cloud started with
``python -m localcloud up`` (found through :mod:`.local_state`); otherwise the standard
credential chain and ``--region`` / ``REGION``.

One module per command group (:mod:`.templates`, :mod:`.submit`, :mod:`.jobs`, :mod:`.callback`,
:mod:`.backfill`, :mod:`.reconcile`), the argument table in :mod:`.parser`, the invocation's
wiring in :mod:`.context`, rendering in :mod:`.output`. Never deployed (``make build`` leaves this
package out, and with it ``rich``) and imported by no library module.
Exit codes (:mod:`.errors`): 0 done; 1 an API call or an operation failed; 2 bad arguments or
configuration; 3 no credentials or no running local cloud; 130 interrupted.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Mapping, Sequence

from ..ports import IceError, ObjectStoreError
from ..settings import SettingsError
from .context import PROG, Context, Seams
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CliError, UsageError
from .output import one_line
from .parser import build_parser

__all__ = ["main", "Seams"]


def _describe_ice_error(exc: IceError, ctx: Context) -> str:
    if exc.code == "NetworkError":
        where = ctx.env.get("ICE_ENDPOINT")
        hint = " (is `python -m localcloud up` still running?)" if ctx.args.local else ""
        return f"cannot reach ICE{f' at {where}' if where else ''}: {exc.message}{hint}"
    return f"ICE error {exc}"


def _run(ctx: Context) -> int:
    """The command's exit code; an error it raises becomes one line on stderr."""
    try:
        code: int = ctx.args.handler(ctx)
        return code
    except CliError as exc:
        message, code = str(exc), exc.exit_code
    except SettingsError as exc:
        message, code = str(exc), EXIT_USAGE
    except IceError as exc:
        message, code = _describe_ice_error(exc, ctx), EXIT_FAILED
    except ObjectStoreError as exc:
        message, code = f"OSS error {exc}", EXIT_FAILED
    except KeyboardInterrupt:
        message, code = "interrupted", EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away, e.g. `snapshots jobs list | head -3`
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         seams: Seams | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    return _run(Context(args, os.environ if environ is None else environ, seams or Seams()))
