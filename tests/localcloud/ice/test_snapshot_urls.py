"""GetSnapshotUrls in the local ICE: paging, expiry, and the URLs of WebVTT and sprite jobs."""
from __future__ import annotations

import io
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from alibabacloud_ice20201109 import models as m
from PIL import Image

from localcloud.media import read_stamp
from tests.localcloud.ice.support import FPS, NORMAL, OUT, client_error, create_template, http_get, run_job


def test_snapshot_urls_page_over_35_snapshots_in_both_orders(client, ice, video):
    template_id = create_template(client, dict(NORMAL, Count=35, Interval=1))
    job = run_job(client, ice, template_id, output=f"oss://{OUT}/many/s-{{Count}}.jpg")
    assert (job.status, job.count) == ("Success", 35)

    def page(number, order="Asc"):
        return client.get_snapshot_urls(m.GetSnapshotUrlsRequest(
            job_id=job.job_id, page_number=number, page_size=30, order_by=order)).body

    first, second, third = page(1), page(2), page(3)
    assert (first.total, len(first.snapshot_urls), len(second.snapshot_urls), third.snapshot_urls) == (35, 30, 5, [])
    desc_first = page(1, "Desc")
    assert len(desc_first.snapshot_urls) == 30
    newest = Image.open(io.BytesIO(http_get(desc_first.snapshot_urls[0])[1]))
    assert read_stamp(newest, FPS) == pytest.approx(34, abs=0.01)
    assert desc_first.snapshot_urls[0].split("?")[0] == second.snapshot_urls[-1].split("?")[0]
    default = client.get_snapshot_urls(m.GetSnapshotUrlsRequest(job_id=job.job_id)).body
    assert len(default.snapshot_urls) == 10

    for bad in (dict(page_size=31), dict(page_size=0), dict(timeout=129601), dict(order_by="Random"),
                dict(page_number=0)):
        error = client_error(client.get_snapshot_urls, m.GetSnapshotUrlsRequest(job_id=job.job_id, **bad))
        assert error.code == "InvalidParameter"
        assert any(f'"{name}"' in error.message for name in ("PageSize", "Timeout", "OrderBy", "PageNumber"))


def test_snapshot_urls_really_expire(client, ice, video):
    template_id = create_template(client, dict(NORMAL, Count=1))
    job = run_job(client, ice, template_id, output=f"oss://{OUT}/expiry/s-{{Count}}.jpg")
    urls = client.get_snapshot_urls(m.GetSnapshotUrlsRequest(job_id=job.job_id, timeout=1)).body.snapshot_urls
    expires = int(parse_qs(urlsplit(urls[0]).query)["Expires"][0])
    assert expires <= time.time() + 1
    while time.time() <= expires:  # until the URL's own expiry has passed
        time.sleep(0.05)
    status, _ = http_get(urls[0])
    assert status == 403


def test_webvtt_job_gives_a_webvtt_url(client, ice, video):
    template_id = create_template(client, {"Type": "WebVtt", "Count": 4, "Interval": 2, "Time": 0}, subtype=3)
    job = run_job(client, ice, template_id, output=f"oss://{OUT}/vtt/storyboard.vtt")
    assert (job.status, job.type) == ("Success", "WebVtt")
    urls = client.get_snapshot_urls(m.GetSnapshotUrlsRequest(job_id=job.job_id)).body
    assert urls.total >= 1 and urls.web_vtturl
    status, data = http_get(urls.web_vtturl)
    assert status == 200 and data.startswith(b"WEBVTT")
    status, image = http_get(urls.snapshot_urls[0])
    assert status == 200 and Image.open(io.BytesIO(image)).format == "JPEG"


def test_sprite_job_pages_over_sheets(client, ice, video, bucket_out):
    template_id = create_template(client, {"Type": "Sprite", "Count": 6, "Interval": 1, "Width": 64,
                                           "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2}}, subtype=2)
    job = run_job(client, ice, template_id, output=f"oss://{OUT}/sprite/sheet-{{TileCount}}.jpg")
    assert (job.status, job.type, job.count) == ("Success", "Sprite", 6)
    urls = client.get_snapshot_urls(m.GetSnapshotUrlsRequest(job_id=job.job_id)).body
    assert urls.total == 2 and urls.web_vtturl is None
    sheet = Image.open(io.BytesIO(http_get(urls.snapshot_urls[0])[1]))
    assert sheet.format == "JPEG" and sheet.width == 128

