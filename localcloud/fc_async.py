"""Asynchronous invocation in the local Function Compute: a queue, retries, and the onFailure destination.

- An async invocation is queued and run by a worker thread; when the handler raises, it is retried
  under the same request id with exponential backoff (``retry_base_s * 2**(n-1)``), up to the
  function's ``asyncInvokeConfig.maxAsyncRetryAttempts``. An invocation still queued after
  ``maxAsyncEventAgeInSeconds`` is not run again.
- When the last attempt failed (or the event grew too old), and the function's
  ``asyncInvokeConfig.destinationConfig.onFailure.destination`` names a function of s.yaml
  (``acs:fc:<region>:<account>:functions/<name>``, the form of FC 3.0's Destination struct:
  https://www.alibabacloud.com/help/en/functioncompute/api-fc-2023-03-30-struct-destination), that
  function is invoked asynchronously with the destination event Function Compute documents for
  result callbacks (https://www.alibabacloud.com/help/en/fc/user-guide/result-callback, "event content
  sent to the destination")::

      {"timestamp": "2026-12-01T11:21:04.000Z",
       "requestContext": {"requestId": <the failed invocation's request id>,
                          "functionArn": "acs:fc:<region>:<account>:functions/<name>",
                          "condition": "UnhandledInvocationError" | "EventAgeExceeded",
                          "approximateInvokeCount": <attempts made>},
       "requestPayload": <the original event, as a string>,
       "responseContext": {"statusCode": 200, "functionError": <the last error's type>},
       "responsePayload": <'{"errorType": ..., "errorMessage": ...}', a string>}

  The page shows these fields without listing ``condition``'s values or fixing ``timestamp``'s
  form (examples show an ISO time and, in FC 2.0 copies, epoch milliseconds): the values here are
  this emulator's reading, and the pipeline's dead-letter handler depends on neither.
"""
from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .slsyaml import FunctionSpec

EVENT_AGE_EXCEEDED = "EventAgeExceeded"
UNHANDLED_INVOCATION_ERROR = "UnhandledInvocationError"


#: Runs one attempt: (function, event, attempt, request id) -> None when the handler returned, else
#: the failure's (error type, message).
Invoke = Callable[[str, bytes, int, str], "tuple[str, str] | None"]


@dataclass(frozen=True)
class AsyncRequest:
    function: str
    event: bytes
    request_id: str
    enqueued_at: float  # time.time() when it was accepted: its age counts from here
    attempt: int = 1


def function_arn(region: str, account_id: str, function_name: str) -> str:
    return f"acs:fc:{region}:{account_id}:functions/{function_name}"


def destination_event(request: AsyncRequest, arn: str, condition: str, error_type: str,
                      error_message: str, now: float) -> dict[str, Any]:
    """The event an onFailure destination receives (the shape in this module's docstring)."""
    millis = int(now * 1000) % 1000
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{millis:03d}Z",
        "requestContext": {"requestId": request.request_id, "functionArn": arn, "condition": condition,
                           "approximateInvokeCount": request.attempt},
        "requestPayload": request.event.decode("utf-8", "replace"),
        "responseContext": {"statusCode": 200, "functionError": error_type},
        "responsePayload": json.dumps({"errorType": error_type, "errorMessage": error_message}),
    }


class AsyncInvoker:
    """The async queue of one local FC: ``submit`` accepts, workers run, retry and hand failures on."""

    def __init__(self, specs: Mapping[str, FunctionSpec], invoke: Invoke, *, region: str, account_id: str,
                 retry_base_s: float = 0.5, workers: int = 4):
        self.specs = specs
        self._invoke = invoke
        self.region, self.account_id = region, account_id
        self.retry_base_s = retry_base_s
        self._worker_count = workers
        self._queue: queue.Queue[AsyncRequest | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self) -> None:
        for _ in range(self._worker_count):
            t = threading.Thread(target=self._work, daemon=True)
            t.start()
            self._workers.append(t)

    def stop(self) -> None:
        self._stopping.set()
        for _ in self._workers:
            self._queue.put(None)

    def submit(self, function: str, event: bytes) -> str:
        """Accept an async invocation of ``function``; its request id."""
        request = AsyncRequest(function, event, str(uuid.uuid4()), time.time())
        with self._idle:
            self._pending += 1
        self._queue.put(request)
        return request.request_id

    def wait_idle(self, timeout: float = 60) -> bool:
        """Until every accepted invocation (with its retries and destination) has finished."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending, timeout)

    def _work(self) -> None:
        while not self._stopping.is_set():
            request = self._queue.get()
            if request is None:
                return
            try:
                self._run(request)
            except Exception as exc:  # the runner itself must keep going
                print(f"localcloud fc: async invocation failed: {exc}", file=sys.stderr)
                self._finished()

    def _run(self, request: AsyncRequest) -> None:
        spec = self.specs[request.function]
        if time.time() - request.enqueued_at > spec.max_async_event_age_s:
            self._give_up(request, EVENT_AGE_EXCEEDED, EVENT_AGE_EXCEEDED,
                          f"the event is older than maxAsyncEventAgeInSeconds={spec.max_async_event_age_s:g}")
            return
        failure = self._invoke(request.function, request.event, request.attempt, request.request_id)
        if failure is None:
            self._finished()
        elif request.attempt <= spec.max_async_retries and not self._stopping.is_set():
            delay = self.retry_base_s * (2 ** (request.attempt - 1))
            retry = replace(request, attempt=request.attempt + 1)
            threading.Timer(delay, self._queue.put, args=(retry,)).start()
        else:
            self._give_up(request, UNHANDLED_INVOCATION_ERROR, *failure)

    def _give_up(self, request: AsyncRequest, condition: str, error_type: str, message: str) -> None:
        """The invocation will not run again: its onFailure destination, if any, is told."""
        destination = self._destination_function(self.specs[request.function].on_failure_destination)
        if destination is not None and not self._stopping.is_set():
            arn = function_arn(self.region, self.account_id, self._function_name(request.function))
            event = destination_event(request, arn, condition, error_type, message, time.time())
            self.submit(destination, json.dumps(event).encode())
        self._finished()

    def _function_name(self, function: str) -> str:
        return str(self.specs[function].props.get("functionName", function))

    def _destination_function(self, arn: str | None) -> str | None:
        """The s.yaml function an ``acs:fc:...:functions/<name>`` destination names; None if none."""
        if not arn:
            return None
        for name in self.specs:
            if arn == function_arn(self.region, self.account_id, self._function_name(name)):
                return name
        print(f"localcloud fc: onFailure destination {arn} is no function of s.yaml; the event is dropped",
              file=sys.stderr)
        return None

    def _finished(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()
