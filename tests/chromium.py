"""A headless Chromium driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``):
no driver and no WebSocket client, only the protocol's JSON messages on fds 3 and 4, NUL-terminated
(https://chromedevtools.github.io/devtools-protocol/). Enough for the console's browser test:
navigate, evaluate, mouse and keys, file inputs, window size, screenshots."""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

#: Debian's package names the binary ``chromium``; other systems ``chromium-browser`` or Chrome's.
BINARIES = ("chromium", "chromium-browser", "google-chrome")
#: A quiet, offline browser: no GPU, no sandbox (tests run as root in containers), no network of its own.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--mute-audio", "--remote-debugging-pipe")


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, BINARIES) if path), None)


#: Run ``argv[3:]`` with the fds ``argv[1]`` and ``argv[2]`` as its fds 3 and 4.
_ON_3_AND_4 = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
               "os.execv(sys.argv[3], sys.argv[3:])")


def _above_4(*fds: int) -> tuple[int, ...]:
    """The same pipe ends as fds above 4, so that putting them on 3 and 4 never overwrites one of them."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved


class ProtocolError(RuntimeError):
    pass


class Chromium:
    """One browser with one page. Calls block until their answer; events are kept for :meth:`wait_event`."""

    def __init__(self, binary: str, *, width: int = 1280, height: int = 900):
        self._profile = tempfile.mkdtemp(prefix="console-chromium-")
        to_browser_r, self._to_browser = _above_4(*os.pipe())
        self._from_browser, from_browser_w = _above_4(*os.pipe())
        # The protocol's pipe is fds 3 (commands in) and 4 (answers out): a small trampoline puts ours there.
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ON_3_AND_4, str(to_browser_r), str(from_browser_w), binary, *FLAGS,
             f"--user-data-dir={self._profile}", f"--window-size={width},{height}", "about:blank"],
            pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank", session=False)["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable")

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                with self._cond:
                    for raw in messages:
                        message = json.loads(raw)
                        if "id" in message:
                            self._answers[message["id"]] = message
                        else:
                            self.events.append(message)
                    self._cond.notify_all()

    def call(self, method: str, *, session: bool = True, timeout: float = 30, **params: Any) -> dict[str, Any]:
        with self._cond:
            self._next_id += 1
            ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        with self._cond:
            if not self._cond.wait_for(lambda: ident in self._answers, timeout):
                raise TimeoutError(f"{method}: no answer within {timeout:g}s")
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise ProtocolError(f"{method}: {answer['error']}")
        return dict(answer.get("result") or {})

    def page_errors(self) -> list[str]:
        """The uncaught exceptions of the page's scripts so far."""
        with self._cond:
            return [str(e["params"]["exceptionDetails"].get("exception", {}).get("description"))
                    for e in self.events if e.get("method") == "Runtime.exceptionThrown"]

    # --- what a test does -------------------------------------------------------------------------
    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                           timeout=timeout)
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression[:80]!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, what: str = "") -> Any:
        """Poll until ``expression`` is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what or expression} not true within {timeout:g}s")
            time.sleep(0.2)

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'", what="page load")

    def set_files(self, selector: str, *paths: Path) -> None:
        """Choose files in an ``<input type=file>`` as a person would in the file dialog."""
        found = self.call("Runtime.evaluate", expression=f"document.querySelector({json.dumps(selector)})")
        self.call("DOM.setFileInputFiles", files=[str(p) for p in paths], objectId=found["result"]["objectId"])

    def move_mouse(self, x: float, y: float) -> None:
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)

    def press(self, key: str, code: str, key_code: int, *, shift: bool = False) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=code, windowsVirtualKeyCode=key_code,
                      modifiers=8 if shift else 0, **({"text": "\r"} if key == "Enter" and kind == "keyDown" else {}))

    def resize(self, width: int, height: int, *, mobile: bool = False) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=mobile)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False, timeout=5)
        except (ProtocolError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        os.close(self._to_browser)
        shutil.rmtree(self._profile, ignore_errors=True)
