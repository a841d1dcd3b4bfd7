"""Shared fixtures: the sample events and one local cloud for the end-to-end tests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def pytest_terminal_summary(terminalreporter, config) -> None:
    """Name the shuffled order's seed even under -q (pytest-randomly prints it only in the header)."""
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int):
        terminalreporter.write_line(f"tests shuffled by pytest-randomly: repeat the order with --randomly-seed={seed}")


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="session")
def cloud():
    """The whole local cloud (OSS, ICE, FC running functions/ as s.yaml declares them)."""
    from localcloud.cloud import LocalCloud

    with LocalCloud() as running:
        yield running


@pytest.fixture(scope="session")
def small_video() -> bytes:
    from localcloud.media import make_test_video

    return make_test_video(duration_s=4.0, fps=25, width=320, height=240, gop_s=1.0)
