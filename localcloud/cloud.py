"""The whole local cloud in one object: OSS, ICE and Function Compute, wired as in the cloud.

Start order mirrors a deployment: the bucket exists, a snapshot template is created in
ICE, the functions of s.yaml are "deployed" with the settings a user would export before
``s deploy``, the ICE event callback points at the callback function's HTTP trigger, and
the bucket's notifications reach the submit function's OSS trigger.
"""
from __future__ import annotations

import json
import secrets
import string
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import slsyaml
from .data_dir import DataDir
from .fc import LocalFc
from .ice.server import LocalIce
from .keyring import Keyring, StsCredentials
from .oss import LocalOss
from .own_process import IceProcess, OssProcess

if TYPE_CHECKING:
    import oss2

    from snapshot_pipeline.console import ConsoleServer
    from snapshot_pipeline.credentials import Credentials
    from snapshot_pipeline.ice import IceClient
    from snapshot_pipeline.settings import Settings
    from snapshot_pipeline.store import OssStore

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = {"Type": "Normal", "FrameType": "intra", "Time": 0, "Count": 5}
#: How long the STS credentials of a function's context last: 36 hours, as Function Compute's
#: (https://help.aliyun.com/zh/functioncompute/fc-3-0/user-guide/context). Issued once per start.
FUNCTION_CREDENTIALS_TTL_S = 36 * 3600
DEFAULT_TEMPLATE_NAME = "localcloud-default"
#: Templates made of a profile's ``template_config`` are named after the profile.
PROFILE_TEMPLATE_PREFIX = "localcloud-profile-"
#: CreateCustomTemplate's Subtype of each snapshot type.
TEMPLATE_SUBTYPE = {"Normal": 1, "Sprite": 2, "WebVtt": 3}

#: The local OSS and ICE, in this process or in their own (``own_processes``).
AnyOss = LocalOss | OssProcess
AnyIce = LocalIce | IceProcess


def _not_running() -> RuntimeError:
    return RuntimeError("the local cloud is not running: call start() first")


def _port(endpoint: str) -> int:
    """The port of ``http://host:port/...`` or ``host:port``."""
    port = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").port
    if port is None:
        raise ValueError(f"no port in {endpoint!r}")
    return port


def _auth_key() -> str:
    """An ICE AuthKey: at most 32 characters with upper case, lower case and digits."""
    alphabet = string.ascii_letters + string.digits
    while True:
        key = "".join(secrets.choice(alphabet) for _ in range(24))
        if any(c.isupper() for c in key) and any(c.islower() for c in key) and any(c.isdigit() for c in key):
            return key


def _webhook_secret() -> str:
    """A webhook signing secret, prefixed as Stripe's are so it is recognised when pasted."""
    return "whsec_" + secrets.token_urlsafe(24)


@dataclass
class LocalCloudOptions:
    host: str = "127.0.0.1"
    bucket: str = "media"
    region: str = "cn-hangzhou"
    account_id: str = "1000000000000001"
    template_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TEMPLATE))
    template_subtype: int = 1
    snapshot_type: str = "Normal"
    code: str = "source"  # "source": functions/ + the installed library; "build": build/<function>
    max_instances: int = 4
    ice_workers: int = 2
    oss_port: int = 0
    ice_port: int = 0
    callback_port: int = 0  # 0: the OS picks a free port; every server reports the port it got
    echo_logs: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    # merged into s.yaml's props per function, e.g. {"submit": {"timeout": 10}} for a test that waits for retries
    function_props: dict[str, dict[str, Any]] = field(default_factory=dict)
    async_retry_base_s: float = 0.5  # the pause before an async invocation's first retry (then doubling)
    data_dir: Path | None = None  # keep objects, ICE state and credentials here across restarts (data_dir.py)
    webhook_url: str | None = None  # WEBHOOK_URL of the functions, signed with the generated webhook_secret
    #: SNAPSHOT_PROFILES' JSON list for the functions (``up --profiles FILE``): a profile may give a
    #: ``template_config`` instead of a ``template_id``; that template is created at start.
    profiles: str | None = None
    #: The local OSS and ICE each in a child process of its own (own_process.py), so their CPU does
    #: not share a GIL with the caller's threads (benchmarks); not with a data dir.
    own_processes: bool = False


class LocalCloud:
    def __init__(self, options: LocalCloudOptions | None = None) -> None:
        self.options = options or LocalCloudOptions()
        if self.options.own_processes and self.options.data_dir:
            raise ValueError("own_processes cannot keep a data dir: the data dir lives in the services' process")
        self.data_dir = DataDir(self.options.data_dir) if self.options.data_dir else None
        generated = Keyring.generate()
        keys = {"access_key_id": generated.access_key_id, "access_key_secret": generated.access_key_secret,
                "callback_auth_key": _auth_key(), "webhook_secret": _webhook_secret()}
        if self.data_dir is not None:  # a restarted cloud keeps its keys, so clients keep working
            keys = dict(self.data_dir.credentials(lambda: keys))
            keys.setdefault("webhook_secret", _webhook_secret())  # a data dir kept before webhooks
        #: The cloud's AccessKey pair and the STS credentials issued from it, for the OSS and the ICE alike.
        self.keyring = Keyring(keys["access_key_id"], keys["access_key_secret"])
        self.access_key_id = self.keyring.access_key_id
        self.access_key_secret = self.keyring.access_key_secret
        self.function_credentials: StsCredentials | None = None
        self.callback_auth_key = keys["callback_auth_key"]
        #: What signs the webhook events (WEBHOOK_SECRET); a receiver verifies with it.
        self.webhook_secret = keys["webhook_secret"]
        self.oss: AnyOss | None = None
        self.ice: AnyIce | None = None
        self.fc: LocalFc | None = None
        self.template_id: str | None = None
        self.profiles: list[dict[str, Any]] | None = None  # the profiles deployed, with their template ids
        self.callback_url: str | None = None
        self.console: ConsoleServer | None = None

    def _running_oss(self) -> AnyOss:
        if self.oss is None:
            raise _not_running()
        return self.oss

    def _running_ice(self) -> AnyIce:
        if self.ice is None:
            raise _not_running()
        return self.ice

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LocalCloud:
        if self.data_dir is not None:  # the ports of the last run, unless others are asked for
            kept, o = self.data_dir.kept_ports(), self.options
            self.options = replace(o, oss_port=o.oss_port or kept.get("oss_port", 0),
                                   ice_port=o.ice_port or kept.get("ice_port", 0),
                                   callback_port=o.callback_port or kept.get("callback_port", 0))
        o = self.options
        try:
            oss = self.oss = self._start_oss()
            oss.create_bucket(o.bucket)
            ice = self.ice = self._start_ice(oss.endpoint)
            self.template_id = self._default_template(ice)
            if o.profiles is not None:
                self.profiles = self._profile_templates(ice, o.profiles)
            fc = self.fc = self._start_functions(oss, ice)
            ice.set_event_callback(fc.url("callback"), self.callback_auth_key)
            if self.data_dir is not None:
                self.data_dir.keep_ports({"oss_port": _port(oss.endpoint), "ice_port": _port(ice.endpoint),
                                          "callback_port": _port(fc.url("callback"))})
            ice.resume_unfinished_jobs()
            oss.subscribe(fc.on_oss_record)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_oss(self) -> AnyOss:
        o = self.options
        where: dict[str, Any] = {"host": o.host, "port": o.oss_port, "region": o.region, "account_id": o.account_id}
        if o.own_processes:
            return OssProcess(keyring=self.keyring, **where).start()
        return LocalOss(keyring=self.keyring, data_dir=self.data_dir.oss if self.data_dir else None, **where).start()

    def _start_ice(self, oss_endpoint: str) -> AnyIce:
        o = self.options
        where: dict[str, Any] = {"oss_endpoint": oss_endpoint, "host": o.host, "port": o.ice_port, "region": o.region,
                 "account_id": o.account_id, "workers": o.ice_workers}
        if o.own_processes:
            return IceProcess(keyring=self.keyring, **where).start()
        ice = LocalIce(keyring=self.keyring, **where)
        if self.data_dir is not None:
            self.data_dir.keep_ice(ice.model)
        return ice.start()

    def _default_template(self, ice: AnyIce) -> str:
        """The snapshot template the functions use: the one a data dir kept, else a new one."""
        kept, _ = ice.model.list_templates(type=2, name=DEFAULT_TEMPLATE_NAME)
        if kept:
            return kept[0].template_id
        o = self.options
        return str(self.ice_adapter().create_snapshot_template(
            DEFAULT_TEMPLATE_NAME, o.template_config, o.template_subtype)["TemplateId"])

    def _profile_templates(self, ice: AnyIce, raw: str) -> list[dict[str, Any]]:
        """The profiles of ``raw`` (validated as the functions will), each ``template_config`` replaced by
        the id of the template made of it: the one a data dir kept under the profile's name, else a new one."""
        from snapshot_pipeline.profiles import parse_profiles

        profiles = []
        for profile in parse_profiles(raw, require_template_ids=False):
            doc = profile.to_doc()
            if profile.template_config is not None:
                name = f"{PROFILE_TEMPLATE_PREFIX}{profile.name}"
                kept, _ = ice.model.list_templates(type=2, name=name)
                doc["template_id"] = kept[0].template_id if kept else str(self.ice_adapter().create_snapshot_template(
                    name, dict(profile.template_config), TEMPLATE_SUBTYPE[profile.type.value])["TemplateId"])
            profiles.append(doc)
        return profiles

    def _start_functions(self, oss: AnyOss, ice: AnyIce) -> LocalFc:
        """Deploy s.yaml's functions; the callback's HTTP trigger binds first, so its URL is the real one.

        The functions read CALLBACK_URL from their environment, which is rendered before the
        trigger has a port: it is set in ``env_overrides``, which LocalFc reads whenever it starts
        a function instance (none has started before ``start`` returns).
        """
        o = self.options
        functions = {name: spec.with_props(o.function_props.get(name, {})) for name, spec in
                     slsyaml.load(ROOT / "s.yaml", env=self.deploy_env(), config={"AccountID": o.account_id}).items()}
        code_dirs = {name: (ROOT / "functions" / name) if o.code == "source" else (ROOT / "build" / name)
                     for name in functions}
        env_overrides = {"ICE_ENDPOINT": ice.endpoint, "ICE_PROTOCOL": "http", "OSS_ENDPOINT": oss.endpoint}
        self.function_credentials = self.keyring.issue_sts(FUNCTION_CREDENTIALS_TTL_S)
        fc = LocalFc(
            functions, code_dirs=code_dirs, host=o.host, max_instances=o.max_instances, echo_logs=o.echo_logs,
            retry_base_s=o.async_retry_base_s,
            context_base={"credentials": self.function_credentials.as_context(),
                          "region": o.region, "account_id": o.account_id, "service": {}},
            env_overrides=env_overrides,
        ).start(http_ports={"callback": o.callback_port})
        self.callback_url = fc.url("callback")
        env_overrides["CALLBACK_URL"] = self.deploy_env()["CALLBACK_URL"]
        return fc

    def deploy_env(self) -> dict[str, str]:
        """What a user exports before ``s deploy`` (see README, "Deploying")."""
        o = self.options
        if self.profiles is not None:  # the profiles say every template and type
            chosen = {"SNAPSHOT_PROFILES": json.dumps(self.profiles), "SNAPSHOT_TEMPLATE_ID": ""}
        else:
            chosen = {"SNAPSHOT_TEMPLATE_ID": self.template_id or "", "SNAPSHOT_TYPE": o.snapshot_type}
        return {"REGION": o.region, "INPUT_BUCKET": o.bucket, "OUTPUT_BUCKET": o.bucket, **chosen,
                "CALLBACK_URL": self.callback_url or "", "ICE_CALLBACK_AUTH_KEY": self.callback_auth_key,
                "WEBHOOK_URL": o.webhook_url or "", "WEBHOOK_SECRET": self.webhook_secret if o.webhook_url else "",
                **o.extra_env}

    def stop(self) -> None:
        for part in (self.console, self.fc, self.ice, self.oss):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    pass
        self.console = self.fc = self.ice = self.oss = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def set_faults(self, **faults: Any) -> None:
        """Inject ICE faults (the keys of :meth:`LocalIce.set_faults`)."""
        self._running_ice().set_faults(**faults)

    def set_oss_faults(self, **faults: Any) -> None:
        """Set the local OSS's rate switches (``error_rate``, ``latency_s``, ``drop_response_rate``,
        ``methods``, ``key_prefix``, ``seed``: :meth:`LocalOss.set_faults`)."""
        self._running_oss().set_faults(**faults)

    def lose_oss_answers(self, *, method: str | None = None, key_prefix: str = "", count: int = 1) -> None:
        """Let the local OSS perform the next ``count`` matching requests and drop their answers
        (:meth:`LocalOss.lose_answers`; ``self.oss.clear_faults()`` disarms, and has the other faults)."""
        self._running_oss().lose_answers(method=method, key_prefix=key_prefix, count=count)

    # --- what a client needs ----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "oss_endpoint": self._running_oss().endpoint, "bucket": o.bucket, "region": o.region,
            "ice_endpoint": self._running_ice().endpoint, "ice_protocol": "http",
            "access_key_id": self.access_key_id, "access_key_secret": self.access_key_secret,
            "callback_url": self.callback_url, "callback_auth_key": self.callback_auth_key,
            "template_id": self.template_id, "output_prefix": "snapshots/", "upload_prefix": "uploads/",
            **({"webhook_url": o.webhook_url, "webhook_secret": self.webhook_secret} if o.webhook_url else {}),
            **({"profiles": self.profiles} if self.profiles is not None else {}),
            **({"console_url": self.console.url} if self.console else {}),
        }

    def start_console(self, port: int = 0) -> ConsoleServer:
        """The web console over the bucket's ``uploads/``, uploads allowed; it stops with the cloud."""
        from snapshot_pipeline.console import ConsoleApi, ConsoleConfig, ConsoleServer, UrlSigner
        from snapshot_pipeline.domain import OssLocation
        from snapshot_pipeline.retry import Deadline

        ice, store = self.ice_adapter(), self.store()
        api = ConsoleApi(self.settings(), lambda: (ice.with_deadline(Deadline.after(60)),
                                                    store.with_deadline(Deadline.after(60))),
                         UrlSigner(store),
                         ConsoleConfig(OssLocation(self.options.bucket, "uploads/"), allow_upload=True))
        self.console = ConsoleServer(api, port).start()
        return self.console

    def credentials(self) -> Credentials:
        from snapshot_pipeline.credentials import Credentials

        return Credentials(self.access_key_id, self.access_key_secret)

    def ice_adapter(self, budget_s: float = 300) -> IceClient:
        """The pipeline's ICE adapter against the local ICE, its retries bounded by ``budget_s``."""
        from snapshot_pipeline.ice import IceClient
        from snapshot_pipeline.retry import Deadline

        return IceClient(endpoint=self._running_ice().endpoint, credentials=self.credentials(),
                         region=self.options.region, protocol="http", deadline=Deadline.after(budget_s))

    def bucket(self, name: str | None = None) -> oss2.Bucket:
        import oss2

        return oss2.Bucket(oss2.Auth(self.access_key_id, self.access_key_secret), self._running_oss().endpoint,
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

    def wait_for_index(self, source_key: str, timeout: float = 60, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
        """The index of ``source_key`` once it exists and shows each of ``profiles``."""
        from snapshot_pipeline.domain import OssLocation
        from snapshot_pipeline.layout import index_key

        key = index_key("snapshots/", OssLocation(self.options.bucket, source_key))
        deadline = time.monotonic() + timeout
        while True:
            index = json.loads(self.wait_for_object(key, max(deadline - time.monotonic(), 0)))
            if set(profiles) <= set(index.get("profiles") or {}):
                return index
            if time.monotonic() > deadline:
                raise TimeoutError(f"the index of {source_key} did not show {', '.join(profiles)} within {timeout:g}s")
            time.sleep(0.1)

    def profiles_for(self, source_key: str) -> tuple[str, ...]:
        """The names of the deployed profiles that apply to uploads at ``source_key``."""
        from snapshot_pipeline.settings import Settings

        return tuple(p.name for p in Settings.from_env(self.function_env()).profiles if p.applies_to(source_key))

    def function_env(self, **overrides: str) -> dict[str, str]:
        """The environment the deployed functions see (all of them merged), as a mapping."""
        env = {"ICE_ENDPOINT": self._running_ice().endpoint, "ICE_PROTOCOL": "http",
               "OSS_ENDPOINT": self._running_oss().endpoint}
        env.update(self.deploy_env())
        env.update(overrides)
        return env

    def settings(self, **overrides: str) -> Settings:
        """Settings as the functions build them, for driving the library in-process."""
        from snapshot_pipeline.settings import Settings

        return Settings.from_env(self.function_env(**overrides))

    def store(self, budget_s: float = 300) -> OssStore:
        """The pipeline's OSS adapter against the local OSS, its retries bounded by ``budget_s``."""
        from snapshot_pipeline.retry import Deadline
        from snapshot_pipeline.store import OssStore

        return OssStore(endpoint=self._running_oss().endpoint, credentials=self.credentials(),
                        deadline=Deadline.after(budget_s))
