"""``snapshots``: the operator's command line, built on the same library as the functions.

Templates, one-off submissions (the submit function's claims, output naming and UserData), jobs,
snapshot URLs, indexes, the region's event callback, backfilling a bucket that already holds
videos, and the reconciler on demand. ``--local`` talks to a local cloud started with
``python -m localcloud up`` (found through :func:`find_local_state`); otherwise the standard
credential chain and ``--region`` / ``REGION``.

Never deployed (``make build`` leaves this module out) and imported by no other module.
Exit codes: 0 done; 1 an API call or an operation failed; 2 bad arguments or configuration;
3 no credentials or no running local cloud; 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import hmac
import io
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import credentials as creds
from .claims import ClaimBusy, ClaimLost
from .domain import SnapshotJob, Upload
from .ice import IceClient as Ice
from .ports import IceError, ObjectStoreError
from .layout import index_key, output_location
from .retry import Deadline
from .settings import SNAPSHOT_TYPES, Settings, SettingsError
from .domain import ObjectInfo
from .store import OssStore as ObjectStore
from .submit import Outcome, Submitter, existing_object_event

PROG = "snapshots"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_ACCESS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: Time an operation may spend retrying throttling, 5xx and network errors before it fails.
OPERATION_BUDGET_S = 60.0
#: Lease of the claims the CLI takes: it submits right after claiming, like the submit function.
CLAIM_LEASE_S = 60.0
#: A backfill stops after this many failures in a row (the service or the credentials are broken).
MAX_CONSECUTIVE_ERRORS = 5
DEFAULT_RATE = 5.0
DEFAULT_JOBS_LIMIT = 50
JOBS_PAGE_SIZE = 100  # ListSnapshotJobs' maximum PageSize

LOCAL_STATE_ENV = "SNAPSHOTS_LOCAL_STATE"
PROJECT_STATE_FILE = Path(".localcloud") / "state.json"
LOCAL_STATE_FIELDS = ("oss_endpoint", "bucket", "region", "ice_endpoint", "access_key_id", "access_key_secret")
#: Never printed, whatever the output format.
SECRET_FIELDS = frozenset({"AuthKey", "access_key_secret", "callback_auth_key", "security_token", "SecurityToken",
                           "AccessKeySecret"})

SUBTYPE_OF = {"normal": 1, "sprite": 2, "webvtt": 3}
TYPE_OF = {"normal": "Normal", "sprite": "Sprite", "webvtt": "WebVtt"}
SUBTYPE_NAMES = {1: "Normal", 2: "Sprite", 3: "WebVtt"}


class CliError(Exception):
    """A failure worth one line on stderr and a non-zero exit."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CliError):
    def __init__(self, message: str):
        super().__init__(message, EXIT_USAGE)


# --- the local cloud's state file ------------------------------------------------------------------
def user_state_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where ``python -m localcloud up`` records the running local cloud for this user."""
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "video-snapshot-pipeline" / "localcloud.json"


def write_local_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write the state atomically, readable by this user only (it holds the local credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(dict(state), f)
    os.replace(tmp, path)


def remove_local_state(path: Path, pid: int) -> None:
    """Remove the state file if it still describes the local cloud of process ``pid``."""
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def _process_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or os.name != "posix":
        return True  # nothing to check against
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else
    return True


def find_local_state(environ: Mapping[str, str], cwd: Path) -> dict[str, Any]:
    """The running local cloud: ``$SNAPSHOTS_LOCAL_STATE`` if set (and only it), else the nearest
    ``.localcloud/state.json`` from ``cwd`` up, else the per-user file ``up`` writes. A state whose
    ``pid`` is no longer running is stale and passed over."""
    explicit = environ.get(LOCAL_STATE_ENV)
    candidates = [Path(explicit)] if explicit else \
        [d / PROJECT_STATE_FILE for d in (cwd, *cwd.parents)] + [user_state_file(environ)]
    stale = []
    for path in candidates:
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            if explicit:
                raise CliError(f"{LOCAL_STATE_ENV}={path} does not exist", EXIT_NO_ACCESS) from None
            continue
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read the local cloud state {path}: {exc}", EXIT_NO_ACCESS) from None
        missing = [f for f in LOCAL_STATE_FIELDS if not (isinstance(state, dict) and state.get(f))]
        if missing:
            raise CliError(f"local cloud state {path} lacks {', '.join(missing)}", EXIT_NO_ACCESS)
        if not _process_alive(state.get("pid")):
            stale.append(str(path))
            continue
        return state
    detail = f" (stale: {', '.join(stale)})" if stale else ""
    raise CliError("no running local cloud: start one with `python -m localcloud up`, or set "
                   f"{LOCAL_STATE_ENV} to its state file{detail}", EXIT_NO_ACCESS)


# --- wiring ----------------------------------------------------------------------------------------
@dataclass
class Seams:
    """What tests replace: the time of the rate limiter, and a hook after each backfill submission."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    after_submit: Callable[[Outcome], None] | None = None


class Context:
    """Settings, credentials and adapters of one invocation, each built when a command first needs it."""

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str], seams: Seams):
        self.args = args
        self.environ = environ
        self.seams = seams

    @cached_property
    def local_state(self) -> dict[str, Any] | None:
        return find_local_state(self.environ, Path.cwd()) if self.args.local else None

    @cached_property
    def env(self) -> dict[str, str]:
        """The settings' environment: the shell's (or, with --local, only the local cloud's), then flags."""
        state = self.local_state
        if state is not None:
            env = {"REGION": state["region"], "ICE_ENDPOINT": state["ice_endpoint"],
                   "ICE_PROTOCOL": state.get("ice_protocol") or "http", "OSS_ENDPOINT": state["oss_endpoint"],
                   "OUTPUT_BUCKET": state["bucket"], "OUTPUT_PREFIX": state.get("output_prefix") or "",
                   "SNAPSHOT_TEMPLATE_ID": state.get("template_id") or "",
                   "CALLBACK_URL": state.get("callback_url") or "",
                   "ICE_CALLBACK_AUTH_KEY": state.get("callback_auth_key") or ""}
        else:
            env = dict(self.environ)
        a = self.args
        for name, value in (("REGION", a.region), ("ICE_ENDPOINT", a.ice_endpoint), ("OSS_ENDPOINT", a.oss_endpoint),
                            ("OUTPUT_BUCKET", a.output_bucket), ("OUTPUT_PREFIX", a.output_prefix)):
            if value:
                env[name] = value
        region = env.get("REGION") or env.get("FC_REGION") or env.get("ALIBABA_CLOUD_REGION_ID")
        if not env.get("OSS_ENDPOINT") and region:
            env["OSS_ENDPOINT"] = f"https://oss-{region}.aliyuncs.com"  # public: an operator is outside the VPC
        return env

    def settings(self, **overrides: str) -> Settings:
        return Settings.from_env({**self.env, **overrides})

    @cached_property
    def credentials(self) -> creds.Credentials:
        state = self.local_state
        if state is not None:
            return creds.Credentials(state["access_key_id"], state["access_key_secret"])
        chain_log = logging.getLogger("credentials")  # alibabacloud_credentials logs tracebacks there
        was_disabled, chain_log.disabled = chain_log.disabled, True
        try:
            return creds.resolve(None, self.environ)
        except creds.CredentialsError as exc:
            detail = str(exc).split("chain failed: ", 1)[-1]
            raise CliError("no Alibaba Cloud credentials (set ALIBABA_CLOUD_ACCESS_KEY_ID and "
                           "ALIBABA_CLOUD_ACCESS_KEY_SECRET, run `aliyun configure`, or use --local for the local "
                           f"cloud): {detail}", EXIT_NO_ACCESS) from None
        finally:
            chain_log.disabled = was_disabled

    @cached_property
    def ice(self) -> Ice:
        s = self.settings()
        return Ice(endpoint=s.ice_endpoint, credentials=self.credentials, region=s.region, protocol=s.ice_protocol,
                   deadline=Deadline.after(OPERATION_BUDGET_S))

    @cached_property
    def store(self) -> ObjectStore:
        s = self.settings()
        return ObjectStore(endpoint=s.oss_endpoint, credentials=self.credentials,
                           deadline=Deadline.after(OPERATION_BUDGET_S))

    def budget(self, seconds: float = OPERATION_BUDGET_S) -> None:
        """Give the next operation its own retry budget (a long backfill is many operations)."""
        self.ice.deadline = Deadline.after(seconds)
        self.store.deadline = Deadline.after(seconds)

    @property
    def owner(self) -> str:
        return f"{PROG}@{socket.gethostname()}:{os.getpid()}"


# --- output ----------------------------------------------------------------------------------------
def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _redact(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def emit(ctx: Context, data: Any, human: Callable[[], str]) -> None:
    """``--json``: the data, secrets removed; otherwise the human rendering."""
    if ctx.args.json:
        print(json.dumps(_redact(data), indent=2, ensure_ascii=False, default=str))
    else:
        text = human()
        if text:
            print(text)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def fields(pairs: Iterable[tuple[str, Any]]) -> str:
    pairs = [(k, v) for k, v in pairs if v not in (None, "")]
    width = max((len(k) for k, _ in pairs), default=0) + 1
    return "\n".join(f"{(k + ':').ljust(width)}  {v}" for k, v in pairs)


def _compact(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


# --- argument types --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OssPath:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"oss://{self.bucket}/{self.key}"


def _oss_path(value: str, *, key_required: bool) -> OssPath:
    if not value.startswith("oss://"):
        raise argparse.ArgumentTypeError(f"expected oss://bucket/{'key' if key_required else 'prefix'}, got {value!r}")
    bucket, _, key = value[len("oss://"):].partition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", bucket):
        raise argparse.ArgumentTypeError(f"{bucket!r} is not an OSS bucket name")
    if key_required and (not key or key.endswith("/")):
        raise argparse.ArgumentTypeError(f"{value!r} names no object (expected oss://bucket/key)")
    return OssPath(bucket, key)


def _object_uri(value: str) -> OssPath:
    return _oss_path(value, key_required=True)


def _prefix_uri(value: str) -> OssPath:
    return _oss_path(value, key_required=False)


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def _when(value: str, *, now: Callable[[], float] = time.time) -> float:
    """A point in time: ``2026-11-24T03:00:00Z``, ``2026-11-24``, or an age such as ``90m``, ``6h``, ``7d``."""
    m = _RELATIVE.match(value.strip())
    if m:
        return now() - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a time: use 2026-11-24T03:00:00Z, 2026-11-24, or an age like 90m, 6h, 7d") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _ice_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum`` (``what`` names the rule in errors)."""
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be {what}, got {number}")
        return number

    return parse


_positive_int = _int_at_least(1, "positive")
_non_negative_int = _int_at_least(0, "0 or more")


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < rate <= 1000:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1000 per second, got {value}")
    return rate


def _json_object(value: str) -> dict:
    try:
        doc = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return doc


# --- snapshot parameters: shared by template create/update and the submission overrides -----------
# (option, TemplateConfig key, type, help); sprite keys go into SpriteSnapshotConfig.
FRAME_OPTIONS = (
    ("--frame-type", "FrameType", None, "intra (keyframes, fast) or normal (the exact frame)"),
    ("--time", "Time", _non_negative_int, "start time in milliseconds"),
    ("--count", "Count", _positive_int, "number of snapshots"),
    ("--interval", "Interval", _positive_int, "seconds between snapshots"),
    ("--width", "Width", _positive_int, "output width in pixels"),
    ("--height", "Height", _positive_int, "output height in pixels"),
    ("--black-level", "BlackLevel", _positive_int, "skip a black first frame: percent of black pixels (1-100)"),
    ("--pixel-black-threshold", "PixelBlackThreshold", _non_negative_int, "luma under which a pixel is black"),
)
SPRITE_OPTIONS = (
    ("--columns", "Columns", _positive_int, "sprite: tiles per row"),
    ("--lines", "Lines", _positive_int, "sprite: rows per sheet"),
    ("--cell-width", "CellWidth", _positive_int, "sprite: tile width"),
    ("--cell-height", "CellHeight", _positive_int, "sprite: tile height"),
    ("--padding", "Padding", _non_negative_int, "sprite: pixels between tiles"),
    ("--margin", "Margin", _non_negative_int, "sprite: pixels around the grid"),
    ("--color", "Color", None, "sprite: background colour, #RRGGBB"),
)


def _dest(option: str) -> str:
    return "p_" + option.lstrip("-").replace("-", "_")


def _add_snapshot_options(parser: argparse.ArgumentParser, *, sprite: bool) -> None:
    group = parser.add_argument_group("snapshot parameters (TemplateConfig fields)")
    for option, _, kind, help_text in FRAME_OPTIONS + (SPRITE_OPTIONS if sprite else ()):
        kwargs: dict[str, Any] = {"dest": _dest(option), "help": help_text}
        if option == "--frame-type":
            kwargs["choices"] = ("intra", "normal")
        elif kind is not None:
            kwargs["type"] = kind
        group.add_argument(option, **kwargs)
    if sprite:
        group.add_argument("--spt-frag", dest="p_spt_frag", action="store_true", default=None,
                           help="webvtt: stitch the images into sprite sheets (IsSptFrag)")


def _snapshot_params(args: argparse.Namespace) -> dict[str, Any]:
    """The TemplateConfig fields given as options."""
    params: dict[str, Any] = {}
    sprite: dict[str, Any] = {}
    for options, into in ((FRAME_OPTIONS, params), (SPRITE_OPTIONS, sprite)):
        for option, key, _, _ in options:
            value = getattr(args, _dest(option), None)
            if value is not None:
                into[key] = value
    if getattr(args, "p_spt_frag", None):
        params["IsSptFrag"] = True
    if sprite:
        params["SpriteSnapshotConfig"] = sprite
    return params


# --- templates -------------------------------------------------------------------------------------
def _template_config(template: Mapping[str, Any]) -> dict[str, Any]:
    raw = template.get("TemplateConfig")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _template_type(template: Mapping[str, Any]) -> str:
    subtype = template.get("SubtypeName") or template.get("Subtype")
    if isinstance(subtype, int):
        return SUBTYPE_NAMES.get(subtype, str(subtype))
    return str(subtype or _template_config(template).get("Type") or "")


def _template_doc(template: Mapping[str, Any]) -> dict[str, Any]:
    return {**template, "TemplateConfig": _template_config(template)}


def _template_fields(template: Mapping[str, Any]) -> str:
    return fields([("Template", template.get("TemplateId")), ("Name", template.get("TemplateName")),
                   ("Type", _template_type(template)), ("Default", "yes" if template.get("IsDefault") else "no"),
                   ("Status", template.get("Status")), ("Created", template.get("CreateTime")),
                   ("Modified", template.get("ModifiedTime")), ("Config", _compact(_template_config(template)))])


def cmd_template_create(ctx: Context) -> int:
    a = ctx.args
    params = _snapshot_params(a)
    type_name = TYPE_OF[a.type]
    if a.config is not None:
        if params:
            raise UsageError("--config cannot be combined with parameter options such as --count")
        config = dict(a.config)
        if config.setdefault("Type", type_name) != type_name:
            raise UsageError(f"--config has Type {config['Type']!r} but --type is {a.type}")
    else:
        config = {"Type": type_name, "FrameType": "intra", "Time": 0, "Count": 5, **params}
    name = a.name or f"{PROG}-{a.type}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    template = ctx.ice.create_snapshot_template(name, config, SUBTYPE_OF[a.type])
    emit(ctx, _template_doc(template), lambda: f"created template {template.get('TemplateId')}\n"
                                                + _template_fields(template))
    return EXIT_OK


def cmd_template_list(ctx: Context) -> int:
    templates = ctx.ice.list_snapshot_templates(subtype=SUBTYPE_OF[ctx.args.type] if ctx.args.type else None)
    emit(ctx, [_template_doc(t) for t in templates], lambda: table(
        ("TEMPLATE", "NAME", "TYPE", "DEFAULT", "CREATED", "CONFIG"),
        ((t.get("TemplateId"), t.get("TemplateName"), _template_type(t), "yes" if t.get("IsDefault") else "",
          t.get("CreateTime"), _compact(_template_config(t))) for t in templates)) if templates
        else "no snapshot templates")
    return EXIT_OK


def cmd_template_get(ctx: Context) -> int:
    template = ctx.ice.get_snapshot_template(ctx.args.template_id)
    emit(ctx, _template_doc(template), lambda: _template_fields(template))
    return EXIT_OK


def cmd_template_update(ctx: Context) -> int:
    a = ctx.args
    params = _snapshot_params(a)
    if a.config is not None and params:
        raise UsageError("--config cannot be combined with parameter options such as --count")
    if a.config is None and not params and not a.name:
        raise UsageError("nothing to update: give --name, --config or parameter options such as --count")
    config = a.config
    if params:  # merge the options into the current config, one level into SpriteSnapshotConfig
        config = _template_config(ctx.ice.get_snapshot_template(a.template_id))
        sprite = {**(config.get("SpriteSnapshotConfig") or {}), **params.pop("SpriteSnapshotConfig", {})}
        config.update(params)
        if sprite:
            config["SpriteSnapshotConfig"] = sprite
    ctx.ice.update_snapshot_template(a.template_id, name=a.name, config=config)
    template = ctx.ice.get_snapshot_template(a.template_id)
    emit(ctx, _template_doc(template), lambda: f"updated template {a.template_id}\n" + _template_fields(template))
    return EXIT_OK


def cmd_template_delete(ctx: Context) -> int:
    ctx.ice.delete_snapshot_template(ctx.args.template_id)
    emit(ctx, {"TemplateId": ctx.args.template_id, "deleted": True},
         lambda: f"deleted template {ctx.args.template_id}")
    return EXIT_OK


# --- submitting ------------------------------------------------------------------------------------
def submitter_for(ctx: Context) -> Submitter:
    """A Submitter with the pipeline's settings, and --template/--type/overrides applied over them."""
    a = ctx.args
    base = ctx.settings()
    template_id = a.template or base.template_id
    if not template_id:
        raise UsageError("no snapshot template: pass --template ID or set SNAPSHOT_TEMPLATE_ID")
    snapshot_type = TYPE_OF[a.snapshot_type] if a.snapshot_type else None
    if snapshot_type is None and not ctx.env.get("SNAPSHOT_TYPE", "").strip():
        # Name the outputs after what the template makes (the function uses SNAPSHOT_TYPE).
        snapshot_type = _template_config(ctx.ice.get_snapshot_template(template_id)).get("Type")
    overrides = {**base.overwrite_params, **(a.overwrite or {}), **_snapshot_params(a)}
    settings = ctx.settings(SNAPSHOT_TEMPLATE_ID=template_id,
                            SNAPSHOT_TYPE=snapshot_type if snapshot_type in SNAPSHOT_TYPES else base.snapshot_type,
                            SNAPSHOT_OVERWRITE_PARAMS=json.dumps(overrides) if overrides else "")
    return Submitter(settings, ctx.ice, ctx.store, lease_s=CLAIM_LEASE_S)


def _output_uri(submitter: Submitter, upload: Upload) -> str:
    s = submitter.settings
    return output_location(submitter.output_bucket(upload), s.output_prefix, s.snapshot_type, upload.bucket,
                           upload.key).uri


def cmd_submit(ctx: Context) -> int:
    source: OssPath = ctx.args.source
    submitter = submitter_for(ctx)
    info = ctx.store.head(source.bucket, source.key)
    if info is None:
        raise CliError(f"no such object: {source.uri}")
    event = existing_object_event(source.bucket, info)
    reason = submitter.skip_reason(event)
    upload = None
    if reason is None:
        upload, reason = submitter.resolve(event)
    if upload is None:
        raise CliError(f"not submitted: {source.uri}: {reason}")
    try:
        outcome = submitter.submit_upload(upload, ctx.owner)
    except (ClaimBusy, ClaimLost) as exc:
        raise CliError(f"not submitted: {source.uri}: {exc}; try again later") from None
    doc = {**outcome.to_dict(), "etag": upload.etag, "template_id": submitter.settings.template_id,
           "output": _output_uri(submitter, upload)}
    if outcome.outcome == "submitted":
        human = f"submitted job {outcome.job_id}\n" + fields([("Input", source.uri), ("Output", doc["output"]),
                                                            ("Template", doc["template_id"])])
    elif outcome.outcome == "duplicate":
        human = (f"already submitted as job {outcome.job_id} (one job per upload version; see `{PROG} job get "
                 f"{outcome.job_id}`)" if outcome.job_id else f"not submitted again: {outcome.reason}")
    else:
        human = f"ICE refused the job: {outcome.reason}; the failure is recorded in the index"
    emit(ctx, doc, lambda: human)
    return EXIT_OK if outcome.outcome in ("submitted", "duplicate") else EXIT_FAILED


# --- jobs, URLs, indexes ---------------------------------------------------------------------------
def _source_of(job: SnapshotJob) -> str | None:
    try:
        source = (json.loads(job.user_data or "") or {}).get("source") or {}
    except (json.JSONDecodeError, AttributeError):
        return None
    if source.get("bucket") and source.get("key"):
        return f"oss://{source['bucket']}/{source['key']} (etag {source.get('etag') or '-'})"
    return None


def cmd_job_get(ctx: Context) -> int:
    job = ctx.ice.get_snapshot_job(ctx.args.job_id)
    emit(ctx, job.raw, lambda: fields([
        ("Job", job.job_id), ("Name", job.name), ("Status", job.status), ("Type", job.type),
        ("Template", job.template_id), ("Input", job.input.uri if job.input else None),
        ("Output", job.output.uri if job.output else None), ("Source", _source_of(job)), ("Count", job.count),
        ("Created", job.create_time), ("Submitted", job.submit_time), ("Finished", job.finish_time),
        ("Error", f"{job.code}: {job.message}" if job.code else None),
        ("Config", _compact(job.template_config) if job.template_config else None)]))
    return EXIT_OK


def cmd_jobs_list(ctx: Context) -> int:
    a = ctx.args
    limit = a.limit
    jobs: list[SnapshotJob] = []
    token = None
    while limit == 0 or len(jobs) < limit:
        page = ctx.ice.list_snapshot_jobs(
            status=a.status, start_of_create_time=_ice_time(a.since) if a.since is not None else None,
            end_of_create_time=_ice_time(a.until) if a.until is not None else None, page_size=JOBS_PAGE_SIZE,
            next_page_token=token, order_by="CreateTimeAsc" if a.order == "asc" else "CreateTimeDesc")
        jobs += [j for j in page.jobs if not a.input or (j.input and j.input.uri.startswith(a.input))]
        token = page.next_page_token
        if not token:
            break
    jobs = jobs[:limit] if limit else jobs
    emit(ctx, [j.raw for j in jobs], lambda: table(
        ("JOB", "STATUS", "TYPE", "COUNT", "CREATED", "FINISHED", "INPUT"),
        ((j.job_id, j.status, j.type, j.count, j.create_time, j.finish_time, j.input.uri if j.input else None)
         for j in jobs)) if jobs else "no jobs")
    return EXIT_OK


def cmd_urls(ctx: Context) -> int:
    urls = ctx.ice.get_all_snapshot_urls(ctx.args.job_id, timeout_s=ctx.args.timeout)

    def human() -> str:
        lines = [table(("#", "URL"), enumerate(urls.urls, start=1))] if urls.urls else ["no snapshots"]
        if urls.webvtt_url:
            lines.append(f"WebVTT: {urls.webvtt_url}")
        return "\n".join(lines)

    emit(ctx, {"job_id": ctx.args.job_id, "total": urls.total, "urls": list(urls.urls),
               "webvtt_url": urls.webvtt_url}, human)
    return EXIT_OK


def cmd_index(ctx: Context) -> int:
    source: OssPath = ctx.args.source
    settings = ctx.settings()
    bucket = settings.output_bucket or source.bucket
    key = index_key(settings.output_prefix, source.bucket, source.key)
    doc = ctx.store.get_json(bucket, key)
    if doc is None:
        info = ctx.store.head(source.bucket, source.key)
        if info is None:
            raise CliError(f"no index at oss://{bucket}/{key}, and no such object {source.uri}")
        submitter = Submitter(settings, ctx.ice, ctx.store, lease_s=CLAIM_LEASE_S)
        upload = Upload(source.bucket, source.key, info.etag, info.size)
        claim = submitter.claims(upload).latest(upload)
        if claim is None:
            state = f"it was never submitted (`{PROG} submit {source.uri}`)"
        elif claim.job_id:
            state = f"job {claim.job_id} is not indexed yet (see `{PROG} job get {claim.job_id}`)"
        else:
            state = f"its claim is {claim.state} (by {claim.doc.get('owner')}), with no job yet"
        raise CliError(f"no index at oss://{bucket}/{key}: {state}")

    def human() -> str:
        job = doc.get("job") or {}
        error = job.get("error") or {}
        head = fields([("Index", f"oss://{bucket}/{key}"), ("Source", _compact(doc.get("source"))),
                       ("Job", job.get("id")), ("Status", job.get("status")), ("Type", job.get("type")),
                       ("Template", job.get("template_id")), ("Finished", job.get("finished")),
                       ("Error", f"{error.get('code')}: {error.get('message')}" if error else None),
                       ("Generated", doc.get("generated_at"))])
        snaps = doc.get("snapshots") or []
        rows = table(("#", "TIME", "OBJECT", "URL EXPIRES"),
                     ((s.get("index"), s.get("time"), f"oss://{s.get('bucket')}/{s.get('key')}",
                       s.get("url_expires_at")) for s in snaps)) if snaps else "no snapshots"
        return head + "\n\n" + rows

    emit(ctx, doc, human)
    return EXIT_OK


# --- event callback --------------------------------------------------------------------------------
AUTH_KEY_RULE = re.compile(r"^(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9]).{1,32}$")


def cmd_callback_show(ctx: Context) -> int:
    setting = ctx.ice.get_event_callback()
    ours = ctx.settings().callback_auth_key
    matches = (hmac.compare_digest(setting.auth_key.encode(), ours.encode())
               if setting.auth_key and ours else None)
    doc = {"callback_type": setting.callback_type, "callback_url": setting.callback_url,
           "callback_queue_name": setting.callback_queue_name, "event_types": list(setting.event_types),
           "auth_switch": setting.auth_switch, "auth_key_set": bool(setting.auth_key),
           "auth_key_matches_pipeline": matches}
    key_text = ("not set" if not setting.auth_key else
                "set" + ("" if matches is None else ", matches ICE_CALLBACK_AUTH_KEY" if matches
                         else ", DIFFERS from ICE_CALLBACK_AUTH_KEY: callbacks will be refused (401)"))
    emit(ctx, doc, lambda: fields([
        ("Type", setting.callback_type or "none"), ("URL", setting.callback_url),
        ("Queue", setting.callback_queue_name), ("Events", ",".join(setting.event_types) or "all"),
        ("Auth", setting.auth_switch), ("Auth key", key_text)]) if setting.callback_type
        else "no event callback is set")
    return EXIT_OK


def cmd_callback_set(ctx: Context) -> int:
    a = ctx.args
    url = a.url or ctx.settings().callback_url
    if not url:
        raise UsageError("no callback URL: pass --url or set CALLBACK_URL")
    if not re.match(r"^https?://[^/\s]+", url) or len(url.encode("utf-8")) > 256:
        raise UsageError(f"--url must be an http(s) URL of at most 256 bytes, got {url!r}")
    key = None
    if not a.no_auth:
        if a.auth_key_env:
            key = ctx.environ.get(a.auth_key_env)
            if not key:
                raise UsageError(f"environment variable {a.auth_key_env} (the AuthKey) is not set")
        else:
            key = ctx.settings().callback_auth_key
            if not key:
                raise UsageError("no AuthKey: pass --auth-key-env NAME (a variable holding it), set "
                                 "ICE_CALLBACK_AUTH_KEY, or --no-auth")
        if not AUTH_KEY_RULE.match(key):
            raise UsageError("the AuthKey must be at most 32 characters with upper-case letters, "
                             "lower-case letters and digits")
    if a.events is None:  # keep the event types already set: SetEventCallback replaces the whole setting
        events = ctx.ice.get_event_callback().event_types
    else:
        events = tuple(e.strip() for e in a.events.split(",") if e.strip())
    ctx.ice.set_event_callback(url, auth_key=key, event_types=events)
    source = a.auth_key_env or "ICE_CALLBACK_AUTH_KEY"
    emit(ctx, {"callback_type": "HTTP", "callback_url": url, "auth_switch": "on" if key else "off",
               "event_types": list(events)},
         lambda: f"event callback set: HTTP {url}, authentication "
                 + (f"on (AuthKey from {source})" if key else "off"))
    return EXIT_OK


# --- backfill --------------------------------------------------------------------------------------
class RateLimiter:
    """A token bucket holding one token, refilled ``rate`` times a second: calls to :meth:`acquire`
    are spaced at least ``1/rate`` seconds apart, so no second ever sees more than ``rate``."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._next = None

    def acquire(self) -> None:
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class Progress:
    """A one-line progress bar, redrawn in place; silent when the stream is not a terminal."""

    WIDTH = 30

    def __init__(self, stream: Any, total: int):
        self.stream = stream
        self.total = total
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, done: int, note: str) -> None:
        if not self.enabled:
            return
        filled = self.WIDTH * done // self.total if self.total else self.WIDTH
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total} {note}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class BackfillReport:
    source: str
    dry_run: bool
    listed: int = 0
    examined: int = 0
    submitted: int = 0
    already_submitted: int = 0
    rejected: int = 0
    errors: int = 0
    skipped: Counter = field(default_factory=Counter)
    jobs: list[dict] = field(default_factory=list)  # submitted: key, job_id
    would_submit: list[dict] = field(default_factory=list)  # dry run: key, size
    failures: list[dict] = field(default_factory=list)  # key, error
    interrupted: bool = False
    aborted: str | None = None

    def note(self) -> str:
        done = "would submit" if self.dry_run else "submitted"
        count = len(self.would_submit) if self.dry_run else self.submitted
        return f"{done} {count}, skipped {sum(self.skipped.values()) + self.already_submitted}, errors {self.errors}"

    def to_dict(self) -> dict[str, Any]:
        doc = {"source": self.source, "dry_run": self.dry_run, "listed": self.listed, "examined": self.examined,
               "submitted": self.submitted, "already_submitted": self.already_submitted,
               "rejected": self.rejected, "errors": self.errors, "skipped": dict(self.skipped),
               "interrupted": self.interrupted, "aborted": self.aborted, "jobs": self.jobs,
               "failures": self.failures}
        if self.dry_run:
            doc["would_submit"] = self.would_submit
        return doc


class _GracefulInterrupt:
    """First Ctrl-C: finish the object at hand (never leave a job unrecorded), then stop.
    Second Ctrl-C: stop at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "_GracefulInterrupt":
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        except ValueError:  # not the main thread: Ctrl-C cannot reach us anyway
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


class Backfill:
    """Submit every video under a prefix that has neither an index nor a claim: the same rules and the
    same claims as the submit function, so a rerun (or the trigger, concurrently) never duplicates."""

    def __init__(self, ctx: Context, submitter: Submitter, limiter: RateLimiter, progress_stream: Any,
                 retry_failed: bool = False):
        self.retry_failed = retry_failed
        self.ctx = ctx
        self.submitter = submitter
        self.store = ctx.store
        self.limiter = limiter
        self.progress_stream = progress_stream

    def already_handled(self, upload: Upload) -> tuple[str | None, str | None]:
        """Why this upload needs no job (its index is there, or a claim has or may get its job), and,
        with --retry-failed, the failed claim to supersede when its index records that failure."""
        s = self.submitter.settings
        index = self.store.get_json(self.submitter.output_bucket(upload),
                                    index_key(s.output_prefix, upload.bucket, upload.key))
        claim = self.submitter.claims(upload).latest(upload)
        if isinstance(index, dict):
            indexed_etag = (index.get("source") or {}).get("etag")
            if not indexed_etag or indexed_etag == upload.etag:
                job = index.get("job") or {}
                if self.retry_failed and job.get("status") == "Fail" and claim is not None and (
                        (claim.job_id and claim.job_id == job.get("id"))
                        or (claim.state == "failed" and job.get("id") is None)):
                    return None, claim.object_key  # the failure the index records is the latest attempt's
                return "already indexed", None
        if claim is None:
            return None, None
        if claim.job_id or claim.state == "submitted":
            return "already submitted (claim has a job)", None
        if claim.state == "failed":
            return "refused by ICE earlier (see its index)", None
        if claim.expires_at > self.submitter.clock():
            return "claimed by another attempt", None
        return None, None  # an expired claim without a job: its owner crashed; submit_upload takes over

    def run(self, source: OssPath, *, dry_run: bool) -> BackfillReport:
        report = BackfillReport(source.uri, dry_run)
        seams = self.ctx.seams
        objects: list[ObjectInfo] = list(self.store.list(source.bucket, source.key))
        report.listed = len(objects)
        progress = Progress(self.progress_stream, len(objects))
        consecutive_errors = 0
        with _GracefulInterrupt() as interrupt:
            try:
                for info in objects:
                    if interrupt.requested:
                        report.interrupted = True
                        break
                    self.ctx.budget()
                    try:
                        outcome = self._one(source.bucket, info, report, dry_run)
                    except (IceError, ObjectStoreError, ClaimLost) as exc:
                        report.errors += 1
                        report.failures.append({"key": info.key, "error": _one_line(str(exc))})
                        consecutive_errors += 1
                        if consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                            report.aborted = f"{consecutive_errors} failures in a row, the last: {_one_line(str(exc))}"
                            break
                        outcome = None
                    else:
                        consecutive_errors = 0
                    report.examined += 1
                    progress.update(report.examined, report.note())
                    if outcome is not None and outcome.outcome == "submitted" and seams.after_submit:
                        seams.after_submit(outcome)
            except KeyboardInterrupt:
                report.interrupted = True
            finally:
                progress.close()
        return report

    def _one(self, bucket: str, info: ObjectInfo, report: BackfillReport, dry_run: bool) -> Outcome | None:
        event = existing_object_event(bucket, info)
        reason, supersede = self.submitter.skip_reason(event), None
        if reason is None:
            reason, supersede = self.already_handled(Upload(bucket, info.key, info.etag, info.size))
        if reason is not None:
            report.skipped[reason] += 1
            return None
        if dry_run:
            report.would_submit.append({"key": info.key, "size": info.size})
            return None
        upload, reason = self.submitter.resolve(event)
        if upload is None:
            report.skipped[reason] += 1
            return None
        self.limiter.acquire()
        try:
            outcome = self.submitter.submit_upload(upload, self.ctx.owner, supersede=supersede)
        except ClaimBusy:
            report.skipped["claimed by another attempt"] += 1
            return None
        if outcome.outcome == "submitted":
            report.submitted += 1
            report.jobs.append({"key": upload.key, "job_id": outcome.job_id})
        elif outcome.outcome == "duplicate":
            report.already_submitted += 1
        else:
            report.rejected += 1
            report.failures.append({"key": upload.key, "error": outcome.reason})
        return outcome


def _backfill_summary(report: BackfillReport) -> str:
    rows: list[tuple[str, Any]] = [("listed", report.listed), ("examined", report.examined)]
    if report.dry_run:
        rows.append(("would submit", len(report.would_submit)))
    else:
        rows += [("submitted", report.submitted), ("already submitted", report.already_submitted),
                 ("refused by ICE", report.rejected)]
    rows += [(f"skipped: {reason}", n) for reason, n in sorted(report.skipped.items())]
    rows.append(("errors", report.errors))
    lines = []
    if report.dry_run and report.would_submit:
        lines += [table(("WOULD SUBMIT", "SIZE"), ((w["key"], w["size"]) for w in report.would_submit)), ""]
    lines.append(f"backfill {report.source}" + (" (dry run)" if report.dry_run else ""))
    lines += [f"  {label.ljust(max(len(k) for k, _ in rows))}  {n}" for label, n in rows]
    lines += [f"  failed: {f['key']}: {f['error']}" for f in report.failures[:20]]
    if len(report.failures) > 20:
        lines.append(f"  ... and {len(report.failures) - 20} more (--json lists them all)")
    if report.aborted:
        lines.append(f"stopped: {report.aborted}")
    if report.interrupted:
        lines.append("interrupted: run the same command again to continue; nothing is submitted twice")
    return "\n".join(lines)


def cmd_backfill(ctx: Context) -> int:
    a = ctx.args
    submitter = submitter_for(ctx)
    limiter = RateLimiter(a.rate, clock=ctx.seams.clock, sleep=ctx.seams.sleep)
    report = Backfill(ctx, submitter, limiter, sys.stderr, retry_failed=a.retry_failed).run(
        a.source, dry_run=a.dry_run)
    emit(ctx, report.to_dict(), lambda: _backfill_summary(report))
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if (report.errors or report.rejected or report.aborted) else EXIT_OK


# --- reconcile -------------------------------------------------------------------------------------
def cmd_reconcile(ctx: Context) -> int:
    from .reconcile import Reconciler

    a = ctx.args
    ctx.budget(a.max_time)
    reconciler = Reconciler(ctx.settings(), ctx.ice, ctx.store, deadline=ctx.ice.deadline, lease_s=CLAIM_LEASE_S)
    sink = sys.stderr if a.verbose else io.StringIO()
    with contextlib.redirect_stdout(sink):  # the library logs JSON lines to stdout (for SLS)
        report = reconciler.run(since=a.since)
    doc = report.to_dict()

    def human() -> str:
        counts = [(k, v) for k, v in doc.items() if isinstance(v, int) and not isinstance(v, bool)]
        lines = [f"reconciled jobs created {report.since} .. {report.until}"]
        lines += [f"  {k.replace('_', ' ').ljust(max(len(n) for n, _ in counts))}  {v}" for k, v in counts]
        lines += [f"  error: {_one_line(e)}" for e in report.errors]
        if not report.complete:
            lines.append("stopped early (time budget): run again to finish")
        return "\n".join(lines)

    emit(ctx, doc, human)
    return EXIT_FAILED if report.errors or not report.complete else EXIT_OK


# --- the parser ------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """The global options, accepted before or after the command (the copies default to SUPPRESS)."""
    g = parser.add_argument_group("global options")
    g.add_argument("--local", action="store_true", default=default if default is argparse.SUPPRESS else False,
                   help=f"use the local cloud of `python -m localcloud up` (found via ${LOCAL_STATE_ENV}, "
                        "./.localcloud/state.json upwards, or the per-user state file)")
    g.add_argument("--json", action="store_true", default=default if default is argparse.SUPPRESS else False,
                   help="machine-readable JSON on stdout")
    g.add_argument("--region", default=default, help="region of ICE and OSS (default $REGION)")
    g.add_argument("--ice-endpoint", default=default, help="default $ICE_ENDPOINT, else ice.<region>.aliyuncs.com")
    g.add_argument("--oss-endpoint", default=default,
                   help="default $OSS_ENDPOINT, else the public https://oss-<region>.aliyuncs.com")
    g.add_argument("--output-bucket", default=default, help="default $OUTPUT_BUCKET, else the source bucket")
    g.add_argument("--output-prefix", default=default, help="default $OUTPUT_PREFIX, else snapshots/")


def _submission_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--template", help="snapshot template ID (default $SNAPSHOT_TEMPLATE_ID)")
    parser.add_argument("--type", dest="snapshot_type", choices=tuple(TYPE_OF),
                        help="output naming and OverwriteParams.Type (default $SNAPSHOT_TYPE, else the template's)")
    parser.add_argument("--overwrite", type=_json_object, metavar="JSON",
                        help="OverwriteParams as a JSON object (over $SNAPSHOT_OVERWRITE_PARAMS)")
    _add_snapshot_options(parser, sprite=False)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Operate the ICE video-snapshot pipeline: templates, jobs, "
                                            "URLs, indexes, the event callback, backfill and reconcile.",
                     epilog="exit codes: 0 done, 1 failed (ICE/OSS error), 2 bad arguments or configuration, "
                            "3 no credentials or no local cloud, 130 interrupted")
    _global_options(parser, None)
    common = _Parser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def leaf(group: Any, name: str, handler: Callable[[Context], int], help_text: str) -> argparse.ArgumentParser:
        p = group.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(handler=handler)
        return p

    template = commands.add_parser("template", help="snapshot templates (CreateCustomTemplate Type=2)")
    templates = template.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = leaf(templates, "create", cmd_template_create, "create a snapshot template")
    p.add_argument("--type", required=True, choices=tuple(TYPE_OF), help="Normal stills, a Sprite sheet or a WebVTT")
    p.add_argument("--name", help="template name (default snapshots-<type>-<UTC time>)")
    p.add_argument("--config", type=_json_object, metavar="JSON",
                   help="the whole TemplateConfig, instead of the parameter options")
    _add_snapshot_options(p, sprite=True)
    p = leaf(templates, "list", cmd_template_list, "list the snapshot templates")
    p.add_argument("--type", choices=tuple(TYPE_OF), help="only this subtype")
    p = leaf(templates, "get", cmd_template_get, "show a template")
    p.add_argument("template_id", metavar="ID")
    p = leaf(templates, "update", cmd_template_update, "rename a template or change its parameters")
    p.add_argument("template_id", metavar="ID")
    p.add_argument("--name")
    p.add_argument("--config", type=_json_object, metavar="JSON", help="replace the whole TemplateConfig")
    _add_snapshot_options(p, sprite=True)
    p = leaf(templates, "delete", cmd_template_delete, "delete a template")
    p.add_argument("template_id", metavar="ID")

    p = leaf(commands, "submit", cmd_submit, "submit a snapshot job for one video, as the submit function does")
    p.add_argument("source", type=_object_uri, metavar="oss://BUCKET/KEY")
    _submission_options(p)

    job = commands.add_parser("job", help="one snapshot job")
    job_actions = job.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = leaf(job_actions, "get", cmd_job_get, "show a snapshot job (GetSnapshotJob)")
    p.add_argument("job_id", metavar="JOB")

    jobs = commands.add_parser("jobs", help="snapshot jobs")
    jobs_actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = leaf(jobs_actions, "list", cmd_jobs_list, "list snapshot jobs (ListSnapshotJobs, every page up to --limit)")
    p.add_argument("--status", choices=("Init", "Success", "Fail"))
    p.add_argument("--since", type=_when, help="created at or after: 2026-11-24T03:00:00Z, 2026-11-24, or 6h, 7d...")
    p.add_argument("--until", type=_when, help="created at or before (same forms)")
    p.add_argument("--input", metavar="oss://BUCKET/PREFIX", help="only jobs whose input starts with this")
    p.add_argument("--order", choices=("desc", "asc"), default="desc", help="by creation time (default desc)")
    p.add_argument("--limit", type=_non_negative_int, default=DEFAULT_JOBS_LIMIT,
                   help=f"at most this many jobs (default {DEFAULT_JOBS_LIMIT}; 0 for all)")

    p = leaf(commands, "urls", cmd_urls, "every snapshot URL of a job (GetSnapshotUrls, all pages)")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("--timeout", type=_positive_int, default=3600, help="validity of the signed URLs, seconds")

    p = leaf(commands, "index", cmd_index, "print the index.json of a source video")
    p.add_argument("source", type=_object_uri, metavar="oss://BUCKET/KEY")

    callback = commands.add_parser("callback", help="the region's ICE event callback")
    callback_actions = callback.add_subparsers(dest="action", required=True, metavar="ACTION")
    leaf(callback_actions, "show", cmd_callback_show, "show the event callback (GetEventCallback)")
    p = leaf(callback_actions, "set", cmd_callback_set, "point the event callback at a URL (SetEventCallback)")
    p.add_argument("--url", help="the callback function's URL (default $CALLBACK_URL)")
    p.add_argument("--auth-key-env", metavar="NAME",
                   help="environment variable holding the AuthKey (default ICE_CALLBACK_AUTH_KEY)")
    p.add_argument("--no-auth", action="store_true", help="turn callback authentication off")
    p.add_argument("--events", metavar="A,B",
                   help="EventTypeList, e.g. SnapshotComplete; '' for every event (default: keep the current list)")

    p = leaf(commands, "backfill", cmd_backfill,
             "submit every video under a prefix that has no index and no claim yet; safe to interrupt and rerun")
    p.add_argument("source", type=_prefix_uri, metavar="oss://BUCKET/PREFIX")
    p.add_argument("--rate", type=_rate, default=DEFAULT_RATE,
                   help=f"at most this many submissions per second (default {DEFAULT_RATE:g})")
    p.add_argument("--dry-run", action="store_true", help="list what would be submitted, submit nothing")
    p.add_argument("--retry-failed", action="store_true",
                   help="also resubmit videos whose index records a failure (a failed job, or one ICE "
                        "refused), e.g. after fixing the template")
    _submission_options(p)

    p = leaf(commands, "reconcile", cmd_reconcile, "index finished jobs and resubmit abandoned claims, now")
    p.add_argument("--since", type=_when, help="jobs created since (default: the last $RECONCILE_WINDOW_HOURS, 24)")
    p.add_argument("--max-time", type=_positive_int, default=600, help="time budget in seconds (default 600)")
    p.add_argument("-v", "--verbose", action="store_true", help="the reconciler's log lines on stderr")
    return parser


def _describe_ice_error(exc: IceError, ctx: Context | None) -> str:
    if exc.code == "NetworkError":
        where = ctx.env.get("ICE_ENDPOINT") if ctx is not None else None
        hint = " (is `python -m localcloud up` still running?)" if ctx is not None and ctx.args.local else ""
        return f"cannot reach ICE{f' at {where}' if where else ''}: {exc.message}{hint}"
    return f"ICE error {exc}"


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         seams: Seams | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    ctx = Context(args, os.environ if environ is None else environ, seams or Seams())
    try:
        return args.handler(ctx)
    except CliError as exc:
        message, code = str(exc), exc.exit_code
    except SettingsError as exc:
        message, code = str(exc), EXIT_USAGE
    except IceError as exc:
        message, code = _describe_ice_error(exc, ctx), EXIT_FAILED
    except ObjectStoreError as exc:
        message, code = f"OSS error {exc}", EXIT_FAILED
    except KeyboardInterrupt:
        message, code = "interrupted", EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away, e.g. `snapshots jobs list | head -3`
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
