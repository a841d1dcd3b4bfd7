"""The local ICE through the real SDK: templates, snapshot jobs, URLs, auth, callbacks and faults.

Every API call goes through the unmodified ``alibabacloud_ice20201109`` client against a real
LocalOss + LocalIce; media comes from ``localcloud.media``. Raw HTTP is used only where the SDK
cannot produce the request under test (an altered query, a stale date, an unsigned token).
"""
from __future__ import annotations

import hashlib
import http.client
import http.server
import io
import json
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import oss2
import pytest
from alibabacloud_ice20201109 import models as m
from alibabacloud_ice20201109.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils
from PIL import Image

from localcloud.ice.server import LocalIce
from localcloud.media import make_garbage, make_test_video, read_stamp
from localcloud.oss import LocalOss

AK, SK = "LTAIlocalTestKey01", "local-test-secret-0123456789"
IN, OUT = "ice-test-in", "ice-test-out"
FPS = 5
AUTH_KEY = "LocalKey2024abc"
CALLBACK_TIMEOUT_S, CALLBACK_INTERVAL_S = 0.5, 0.1


# ---- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def oss():
    server = LocalOss(access_key_id=AK, access_key_secret=SK, host="127.0.0.1").start()
    server.create_bucket(IN)
    server.create_bucket(OUT)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ice(oss):
    server = LocalIce(access_key_id=AK, access_key_secret=SK, oss_endpoint=oss.endpoint, fault_seed=7,
                      callback_timeout_s=CALLBACK_TIMEOUT_S, callback_retry_interval_s=CALLBACK_INTERVAL_S).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean(ice):
    ice.reset()
    yield
    assert ice.wait_idle(20), "jobs or callbacks still running after the test"
    ice.reset()


def sdk(ice: LocalIce, **overrides) -> Client:
    settings = dict(endpoint=ice.endpoint, protocol="http", access_key_id=AK, access_key_secret=SK,
                    read_timeout=10000, connect_timeout=5000)
    settings.update(overrides)
    return Client(Config(**settings))


@pytest.fixture(scope="module")
def client(ice):
    return sdk(ice)


@pytest.fixture(scope="module")
def bucket_in(oss):
    return oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, IN)


@pytest.fixture(scope="module")
def bucket_out(oss):
    return oss2.Bucket(oss2.Auth(AK, SK), oss.endpoint, OUT)


@pytest.fixture(scope="module")
def video(bucket_in):
    """A 36 s stamped clip with a keyframe every second, uploaded as ``IN/videos/clip 1.mp4``."""
    key = "videos/clip 1.mp4"
    bucket_in.put_object(key, make_test_video(duration_s=36, fps=FPS, width=128, height=96, gop_s=1.0))
    bucket_in.put_object("videos/garbage.mp4", make_garbage(32 * 1024))
    return key


class Receiver:
    """A tiny HTTP callback receiver: answers ``statuses`` in turn (then 200), after ``delays``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.delays: list[float] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                          "at": time.monotonic()})
                delay = receiver.delays.pop(0) if receiver.delays else 0
                if delay:
                    time.sleep(delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ice/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# ---- helpers ---------------------------------------------------------------------------------

NORMAL = {"Type": "Normal", "FrameType": "intra", "Time": 0, "Count": 5, "Interval": 2}


def create_template(client, config=NORMAL, subtype=1, name="snap"):
    resp = client.create_custom_template(m.CreateCustomTemplateRequest(
        name=name, type=2, subtype=subtype, template_config=json.dumps(config)))
    return resp.body.custom_template.template_id


def submit(client, template_id, output=None, source=None, **extra):
    output = output or f"oss://{OUT}/out/{uuid.uuid4().hex}/snap-{{Count}}.jpg"
    overwrite = extra.pop("overwrite", None)
    request = m.SubmitSnapshotJobRequest(
        input=m.SubmitSnapshotJobRequestInput(type="OSS", media=source or f"oss://{IN}/videos/clip 1.mp4"),
        output=m.SubmitSnapshotJobRequestOutput(type="OSS", media=output),
        template_config=m.SubmitSnapshotJobRequestTemplateConfig(
            template_id=template_id,
            overwrite_params=m.SubmitSnapshotJobRequestTemplateConfigOverwriteParams(**overwrite) if overwrite else None),
        **extra)
    return client.submit_snapshot_job(request).body.job_id


def get_job(client, job_id):
    return client.get_snapshot_job(m.GetSnapshotJobRequest(job_id=job_id)).body.snapshot_job


def run_job(client, ice, template_id, **kwargs):
    job_id = submit(client, template_id, **kwargs)
    assert ice.wait_idle(30)
    return get_job(client, job_id)


def client_error(call, *args) -> ClientException:
    with pytest.raises(ClientException) as info:
        call(*args)
    return info.value


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def raw_call(ice, action, query, *, secret=SK, date=None, extra_headers=None, tamper=None, sign=True,
             omit_from_signature=()):
    """A request signed with the SDK's own signer (Utils.get_authorization), optionally altered."""
    headers = {"host": ice.endpoint, "x-acs-version": "2020-11-09", "x-acs-action": action,
               "x-acs-date": date or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "x-acs-signature-nonce": Utils.get_nonce(), "accept": "application/json",
               "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(), **(extra_headers or {})}
    if sign:
        signed = {k: v for k, v in headers.items() if k not in omit_from_signature}
        request = types.SimpleNamespace(pathname="/", method="POST", query=query, headers=signed)
        headers["Authorization"] = Utils.get_authorization(request, "ACS3-HMAC-SHA256",
                                                           headers["x-acs-content-sha256"], AK, secret)
    sent_query = dict(query, **(tamper or {}))
    connection = http.client.HTTPConnection(*ice.endpoint.split(":"), timeout=10)
    try:
        connection.request("POST", "/?" + urllib.parse.urlencode(sent_query), body=b"",
                           headers={k: v for k, v in headers.items() if k != "host"})
        response = connection.getresponse()
        return response.status, json.loads(response.read()), response.getheader("x-acs-request-id")
    finally:
        connection.close()


# ---- templates -------------------------------------------------------------------------------

def test_template_crud_round_trips_through_the_sdk(client):
    created = client.create_custom_template(m.CreateCustomTemplateRequest(
        name="stills", type=2, subtype=1, template_config=json.dumps(NORMAL))).body
    assert created.custom_template.type == 2 and created.custom_template.template_name == "stills"
    template_id = created.custom_template.template_id
    sprite_id = create_template(client, {"Type": "Sprite", "Count": 4, "Interval": 1,
                                         "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2}}, subtype=2,
                                name="sprites")

    got = client.get_custom_template(m.GetCustomTemplateRequest(template_id=template_id)).body
    assert got.custom_template.subtype == 1 and got.custom_template.subtype_name == "Normal"
    assert json.loads(got.custom_template.template_config) == NORMAL
    assert m.GetCustomTemplateResponseBody().from_map(got.to_map()).to_map() == got.to_map()

    listing = client.list_custom_templates(m.ListCustomTemplatesRequest(type="2")).body
    assert listing.total == 2 and [t.template_id for t in listing.custom_template_list] == [sprite_id, template_id]
    ascending = client.list_custom_templates(m.ListCustomTemplatesRequest(
        type="2", order_by="CreationTime:Asc", page_size=1, page_number=2)).body
    assert ascending.total == 2 and [t.template_id for t in ascending.custom_template_list] == [sprite_id]
    only_sprites = client.list_custom_templates(m.ListCustomTemplatesRequest(type="2", subtype="2")).body
    assert [t.template_id for t in only_sprites.custom_template_list] == [sprite_id]
    by_name = client.list_custom_templates(m.ListCustomTemplatesRequest(type="2", name="stills")).body
    assert [t.template_id for t in by_name.custom_template_list] == [template_id]

    updated = dict(NORMAL, Count=7)
    assert client.update_custom_template(m.UpdateCustomTemplateRequest(
        template_id=template_id, name="stills-7", template_config=json.dumps(updated))).body.success
    got = client.get_custom_template(m.GetCustomTemplateRequest(template_id=template_id)).body.custom_template
    assert got.template_name == "stills-7" and json.loads(got.template_config)["Count"] == 7

    error = client_error(client.get_custom_template, m.GetCustomTemplateRequest(type=2, subtype=1))
    assert (error.code, error.status_code) == ("ResourceNotFound", 404)
    assert client.set_default_custom_template(m.SetDefaultCustomTemplateRequest(template_id=template_id)).body.success
    default = client.get_custom_template(m.GetCustomTemplateRequest(type=2, subtype=1)).body.custom_template
    assert default.template_id == template_id and default.is_default is True

    assert client.delete_custom_template(m.DeleteCustomTemplateRequest(template_id=template_id)).body.success
    error = client_error(client.get_custom_template, m.GetCustomTemplateRequest(template_id=template_id))
    assert (error.code, error.status_code) == ("ResourceNotFound", 404) and '"Template"' in error.message


@pytest.mark.parametrize("request_args, code, field", [
    (dict(type=2, subtype=1, template_config=json.dumps(NORMAL)), "MissingParameter", '"Name"'),
    (dict(name="t", type=2, subtype=1), "MissingParameter", '"TemplateConfig"'),
    (dict(name="t", type=1, subtype=1, template_config=json.dumps(NORMAL)), "InvalidParameter", '"Type"'),
    (dict(name="t", type=2, subtype=9, template_config=json.dumps(NORMAL)), "InvalidParameter", '"Subtype"'),
    (dict(name="t", type=2, subtype=2, template_config=json.dumps(NORMAL)), "InvalidParameter",
     '"TemplateConfig.Type"'),
    (dict(name="t", type=2, subtype=1, template_config="{not json"), "InvalidParameter", '"TemplateConfig"'),
    (dict(name="t", type=2, subtype=1, template_config=json.dumps(dict(NORMAL, Count=-1))), "InvalidParameter",
     "Count"),
    (dict(name="t", type=2, subtype=1, template_config=json.dumps(dict(NORMAL, FrameType="fast"))),
     "InvalidParameter", "FrameType"),
])
def test_template_validation_names_the_field(client, request_args, code, field):
    error = client_error(client.create_custom_template, m.CreateCustomTemplateRequest(**request_args))
    assert (error.code, error.status_code) == (code, 400)
    assert field in error.message and error.request_id
    assert error.data["RequestId"] == error.request_id and error.data["HostId"]
    assert client.list_custom_templates(m.ListCustomTemplatesRequest(type="2")).body.total == 0


def test_template_listing_and_update_errors(client):
    error = client_error(client.list_custom_templates, m.ListCustomTemplatesRequest())
    assert (error.code, '"Type"' in error.message) == ("MissingParameter", True)
    error = client_error(client.list_custom_templates, m.ListCustomTemplatesRequest(type="2", page_size=101))
    assert error.code == "InvalidParameter" and '"PageSize"' in error.message
    template_id = create_template(client)
    error = client_error(client.update_custom_template, m.UpdateCustomTemplateRequest(
        template_id=template_id, template_config=json.dumps(
            {"Type": "Sprite", "Count": 2, "SpriteSnapshotConfig": {"Columns": 2, "Lines": 1}})))
    assert error.code == "InvalidParameter" and "TemplateConfig.Type" in error.message


# ---- snapshot jobs ---------------------------------------------------------------------------

def test_normal_job_runs_and_writes_jpegs(client, ice, video, bucket_out):
    template_id = create_template(client)
    job_id = submit(client, template_id, output=f"oss://{OUT}/normal/snap-{{Count}}.jpg", name="normal-job",
                    user_data='{"trace": "t-1"}',
                    schedule_config=m.SubmitSnapshotJobRequestScheduleConfig(pipeline_id="pipe-1"))
    assert ice.wait_idle(30)
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
    time.sleep(2.1)
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
    assert ice.wait_idle(30)

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


# ---- authentication --------------------------------------------------------------------------

def test_sdk_auth_failures_use_gateway_codes(ice, client):
    error = client_error(sdk(ice, access_key_secret="not-the-secret").get_event_callback)
    assert (error.code, error.status_code) == ("SignatureDoesNotMatch", 400)
    assert SK not in json.dumps(error.data)
    error = client_error(sdk(ice, access_key_id="LTAIunknownKey").get_event_callback)
    assert (error.code, error.status_code) == ("InvalidAccessKeyId.NotFound", 404)
    assert sdk(ice, security_token="any-sts-token").get_event_callback().status_code == 200


def test_raw_requests_must_be_signed_and_fresh(ice):
    status, body, request_id = raw_call(ice, "GetSnapshotJob", {"JobId": "abc"})
    assert (status, body["Code"]) == (404, "JobNotFound") and body["RequestId"] == request_id
    status, body, _ = raw_call(ice, "GetSnapshotJob", {"JobId": "abc"}, tamper={"JobId": "abd"})
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    status, body, _ = raw_call(ice, "GetSnapshotJob", {"JobId": "abc"}, sign=False)
    assert (status, body["Code"]) == (400, "IncompleteSignature")
    stale = (datetime.now(timezone.utc) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, body, _ = raw_call(ice, "GetSnapshotJob", {"JobId": "abc"}, date=stale)
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")
    status, body, _ = raw_call(ice, "GetSnapshotJob", {"JobId": "abc"},
                               extra_headers={"x-acs-security-token": "tok", "x-acs-accesskey-id": AK},
                               omit_from_signature=("x-acs-security-token",))
    assert (status, body["Code"]) == (400, "IncompleteSignature") and "x-acs-security-token" in body["Message"]
    status, body, _ = raw_call(ice, "StartTheReactor", {})
    assert (status, body["Code"]) == (403, "InvalidAction")
    nonce = {"x-acs-signature-nonce": "fixed-nonce-1"}
    assert raw_call(ice, "GetEventCallback", {}, extra_headers=nonce)[0] == 200
    status, body, _ = raw_call(ice, "GetEventCallback", {}, extra_headers=nonce)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")


# ---- callbacks -------------------------------------------------------------------------------

def test_callback_is_delivered_and_signed(client, ice, video, receiver):
    assert client.set_event_callback(m.SetEventCallbackRequest(
        callback_type="HTTP", callback_url=receiver.url, event_type_list="SnapshotComplete",
        auth_switch="on", auth_key=AUTH_KEY)).body.success
    setting = client.get_event_callback().body
    assert (setting.callback_url, setting.auth_switch, setting.auth_key) == (receiver.url, "on", AUTH_KEY)
    template_id = create_template(client, dict(NORMAL, Count=2))
    job = run_job(client, ice, template_id, user_data="not json")

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    event = json.loads(request["body"])
    assert event["EventType"] == "SnapshotComplete" and event["UserId"] == 1000000000000001
    datetime.strptime(event["EventTime"], "%Y-%m-%dT%H:%M:%SZ")
    body = event["MessageBody"]
    assert (body["JobId"], body["Status"], body["Type"], body["UserData"]) == (job.job_id, "Success", "Normal",
                                                                               "not json")
    timestamp = request["headers"]["X-ICE-TIMESTAMP"]
    assert abs(int(timestamp) - time.time()) < 30
    expected = hashlib.md5(f"{receiver.url}|{timestamp}|{AUTH_KEY}".encode()).hexdigest()
    assert request["headers"]["X-ICE-SIGNATURE"] == expected
    (delivery,) = ice.deliveries()
    assert delivery["delivered"] and delivery["attempt"] == 1 and delivery["status"] == 200
    assert delivery["job_id"] == job.job_id and delivery["url"] == receiver.url


def test_notify_address_wins_and_failures_are_reported(client, ice, video, receiver):
    ice.set_event_callback(receiver.url, None)
    template_id = create_template(client, dict(NORMAL, Count=1))
    job = run_job(client, ice, template_id, source=f"oss://{IN}/videos/absent.mp4",
                  user_data=json.dumps({"NotifyAddress": receiver.url + "/per-job"}))
    (request,) = receiver.requests
    assert request["path"] == "/ice/callback/per-job" and "X-ICE-SIGNATURE" not in request["headers"]
    body = json.loads(request["body"])["MessageBody"]
    assert (body["JobId"], body["Status"], body["Code"]) == (job.job_id, "Fail", "ResourceNotFound")


def test_event_callback_validation(client):
    for request, field in ((m.SetEventCallbackRequest(callback_type="HTTP"), "CallbackURL"),
                           (m.SetEventCallbackRequest(callback_type="HTTP", callback_url="http://x/",
                                                      auth_switch="on"), "AuthKey"),
                           (m.SetEventCallbackRequest(callback_type="HTTP", callback_url="http://x/",
                                                      auth_switch="on", auth_key="alllowercase"), "AuthKey"),
                           (m.SetEventCallbackRequest(callback_type="MNS", callback_queue_name="q"),
                            "CallbackQueueName")):
        error = client_error(client.set_event_callback, request)
        assert error.code in ("MissingParameter", "InvalidParameter") and f'"{field}"' in error.message


def test_callback_retried_after_two_500s(client, ice, video, receiver):
    receiver.statuses = [500, 500]
    ice.set_event_callback(receiver.url, AUTH_KEY)
    template_id = create_template(client, dict(NORMAL, Count=1))
    run_job(client, ice, template_id)
    attempts = ice.deliveries()
    assert [(a["attempt"], a["status"], a["delivered"]) for a in attempts] == [(1, 500, False), (2, 500, False),
                                                                             (3, 200, True)]
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.requests, receiver.requests[1:])]
    assert len(receiver.requests) == 3 and min(gaps) >= CALLBACK_INTERVAL_S * 0.9


def test_slow_receiver_is_retried_and_three_failures_drop_the_message(client, ice, video, receiver):
    receiver.delays = [CALLBACK_TIMEOUT_S + 0.4]
    ice.set_event_callback(receiver.url, None)
    template_id = create_template(client, dict(NORMAL, Count=1))
    run_job(client, ice, template_id)
    first, second = ice.deliveries()
    assert not first["delivered"] and first["status"] is None and "timed out" in first["error"]
    assert second["delivered"] and second["attempt"] == 2

    ice.reset()
    receiver.requests.clear()
    receiver.statuses = [503, 503, 503, 503]
    ice.set_event_callback(receiver.url, None)
    template_id = create_template(client, dict(NORMAL, Count=1))
    run_job(client, ice, template_id)
    assert [(a["attempt"], a["delivered"]) for a in ice.deliveries()] == [(1, False), (2, False), (3, False)]
    assert len(receiver.requests) == 3


def test_default_callback_knobs_are_the_documented_ones(oss):
    local = LocalIce(access_key_id=AK, access_key_secret=SK, oss_endpoint=oss.endpoint)
    assert (local.callback_timeout_s, local.callback_retry_interval_s, local.callback_attempts) == (3.0, 1.0, 3)
    local.start()
    try:
        assert local.endpoint.startswith("127.0.0.1:") and local.url == f"http://{local.endpoint}"
    finally:
        local.stop()
        local.stop()


# ---- faults ----------------------------------------------------------------------------------

def test_qps_limit_answers_throttling_user(client, ice):
    ice.set_faults(qps_limits={"GetEventCallback": 2})
    codes = []
    for _ in range(6):
        try:
            client.get_event_callback()
            codes.append("ok")
        except ClientException as exc:
            codes.append((exc.code, exc.status_code, "user flow control" in exc.message))
    assert codes.count("ok") <= 3 and ("Throttling.User", 400, True) in codes
    client.list_custom_templates(m.ListCustomTemplatesRequest(type="2"))  # other actions are not limited
    time.sleep(1.1)
    client.get_event_callback()


def test_injected_5xx_raises_server_exception_and_changes_no_state(client, ice, video):
    template_id = create_template(client)
    ice.set_faults(error_rate=1.0)
    with pytest.raises(ServerException) as info:
        submit(client, template_id)
    assert (info.value.code, info.value.status_code) == ("InternalError", 500)
    ice.set_faults(error_rate=0.0)
    assert client.list_snapshot_jobs(m.ListSnapshotJobsRequest()).body.jobs == []


def test_error_rate_is_reproducible_with_a_seed(client, ice):
    def outcomes():
        ice.set_faults(error_rate=0.5, seed=123)
        result = []
        for _ in range(12):
            try:
                client.get_event_callback()
                result.append(True)
            except ServerException:
                result.append(False)
        return result

    first = outcomes()
    assert first == outcomes() and True in first and False in first


def test_latency_is_added_per_call(client, ice):
    ice.set_faults(latency_s=0.3)
    started = time.monotonic()
    client.get_event_callback()
    assert time.monotonic() - started >= 0.3


def test_dropped_callback_sends_nothing(client, ice, video, receiver):
    ice.set_event_callback(receiver.url, AUTH_KEY)
    ice.set_faults(callback_drop_rate=1.0)
    template_id = create_template(client, dict(NORMAL, Count=1))
    job = run_job(client, ice, template_id)
    assert job.status == "Success" and receiver.requests == []
    (entry,) = ice.deliveries()
    assert entry["dropped"] and not entry["delivered"] and entry["job_id"] == job.job_id


def test_job_delay_keeps_the_job_in_init(client, ice, video):
    ice.set_faults(job_delay_s=1.0)
    template_id = create_template(client, dict(NORMAL, Count=1))
    job_id = submit(client, template_id)
    early = get_job(client, job_id)
    assert early.status == "Init" and early.finish_time is None
    assert not ice.wait_idle(0.5)
    assert ice.wait_idle(30)
    assert get_job(client, job_id).status == "Success"


def test_admin_endpoint(ice):
    def call(method, name, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(f"{ice.url}/__localcloud/{name}", data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, faults = call("POST", "faults", {"error_rate": 0.25, "qps_limits": {"SubmitSnapshotJob": 5}})
    assert status == 200 and faults["error_rate"] == 0.25 and faults["qps_limits"] == {"SubmitSnapshotJob": 5}
    assert call("GET", "faults")[1] == faults == ice.faults()
    assert call("POST", "faults", {"no_such_fault": 1})[0] == 400
    assert call("POST", "faults", {"error_rate": 2})[0] == 400
    assert call("GET", "deliveries") == (200, [])
    assert call("POST", "reset", {}) == (200, {"reset": True})
    assert ice.faults()["error_rate"] == 0.0
