"""The whole local cloud in one object: OSS, ICE and Function Compute, wired as in the cloud.

Start order mirrors a deployment: the bucket exists, a snapshot template is created in
ICE, the functions of s.yaml are "deployed" with the settings a user would export before
``s deploy``, the ICE event callback points at the callback function's HTTP trigger, and
the bucket's notifications reach the submit function's OSS trigger.
"""
from __future__ import annotations

import json
import secrets
import socket
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import slsyaml
from .fc import LocalFc
from .ice.server import LocalIce
from .oss import LocalOss

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = {"Type": "Normal", "FrameType": "intra", "Time": 0, "Count": 5}
LOCAL_STS_TOKEN = "local-sts-token"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _auth_key() -> str:
    """An ICE AuthKey: at most 32 characters with upper case, lower case and digits."""
    alphabet = string.ascii_letters + string.digits
    while True:
        key = "".join(secrets.choice(alphabet) for _ in range(24))
        if any(c.isupper() for c in key) and any(c.islower() for c in key) and any(c.isdigit() for c in key):
            return key


@dataclass
class LocalCloudOptions:
    host: str = "127.0.0.1"
    bucket: str = "media"
    region: str = "cn-hangzhou"
    account_id: str = "1000000000000001"
    template_config: dict = field(default_factory=lambda: dict(DEFAULT_TEMPLATE))
    template_subtype: int = 1
    snapshot_type: str = "Normal"
    code: str = "source"  # "source": functions/ + the installed library; "build": build/<function>
    max_instances: int = 4
    ice_workers: int = 2
    oss_port: int = 0
    ice_port: int = 0
    callback_port: int = 0
    echo_logs: bool = False
    extra_env: dict = field(default_factory=dict)


class LocalCloud:
    def __init__(self, options: LocalCloudOptions | None = None):
        self.options = options or LocalCloudOptions()
        self.access_key_id = "LTAI" + secrets.token_hex(8)
        self.access_key_secret = secrets.token_urlsafe(24)
        self.callback_auth_key = _auth_key()
        self.oss: LocalOss | None = None
        self.ice: LocalIce | None = None
        self.fc: LocalFc | None = None
        self.template_id: str | None = None
        self.callback_url: str | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "LocalCloud":
        o = self.options
        try:
            self.oss = LocalOss(access_key_id=self.access_key_id, access_key_secret=self.access_key_secret,
                                host=o.host, port=o.oss_port, region=o.region, account_id=o.account_id).start()
            self.oss.create_bucket(o.bucket)
            self.ice = LocalIce(access_key_id=self.access_key_id, access_key_secret=self.access_key_secret,
                                oss_endpoint=self.oss.endpoint, host=o.host, port=o.ice_port, region=o.region,
                                account_id=o.account_id, workers=o.ice_workers).start()
            self.template_id = self.ice_adapter().create_snapshot_template(
                "localcloud-default", o.template_config, o.template_subtype)["TemplateId"]
            callback_port = o.callback_port or _free_port(o.host)
            self.callback_url = f"http://{o.host}:{callback_port}/"
            functions = slsyaml.load(ROOT / "s.yaml", env=self.deploy_env(), config={"AccountID": o.account_id})
            code_dirs = {name: (ROOT / "functions" / name) if o.code == "source" else (ROOT / "build" / name)
                         for name in functions}
            self.fc = LocalFc(
                functions, code_dirs=code_dirs, host=o.host, max_instances=o.max_instances, echo_logs=o.echo_logs,
                context_base={"credentials": {"access_key_id": self.access_key_id,
                                              "access_key_secret": self.access_key_secret,
                                              "security_token": LOCAL_STS_TOKEN},
                              "region": o.region, "account_id": o.account_id, "service": {}},
                env_overrides={"ICE_ENDPOINT": self.ice.endpoint, "ICE_PROTOCOL": "http",
                               "OSS_ENDPOINT": self.oss.endpoint},
            ).start(http_ports={"callback": callback_port})
            self.ice.set_event_callback(self.callback_url, self.callback_auth_key)
            self.oss.subscribe(self.fc.on_oss_record)
        except BaseException:
            self.stop()
            raise
        return self

    def deploy_env(self) -> dict[str, str]:
        """What a user exports before ``s deploy`` (see README, "Deploying")."""
        o = self.options
        return {"REGION": o.region, "INPUT_BUCKET": o.bucket, "OUTPUT_BUCKET": o.bucket,
                "SNAPSHOT_TEMPLATE_ID": self.template_id or "", "SNAPSHOT_TYPE": o.snapshot_type,
                "CALLBACK_URL": self.callback_url or "", "ICE_CALLBACK_AUTH_KEY": self.callback_auth_key,
                **o.extra_env}

    def stop(self) -> None:
        for part in (self.fc, self.ice, self.oss):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    pass
        self.fc = self.ice = self.oss = None

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what a client needs ----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "oss_endpoint": self.oss.endpoint, "bucket": o.bucket, "region": o.region,
            "ice_endpoint": self.ice.endpoint, "ice_protocol": "http",
            "access_key_id": self.access_key_id, "access_key_secret": self.access_key_secret,
            "callback_url": self.callback_url, "callback_auth_key": self.callback_auth_key,
            "template_id": self.template_id, "output_prefix": "snapshots/", "upload_prefix": "uploads/",
        }

    def credentials(self):
        from snapshot_pipeline.credentials import Credentials

        return Credentials(self.access_key_id, self.access_key_secret)

    def ice_adapter(self, budget_s: float = 300):
        """The pipeline's ICE adapter against the local ICE, its retries bounded by ``budget_s``."""
        from snapshot_pipeline.ice import IceClient
        from snapshot_pipeline.retry import Deadline

        return IceClient(endpoint=self.ice.endpoint, credentials=self.credentials(), region=self.options.region,
                         protocol="http", deadline=Deadline.after(budget_s))

    def bucket(self, name: str | None = None):
        import oss2

        return oss2.Bucket(oss2.Auth(self.access_key_id, self.access_key_secret), self.oss.endpoint,
                           name or self.options.bucket)

    def wait_for_object(self, key: str, timeout: float = 60, bucket: str | None = None) -> bytes:
        """Poll until ``key`` exists; return its content."""
        b = self.bucket(bucket)
        deadline = time.monotonic() + timeout
        while True:
            if b.object_exists(key):
                return b.get_object(key).read()
            if time.monotonic() > deadline:
                raise TimeoutError(f"oss://{b.bucket_name}/{key} did not appear within {timeout:g}s")
            time.sleep(0.1)

    def wait_for_index(self, source_key: str, timeout: float = 60) -> dict:
        from snapshot_pipeline.layout import index_key

        key = index_key("snapshots/", self.options.bucket, source_key)
        return json.loads(self.wait_for_object(key, timeout))

    def function_env(self, **overrides: str) -> dict[str, str]:
        """The environment the deployed functions see (all of them merged), as a mapping."""
        env = {"ICE_ENDPOINT": self.ice.endpoint, "ICE_PROTOCOL": "http", "OSS_ENDPOINT": self.oss.endpoint}
        env.update(self.deploy_env())
        env.update(overrides)
        return env

    def settings(self, **overrides: str):
        """Settings as the functions build them, for driving the library in-process."""
        from snapshot_pipeline.settings import Settings

        return Settings.from_env(self.function_env(**overrides))

    def store(self, budget_s: float = 300):
        """The pipeline's OSS adapter against the local OSS, its retries bounded by ``budget_s``."""
        from snapshot_pipeline.retry import Deadline
        from snapshot_pipeline.store import OssStore

        return OssStore(endpoint=self.oss.endpoint, credentials=self.credentials(), deadline=Deadline.after(budget_s))
