"""What the local ICE tests share: the keys, an SDK client, a callback receiver and short job helpers."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from alibabacloud_ice20201109 import models as m
from alibabacloud_ice20201109.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

from localcloud.ice.server import LocalIce
from tests.localcloud.support import BackgroundServer, QuietHandler
from tests.support import PIPELINE_TIMEOUT_S, admin_json, http_call

AK, SK = "LTAIlocalTestKey01", "local-test-secret-0123456789"
IN, OUT = "ice-test-in", "ice-test-out"
FPS = 5
AUTH_KEY = "LocalKey2024abc"
CALLBACK_TIMEOUT_S, CALLBACK_INTERVAL_S = 0.5, 0.1
NORMAL = {"Type": "Normal", "FrameType": "intra", "Time": 0, "Count": 5, "Interval": 2}


def sdk(ice: LocalIce, **overrides) -> Client:
    settings = dict(endpoint=ice.endpoint, protocol="http", access_key_id=AK, access_key_secret=SK,
                    read_timeout=10000, connect_timeout=5000)
    settings.update(overrides)
    return Client(Config(**settings))


class Receiver:
    """A tiny HTTP callback receiver: answers ``statuses`` in turn (then 200), after ``delays``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.delays: list[float] = []
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                          "at": time.monotonic()})
                delay = receiver.delays.pop(0) if receiver.delays else 0
                if delay:
                    time.sleep(delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send(status, {"Content-Length": "2"}, [b"ok"])

        self.server = BackgroundServer(Handler).start()
        self.url = self.server.url("/ice/callback")

    def close(self):
        self.server.close()


def create_template(client, config=NORMAL, subtype=1, name="snap"):
    resp = client.create_custom_template(m.CreateCustomTemplateRequest(
        name=name, type=2, subtype=subtype, template_config=json.dumps(config)))
    return resp.body.custom_template.template_id


def submit(client, template_id, output=None, source=None, **extra):
    output = output or f"oss://{OUT}/out/{uuid.uuid4().hex}/snap-{{Count}}.jpg"
    overwrite = extra.pop("overwrite", None)
    overwrite_params = m.SubmitSnapshotJobRequestTemplateConfigOverwriteParams(**overwrite) if overwrite else None
    request = m.SubmitSnapshotJobRequest(
        input=m.SubmitSnapshotJobRequestInput(type="OSS", media=source or f"oss://{IN}/videos/clip 1.mp4"),
        output=m.SubmitSnapshotJobRequestOutput(type="OSS", media=output),
        template_config=m.SubmitSnapshotJobRequestTemplateConfig(template_id=template_id,
                                                                 overwrite_params=overwrite_params),
        **extra)
    return client.submit_snapshot_job(request).body.job_id


def get_job(client, job_id):
    return client.get_snapshot_job(m.GetSnapshotJobRequest(job_id=job_id)).body.snapshot_job


def run_job(client, ice, template_id, **kwargs):
    job_id = submit(client, template_id, **kwargs)
    assert ice.wait_idle(PIPELINE_TIMEOUT_S)
    return get_job(client, job_id)


def client_error(call, *args) -> ClientException:
    with pytest.raises(ClientException) as info:
        call(*args)
    return info.value


def http_get(url: str) -> tuple[int, bytes]:
    return http_call(url, timeout=10)


def admin_call(ice, method, name, payload=None):
    """One call of the local ICE's admin endpoint: (HTTP status, decoded JSON answer)."""
    return admin_json(f"{ice.url}/__localcloud/{name}", method, payload)

