"""One Function Compute instance: a process that imports a handler once and serves invocations.

Protocol with localcloud.fc (one JSON object per line): the runner writes
``{"event_b64": ..., "context": {...}}`` on stdin; the worker answers
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_type", "error_message", "traceback"}``
on the protocol stream. The handler's own stdout (its logs) goes to stderr, which the
runner collects, so prints never corrupt the protocol.

Usage: python -m localcloud.fc_worker CODE_DIR MODULE.FUNCTION
"""
from __future__ import annotations

import base64
import importlib
import json
import os
import sys
import traceback
from types import SimpleNamespace


def make_context(ctx: dict) -> SimpleNamespace:
    """The python3.10 runtime's context object: attributes as documented for FC 3.0."""
    creds = ctx.get("credentials") or {}
    return SimpleNamespace(
        request_id=ctx.get("request_id"),
        credentials=SimpleNamespace(
            access_key_id=creds.get("access_key_id"),
            access_key_secret=creds.get("access_key_secret"),
            security_token=creds.get("security_token"),
        ),
        function=SimpleNamespace(**ctx.get("function", {})),
        service=SimpleNamespace(**ctx.get("service", {})),
        region=ctx.get("region"),
        account_id=ctx.get("account_id"),
        tracing=SimpleNamespace(),
    )


def main() -> None:
    code_dir, handler_name = sys.argv[1], sys.argv[2]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the handler's prints and logs go to stderr
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.path.insert(0, code_dir)
    os.chdir(code_dir)
    module_name, _, function_name = handler_name.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # an import error is reported on every invocation, as FC does
        handler, import_error = None, exc
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if handler is None:
                raise import_error
            result = handler(base64.b64decode(request["event_b64"]), make_context(request["context"]))
            if isinstance(result, bytes):
                result = result.decode("utf-8", "replace")
            answer = {"ok": True, "result": result}
        except Exception as exc:
            traceback.print_exc()
            answer = {"ok": False, "error_type": type(exc).__name__, "error_message": str(exc),
                      "traceback": traceback.format_exc()}
        sys.stdout.flush()
        protocol.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
