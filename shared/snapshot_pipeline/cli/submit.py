"""``snapshots submit``: one job for one video, exactly as the submit function would make it."""
from __future__ import annotations

import dataclasses
import json

from ..claims import ClaimBusy, ClaimLost
from ..domain import OssLocation, Outcome, OutcomeKind
from ..settings import SNAPSHOT_TYPES, Settings, profile_named
from ..submit import existing_object_event
from .context import PROG, Context
from .errors import EXIT_FAILED, EXIT_OK, CliError, UsageError
from .output import Block, Fields
from .params import TYPE_OF, snapshot_params, template_config


def submission_settings(ctx: Context) -> Settings:
    """The pipeline's settings: the deployment's profiles (only ``--profile``'s when given), or one
    profile ``default`` when --template/--type/overrides are given or no profiles are set."""
    a = ctx.args
    base = ctx.settings()
    single = a.template or a.snapshot_type or a.overwrite or snapshot_params(a)
    if a.profile and single:
        raise UsageError("--profile takes the profile's template and overrides: do not combine it with --template, "
                         "--type or overrides")
    if a.profile:
        return dataclasses.replace(base, profiles=(profile_named(base.profiles, a.profile),))
    if base.profiles and not single and not base.template_id:  # the deployment's profiles
        return base
    template_id = a.template or base.template_id
    if not template_id:
        raise UsageError("no snapshot template: pass --template ID or set SNAPSHOT_TEMPLATE_ID or SNAPSHOT_PROFILES")
    snapshot_type = TYPE_OF[a.snapshot_type] if a.snapshot_type else None
    if snapshot_type is None and not ctx.env.get("SNAPSHOT_TYPE", "").strip():
        # Name the outputs after what the template makes (the function uses SNAPSHOT_TYPE).
        snapshot_type = template_config(ctx.ice.get_snapshot_template(template_id)).get("Type")
    overrides = {**base.overwrite_params, **(a.overwrite or {}), **snapshot_params(a)}
    return ctx.settings(
        SNAPSHOT_TEMPLATE_ID=template_id,
        SNAPSHOT_TYPE=snapshot_type if snapshot_type in SNAPSHOT_TYPES else base.snapshot_type,
        SNAPSHOT_OVERWRITE_PARAMS=json.dumps(overrides) if overrides else "", SNAPSHOT_PROFILES="")


def _outcome_text(outcome: Outcome, fields: Fields) -> list[Block]:
    if outcome.outcome == OutcomeKind.SUBMITTED:
        return [f"submitted job {outcome.job_id}", fields]
    if outcome.outcome == OutcomeKind.DUPLICATE:
        return [f"already submitted as job {outcome.job_id} (one job per upload version; see `{PROG} job get "
                f"{outcome.job_id}`)" if outcome.job_id else f"not submitted again: {outcome.reason}"]
    return [f"ICE refused the job: {outcome.reason}; the failure is recorded in the index"]


def cmd_submit(ctx: Context) -> int:
    """Submit for an object, or for a media asset's object: the same job, index and claim as its
    oss:// URI gets (one per upload version), so a video is never snapshotted twice by two names."""
    source: OssLocation = ctx.args.source
    if isinstance(source, str):
        source = ctx.ice.media_source(source)
    submitter = ctx.submitter(submission_settings(ctx))
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
        outcomes = submitter.submit_version(upload, ctx.owner)
    except (ClaimBusy, ClaimLost) as exc:
        raise CliError(f"not submitted: {source.uri}: {exc}; try again later") from None
    docs, blocks = [], []
    for outcome in outcomes:
        if outcome.profile is None:  # no profile applies to the key
            raise CliError(f"not submitted: {source.uri}: {outcome.reason}")
        unit = upload.for_profile(outcome.profile)
        doc = {**outcome.to_dict(), "etag": upload.etag,
               "template_id": submitter.profile(outcome.profile).template_id, "output": submitter.output(unit).uri}
        fields = Fields([("Profile", outcome.profile), ("Input", source.uri), ("Output", doc["output"]),
                         ("Template", doc["template_id"])])
        docs.append(doc)
        blocks += _outcome_text(outcome, fields)
    ctx.out.emit(docs[0] if len(docs) == 1 else {"jobs": docs}, lambda: blocks)
    ok = (OutcomeKind.SUBMITTED, OutcomeKind.DUPLICATE)
    return EXIT_OK if all(outcome.outcome in ok for outcome in outcomes) else EXIT_FAILED
