"""One Function Compute instance: a process that imports a handler once and serves invocations.

Protocol with localcloud.fc (one JSON object per line): once the handler is imported, the worker
writes ``{"ready": true}`` on the protocol stream; then the runner writes
``{"event_b64": ..., "context": {...}}`` on stdin; the worker answers
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_type", "error_message", "traceback"}``
on the protocol stream, each with ``peak_rss_kb``: the instance's peak resident memory so far (what
FC's memory size must hold, :func:`peak_rss_kb`). The handler's own output (its logs, on stdout or
stderr) goes to stderr, which the runner collects, so prints never corrupt the protocol. Log lines
are written whole, one write each, so lines from the handler's threads never merge; after each
invocation, and before its answer, the worker writes the invocation's :func:`end_of_invocation`
record on the log stream, so the runner knows when it has read every line of that invocation.

Usage: python -m localcloud.fc_worker CODE_DIR MODULE.FUNCTION
"""
from __future__ import annotations

import base64
import importlib
import io
import json
import os
import resource
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

# Starts with the ASCII record separator, which handlers do not write in their logs; the
# invocation's number follows, so even a handler that prints this text cannot end an invocation.
INVOCATION_END = "\x1elocalcloud-fc:end-of-invocation:"

Handler = Callable[[bytes, SimpleNamespace], Any]


def end_of_invocation(number: int) -> str:
    """The log record that ends the instance's invocation ``number`` (1, 2, ...)."""
    return f"{INVOCATION_END}{number}"


def split_end_of_invocation(record: str) -> tuple[str, int | None]:
    """(the log text before the marker, the number of the invocation it ends), or (record, None).

    Text can precede the marker on its line: what the handler wrote straight to the file
    descriptor without a newline (a C library, a child process) is not held back by LineWriter."""
    text, marker, number = record.rpartition(INVOCATION_END)
    if not marker or not number.isdigit():
        return record, None
    return text, int(number)


class LineWriter(io.RawIOBase):
    """Bytes from any thread out to ``fd`` as whole lines only, each batch with one locked ``os.write``.

    ``print`` writes the text and the newline separately; keeping each thread's unfinished line
    apart until its newline means lines from concurrent writers can never be merged onto one.
    The handler sees it through :func:`text_stream`, an ordinary ``sys.stdout`` with a ``buffer``."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._lock = threading.Lock()
        self._unfinished: dict[int, bytes] = {}

    @property
    def name(self) -> int:  # as an io.FileIO opened on a descriptor names itself
        return self._fd

    def fileno(self) -> int:
        return self._fd

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        thread = threading.get_ident()
        with self._lock:
            lines, newline, rest = (self._unfinished.pop(thread, b"") + chunk).rpartition(b"\n")
            if rest:
                self._unfinished[thread] = rest
            self._emit(lines + newline)
        return len(chunk)

    def end_unfinished_lines(self) -> None:
        """Terminate every thread's unfinished line: nothing of an invocation is held back."""
        with self._lock:
            unfinished, self._unfinished = self._unfinished, {}
            self._emit(b"".join(rest + b"\n" for rest in unfinished.values()))

    def _emit(self, data: bytes) -> None:
        while data:
            data = data[os.write(self._fd, data):]


def text_stream(lines: LineWriter) -> io.TextIOWrapper:
    """The handler's ``sys.stdout``/``sys.stderr``: each write goes to ``lines`` at once, in its thread."""
    return io.TextIOWrapper(lines, encoding="utf-8", errors="replace", write_through=True)


def make_context(ctx: dict[str, Any]) -> SimpleNamespace:
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


def load_handler(name: str) -> Handler:
    """``module.function``; a handler that fails to import fails every invocation, as on FC."""
    module_name, _, function_name = name.rpartition(".")
    try:
        handler: Handler = getattr(importlib.import_module(module_name), function_name)
        return handler
    except Exception as exc:
        import_error = exc

    def report_import_error(event: bytes, context: SimpleNamespace) -> Any:
        raise import_error

    return report_import_error


def invoke(handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
    """Run one invocation; the answer the runner reads."""
    try:
        result = handler(base64.b64decode(request["event_b64"]), make_context(request["context"]))
    except Exception as exc:
        traceback.print_exc()
        return {"ok": False, "error_type": type(exc).__name__, "error_message": str(exc),
                "traceback": traceback.format_exc()}
    if isinstance(result, bytes):
        result = result.decode("utf-8", "replace")
    return {"ok": True, "result": result}


def peak_rss_kb() -> int:
    """This process's peak resident set size in KiB: Linux's VmHWM. Not ``ru_maxrss``, which keeps
    the RSS of the process that started this one (the local cloud's, when spawned with vfork)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # elsewhere: the best there is


def main() -> None:
    # FC never sends an instance SIGINT; a Ctrl-C meant for the local cloud must not end an
    # invocation halfway (or print a KeyboardInterrupt): the local FC stops its instances itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code_dir, handler_name = sys.argv[1], sys.argv[2]
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # what writes to file descriptor 1 directly lands in the logs too
    logs = LineWriter(2)
    sys.stdout = sys.stderr = text_stream(logs)
    sys.path.insert(0, code_dir)
    os.chdir(code_dir)
    handler = load_handler(handler_name)
    protocol.write(json.dumps({"ready": True}) + "\n")  # the runner counts the start from here
    try:
        for number, line in enumerate(sys.stdin, start=1):
            answer = invoke(handler, json.loads(line))
            answer["peak_rss_kb"] = peak_rss_kb()
            logs.end_unfinished_lines()
            logs.write(f"{end_of_invocation(number)}\n".encode())
            protocol.write(json.dumps(answer, default=str) + "\n")
    finally:  # a handler that ends the process (sys.exit) mid-line still has that line logged
        logs.end_unfinished_lines()


if __name__ == "__main__":
    main()
