"""Backfill at scale: workers fed from the streamed listing, one shared rate limiter, a checkpoint
beside the claims that lets a rerun skip what an interrupted run settled."""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from localcloud.media import make_garbage
from snapshot_pipeline import cli
from snapshot_pipeline.backfill import RateLimiter
from snapshot_pipeline.checkpoint import SettledFrontier
from snapshot_pipeline.cli import local_state
from tests.support import VirtualTime


def test_the_frontier_is_the_highest_key_with_every_earlier_key_settled():
    frontier = SettledFrontier()
    for key in "abcde":
        frontier.start(key)
    frontier.finish("b", settled=True)
    assert frontier.through is None  # "a" is still in hand
    frontier.finish("a", settled=True)
    assert frontier.through == "b"
    frontier.finish("d", settled=False)
    frontier.finish("c", settled=True)
    assert frontier.through == "c" and frontier.blocked  # "d" must be examined again
    frontier.start("f")
    frontier.finish("e", settled=True)
    frontier.finish("f", settled=True)
    assert frontier.through == "c"


def test_the_rate_limiter_is_shared_safely_between_threads():
    fake = VirtualTime(now=1000.0)
    limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
    threads = [threading.Thread(target=lambda: [limiter.acquire() for _ in range(10)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake.sleeps == [pytest.approx(0.1)] * 39  # 40 acquisitions, one slot each, none shared


@pytest.fixture
def backfill(cloud, monkeypatch, capsys, tmp_path):
    """``backfill(*argv, seams=None)`` -> (exit code, the JSON report) of ``snapshots backfill``."""
    state_file = tmp_path / "state.json"
    local_state.write_local_state(state_file, cloud.describe())
    monkeypatch.setenv(local_state.LOCAL_STATE_ENV, str(state_file))

    def run(*argv: str, seams: cli.Seams | None = None) -> tuple[int, dict]:
        capsys.readouterr()
        code = cli.main(["--local", "backfill", *argv, "--json"], seams=seams)
        return code, json.loads(capsys.readouterr().out)

    return run


def put_objects(cloud, count: int) -> tuple[str, list[str]]:
    """``count`` distinct small videos (not decodable: their jobs fail at once) under a fresh prefix."""
    prefix = f"scale-{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}{n:03d}.mp4" for n in range(count)]
    bucket = cloud.bucket()
    for n, key in enumerate(keys):
        bucket.put_object(key, make_garbage(64) + n.to_bytes(2, "big"))
    return f"oss://media/{prefix}", keys


class StopAfter:
    """Stands for Ctrl-C after ``count`` submissions."""

    def __init__(self, count: int):
        self.count, self.seen = count, 0

    def __call__(self, outcome) -> None:
        self.seen += 1
        if self.seen == self.count:
            raise KeyboardInterrupt


def test_a_rerun_lists_after_the_checkpoint_and_a_finished_run_clears_it(cloud, backfill):
    source, keys = put_objects(cloud, 12)
    code, first = backfill(source, "--rate", "1000", "--concurrency", "1",
                           seams=cli.Seams(after_submit=StopAfter(5)))
    assert code == 130 and first["submitted"] == 5 and first["resumed_after"] is None

    code, second = backfill(source, "--rate", "1000")
    assert code == 0 and second["resumed_after"] == keys[4]
    assert second["listed"] == 7 and second["submitted"] == 7 and sum(second["skipped"].values()) == 0
    assert {j["key"] for j in first["jobs"]} | {j["key"] for j in second["jobs"]} == set(keys)

    code, third = backfill(source, "--rate", "1000")  # the checkpoint is gone: every object is checked
    assert code == 0 and third["resumed_after"] is None and third["listed"] == 12 and third["submitted"] == 0


def test_restart_examines_every_object_and_nothing_is_submitted_twice(cloud, backfill):
    source, keys = put_objects(cloud, 10)
    code, first = backfill(source, "--rate", "1000", "--concurrency", "1",
                           seams=cli.Seams(after_submit=StopAfter(4)))
    assert code == 130 and first["submitted"] == 4
    code, again = backfill(source, "--rate", "1000", "--restart")
    assert code == 0 and again["resumed_after"] is None and again["listed"] == 10
    assert again["submitted"] == 6 and sum(again["skipped"].values()) == 4


def test_concurrent_workers_submit_each_object_once_and_keep_to_the_rate(cloud, backfill):
    source, keys = put_objects(cloud, 24)
    started = time.monotonic()
    code, report = backfill(source, "--rate", "20", "--concurrency", "6")
    elapsed = time.monotonic() - started
    assert code == 0 and report["submitted"] == 24 and report["listed"] == 24
    assert sorted(j["key"] for j in report["jobs"]) == keys
    assert elapsed >= 23 / 20  # 24 submissions at most 20 a second
    code, again = backfill(source, "--rate", "1000", "--concurrency", "6")
    assert code == 0 and again["submitted"] == 0 and sum(again["skipped"].values()) == 24
