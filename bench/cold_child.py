"""A fresh Function Compute instance, for the cold-start benchmark (standard library only).

Run as ``python3.10 -I cold_child.py MODE CODE_DIR [CODE_DIR...]`` with the function's
environment and cwd = the first code dir. ``sys.path`` is the code dirs and the standard library
(no site-packages), as on Function Compute. MODE ``import`` imports ``index`` and reports the
time; ``callback`` also reads ``{"event", "context"}`` from stdin and serves one invocation.
Answers one JSON line on stdout: ``{"import_s", "call_s", "result", "modules", "loaded"}``, ``loaded``
the modules that ran (a deferred module not yet touched is in ``sys.modules`` but has not run).
"""
import sys
import time

t_start = time.perf_counter()
mode, code_dirs = sys.argv[1], sys.argv[2:]
sys.path[:] = code_dirs + [p for p in sys.path if "site-packages" not in p and "dist-packages" not in p]

import json  # noqa: E402
import os  # noqa: E402
from types import SimpleNamespace  # noqa: E402

# As the runtime does: the handler's prints and logs go to the log stream, not the answer.
protocol = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def make_context(ctx):
    creds = ctx.get("credentials") or {}
    return SimpleNamespace(
        request_id=ctx.get("request_id"),
        credentials=SimpleNamespace(access_key_id=creds.get("access_key_id"),
                                    access_key_secret=creds.get("access_key_secret"),
                                    security_token=creds.get("security_token")),
        function=SimpleNamespace(**ctx.get("function", {})), service=SimpleNamespace(),
        region=ctx.get("region"), account_id=ctx.get("account_id"), tracing=SimpleNamespace())


request = json.loads(sys.stdin.read()) if mode == "callback" else None
t0 = time.perf_counter()
import index  # noqa: E402

t1 = time.perf_counter()
result = None
if mode == "callback":
    result = index.handler(request["event"].encode("utf-8"), make_context(request["context"]))
t2 = time.perf_counter()
loaded = sorted(name for name, module in sys.modules.items() if type(module).__name__ != "_LazyModule")
protocol.write(json.dumps({"import_s": t1 - t0, "call_s": t2 - t1, "result": result,
                           "modules": len(sys.modules), "loaded": loaded}) + "\n")
protocol.flush()
