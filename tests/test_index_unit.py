"""The index's derived fields, without a cloud: URL parsing, expiry, JPEG size, sprite grid, VTT cues."""
import io

from PIL import Image

from snapshot_pipeline.index import jpeg_size, object_of_url, parse_vtt, sprite_geometry, url_expiry


def test_object_of_virtual_hosted_and_path_style_urls():
    assert object_of_url("https://out.oss-cn-shanghai.aliyuncs.com/snapshots/a%20b.mp4/00001.jpg?Expires=1", "out") \
        == ("out", "snapshots/a b.mp4/00001.jpg")
    assert object_of_url("http://127.0.0.1:9000/out/snapshots/x.mp4/00002.jpg?Signature=s", "out") \
        == ("out", "snapshots/x.mp4/00002.jpg")


def test_url_expiry_from_v1_and_v4_signatures():
    assert url_expiry("https://b.oss-cn-shanghai.aliyuncs.com/k?Expires=1795500000&Signature=x", 0, 3600) \
        == "2026-11-24T06:00:00Z"
    v4 = "https://b.oss-cn-shanghai.aliyuncs.com/k?x-oss-date=20261124T050000Z&x-oss-expires=600"
    assert url_expiry(v4, 0, 3600) == "2026-11-24T05:10:00Z"
    assert url_expiry("https://b/k", 1795500000, 60) == "2026-11-24T06:01:00Z"


def test_jpeg_size_reads_only_the_header():
    buf = io.BytesIO()
    Image.new("RGB", (321, 123)).save(buf, "JPEG")
    assert jpeg_size(buf.getvalue()[:2048]) == (321, 123)
    assert jpeg_size(b"not a jpeg") is None


def test_sprite_grid_measures_the_sheet_only_when_the_config_lacks_the_cell_size():
    calls = []

    def measure():
        calls.append(1)
        return (2 * 5 + 3 * 100 + 2 * 4, 2 * 5 + 2 * 60 + 1 * 4)  # margin 5, padding 4, 3x2 cells of 100x60

    config = {"Count": 7, "Time": 1000, "Interval": 2,
              "SpriteSnapshotConfig": {"Columns": 3, "Lines": 2, "Padding": 4, "Margin": 5}}
    grid = sprite_geometry(config, measure, 7)
    assert calls == [1]
    assert (grid["cell_width"], grid["cell_height"]) == (100, 60)
    assert [(t["sprite"], t["column"], t["line"], t["x"], t["y"], t["time"]) for t in grid["tiles"]] == [
        (1, 0, 0, 5, 5, 1.0), (1, 1, 0, 109, 5, 3.0), (1, 2, 0, 213, 5, 5.0),
        (1, 0, 1, 5, 69, 7.0), (1, 1, 1, 109, 69, 9.0), (1, 2, 1, 213, 69, 11.0),
        (2, 0, 0, 5, 5, 13.0)]

    config["SpriteSnapshotConfig"].update(CellWidth=80, CellHeight=45)
    assert sprite_geometry(config, measure, 7)["cell_width"] == 80 and calls == [1]
    assert sprite_geometry({"SpriteSnapshotConfig": {}}, measure, 3) is None


def test_vtt_cues_with_and_without_fragments():
    text = ("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nstory-sprite-00001.jpg#xywh=0,0,80,45\n\n"
            "00:00:01.500 --> 01:00:02.000\nstory-00002.jpg\n")
    assert parse_vtt(text) == [
        {"start": 0.0, "end": 1.5, "image": "story-sprite-00001.jpg", "xywh": [0, 0, 80, 45]},
        {"start": 1.5, "end": 3602.0, "image": "story-00002.jpg"}]
