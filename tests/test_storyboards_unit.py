"""Player-ready storyboards without a cloud: from a job's index fields to the player VTT and the JSON
storyboard, read with video.js' videojs-vtt-thumbnails' and Plyr's rules (tests/players.py) and
validated against the storyboard schema."""
from __future__ import annotations

import io
import json
import re
from urllib.parse import unquote

import jsonschema
import pytest
from PIL import Image

from snapshot_pipeline.domain import SnapshotJob, SnapshotUrls
from snapshot_pipeline.index import build_result, compose_index
from snapshot_pipeline.settings import Settings, SettingsError
from snapshot_pipeline.storyboards import (
    CACHE_CONTROL,
    Storyboard,
    Tile,
    player_files,
    player_keys,
    vtt_timestamp,
    write_player_files,
)
from tests.players import (
    STORYBOARD_SCHEMA,
    assert_player_vtt_shape,
    plyr_frame_for_time,
    plyr_preview_thumbnails,
    plyr_url_prefix,
    videojs_style_for_time,
    videojs_vtt_thumbnails,
)
from tests.support import assert_valid_index

BUCKET = "media"
FOLDER = "snapshots/media/uploads/clip.mp4/20261201T120000Z-0123abcd/"
CDN = "https://cdn.example.com/media/"


class FakeStore:
    """The two calls the write step makes, over a dict; remembers each PUT's headers."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.put_headers: dict[str, dict[str, str]] = {}

    def get_head_bytes(self, bucket: str, key: str, max_bytes: int) -> bytes | None:
        data = self.objects.get(key)
        return None if data is None else data[:max_bytes]

    def put_bytes(self, bucket: str, key: str, data: bytes, *, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
        assert bucket == BUCKET
        self.objects[key] = data
        self.put_headers[key] = {"Content-Type": content_type, **(headers or {})}


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def signed(key: str) -> str:
    return f"http://127.0.0.1:9000/{BUCKET}/{key}?Expires=1900000000&OSSAccessKeyId=k&Signature=s"


def finished_job(snapshot_type: str, output_name: str, config: dict, status: str = "Success") -> SnapshotJob:
    return SnapshotJob.from_map({
        "JobId": "job-1", "Status": status, "Type": snapshot_type, "TemplateId": "tpl-1",
        "TemplateConfig": json.dumps(config), "Input": {"Type": "OSS", "Media": f"oss://{BUCKET}/uploads/clip.mp4"},
        "Output": {"Type": "OSS", "Media": f"oss://{BUCKET}/{FOLDER}{output_name}"}})


def result_of(store: FakeStore, job: SnapshotJob, images: list[str], vtt: str | None = None) -> dict:
    """The job's index, as the Publisher builds it (the VTT and the images read from ``store``)."""
    if vtt is not None:
        store.objects[FOLDER + "storyboard.vtt"] = vtt.encode()
    urls = SnapshotUrls(len(images), tuple(signed(FOLDER + name) for name in images),
                        signed(FOLDER + "storyboard.vtt") if vtt is not None else None)
    return build_result(job, urls, now=1_800_000_000, url_timeout_s=3600, source_size=1000,
                       read=store.get_head_bytes)


def written(store: FakeStore, player: dict) -> tuple[str, dict]:
    """The player VTT's text and the JSON storyboard the index's ``player`` field names."""
    vtt = store.objects[player["vtt"]["key"]].decode("utf-8")
    doc = json.loads(store.objects[player["json"]["key"]])
    jsonschema.validate(doc, STORYBOARD_SCHEMA)
    return vtt, doc


def tiles_by_players(vtt: str, src: str) -> tuple[list[tuple], list[tuple]]:
    """(url, x, y, w, h) of every cue as each player reads it: video.js' css, Plyr's frame fields."""
    by_videojs = []
    for cue in videojs_vtt_thumbnails(vtt, src):
        x, y = re.search(r"-(\d+)px -(\d+)px$", cue.css["background"]).groups()
        by_videojs.append((cue.css["url"], int(x), int(y), int(cue.css["width"][:-2]), int(cue.css["height"][:-2])))
    frames = plyr_preview_thumbnails(vtt)
    prefix = plyr_url_prefix(frames, src)
    by_plyr = [(prefix + f.text, int(f.x), int(f.y), int(f.w), int(f.h)) for f in frames]
    return by_videojs, by_plyr


# --- a WebVtt job with sprite sheets ------------------------------------------------------------
WEBVTT_SPRITES = ("WEBVTT\n\n"
                  + "".join(f"00:00:0{k}.000 --> 00:00:0{k + 1}.000\nstoryboard-sprite-0000{k // 4 + 1}.jpg"
                            f"#xywh={80 * (k % 2)},{60 * (k % 4 // 2)},80,60\n\n" for k in range(5)))


@pytest.fixture
def webvtt_sprites():
    store = FakeStore()
    for n in (1, 2):
        store.objects[f"{FOLDER}storyboard-sprite-0000{n}.jpg"] = jpeg(160, 120)
    job = finished_job("WebVtt", "storyboard.vtt", {"Type": "WebVtt", "Count": 5, "Interval": 1, "IsSptFrag": True,
                                                    "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2}})
    result = result_of(store, job, ["storyboard-sprite-00001.jpg", "storyboard-sprite-00002.jpg"], WEBVTT_SPRITES)
    return store, job, result


def test_a_webvtt_storyboard_gets_absolute_urls_both_players_read_as_is(webvtt_sprites):
    store, job, result = webvtt_sprites
    player = write_player_files(store, job, result, public_base_url=CDN)["player"]
    vtt_key, json_key = FOLDER + "storyboard-player.vtt", FOLDER + "storyboard-player.json"
    assert player == {"vtt": {"key": vtt_key, "url": CDN + vtt_key}, "json": {"key": json_key, "url": CDN + json_key}}
    vtt, doc = written(store, player)
    assert_player_vtt_shape(vtt)
    sheets = [CDN + FOLDER + f"storyboard-sprite-0000{n}.jpg" for n in (1, 2)]
    expected = [(sheets[k // 4], 80 * (k % 2), 60 * (k % 4 // 2), 80, 60) for k in range(5)]
    by_videojs, by_plyr = tiles_by_players(vtt, CDN + vtt_key)
    assert by_videojs == expected and by_plyr == expected
    assert [(c.start, c.end) for c in videojs_vtt_thumbnails(vtt, CDN + vtt_key)] == [(k, k + 1) for k in range(5)]
    for t in (0.0, 0.5, 1.2, 3.99, 4.5):  # a hover at time t shows the tile of second int(t)
        k = int(t)
        assert videojs_style_for_time(videojs_vtt_thumbnails(vtt, CDN + vtt_key), t)["url"] == expected[k][0]
        frame = plyr_frame_for_time(plyr_preview_thumbnails(vtt), t)
        assert (frame.start_time, frame.x, frame.y) == (k, str(expected[k][1]), str(expected[k][2]))
    assert doc["url"] == sheets[0] and [i["url"] for i in doc["images"]] == sheets
    assert (doc["tile_width"], doc["tile_height"], doc["image_width"], doc["image_height"]) == (80, 60, 160, 120)
    assert doc["duration"] == 5.0
    assert [(t["start"], t["end"], t["image"], t["x"], t["y"]) for t in doc["tiles"]] == \
        [(k, k + 1, k // 4, 80 * (k % 2), 60 * (k % 4 // 2)) for k in range(5)]
    assert store.put_headers[vtt_key] == {"Content-Type": "text/vtt; charset=utf-8", "Cache-Control": CACHE_CONTROL}
    assert store.put_headers[json_key]["Content-Type"] == "application/json; charset=utf-8"
    assert_valid_index(compose_index(result["source"], {"default": dict(result, player=player)}, now=0))


def test_without_a_public_base_url_references_are_relative_to_the_files(webvtt_sprites):
    store, job, result = webvtt_sprites
    player = write_player_files(store, job, result, public_base_url=None)["player"]
    assert player["vtt"]["url"] is None and player["json"]["url"] is None
    vtt, doc = written(store, player)
    assert_player_vtt_shape(vtt)
    assert doc["url"] == "storyboard-sprite-00001.jpg" and doc["images"][0]["key"] == FOLDER + doc["url"]
    app = "https://app.example.com/storyboards/clip/"  # wherever an app serves (or signs) the folder
    by_videojs, by_plyr = tiles_by_players(vtt, app + "storyboard-player.vtt")
    assert by_videojs == by_plyr and by_plyr[0][0] == app + "storyboard-sprite-00001.jpg"
    assert_valid_index(compose_index(result["source"], {"default": dict(result, player=player)}, now=0))


def test_stills_of_a_webvtt_job_show_whole_in_every_cue():
    store = FakeStore()
    for n in (1, 2, 3):
        store.objects[f"{FOLDER}storyboard-0000{n}.jpg"] = jpeg(128, 72)
    vtt_in = "WEBVTT\n\n" + "".join(f"00:00:0{2 * k}.500 --> 00:00:0{2 * k + 2}.500\nstoryboard-0000{k + 1}.jpg\n\n"
                                    for k in range(3))
    job = finished_job("WebVtt", "storyboard.vtt", {"Type": "WebVtt", "Count": 3, "Interval": 2, "Time": 500})
    result = result_of(store, job, [f"storyboard-0000{n}.jpg" for n in (1, 2, 3)], vtt_in)
    player = write_player_files(store, job, result, public_base_url=CDN)["player"]
    vtt, doc = written(store, player)
    assert_player_vtt_shape(vtt)  # ICE's VTT had no #xywh; the player VTT has it on every cue
    by_videojs, by_plyr = tiles_by_players(vtt, player["vtt"]["url"])
    assert by_videojs == by_plyr == [(CDN + FOLDER + f"storyboard-0000{n}.jpg", 0, 0, 128, 72) for n in (1, 2, 3)]
    assert [t["image"] for t in doc["tiles"]] == [0, 1, 2] and doc["duration"] == 6.5


# --- a Sprite job ------------------------------------------------------------------------------------
SPRITE_CONFIG = {"Type": "Sprite", "Count": 5, "Interval": 2, "Time": 500,
                 "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2, "CellWidth": 96, "CellHeight": 72,
                                          "Padding": 4, "Margin": 6}}


def test_a_sprite_job_gets_a_vtt_and_a_json_over_its_sheets():
    store = FakeStore()
    job = finished_job("Sprite", "sprite-{TileCount}.jpg", SPRITE_CONFIG)
    result = result_of(store, job, ["sprite-00001.jpg", "sprite-00002.jpg"])
    player = write_player_files(store, job, result, public_base_url=CDN)["player"]
    assert [player[f]["key"] for f in ("vtt", "json")] == [FOLDER + "sprite-player.vtt", FOLDER + "sprite-player.json"]
    vtt, doc = written(store, player)
    assert_player_vtt_shape(vtt)
    by_videojs, by_plyr = tiles_by_players(vtt, player["vtt"]["url"])
    cells = [(6, 6), (106, 6), (6, 82), (106, 82), (6, 6)]
    assert by_videojs == by_plyr == [(CDN + FOLDER + f"sprite-0000{1 + k // 4}.jpg", *cells[k], 96, 72)
                                     for k in range(5)]
    # taken at 0.5 s, 2.5 s, ...: the first is shown from 0, as in ICE's own WebVTT
    assert [(t["start"], t["end"]) for t in doc["tiles"]] == [(0.0, 2.5)] + [(0.5 + 2 * k, 2.5 + 2 * k)
                                                                           for k in range(1, 5)]
    assert doc["duration"] == 10.5  # the last tile lasts one Interval: ICE does not report the video's duration
    assert (doc["image_width"], doc["image_height"]) == (6 + 96 + 4 + 96 + 6, 6 + 72 + 4 + 72 + 6)
    assert "00:00:08.500 --> 00:00:10.500" in vtt


def test_tiles_on_a_sheet_never_written_are_left_out():
    store = FakeStore()
    job = finished_job("Sprite", "sprite-{TileCount}.jpg", SPRITE_CONFIG)
    result = result_of(store, job, ["sprite-00001.jpg"])  # the video ended before the fifth tile
    _, doc = written(store, write_player_files(store, job, result, public_base_url=CDN)["player"])
    assert len(doc["tiles"]) == 4 and len(doc["images"]) == 1


@pytest.mark.parametrize(("snapshot_type", "output", "config", "status"), [
    ("Normal", "{Count}.jpg", {"Type": "Normal", "Count": 3, "Interval": 1}, "Success"),
    ("Sprite", "sprite-{TileCount}.jpg", SPRITE_CONFIG, "Fail"),
    ("Sprite", "sprite-{TileCount}.jpg", {k: v for k, v in SPRITE_CONFIG.items() if k != "Interval"}, "Success"),
])
def test_no_player_files_for_stills_failures_or_untimed_tiles(snapshot_type, output, config, status):
    store = FakeStore()
    job = finished_job(snapshot_type, output, config, status)
    result = result_of(store, job, ["sprite-00001.jpg"] if status == "Success" else [])
    assert write_player_files(store, job, result, public_base_url=CDN) == {}
    assert store.objects == {}


# --- names, times, the setting ------------------------------------------------------------------
def test_player_files_are_named_after_the_jobs_output():
    assert player_keys("v/storyboard.vtt") == ("v/storyboard-player.vtt", "v/storyboard-player.json")
    assert player_keys("v/poster/sprite-{TileCount}.jpg") == ("v/poster/sprite-player.vtt",
                                                              "v/poster/sprite-player.json")


def test_vtt_times_have_two_digit_hours_and_milliseconds():
    assert vtt_timestamp(0) == "00:00:00.000"
    assert vtt_timestamp(3 * 3600 + 25 * 60 + 7.0006) == "03:25:07.001"


def test_public_base_url_gets_a_trailing_slash_and_is_checked():
    env = {"REGION": "cn-shanghai"}
    assert Settings.from_env(env).public_base_url is None
    assert Settings.from_env(dict(env, PUBLIC_BASE_URL="https://cdn.example.com/v")).public_base_url == \
        "https://cdn.example.com/v/"
    for bad in ("cdn.example.com", "https://cdn.example.com/?token=1"):
        with pytest.raises(SettingsError, match="PUBLIC_BASE_URL"):
            Settings.from_env(dict(env, PUBLIC_BASE_URL=bad))


def test_keys_are_escaped_in_urls_so_a_hash_or_a_space_survives_both_players():
    key = "snapshots/media/uploads/my clip #1 é.mp4/v/storyboard-sprite-00001.jpg"
    board = Storyboard((key,), (160, 60), (Tile(0.0, 1.0, 0, 0, 0, 80, 60), Tile(1.0, 2.0, 0, 80, 0, 80, 60)))
    vtt_file, json_file = player_files(board, output_key=key.rsplit("/", 1)[0] + "/storyboard.vtt",
                                       public_base_url=CDN)
    vtt = vtt_file.body.decode()
    assert_player_vtt_shape(vtt)
    by_videojs, by_plyr = tiles_by_players(vtt, CDN + vtt_file.key)
    assert by_videojs == by_plyr and {unquote(url) for url, *_ in by_plyr} == {CDN + key}
    assert json.loads(json_file.body)["images"] == [{"key": key, "url": by_plyr[0][0]}]
