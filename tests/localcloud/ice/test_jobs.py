"""Snapshot jobs in the local ICE through the real SDK: submit, run, fail, list.

Every call goes through the unmodified ``alibabacloud_ice20201109`` client against a real LocalOss +
LocalIce; media comes from ``localcloud.media``.
"""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import oss2
import pytest
from alibabacloud_ice20201109 import models as m
from PIL import Image

from localcloud.ice.models import IceModel
from localcloud.media import read_stamp
from tests.localcloud.ice.support import (
    FPS,
    IN,
    NORMAL,
    OUT,
    client_error,
    create_template,
    http_get,
    run_job,
    submit,
)
from tests.support import PIPELINE_TIMEOUT_S


def test_normal_job_runs_and_writes_jpegs(client, ice, video, bucket_out):
    template_id = create_template(client)
    job_id = submit(client, template_id, output=f"oss://{OUT}/normal/snap-{{Count}}.jpg", name="normal-job",
                    user_data='{"trace": "t-1"}',
                    schedule_config=m.SubmitSnapshotJobRequestScheduleConfig(pipeline_id="pipe-1"))
    assert ice.wait_idle(PIPELINE_TIMEOUT_S)
    body = client.get_snapshot_job(m.GetSnapshotJobRequest(job_id=job_id)).body
    job = body.snapshot_job
    assert (job.status, job.type, job.count, job.name) == ("Success", "Normal", 5, "normal-job")
    assert (job.user_data, job.pipeline_id, job.template_id) == ('{"trace": "t-1"}', "pipe-1", template_id)
    assert job.trigger_source == "API" and job.async_ is True and job.code is None
    assert job.input.oss_file.bucket == IN and job.input.oss_file.object == "videos/clip 1.mp4"
    assert job.input.oss_file.location == "oss-cn-hangzhou" and job.output.media == f"oss://{OUT}/normal/snap-{{Count}}.jpg"
    assert json.loads(job.template_config)["Count"] == 5
    for stamp in (job.create_time, job.submit_time, job.finish_time, job.modified_time):
        datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    assert m.GetSnapshotJobResponseBody().from_map(body.to_map()).to_map() == body.to_map()

    urls = client.get_snapshot_urls(m.GetSnapshotUrlsRequest(job_id=job_id)).body
    assert urls.total == 5 and len(urls.snapshot_urls) == 5 and urls.web_vtturl is None
    times = []
    for url in urls.snapshot_urls:
        status, data = http_get(url)
        assert status == 200
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG"
        times.append(read_stamp(image, FPS))
    assert times == pytest.approx([0, 2, 4, 6, 8], abs=0.01)
    written = [o.key for o in oss2.ObjectIterator(bucket_out, prefix="normal/")]
    assert len(written) == 5 and all(key.endswith(".jpg") and "{Count}" not in key for key in written)
    assert all(Image.open(io.BytesIO(bucket_out.get_object(key).read())).format == "JPEG" for key in written)


def test_http_form_media_and_overwrite_params(client, ice, video):
    template_id = create_template(client)
    job = run_job(client, ice, template_id,
                  source=f"https://{IN}.oss-cn-hangzhou.aliyuncs.com/videos/clip%201.mp4",
                  output=f"http://{OUT}.oss-cn-hangzhou.aliyuncs.com/http-form/s-{{Count}}.jpg",
                  overwrite={"count": 3, "interval": 1})
    assert (job.status, job.count) == ("Success", 3)
    assert job.input.oss_file.object == "videos/clip 1.mp4" and job.output.oss_file.bucket == OUT


@pytest.mark.parametrize("output, input_media, overwrite, code, field", [
    (f"oss://{OUT}/no-placeholder.jpg", None, None, "InvalidParameter", '"Output"'),
    (None, f"https://{IN}.oss-cn-beijing.aliyuncs.com/videos/clip 1.mp4", None, "InvalidParameter", '"Input.Media"'),
    (None, "ftp://elsewhere/x.mp4", None, "InvalidParameter", '"Input.Media"'),
    (None, None, {"count": 0}, "InvalidParameter", "TemplateConfig.OverwriteParams.Count"),
])
def test_submit_validation_names_the_field(client, video, output, input_media, overwrite, code, field):
    template_id = create_template(client)
    kwargs = {"overwrite": overwrite} if overwrite else {}
    error = client_error(lambda: submit(client, template_id, output=output, source=input_media, **kwargs))
    assert (error.code, error.status_code) == (code, 400) and field in error.message
    assert client.list_snapshot_jobs(m.ListSnapshotJobsRequest()).body.jobs == []


def test_submit_placeholder_rules_per_type_and_missing_parts(client, video):
    sprite_id = create_template(client, {"Type": "Sprite", "Count": 4, "Interval": 1,
                                         "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2}}, subtype=2)
    error = client_error(submit, client, sprite_id, f"oss://{OUT}/sprite-{{Count}}.jpg")
    assert error.code == "InvalidParameter" and '"Output"' in error.message and "{TileCount}" in error.message
    vtt_id = create_template(client, {"Type": "WebVtt", "Count": 4, "Interval": 1}, subtype=3)
    error = client_error(submit, client, vtt_id, f"oss://{OUT}/vtt/index.txt")
    assert error.code == "InvalidParameter" and '"Output"' in error.message and ".vtt" in error.message
    error = client_error(client.submit_snapshot_job, m.SubmitSnapshotJobRequest(
        output=m.SubmitSnapshotJobRequestOutput(type="OSS", media=f"oss://{OUT}/x-{{Count}}.jpg"),
        template_config=m.SubmitSnapshotJobRequestTemplateConfig(template_id=sprite_id)))
    assert (error.code, '"Input"' in error.message) == ("MissingParameter", True)
    error = client_error(submit, client, "0123456789abcdef0123456789abcdef")
    assert (error.code, error.status_code) == ("ResourceNotFound", 404)
    error = client_error(client.get_snapshot_job, m.GetSnapshotJobRequest(job_id="nope"))
    assert (error.code, error.status_code) == ("JobNotFound", 404)
    error = client_error(client.get_snapshot_job, m.GetSnapshotJobRequest())
    assert (error.code, '"JobId"' in error.message) == ("MissingParameter", True)



def test_missing_or_undecodable_input_fails_the_job(client, ice, video):
    template_id = create_template(client)
    missing = run_job(client, ice, template_id, source=f"oss://{IN}/videos/absent.mp4")
    assert (missing.status, missing.code) == ("Fail", "ResourceNotFound") and "Input" in missing.message
    assert missing.finish_time and missing.count == 0
    garbage = run_job(client, ice, template_id, source=f"oss://{IN}/videos/garbage.mp4")
    assert garbage.status == "Fail" and garbage.code and garbage.message
    error = client_error(client.get_snapshot_urls, m.GetSnapshotUrlsRequest(job_id=missing.job_id))
    assert error.code == "InvalidParameter" and '"JobId"' in error.message


def test_list_snapshot_jobs_pages_and_filters(client, ice, video):
    template_id = create_template(client, dict(NORMAL, Count=1))
    ok = [submit(client, template_id, output=f"oss://{OUT}/list/{i}-{{Count}}.jpg", user_data="u")
          for i in range(4)]
    failed = submit(client, template_id, source=f"oss://{IN}/videos/absent.mp4")
    assert ice.wait_idle(PIPELINE_TIMEOUT_S)

    seen, token, pages = [], None, 0
    while True:
        body = client.list_snapshot_jobs(m.ListSnapshotJobsRequest(page_size=2, next_page_token=token,
                                                                   order_by="CreateTimeAsc")).body
        seen += [j.job_id for j in body.jobs]
        pages += 1
        token = body.next_page_token
        if not token:
            break
    assert pages == 3 and seen == ok + [failed]
    newest_first = client.list_snapshot_jobs(m.ListSnapshotJobsRequest()).body
    assert [j.job_id for j in newest_first.jobs] == [failed] + ok[::-1]
    item = newest_first.jobs[1].to_map()
    assert {"UserData", "Code", "Message", "TemplateConfig"}.isdisjoint(item) and item["Input"]["Media"]
    assert m.ListSnapshotJobsResponseBody().from_map(newest_first.to_map()).to_map() == newest_first.to_map()

    assert [j.job_id for j in client.list_snapshot_jobs(
        m.ListSnapshotJobsRequest(status="Fail")).body.jobs] == [failed]
    assert [j.job_id for j in client.list_snapshot_jobs(
        m.ListSnapshotJobsRequest(job_id=ok[2])).body.jobs] == [ok[2]]
    now = datetime.now(timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    later = client.list_snapshot_jobs(m.ListSnapshotJobsRequest(
        start_of_create_time=(now + timedelta(minutes=5)).strftime(fmt))).body
    assert later.jobs == [] and later.next_page_token is None
    window = client.list_snapshot_jobs(m.ListSnapshotJobsRequest(
        start_of_create_time=(now - timedelta(minutes=5)).strftime(fmt),
        end_of_create_time=(now + timedelta(minutes=5)).strftime(fmt), page_size=100)).body
    assert len(window.jobs) == 5
    for bad, field in ((dict(page_size=101), "PageSize"), (dict(status="Running"), "Status"),
                       (dict(order_by="Newest"), "OrderBy"), (dict(start_of_create_time="yesterday"),
                                                              "StartOfCreateTime")):
        error = client_error(client.list_snapshot_jobs, m.ListSnapshotJobsRequest(**bad))
        assert error.code == "InvalidParameter" and f'"{field}"' in error.message



def test_a_job_finishes_once_so_a_second_run_sends_no_second_callback():
    """A job run twice (resumed after a restart while its first run still ends, or resumed twice)
    keeps its first outcome; the second finish returns None, so no second callback is scheduled."""
    model = IceModel()
    template = model.create_template(name="t", type=2, subtype=None, template_config=NORMAL)
    job = model.submit_snapshot_job(input={"Type": "OSS", "Media": "oss://media/in.mp4"},
                                    output={"Type": "OSS", "Media": "oss://media/out/{Count}.jpg"},
                                    template_config={"TemplateId": template.template_id})
    first = model.complete_job(job.job_id, snapshot_keys=["out/1.jpg"], count=1, vtt_key=None)
    assert first is not None and first.status == "Success"
    assert model.fail_job(job.job_id, code="InternalError", message="late") is None
    assert model.complete_job(job.job_id, snapshot_keys=["out/9.jpg"], count=9, vtt_key=None) is None
    assert model.get_job(job.job_id) == first
