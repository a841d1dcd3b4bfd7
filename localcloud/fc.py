"""A local Function Compute: runs the functions s.yaml declares, as FC 3.0 invokes them.

- Each function runs in instance *processes* (``localcloud.fc_worker``), started on demand
  up to ``max_instances`` and reused while warm, with the function's own environment and
  the python3.10 runtime's ``context`` (STS credentials, function, region...).
- OSS triggers: notification records from the local OSS are matched against the
  trigger's events (by name or ``oss:<group>:*``), prefix and suffix (case-sensitive, as OSS filters are) and delivered
  as ``{"events": [record]}`` by *asynchronous* invocation (``localcloud.fc_async``): queued, retried
  with backoff when the handler raises, up to ``asyncInvokeConfig.maxAsyncRetryAttempts``, then
  handed to the function's onFailure destination.
- Timer triggers: ``@every <n>s|m|h`` schedules deliver FC's timer event
  ``{"triggerTime", "triggerName", "payload"}`` asynchronously (cron expressions are not run
  locally; :meth:`LocalFc.fire_timer` delivers one tick on demand).
- HTTP triggers: an HTTP server per function (``localcloud.fc_http``: bodies as FC's gateway
  hands them over, chunked ones decoded) turns each request into the FC 3.0 HTTP-trigger event
  (``fc_http.http_event``) and maps the returned ``{statusCode, headers, body, isBase64Encoded}``
  dict to the response (a plain string result is a 200 with that body; a handler that raises
  answers 502 with ``x-fc-error-type: UnhandledInvocationError``).
"""
from __future__ import annotations

import base64
import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .fc_async import AsyncInvoker
from .fc_http import TriggerServer
from .fc_worker import split_end_of_invocation
from .slsyaml import FunctionSpec

# How long an instance may take to hand over the log lines it wrote before answering: they are
# already in the pipe, so only a machine at a standstill needs more than a moment.
LOG_DRAIN_TIMEOUT_S = 60.0


class InvocationError(RuntimeError):
    def __init__(self, error_type: str, message: str):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass
class Invocation:
    function: str
    request_id: str
    trigger: str  # oss | http | direct
    attempt: int
    ok: bool
    duration_s: float  # from the trigger's request to the answer, waiting for a free instance included
    error: str | None = None
    #: What FC would bill: from the instance's start (a cold one) or its assignment (a warm one) to the
    #: answer; not the wait for an instance, which only a local FC with max_instances has.
    billed_s: float = 0.0
    result: Any = field(default=None, repr=False)


class _Instance:
    """One warm instance process.

    Its log lines are read one record per line by a pump thread; an invocation returns only once
    the pump has read the worker's end-of-invocation marker, so its logs are complete by then."""

    def __init__(self, pool: FunctionPool):
        self.pool = pool
        self.billed_from = time.monotonic()  # the current invocation's: its start, or its assignment when warm
        env = dict(pool.base_env)
        env.update(pool.spec.environment)
        env.update(pool.env_overrides)
        env["PYTHONUNBUFFERED"] = "1"
        handler = pool.spec.props.get("handler", "index.handler")
        self.proc = subprocess.Popen(
            [pool.python, "-m", "localcloud.fc_worker", str(pool.code_dir), handler],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            encoding="utf-8", errors="replace", cwd=str(pool.code_dir),
            start_new_session=True,  # a process group of its own, so kill() ends what the handler started
        )
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr  # all three are pipes
        self._requests, self._answers, log_lines = self.proc.stdin, self.proc.stdout, self.proc.stderr
        self._invocations = 0
        self._invocations_logged = 0
        self._logs_closed = False
        self._logs_read = threading.Condition()
        self._pump = threading.Thread(target=self._pump_logs, args=(log_lines,), daemon=True)
        self._pump.start()

    def _pump_logs(self, log_lines: IO[str]) -> None:
        for line in log_lines:
            record = line.rstrip("\n")
            text, ended = split_end_of_invocation(record)
            if ended != self._invocations_logged + 1:  # not the next invocation's end: the handler's text
                self.pool.record_log(record)
                continue
            if text:
                self.pool.record_log(text)
            with self._logs_read:
                self._invocations_logged = ended
                self._logs_read.notify_all()
        with self._logs_read:
            self._logs_closed = True
            self._logs_read.notify_all()

    def _wait_for_logs(self, timeout_s: float) -> bool:
        """Until every log line of the invocations so far is recorded (or the process is gone)."""
        with self._logs_read:
            return self._logs_read.wait_for(
                lambda: self._invocations_logged >= self._invocations or self._logs_closed, timeout_s)

    def _read_answer(self, timeout_s: float, during: str) -> str:
        """The worker's next protocol line; the instance is killed if none comes within ``timeout_s``."""
        answer: list[str] = []
        reader = threading.Thread(target=lambda: answer.append(self._answers.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        timed_out = reader.is_alive()  # asked before the kill, which ends the reader too
        if timed_out or not answer or not answer[0]:
            self.kill()
            if timed_out:
                raise InvocationError("FunctionTimeout", f"{during} exceeded the function timeout of {timeout_s:g}s")
            raise InvocationError("InstanceExited", f"the instance process exited during the {during}")
        return answer[0]

    def wait_ready(self, timeout_s: float) -> None:
        """Until the worker has imported its handler (``{"ready": true}``)."""
        self._read_answer(timeout_s, "instance start")

    def invoke(self, event: bytes, context: dict[str, Any], timeout_s: float) -> Any:
        request = json.dumps({"event_b64": base64.b64encode(event).decode(), "context": context})
        self._invocations += 1
        self._requests.write(request + "\n")
        self._requests.flush()
        answer = self._read_answer(timeout_s, "invocation")
        if not self._wait_for_logs(LOG_DRAIN_TIMEOUT_S):
            self.kill()
            raise InvocationError("LocalFcError", f"the instance's logs did not end within {LOG_DRAIN_TIMEOUT_S:g}s")
        reply = json.loads(answer)
        self.pool.note_peak_rss(reply.get("peak_rss_kb"))
        if not reply["ok"]:
            raise InvocationError(reply["error_type"], reply["error_message"])
        return reply["result"]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Stop the instance, and any process its handler started (they share the log pipe, as FC
        ends them together); what it logged before dying is recorded by the time this returns."""
        with contextlib.suppress(ProcessLookupError):  # the instance and all it started are gone
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._wait_for_logs(LOG_DRAIN_TIMEOUT_S)
        for stream in (self._requests, self._answers):
            try:
                stream.close()
            except OSError:
                pass


class FunctionPool:
    """Instances of one function, started on demand up to ``max_instances``."""

    def __init__(self, spec: FunctionSpec, *, code_dir: Path, context_base: dict, env_overrides: dict[str, str],
                 max_instances: int = 4, python: str = sys.executable, echo_logs: bool = False,
                 starts: threading.Semaphore | None = None):
        self.spec = spec
        self._starts = starts or threading.Semaphore(os.cpu_count() or 1)  # see LocalFc
        self.code_dir = Path(code_dir)
        self.context_base = context_base
        self.env_overrides = env_overrides
        self.max_instances = max_instances
        self.python = python
        self.echo_logs = echo_logs
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "PYTEST_"))}
        self.logs: collections.deque[str] = collections.deque(maxlen=20000)
        self._idle: list[_Instance] = []
        self._waiting: collections.deque[object] = collections.deque()  # invocations waiting, in arrival order
        self._count = 0
        self._cond = threading.Condition()
        self._stopped = False
        self.started_instances = 0
        self.peak_rss_kb = 0  # the largest peak resident memory any instance reported (fc_worker)
        self.busy: set[_Instance] = set()  # instances inside an invocation (LocalFc.kill_instances)

    def note_peak_rss(self, kib: int | None) -> None:
        with self._cond:
            self.peak_rss_kb = max(self.peak_rss_kb, kib or 0)

    def record_log(self, line: str) -> None:
        self.logs.append(line)
        if self.echo_logs:
            print(f"[{self.spec.name}] {line}", file=sys.stderr, flush=True)

    def _acquire(self) -> _Instance:
        """A free instance, or the right to start one; waiting invocations are served first come, first
        served (without the queue, an invoker that just released an instance would take it again before
        a woken waiter ran, and in a burst some early events waited for all the later ones)."""
        turn = object()
        with self._cond:
            self._waiting.append(turn)
            try:
                while True:
                    if self._stopped:
                        raise InvocationError("LocalFcStopped", "the local Function Compute is stopping")
                    if self._waiting[0] is turn:
                        inst = self._take_idle()
                        if inst is not None:
                            return inst
                        if self._count < self.max_instances:
                            self._count += 1
                            break
                    self._cond.wait()
            finally:
                self._waiting.remove(turn)
                self._cond.notify_all()  # the next in line looks again
        try:
            inst = self._start_instance()
        except Exception:
            with self._cond:
                self._count -= 1
                self._cond.notify_all()
            raise
        self.started_instances += 1
        return inst

    def _take_idle(self) -> _Instance | None:
        """A warm instance, busy from now on (the caller holds the lock); dead ones are forgotten."""
        while self._idle:
            inst = self._idle.pop()
            if inst.alive:
                self.busy.add(inst)
                inst.billed_from = time.monotonic()
                return inst
            self._count -= 1
        return None

    def _start_instance(self) -> _Instance:
        """A new instance, busy, once its handler is imported; one start per core at a time."""
        with self._starts:
            inst = _Instance(self)
            with self._cond:  # busy from here on, so a stop() while it starts ends it
                stopped = self._stopped
                if not stopped:
                    self.busy.add(inst)
            if stopped:
                inst.kill()
                raise InvocationError("LocalFcStopped", "the local Function Compute is stopping")
            try:
                inst.wait_ready(self.spec.timeout_s)
            except InvocationError:
                with self._cond:
                    self.busy.discard(inst)
                    stopped = self._stopped
                if stopped:
                    raise InvocationError("LocalFcStopped", "the local Function Compute is stopping") from None
                raise
        return inst

    def _release(self, inst: _Instance) -> None:
        with self._cond:
            self.busy.discard(inst)
            kept = inst.alive and not self._stopped
            if kept:
                self._idle.append(inst)
            else:
                self._count -= 1
            self._cond.notify_all()
        if not kept:  # an invocation that began as the pool stopped: its instance ends with it
            inst.kill()

    def invoke(self, event: bytes, request_id: str | None = None,
               on_billed: Callable[[float], object] | None = None) -> Any:
        """One invocation on a free instance (started if none); ``on_billed(seconds)`` gets its billed time."""
        context = dict(self.context_base, request_id=request_id or str(uuid.uuid4()))
        props = self.spec.props
        context["function"] = {"name": props.get("functionName", self.spec.name), "handler": props.get("handler"),
                               "memory": props.get("memorySize", 512), "timeout": self.spec.timeout_s}
        inst = self._acquire()  # busy from here on, so stop() ends it
        try:
            return inst.invoke(event, context, self.spec.timeout_s)
        finally:
            if on_billed is not None:
                on_billed(time.monotonic() - inst.billed_from)
            self._release(inst)

    def stop(self) -> None:
        """End every instance, and start none after this. One inside an invocation is killed as a crash
        would kill it (its invocation fails InstanceExited), or it would outlive the local cloud."""
        with self._cond:
            self._stopped = True
            idle, self._idle = self._idle, []
            busy = list(self.busy)
            self._cond.notify_all()
        for inst in idle:
            inst.kill()
        for inst in busy:  # the invoking thread sees the process end, and cleans up after it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(inst.proc.pid, signal.SIGKILL)


def timer_event(trigger: Mapping[str, Any]) -> dict[str, Any]:
    """FC's timer-trigger event."""
    cfg = trigger.get("triggerConfig") or {}
    return {"triggerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "triggerName": trigger.get("triggerName", ""), "payload": cfg.get("payload", "")}


def every_seconds(expression: str) -> float | None:
    """Seconds of an ``@every 10m`` schedule; None for a cron expression."""
    m = re.fullmatch(r"@every\s+(\d+)([smh])", expression.strip())
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)] if m else None


class LocalFc:
    """The functions of s.yaml, with their OSS and HTTP triggers."""

    def __init__(self, functions: dict[str, FunctionSpec], *, code_dirs: dict[str, Path], context_base: dict,
                 env_overrides: dict[str, str], host: str = "127.0.0.1", max_instances: int = 4,
                 retry_base_s: float = 0.5, python: str = sys.executable, echo_logs: bool = False):
        # Instances start at most one per core at a time, in all functions together: a burst would
        # otherwise start 16 at once on 2 cores, each taking 8x as long as on FC, where every instance
        # has its own CPU; the first ones now serve while the others start.
        starts = threading.Semaphore(os.cpu_count() or 1)
        self.pools = {name: FunctionPool(spec, code_dir=code_dirs[name], context_base=context_base,
                                         env_overrides=env_overrides, max_instances=max_instances,
                                         python=python, echo_logs=echo_logs, starts=starts)
                      for name, spec in functions.items()}
        self.host = host
        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()
        self._http: dict[str, TriggerServer] = {}
        self._stopping = threading.Event()
        self.on_invocation: Callable[[Invocation], None] | None = None
        self.async_invoker = AsyncInvoker(functions, self._invoke_async_attempt, retry_base_s=retry_base_s,
                                          region=str(context_base.get("region", "")),
                                          account_id=str(context_base.get("account_id", "")),
                                          workers=max_instances * max(1, len(functions)))

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, http_ports: dict[str, int] | None = None) -> LocalFc:
        """Serve the triggers; an HTTP trigger without a port in ``http_ports`` gets a free one."""
        for name, pool in self.pools.items():
            if any(t.get("triggerType") == "http" for t in pool.spec.triggers):
                server = TriggerServer(self, pool, self.host, (http_ports or {}).get(name, 0))
                server.thread.start()
                self._http[name] = server
        for name, pool in self.pools.items():
            for trigger in pool.spec.triggers:
                cfg = trigger.get("triggerConfig") or {}
                period = every_seconds(str(cfg.get("cronExpression", "")))
                if trigger.get("triggerType") == "timer" and cfg.get("enable") and period:
                    threading.Thread(target=self._timer_loop, args=(name, trigger, period), daemon=True).start()
        self.async_invoker.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.async_invoker.stop()
        for server in self._http.values():
            server.shutdown()
            server.server_close()
        for pool in self.pools.values():
            pool.stop()

    def url(self, function: str) -> str:
        """The base URL of ``function``'s HTTP trigger."""
        return self._http[function].url

    # --- invocations ----------------------------------------------------------------------------
    def _record(self, inv: Invocation) -> None:
        with self._lock:
            self.invocations.append(inv)
        if self.on_invocation:
            self.on_invocation(inv)

    def invoke(self, function: str, event: bytes, *, trigger: str = "direct", attempt: int = 1,
               request_id: str | None = None) -> Any:
        """Invoke synchronously; raises InvocationError when the handler raises."""
        pool = self.pools[function]
        request_id = request_id or str(uuid.uuid4())
        started = time.monotonic()
        billed: list[float] = []
        try:
            result = pool.invoke(event, request_id, on_billed=billed.append)
        except InvocationError as exc:
            duration_s = time.monotonic() - started
            self._record(Invocation(function, request_id, trigger, attempt, False, duration_s, str(exc),
                                    billed_s=sum(billed)))
            raise
        duration_s = time.monotonic() - started
        self._record(Invocation(function, request_id, trigger, attempt, True, duration_s, result=result,
                                billed_s=sum(billed)))
        return result

    def invoke_http(self, pool: FunctionPool, event: dict[str, Any],
                    request_id: str) -> tuple[int, dict[str, str], bytes]:
        """Invoke for an HTTP trigger; the response's status, headers and body."""
        try:
            result = self.invoke(pool.spec.name, json.dumps(event).encode(), trigger="http", request_id=request_id)
        except InvocationError as exc:
            error = json.dumps({"errorType": exc.error_type, "errorMessage": exc.message}).encode()
            return 502, {"Content-Type": "application/json", "x-fc-error-type": "UnhandledInvocationError"}, error
        if isinstance(result, dict) and "statusCode" in result:
            body = result.get("body") or ""
            payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
            return int(result["statusCode"]), dict(result.get("headers") or {}), payload
        text = result if isinstance(result, str) else json.dumps(result)
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, text.encode("utf-8")

    def invoke_async(self, function: str, event: bytes) -> str:
        """Queue an asynchronous invocation (see ``localcloud.fc_async``); its request id."""
        return self.async_invoker.submit(function, event)

    def _invoke_async_attempt(self, function: str, event: bytes, attempt: int,
                              request_id: str) -> tuple[str, str] | None:
        try:
            self.invoke(function, event, trigger="async", attempt=attempt, request_id=request_id)
        except InvocationError as exc:
            return exc.error_type, exc.message
        return None

    def wait_idle(self, timeout: float = 60) -> bool:
        """Until every asynchronous invocation, with its retries and destinations, has finished."""
        return self.async_invoker.wait_idle(timeout)

    def kill_instances(self, function: str) -> int:
        """SIGKILL ``function``'s invoking instances as a crash would (async invocations are retried)."""
        busy = list(self.pools[function].busy)
        for inst in busy:
            with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
                os.killpg(inst.proc.pid, signal.SIGKILL)
        return len(busy)

    # --- timer trigger --------------------------------------------------------------------------
    def _timer_loop(self, function: str, trigger: dict, period: float) -> None:
        while not self._stopping.wait(period):
            self.invoke_async(function, json.dumps(timer_event(trigger)).encode())

    def fire_timer(self, function: str) -> Any:
        """Deliver one timer tick to ``function`` synchronously and return its result."""
        (trigger,) = [t for t in self.pools[function].spec.triggers if t.get("triggerType") == "timer"]
        return self.invoke(function, json.dumps(timer_event(trigger)).encode(), trigger="timer")

    # --- OSS trigger ----------------------------------------------------------------------------
    def on_oss_record(self, record: dict) -> None:
        """Deliver an OSS notification record to every function whose OSS trigger matches it."""
        for name, pool in self.pools.items():
            for trigger in pool.spec.triggers:
                if oss_trigger_matches(trigger, record):
                    self.invoke_async(name, json.dumps({"events": [record]}).encode())


def oss_trigger_matches(trigger: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Whether a native OSS trigger fires for ``record``: its bucket, an event it names (``oss:``-prefixed,
    or ``oss:<group>:*``), its key prefix and suffix (case-sensitive, as OSS filters are)."""
    if trigger.get("triggerType") != "oss":
        return False
    bucket, key = record["oss"]["bucket"]["name"], record["oss"]["object"]["key"]
    event_name = "oss:" + record["eventName"]
    arn_bucket = str(trigger.get("sourceArn", "")).rsplit(":", 1)[-1]
    cfg = trigger.get("triggerConfig") or {}
    events = cfg.get("events") or []
    filt = (cfg.get("filter") or {}).get("key") or {}
    if arn_bucket and arn_bucket != bucket:
        return False
    if event_name not in events and event_name.rpartition(":")[0] + ":*" not in events:
        return False
    return key.startswith(filt.get("prefix") or "") and key.endswith(filt.get("suffix") or "")
