"""The console in a real browser: headless Chromium (Debian's ``chromium``) opens the console of a local
cloud whose template cuts sprite sheets, uploads a generated video through the page's upload box, and
the video's page shows every picture loaded, the tile grid over the sheets, and, hovering the seek bar,
Plyr's preview of the very tile the storyboard VTT names for that time. Keyboard and phone-width
checks too. Screenshots of each page go to ``test-artifacts/console/`` (not committed)."""
from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.media import make_test_video
from snapshot_pipeline.index import parse_vtt
from tests.chromium import Chromium, find_chromium
from tests.conftest import ROOT
from tests.support import PIPELINE_TIMEOUT_S

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; "
                                                          ".ci/run installs it)")
ARTIFACTS = ROOT / "test-artifacts" / "console"
NAME = "walk.mp4"
KEY = f"uploads/{NAME}"
#: Eight tiles a second apart on 4x2 sheets: the seek bar's previews differ from second to second.
SPRITE = {"Type": "Sprite", "Count": 8, "FrameType": "intra", "Time": 0, "Interval": 1,
          "SpriteSnapshotConfig": {"Columns": 4, "Lines": 2, "CellWidth": 96, "CellHeight": 72}}
#: The page's own pictures (Plyr's preview images come and go with the mouse).
PICTURES = "[...document.querySelectorAll('main img')].filter(i => !i.closest('.plyr'))"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    options = LocalCloudOptions(bucket=f"console-{secrets.token_hex(4)}", snapshot_type="Sprite",
                                template_subtype=2, template_config=SPRITE)
    with LocalCloud(options) as running:
        running.start_console()
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    assert CHROMIUM is not None
    chromium = Chromium(CHROMIUM)
    yield chromium
    chromium.close()


@pytest.fixture(autouse=True)
def no_script_errors_nor_foreign_requests(browser: Chromium) -> Iterator[None]:
    """Every test also checks that the page's scripts threw nothing meanwhile, and that everything the
    page loaded came from this machine (the console, the local OSS): no CDN, the player included."""
    before = len(browser.page_errors())
    yield
    assert browser.page_errors()[before:] == []
    loaded = {e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"}
    assert loaded and [url for url in loaded if not url.startswith(("http://127.0.0.1:", "data:", "blob:"))] == []


@pytest.fixture(scope="module")
def video_page(cloud: LocalCloud, browser: Chromium, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Upload a video through the page's upload box; the address of the video page it leads to, once
    the pipeline has indexed it (the page polls and redraws by itself)."""
    assert cloud.console is not None
    video = tmp_path_factory.mktemp("console") / NAME
    video.write_bytes(make_test_video(duration_s=8.0, width=320, height=240))
    browser.navigate(cloud.console.url)
    browser.wait_for("document.querySelector('#video-file') !== null", what="the upload box")
    browser.set_files("#video-file", video)
    browser.evaluate("document.querySelector('form.upload button[type=submit]').click()")
    browser.wait_for("location.pathname === '/video'", what="the video page after the upload")
    browser.wait_for("document.querySelector('main .state')?.textContent === 'indexed'",
                     timeout=PIPELINE_TIMEOUT_S, what="the state 'indexed' on the page")
    return str(browser.evaluate("location.href"))


def _pictures_loaded(browser: Chromium) -> list[dict]:
    return browser.wait_for("(() => { const all = " + PICTURES + "; return all.length && all.every(i => i.complete)"
                            " && all.map(i => ({src: i.src, alt: i.alt, width: i.naturalWidth,"
                            " shown: i.getBoundingClientRect().width})); })()", what="every picture loaded")


def test_the_uploaded_videos_pictures_load_with_their_times_and_grid(browser: Chromium, video_page: str) -> None:
    browser.navigate(video_page)
    pictures = _pictures_loaded(browser)
    assert pictures and all(p["width"] > 0 for p in pictures), pictures
    assert all(re.search(r"\d+:\d\d\.\d{3}", p["alt"]) for p in pictures), [p["alt"] for p in pictures]
    tiles = browser.wait_for("document.querySelectorAll('.sheet .tile').length", what="the tile grid")
    assert tiles == SPRITE["Count"]
    browser.screenshot(ARTIFACTS / "video.png")
    browser.navigate(video_page.split("video?")[0])
    rows = browser.wait_for("[...document.querySelectorAll('tbody tr')].map(r => r.textContent)", what="uploads")
    assert any(KEY in row and "indexed" in row for row in rows), rows
    browser.screenshot(ARTIFACTS / "uploads.png")
    browser.evaluate("document.querySelector('nav[aria-label=\"Which videos\"] a').click()")
    browser.wait_for("document.querySelector('h1')?.textContent === 'Deleted videos'", what="the deleted view")
    browser.screenshot(ARTIFACTS / "deleted.png")


def test_hovering_the_seek_bar_previews_the_tile_of_that_time(browser: Chromium, video_page: str) -> None:
    browser.navigate(video_page)
    _pictures_loaded(browser)
    if not browser.evaluate("document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.64001E\"')"):
        pytest.skip("this Chromium plays no H.264 (Debian's does): the player cannot load the test video")
    browser.wait_for("window.consolePlayer && consolePlayer.duration > 0 && consolePlayer.previewThumbnails"
                     " && consolePlayer.previewThumbnails.loaded", what="the player and its storyboard")
    vtt_url = browser.evaluate("consolePlayer.config.previewThumbnails.src")
    cues = parse_vtt(browser.evaluate(f"fetch({json.dumps(vtt_url)}).then(r => r.text())"))
    bar = browser.evaluate("(() => { const r = consolePlayer.elements.progress.getBoundingClientRect();"
                           " return {left: r.left, top: r.top, width: r.width, height: r.height}; })()")
    duration = browser.evaluate("consolePlayer.duration")
    for share in (0.3, 0.7):  # two different tiles, away from the cues' edges
        x, y = bar["left"] + share * bar["width"], bar["top"] + bar["height"] / 2
        browser.move_mouse(x - 5, y)
        browser.move_mouse(x, y)
        shown = browser.wait_for(
            "(() => { const i = document.querySelector('.plyr__preview-thumb--is-shown "
            ".plyr__preview-thumb__image-container img'); return i && i.complete && i.naturalWidth && i.style.left"
            " && {src: i.src, left: parseFloat(i.style.left), top: parseFloat(i.style.top),"
            " height: parseFloat(i.style.height), natural: i.naturalHeight}; })()", what="the seek bar's preview")
        seconds = duration * (x - bar["left"]) / bar["width"]
        cue = next(c for c in cues if c["start"] <= seconds < c["end"])
        assert _path(shown["src"]) == _path(cue["image"])
        scale = shown["height"] / shown["natural"]  # Plyr scales the sheet so one tile fills the preview
        assert (round(-shown["left"] / scale), round(-shown["top"] / scale)) == tuple(cue["xywh"][:2]), (seconds, cue)
        browser.screenshot(ARTIFACTS / f"preview-{share:.1f}.png")


def test_the_keyboard_reaches_a_video(browser: Chromium, cloud: LocalCloud, video_page: str) -> None:
    assert cloud.console is not None
    browser.navigate(cloud.console.url)
    browser.wait_for("document.querySelector('tbody a') !== null", what="the uploads table")
    for _ in range(40):
        browser.press("Tab", "Tab", 9)
        if browser.evaluate(f"document.activeElement.textContent === {json.dumps(KEY)}"):
            break
    else:
        pytest.fail(f"Tab never reached the link to {KEY}")
    browser.press("Enter", "Enter", 13)
    browser.wait_for("location.pathname === '/video'", what="Enter following the link")


def test_a_phone_width_window_still_shows_the_gallery(browser: Chromium, video_page: str) -> None:
    browser.resize(390, 844, mobile=True)
    try:
        browser.navigate(video_page)
        pictures = _pictures_loaded(browser)
        assert all(0 < p["shown"] <= 390 for p in pictures), pictures
        assert browser.evaluate("document.documentElement.scrollWidth") <= 390  # nothing to scroll sideways
        browser.screenshot(ARTIFACTS / "video-phone.png")
    finally:
        browser.call("Emulation.clearDeviceMetricsOverride")


def _path(url: str) -> str:
    return unquote(urlsplit(url).path)
