"""Player-ready storyboards end to end: a stamped clip uploaded to the local cloud, the index names the
player files, and everything a player loads comes through the public base URL, played by a local
static server in front of the private bucket (as a CDN with origin access would be): the VTT and
the JSON, every image at the size the sprite geometry gives, and each cue's tile showing the
frame stamped with that cue's time, found with video.js' and Plyr's own lookup rules."""
from __future__ import annotations

import contextlib
import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
from PIL import Image

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.media import make_test_video, read_stamp
from tests.players import (
    STORYBOARD_SCHEMA,
    assert_player_vtt_shape,
    plyr_frame_for_time,
    plyr_preview_thumbnails,
    plyr_url_prefix,
    videojs_style_for_time,
    videojs_vtt_thumbnails,
)
from tests.support import PIPELINE_TIMEOUT_S, assert_valid_index, default_result

FPS = 25
KEY = "uploads/player/clip.mp4"
#: Every second, from 0: each tile's stamp is its cue's start.
TIMING = {"FrameType": "intra", "Time": 0, "Interval": 1}


class PublicBaseUrl(ThreadingHTTPServer):
    """A static server playing the CDN in front of the bucket: each GET of ``/<key>`` is fetched from
    the local OSS with a URL signed for it, status, type and body passed on."""

    cloud: LocalCloud | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Origin(BaseHTTPRequestHandler):
    server: PublicBaseUrl

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        assert self.server.cloud is not None
        key = unquote(urlsplit(self.path).path.lstrip("/"))
        try:
            with urllib.request.urlopen(self.server.cloud.bucket().sign_url("GET", key, 60), timeout=30) as got:
                status, content_type, body = got.status, got.headers["Content-Type"], got.read()
        except urllib.error.HTTPError as err:
            status, content_type, body = err.code, err.headers["Content-Type"], err.read()
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")  # players fetch the VTT cross-origin
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


@cache
def picture(url: str) -> Image.Image:
    """An image as a browser loads it from ``url``: HTTP 200 and a JPEG."""
    status, content_type, body = get(url)
    assert (status, content_type) == (200, "image/jpeg"), f"GET {url}: {status} {content_type}"
    return Image.open(io.BytesIO(body)).convert("RGB")


def stamp_at(url: str, x: int, y: int, w: int, h: int) -> float | None:
    return read_stamp(picture(url).crop((x, y, x + w, y + h)), FPS)


@pytest.fixture(scope="module")
def video() -> bytes:
    return make_test_video(duration_s=6.0, fps=FPS, width=320, height=240, gop_s=1.0)


@contextlib.contextmanager
def public_base_url() -> Iterator[PublicBaseUrl]:
    server = PublicBaseUrl(("127.0.0.1", 0), _Origin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def indexed(video: bytes, bucket: str, snapshot_type: str, subtype: int,
            config: dict) -> Iterator[tuple[PublicBaseUrl, LocalCloud, dict]]:
    """A module's own cloud, its functions given the URL of its own public server as
    ``PUBLIC_BASE_URL``, and the index of one upload."""
    with public_base_url() as public:
        options = LocalCloudOptions(bucket=bucket, snapshot_type=snapshot_type, template_subtype=subtype,
                                    template_config=config, extra_env={"PUBLIC_BASE_URL": public.base})
        with LocalCloud(options) as cloud:
            public.cloud = cloud
            cloud.bucket().put_object(KEY, video)
            index = assert_valid_index(cloud.wait_for_index(KEY, timeout=PIPELINE_TIMEOUT_S))
            yield public, cloud, default_result(index)


@pytest.fixture(scope="module")
def webvtt(video):
    config = {"Type": "WebVtt", "Count": 6, "IsSptFrag": True, **TIMING,
              "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2, "CellWidth": 80, "CellHeight": 60}}
    yield from indexed(video, "player-webvtt", "WebVtt", 3, config)


@pytest.fixture(scope="module")
def sprite(video):
    config = {"Type": "Sprite", "Count": 5, **TIMING,
              "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2, "CellWidth": 96, "CellHeight": 72,
                                       "Padding": 4, "Margin": 6, "Color": "#202020"}}
    yield from indexed(video, "player-sprite", "Sprite", 2, config)


def player_files(public: PublicBaseUrl, index: dict) -> tuple[str, str, dict]:
    """The player VTT's URL and text and the JSON storyboard, fetched through the public base URL."""
    player = index["player"]
    for name in ("vtt", "json"):
        assert player[name]["url"] == public.base + player[name]["key"]
        assert player[name]["key"].startswith(index["snapshots"][0]["key"].rsplit("/", 1)[0] + "/")
    status, content_type, vtt = get(player["vtt"]["url"])
    assert (status, content_type) == (200, "text/vtt; charset=utf-8")
    status, content_type, doc = get(player["json"]["url"])
    assert (status, content_type) == (200, "application/json; charset=utf-8")
    storyboard = json.loads(doc)
    jsonschema.validate(storyboard, STORYBOARD_SCHEMA)
    return player["vtt"]["url"], vtt.decode("utf-8"), storyboard


def storyboard_duration(public: PublicBaseUrl, index: dict) -> float:
    return float(player_files(public, index)[2]["duration"])


def check_player_files(public: PublicBaseUrl, index: dict, *, tiles: int, sheet_size: tuple[int, int]) -> None:
    """What both players and a JSON reader load shows the right frames, every image at ``sheet_size``."""
    vtt_url, vtt, storyboard = player_files(public, index)
    assert_player_vtt_shape(vtt)
    cues = videojs_vtt_thumbnails(vtt, vtt_url)
    frames = plyr_preview_thumbnails(vtt)
    prefix = plyr_url_prefix(frames, vtt_url)
    assert len(cues) == len(frames) == len(storyboard["tiles"]) == tiles
    images = {c.css["url"] for c in cues} | {prefix + f.text for f in frames} | {i["url"] for i in storyboard["images"]}
    assert images == {i["url"] for i in storyboard["images"]} and len(images) == len(index["snapshots"])
    for url in images:
        assert url.startswith(public.base) and picture(url).size == sheet_size
    assert (storyboard["image_width"], storyboard["image_height"]) == sheet_size
    for second in range(tiles):
        hover = second + 0.5
        css = videojs_style_for_time(cues, hover)
        x, y = _offsets(css["background"])
        assert stamp_at(css["url"], x, y, int(css["width"][:-2]), int(css["height"][:-2])) == \
            pytest.approx(second, abs=1 / FPS), f"video.js at {hover} s"
        frame = plyr_frame_for_time(frames, hover)
        assert stamp_at(prefix + frame.text, int(frame.x), int(frame.y), int(frame.w), int(frame.h)) == \
            pytest.approx(second, abs=1 / FPS), f"Plyr at {hover} s"
    for k, tile in enumerate(storyboard["tiles"]):
        url = storyboard["images"][tile["image"]]["url"]
        shown = stamp_at(url, tile["x"], tile["y"], storyboard["tile_width"], storyboard["tile_height"])
        assert shown == pytest.approx(k, abs=1 / FPS) and tile["start"] == k


def _offsets(background: str) -> tuple[int, int]:
    """The tile's (x, y) in videojs-vtt-thumbnails' ``background``: ``url("...") no-repeat -Xpx -Ypx``."""
    x, y = background.rsplit(" ", 2)[1:]
    return int(x.strip("-px")), int(y.strip("-px"))


def test_a_webvtt_storyboard_loads_through_the_public_base_url(webvtt):
    public, _, index = webvtt
    assert index["job"]["type"] == "WebVtt" and len(index["snapshots"]) == 2  # 6 tiles on 2x2 sheets
    check_player_files(public, index, tiles=6, sheet_size=(160, 120))
    assert storyboard_duration(public, index) == pytest.approx(6.0, abs=0.1)  # the video's, from ICE's cues


def test_a_sprite_storyboard_loads_through_the_public_base_url(sprite):
    public, _, index = sprite
    assert index["job"]["type"] == "Sprite" and index["player"]["vtt"]["key"].endswith("/sprite-player.vtt")
    check_player_files(public, index, tiles=5, sheet_size=(6 + 96 + 4 + 96 + 6, 6 + 72 + 4 + 72 + 6))
    assert storyboard_duration(public, index) == 5.0  # the last tile lasts one Interval


def test_the_bucket_itself_refuses_what_the_relative_vtt_would_load(webvtt):
    _, cloud, index = webvtt
    unsigned = f"{cloud.describe()['oss_endpoint']}/{cloud.options.bucket}/{index['snapshots'][0]['key']}"
    assert get(unsigned)[0] == 403  # why ICE's relative references fail in a player on a private bucket
