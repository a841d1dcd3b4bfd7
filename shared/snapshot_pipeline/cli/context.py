"""One invocation: its arguments, settings, credentials and adapters, each built when a command first
needs it; and the library objects the commands use (Submitter, Reconciler, claims), built here only."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .. import credentials as creds
from ..claims import Claim, Claims
from ..domain import DEFAULT_PROFILE, ObjectInfo, OssLocation, Outcome, Upload
from ..ice import IceClient
from ..layout import output_bucket
from ..publish import Publisher
from ..reconcile import Reconciler
from ..retry import Deadline
from ..settings import Settings
from ..store import OssStore
from ..submit import Submitter
from .errors import EXIT_NO_ACCESS, CliError
from .local_state import find_local_state
from .output import Output

PROG = "snapshots"
#: Time an operation may spend retrying throttling, 5xx and network errors before it fails.
OPERATION_BUDGET_S = 60.0
#: Lease of the claims the CLI takes: it submits right after claiming, like the submit function.
CLAIM_LEASE_S = 60.0


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
        self.out = Output(as_json=args.json)

    @cached_property
    def local_state(self) -> dict[str, Any] | None:
        return find_local_state(self.environ, Path.cwd()) if self.args.local else None

    @cached_property
    def env(self) -> dict[str, str]:
        """The settings' environment: the shell's (or, with --local, only the local cloud's), then flags."""
        state = self.local_state
        env = dict(self.environ) if state is None else _local_cloud_env(state)
        a = self.args
        for name, value in (("REGION", a.region), ("ICE_ENDPOINT", a.ice_endpoint), ("OSS_ENDPOINT", a.oss_endpoint),
                            ("OUTPUT_BUCKET", a.output_bucket), ("OUTPUT_PREFIX", a.output_prefix)):
            if value:
                env[name] = value
        return env

    def settings(self, **overrides: str) -> Settings:
        """The pipeline's settings, with ``overrides`` (environment names). Unless OSS_ENDPOINT is set,
        OSS is reached at the region's public endpoint: an operator is outside the VPC."""
        settings = Settings.from_env({**self.env, **overrides})
        if not self.env.get("OSS_ENDPOINT", "").strip():
            settings = dataclasses.replace(settings, oss_endpoint=f"https://oss-{settings.region}.aliyuncs.com")
        return settings

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
    def ice(self) -> IceClient:
        """ICE for a one-call command: its retries bounded by :data:`OPERATION_BUDGET_S` from now."""
        s = self.settings()
        return IceClient(endpoint=s.ice_endpoint, credentials=self.credentials, region=s.region,
                         protocol=s.ice_protocol, deadline=Deadline.after(OPERATION_BUDGET_S))

    @cached_property
    def store(self) -> OssStore:
        """OSS for a one-call command: its retries bounded by :data:`OPERATION_BUDGET_S` from now."""
        s = self.settings()
        return OssStore(endpoint=s.oss_endpoint, credentials=self.credentials,
                        deadline=Deadline.after(OPERATION_BUDGET_S))

    def adapters(self, deadline: Deadline) -> tuple[IceClient, OssStore]:
        """ICE and OSS for one operation (a long backfill is many), sharing the clients, bounded by ``deadline``."""
        return self.ice.with_deadline(deadline), self.store.with_deadline(deadline)

    @property
    def owner(self) -> str:
        """Who holds the claims this invocation takes."""
        return f"{PROG}@{socket.gethostname()}:{os.getpid()}"

    def submitter(self, settings: Settings | None = None) -> Submitter:
        """A Submitter for one upload, with a retry budget of its own."""
        ice, store = self.adapters(Deadline.after(OPERATION_BUDGET_S))
        return Submitter(settings or self.settings(), ice, store, lease_s=CLAIM_LEASE_S)

    def reconciler(self, budget_s: float) -> Reconciler:
        """A Reconciler whose sweep, retries included, ends within ``budget_s`` seconds."""
        deadline = Deadline.after(budget_s)
        ice, store = self.adapters(deadline)
        return Reconciler(self.settings(), ice, store, deadline=deadline, lease_s=CLAIM_LEASE_S)

    def current_index(self, source: OssLocation) -> tuple[OssLocation, Any]:
        """The index of the video ``source`` and where it is (or will be): wherever the layout puts it,
        indexes written before versioned outputs included."""
        return Publisher(self.settings(), self.ice, self.store).current_index(source)

    def latest_claims(self, source: OssLocation, info: ObjectInfo) -> dict[str, Claim | None]:
        """The latest claim on this version of the video ``source`` of each profile that applies to it
        (``default`` when none is configured), None where no attempt ever took one."""
        settings = self.settings()
        version = Upload.of_object(source.bucket, info)
        claims = Claims(self.store, output_bucket(settings.output_bucket, source.bucket), settings.output_prefix,
                        lease_s=CLAIM_LEASE_S)
        names = [p.name for p in settings.profiles if p.applies_to(source.key)] if settings.profiles \
            else [DEFAULT_PROFILE]
        return {name: claims.latest(version.for_profile(name)) for name in names}


def _local_cloud_env(state: Mapping[str, Any]) -> dict[str, str]:
    """The settings of the local cloud a state file describes, as environment variables (its profiles,
    when it runs some, instead of its template)."""
    profiles = state.get("profiles")
    chosen = {"SNAPSHOT_PROFILES": json.dumps(profiles)} if profiles else \
        {"SNAPSHOT_TEMPLATE_ID": state.get("template_id") or ""}
    return {"REGION": state["region"], "ICE_ENDPOINT": state["ice_endpoint"],
            "ICE_PROTOCOL": state.get("ice_protocol") or "http", "OSS_ENDPOINT": state["oss_endpoint"],
            "OUTPUT_BUCKET": state["bucket"], "OUTPUT_PREFIX": state.get("output_prefix") or "", **chosen,
            "CALLBACK_URL": state.get("callback_url") or "",
            "ICE_CALLBACK_AUTH_KEY": state.get("callback_auth_key") or "",
            "WEBHOOK_URL": state.get("webhook_url") or "", "WEBHOOK_SECRET": state.get("webhook_secret") or ""}

