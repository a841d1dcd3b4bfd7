"""Structured logs: one JSON record per line whatever the concurrency, the request id from the
context, nothing secret."""
from __future__ import annotations

import contextlib
import contextvars
import io
import json
import logging
import threading
import time

from snapshot_pipeline.log import JsonFormatter, current_request_id, log, request_context

THREADS = 16
RECORDS_PER_THREAD = 200


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


class WriteRecorder(io.StringIO):
    """stdout that keeps each ``write`` apart and lets another thread run after it, as a pipe's
    writer may be preempted: a record written in two pieces would show as two writes here."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.writes.append(text)
            written = super().write(text)
        time.sleep(0)
        return written


def test_concurrent_records_never_share_a_line_and_keep_their_request_id() -> None:
    out = WriteRecorder()
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        with request_context(f"req-{n}"):
            start.wait()
            for i in range(RECORDS_PER_THREAD):
                log("test.record", writer=n, i=i, text="x" * 500 + "\nsecond line")

    with contextlib.redirect_stdout(out):
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(writer, n)) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    ours = [h for h in logging.getLogger("snapshot_pipeline").handlers if isinstance(h.formatter, JsonFormatter)]
    assert len(ours) == 1  # one JSON handler, so no record is written twice
    records = _records(out.getvalue())  # every line is one whole JSON object
    assert len(records) == THREADS * RECORDS_PER_THREAD
    assert [w.count("\n") for w in out.writes] == [1] * len(records)  # one write of one whole line each
    assert all(w.endswith("\n") for w in out.writes)
    assert all(r["request_id"] == f"req-{r['writer']}" and r["event"] == "test.record" for r in records)
    assert all(r["text"].endswith("\nsecond line") for r in records)


def test_request_context_nests_and_resets() -> None:
    assert current_request_id() is None
    with request_context("outer"):
        with request_context("inner"):
            assert current_request_id() == "inner"
        assert current_request_id() == "outer"
    assert current_request_id() is None


def test_records_outside_a_request_have_no_request_id_and_none_fields_are_dropped() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        log("plain", kept=1, dropped=None)
    (record,) = _records(out.getvalue())
    assert record["event"] == "plain" and record["kept"] == 1
    assert "request_id" not in record and "dropped" not in record


def test_fields_named_like_secrets_never_reach_the_log() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        log("careless", auth_key="Sup3rSecret", access_key_secret="S3cretValue", security_token="T0kenValue",
            signature="SigValue123", job_id="j-1")
    text = out.getvalue()
    assert not any(s in text for s in ("Sup3rSecret", "S3cretValue", "T0kenValue", "SigValue123"))
    assert _records(text)[0]["job_id"] == "j-1"
