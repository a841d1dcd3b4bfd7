"""ICE media assets on the local cloud: RegisterMediaInfo, GetMediaInfo, ListMediaBasicInfos through
the SDK, snapshot jobs whose Input and Output are ``Type=Media``, and the CLI's ``media register`` and
``submit MEDIA_ID``. The videos live under ``library/``, outside the upload trigger's prefix."""
from __future__ import annotations

import json
import re
import uuid

import oss2
import pytest
from alibabacloud_ice20201109 import models as m
from alibabacloud_ice20201109.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.ice.models import IceModel
from snapshot_pipeline import cli
from snapshot_pipeline.cli import local_state
from snapshot_pipeline.domain import OssLocation
from tests.support import PIPELINE_TIMEOUT_S, wait_until

BUCKET = "media-assets-test"
COUNT = 3


@pytest.fixture(scope="module")
def cloud():
    options = LocalCloudOptions(bucket=BUCKET, template_config={"Type": "Normal", "FrameType": "intra", "Time": 0,
                                                                 "Count": COUNT, "Interval": 1})
    with LocalCloud(options) as running:
        yield running


@pytest.fixture(scope="module")
def client(cloud) -> Client:
    return Client(Config(endpoint=cloud.ice.endpoint, protocol="http", access_key_id=cloud.access_key_id,
                         access_key_secret=cloud.access_key_secret))


@pytest.fixture(scope="module")
def bucket(cloud) -> oss2.Bucket:
    return oss2.Bucket(oss2.Auth(cloud.access_key_id, cloud.access_key_secret), cloud.oss.endpoint, BUCKET)


@pytest.fixture(scope="module")
def video_key(bucket) -> str:
    from localcloud.media import make_test_video

    key = "library/clip one.mp4"
    bucket.put_object(key, make_test_video(duration_s=4.0, fps=5, width=96, height=64, gop_s=1.0))
    return key


def register(client: Client, input_url: str, **fields) -> str:
    return client.register_media_info(m.RegisterMediaInfoRequest(input_url=input_url, **fields)).body.media_id


def not_found(call, *args) -> ClientException:
    with pytest.raises(ClientException) as caught:
        call(*args)
    return caught.value


def test_register_then_get_by_media_id_and_by_either_url_form(client):
    key = f"library/clip {uuid.uuid4().hex[:8]}.mp4"  # registration does not read the object
    media_id = register(client, f"oss://{BUCKET}/{key}", title="Clip one", reference_id=f"ref-{uuid.uuid4().hex}")
    info = client.get_media_info(m.GetMediaInfoRequest(media_id=media_id)).body.media_info
    basic = info.media_basic_info
    assert (info.media_id, basic.input_url, basic.title, basic.media_type, basic.status) == \
        (media_id, f"oss://{BUCKET}/{key}", "Clip one", "video", "Normal")
    assert info.file_info_list[0].file_basic_info.file_name == key.rsplit("/", 1)[1]
    https_url = f"https://{BUCKET}.oss-cn-hangzhou.aliyuncs.com/{key.replace(' ', '%20')}"
    assert client.get_media_info(m.GetMediaInfoRequest(input_url=https_url)).body.media_info.media_id == media_id
    error = not_found(client.get_media_info, m.GetMediaInfoRequest(media_id="0" * 32))
    assert (error.code, error.status_code) == ("ResourceNotFound", 404)


def test_client_token_and_overwrite(client):
    url, token = f"oss://{BUCKET}/library/tokens-{uuid.uuid4().hex}.mp4", uuid.uuid4().hex
    first = register(client, url, client_token=token)
    assert register(client, f"oss://{BUCKET}/library/another.mp4", client_token=token) == first
    assert register(client, url, title="registered again") == first, "a registered URL keeps its asset"
    replaced = register(client, url, overwrite=True)
    assert replaced != first
    assert not_found(client.get_media_info, m.GetMediaInfoRequest(media_id=first)).code == "ResourceNotFound"
    error = not_found(client.register_media_info, m.RegisterMediaInfoRequest(input_url=f"oss://{BUCKET}/notes.xyz"))
    assert error.code == "MissingParameter" and "MediaType" in error.message


def test_list_media_basic_infos_pages(client):
    ids = [register(client, f"oss://{BUCKET}/library/track-{uuid.uuid4().hex}.mp3") for _ in range(3)]
    request = m.ListMediaBasicInfosRequest(media_type="audio", max_results=2, sort_by="utcCreate:Asc")
    first = client.list_media_basic_infos(request).body
    assert (first.total_count, len(first.media_infos), bool(first.next_token)) == (3, 2, True)
    request.next_token = first.next_token
    second = client.list_media_basic_infos(request).body
    assert [i.media_id for i in first.media_infos + second.media_infos] == ids and not second.next_token
    assert second.media_infos[0].media_basic_info.media_type == "audio"


def test_snapshot_job_with_media_input_and_output(cloud, client, bucket, video_key):
    media_id = register(client, f"oss://{BUCKET}/{video_key}")
    job_id = client.submit_snapshot_job(m.SubmitSnapshotJobRequest(
        input=m.SubmitSnapshotJobRequestInput(type="Media", media=media_id),
        output=m.SubmitSnapshotJobRequestOutput(type="Media", media=media_id),
        template_config=m.SubmitSnapshotJobRequestTemplateConfig(template_id=cloud.template_id))).body.job_id
    job = wait_until(lambda: (j := client.get_snapshot_job(m.GetSnapshotJobRequest(job_id=job_id)).body.snapshot_job)
                     .status != "Init" and j, "the job to finish", PIPELINE_TIMEOUT_S)
    assert (job.status, job.input.type, job.input.media, job.output.type, job.output.media) == \
        ("Success", "Media", media_id, "Media", media_id)
    assert job.input.oss_file.object == video_key
    assert job.output.oss_file.object == f"snapshots/{media_id}/{job_id}/snapshot-{{Count}}.jpg"
    urls = client.get_snapshot_urls(m.GetSnapshotUrlsRequest(job_id=job_id)).body
    assert urls.total == COUNT
    written = [o.key for o in bucket.list_objects(prefix=f"snapshots/{media_id}/{job_id}/").object_list]
    assert len(written) == COUNT and all(re.fullmatch(rf"snapshots/{media_id}/{job_id}/snapshot-\d+\.jpg", k)
                                         for k in written)


def test_unknown_media_id_is_refused_at_submit(cloud, client):
    error = not_found(client.submit_snapshot_job, m.SubmitSnapshotJobRequest(
        input=m.SubmitSnapshotJobRequestInput(type="Media", media="f" * 32),
        output=m.SubmitSnapshotJobRequestOutput(type="OSS", media=f"oss://{BUCKET}/out/x-{{Count}}.jpg"),
        template_config=m.SubmitSnapshotJobRequestTemplateConfig(template_id=cloud.template_id)))
    assert (error.code, error.status_code) == ("ResourceNotFound", 404) and "Input.Media" in error.message


def test_cli_registers_and_submits_a_media_id(cloud, bucket, monkeypatch, tmp_path, capsys):
    from localcloud.media import make_test_video

    key = f"library/cli-{uuid.uuid4().hex[:8]}.mp4"
    bucket.put_object(key, make_test_video(duration_s=2.0, fps=5, width=64, height=48))
    state = tmp_path / "state.json"
    local_state.write_local_state(state, cloud.describe())
    monkeypatch.setenv(local_state.LOCAL_STATE_ENV, str(state))
    assert cli.main(["--local", "media", "register", f"oss://{BUCKET}/{key}"]) == 0
    media_id = capsys.readouterr().out.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", media_id)
    assert cli.main(["--local", "--json", "submit", media_id]) == 0
    submitted = json.loads(capsys.readouterr().out)
    job = cloud.ice_adapter().get_snapshot_job(submitted["job_id"])
    assert job.input == OssLocation(BUCKET, key)
    assert cli.main(["--local", "submit", "not a media id!"]) == 2


def test_media_assets_survive_state_and_restore(cloud, client):
    media_id = register(client, f"oss://{BUCKET}/library/kept-{uuid.uuid4().hex}.mp4", title="kept")
    restored = IceModel(region=cloud.ice.model.region)
    restored.restore(json.loads(json.dumps(cloud.ice.model.state())))
    asset = restored.get_media_info(media_id=media_id)
    assert (asset.title, asset.location.bucket) == ("kept", BUCKET)
