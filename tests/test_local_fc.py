"""The local Function Compute itself: an invocation's logs are complete and whole when it returns,
a stuck one is ended at the function's timeout, and an HTTP trigger serves on the free port it got."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from localcloud import fc, fc_worker
from localcloud.fc import FunctionPool, InvocationError, LocalFc
from localcloud.slsyaml import FunctionSpec

CHATTY_HANDLER = """
import json, os, sys, threading

def handler(event, context):
    request = json.loads(event)
    def chatter(thread):
        for line in range(request["lines"]):
            print(json.dumps({"thread": thread, "line": line}))  # the text and the newline: two writes
    threads = [threading.Thread(target=chatter, args=(t,)) for t in range(request["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if request.get("exit"):
        print("last words")
        os._exit(3)
    sys.stderr.write("an unfinished line")
    return "done"
"""


def _pool_of(tmp_path: Path, handler_source: str, timeout_s: int = 60) -> FunctionPool:
    """One instance at most of ``index.handler``, written from ``handler_source``."""
    (tmp_path / "index.py").write_text(textwrap.dedent(handler_source))
    spec = FunctionSpec("probe", {"handler": "index.handler", "timeout": timeout_s})
    return FunctionPool(spec, code_dir=tmp_path, context_base={}, env_overrides={}, max_instances=1)


@pytest.fixture
def chatty_pool(tmp_path: Path):
    pool = _pool_of(tmp_path, CHATTY_HANDLER)
    yield pool
    pool.stop()


def test_every_log_line_is_recorded_whole_by_the_time_the_invocation_returns(chatty_pool):
    for _ in range(3):
        chatty_pool.logs.clear()
        assert chatty_pool.invoke(json.dumps({"threads": 4, "lines": 300}).encode()) == "done"
        *records, last = list(chatty_pool.logs)
        assert last == "an unfinished line"
        parsed = [json.loads(record) for record in records]  # a merged line would not parse
        assert sorted((p["thread"], p["line"]) for p in parsed) == [(t, n) for t in range(4) for n in range(300)]


def test_what_an_instance_logged_before_it_died_is_recorded(chatty_pool):
    with pytest.raises(InvocationError) as err:
        chatty_pool.invoke(json.dumps({"threads": 1, "lines": 5, "exit": True}).encode())
    assert err.value.error_type == "InstanceExited"
    assert list(chatty_pool.logs)[-1] == "last words"
    assert chatty_pool.invoke(json.dumps({"threads": 1, "lines": 1}).encode()) == "done"  # a new instance


def test_a_handler_that_prints_the_end_of_invocation_marker_leaves_the_next_logs_complete(tmp_path: Path):
    pool = _pool_of(tmp_path, f"""
        def handler(event, context):
            if event == b"impostor":
                print({fc_worker.INVOCATION_END!r})
            print("logged by", event.decode())
        """)
    record_log = pool.record_log

    def record_slowly(line: str) -> None:  # a busy machine: the runner reads the logs late
        time.sleep(0.2)
        record_log(line)

    pool.record_log = record_slowly
    try:
        pool.invoke(b"impostor")
        pool.logs.clear()
        pool.invoke(b"the next one")
        assert list(pool.logs) == ["logged by the next one"]
    finally:
        pool.stop()


def test_an_unfinished_line_written_to_the_file_descriptor_is_logged_and_ends_nothing(tmp_path: Path):
    pool = _pool_of(tmp_path, """
        import os

        def handler(event, context):
            os.write(2, b"straight to the descriptor")  # as a C library or a child process would
            return "done"
        """)
    try:
        assert pool.invoke(b"") == "done"
        assert list(pool.logs) == ["straight to the descriptor"]
        assert pool.started_instances == 1
    finally:
        pool.stop()


def test_the_handler_writes_to_standard_text_streams_as_on_fc(tmp_path: Path):
    pool = _pool_of(tmp_path, """
        import sys

        def handler(event, context):
            sys.stdout.buffer.write(b"bytes through the binary buffer\\n")
            sys.stderr.buffer.write("caf\\u00e9 \\n".encode())
            return sys.stdout.encoding
        """)
    try:
        assert pool.invoke(b"") == "utf-8"
        assert list(pool.logs) == ["bytes through the binary buffer", "caf\u00e9 "]
    finally:
        pool.stop()


def test_an_unfinished_line_is_logged_when_the_handler_exits_the_instance(tmp_path: Path):
    pool = _pool_of(tmp_path, """
        import sys

        def handler(event, context):
            print("last words", end="")
            sys.exit(3)
        """)
    try:
        with pytest.raises(InvocationError) as err:
            pool.invoke(b"")
        assert err.value.error_type == "InstanceExited"
        assert list(pool.logs) == ["last words"]
    finally:
        pool.stop()


def test_an_invocation_that_outlives_the_function_timeout_is_ended(tmp_path: Path):
    pool = _pool_of(tmp_path, """
        import threading

        def handler(event, context):
            print(event.decode())
            if event == b"hang":
                threading.Event().wait()
        """, timeout_s=2)
    try:
        pool.invoke(b"warm up")  # the timeout then covers the handler only, not the instance's start
        with pytest.raises(InvocationError) as err:
            pool.invoke(b"hang")
        assert err.value.error_type == "FunctionTimeout"
        assert list(pool.logs) == ["warm up", "hang"]
    finally:
        pool.stop()


def test_a_timed_out_instance_ends_with_the_processes_it_started(tmp_path: Path):
    pool = _pool_of(tmp_path, """
        import subprocess, sys, threading

        def handler(event, context):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # shares the logs
            print(child.pid, flush=True)
            threading.Event().wait()
        """, timeout_s=2)
    started = time.monotonic()
    try:
        with pytest.raises(InvocationError) as err:
            pool.invoke(b"")
        assert err.value.error_type == "FunctionTimeout"
        assert time.monotonic() - started < fc.LOG_DRAIN_TIMEOUT_S / 2  # not left waiting for the child
    finally:
        pool.stop()
        with contextlib.suppress(ProcessLookupError, IndexError, ValueError):
            os.kill(int(list(pool.logs)[0]), signal.SIGKILL)


def test_an_http_trigger_serves_on_the_free_port_it_got(tmp_path: Path):
    (tmp_path / "index.py").write_text("def handler(event, context):\n    return {'statusCode': 201, 'body': 'hi'}\n")
    spec = FunctionSpec("web", {"handler": "index.handler", "triggers": [{"triggerType": "http"}]})
    fc = LocalFc({"web": spec}, code_dirs={"web": tmp_path}, context_base={}, env_overrides={}).start()
    try:
        url = fc.url("web")
        assert not url.endswith(":0/")
        with urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=30) as resp:
            assert resp.status == 201 and resp.read() == b"hi"
    finally:
        fc.stop()


def test_an_instance_that_starts_while_the_pool_stops_runs_no_invocation(tmp_path: Path, monkeypatch):
    """stop() ends every instance; one still starting then is ended too, not left to run its invocation."""
    pool = _pool_of(tmp_path, """
        def handler(event, context):
            return "ran"
        """)
    start_instance = fc._Instance

    def starting_as_the_pool_stops(owner: FunctionPool) -> object:
        inst = start_instance(owner)
        owner.stop()
        return inst

    monkeypatch.setattr(fc, "_Instance", starting_as_the_pool_stops)
    with pytest.raises(InvocationError) as err:
        pool.invoke(b"")
    assert err.value.error_type == "LocalFcStopped"
    assert pool.busy == set()


SLOW_TO_IMPORT = """
import os, time

with open(os.environ["STARTS_LOG"], "a") as log:
    log.write(f"begin {os.getpid()}\\n")
time.sleep(0.3)
with open(os.environ["STARTS_LOG"], "a") as log:
    log.write(f"end {os.getpid()}\\n")

def handler(event, context):
    time.sleep(float(event or 0))
    return os.getpid()
"""


def test_instances_start_one_per_core_at_a_time(tmp_path: Path, monkeypatch):
    """With one start at a time (a 1-core machine), no instance begins importing its handler before the
    one starting has finished: on 2 cores, 16 instances starting at once would each take 8x as long."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "index.py").write_text(textwrap.dedent(SLOW_TO_IMPORT))
    monkeypatch.setenv("STARTS_LOG", str(tmp_path / "starts.log"))
    spec = FunctionSpec("probe", {"handler": "index.handler", "timeout": 60})
    pool = FunctionPool(spec, code_dir=tmp_path, context_base={}, env_overrides={}, max_instances=3,
                        starts=threading.Semaphore(1))
    try:
        with ThreadPoolExecutor(3) as invokers:
            pids = list(invokers.map(lambda _: pool.invoke(b""), range(3)))
        assert pool.started_instances == 3 and len(set(pids)) == 3
        steps = [line.split() for line in (tmp_path / "starts.log").read_text().splitlines()]
        assert [step for step, _ in steps] == ["begin", "end"] * 3
        in_order = [pid for _, pid in steps]
        assert in_order[::2] == in_order[1::2], "each import ends before the next one begins"
    finally:
        pool.stop()


def test_the_wait_for_a_busy_instance_is_not_billed(tmp_path: Path, monkeypatch):
    import threading

    monkeypatch.setenv("STARTS_LOG", str(tmp_path / "starts.log"))
    pool = _pool_of(tmp_path, SLOW_TO_IMPORT)  # one instance at most
    billed: list[float] = []
    try:
        first = threading.Thread(target=pool.invoke, args=(b"1.0",), kwargs={"on_billed": billed.append})
        first.start()
        while not pool.busy:
            time.sleep(0.01)
        started = time.monotonic()
        pool.invoke(b"0", on_billed=billed.append)  # waits for the first invocation's 1 s
        waited_and_ran = time.monotonic() - started
        first.join()
        assert len(billed) == 2 and billed[0] >= 1.0
        assert waited_and_ran - billed[1] >= 0.5, "the wait for the busy instance is not billed"
    finally:
        pool.stop()


def test_invocations_waiting_for_an_instance_are_served_in_arrival_order(tmp_path: Path):
    """An invoker that has just released the only instance and invokes again (as an FC async worker
    does with its next event) waits behind those already waiting, instead of taking it back at once."""
    import threading

    pool = _pool_of(tmp_path, """
        import time

        def handler(event, context):
            time.sleep(0.2)
            return event.decode()
        """)
    served: list[str] = []
    try:
        pool.invoke(b"warm-up")

        def eager() -> None:  # two invocations back to back
            served.append(pool.invoke(b"eager-1"))
            served.append(pool.invoke(b"eager-2"))

        first = threading.Thread(target=eager)
        first.start()
        while not pool.busy:
            time.sleep(0.01)
        others = [threading.Thread(target=lambda name=name: served.append(pool.invoke(name.encode())))
                  for name in ("second", "third")]
        for thread in others:
            thread.start()
            while len(pool._waiting) < others.index(thread) + 1:  # it is in line before the next starts
                time.sleep(0.01)
        for thread in [first, *others]:
            thread.join()
        assert served == ["eager-1", "second", "third", "eager-2"]
    finally:
        pool.stop()
