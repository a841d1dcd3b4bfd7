"""``snapshots job get``, ``jobs list``, ``urls`` and ``index``: what ICE made, and the index of a video."""
from __future__ import annotations

from typing import Any

from ..claims import Claim
from ..domain import DEFAULT_PROFILE, OssLocation, SnapshotJob, iso
from .context import PROG, Context
from .errors import EXIT_OK, CliError
from .output import Block, Fields, Table, compact

DEFAULT_JOBS_LIMIT = 50
JOBS_PAGE_SIZE = 100  # ListSnapshotJobs' maximum PageSize


def _source_text(job: SnapshotJob) -> str | None:
    try:
        source = job.source()
    except ValueError:
        return None
    return f"{source.location.uri} (etag {source.etag or '-'})"


def cmd_job_get(ctx: Context) -> int:
    job = ctx.ice.get_snapshot_job(ctx.args.job_id)
    ctx.out.emit(job.raw, lambda: [Fields([
        ("Job", job.job_id), ("Name", job.name), ("Status", job.status.value), ("Type", job.type),
        ("Template", job.template_id), ("Input", job.input.uri if job.input else None),
        ("Output", job.output.uri if job.output else None), ("Source", _source_text(job)), ("Count", job.count),
        ("Created", job.create_time), ("Submitted", job.submit_time), ("Finished", job.finish_time),
        ("Error", f"{job.code}: {job.message}" if job.code else None),
        ("Config", compact(job.template_config) if job.template_config else None)])])
    return EXIT_OK


def _list_jobs(ctx: Context) -> list[SnapshotJob]:
    """ListSnapshotJobs, page after page, until --limit jobs (0: all) match --input."""
    a = ctx.args
    jobs: list[SnapshotJob] = []
    token = None
    while a.limit == 0 or len(jobs) < a.limit:
        page = ctx.ice.list_snapshot_jobs(
            status=a.status, start_of_create_time=iso(a.since) if a.since is not None else None,
            end_of_create_time=iso(a.until) if a.until is not None else None, page_size=JOBS_PAGE_SIZE,
            next_page_token=token, order_by="CreateTimeAsc" if a.order == "asc" else "CreateTimeDesc")
        jobs += [j for j in page.jobs if not a.input or (j.input and j.input.uri.startswith(a.input))]
        token = page.next_page_token
        if not token:
            break
    return jobs[:a.limit] if a.limit else jobs


def cmd_jobs_list(ctx: Context) -> int:
    jobs = _list_jobs(ctx)

    def human() -> list[Block]:
        if not jobs:
            return ["no jobs"]
        return [Table(("JOB", "STATUS", "TYPE", "COUNT", "CREATED", "FINISHED", "INPUT"),
                      [(j.job_id, j.status, j.type, j.count, j.create_time, j.finish_time,
                        j.input.uri if j.input else None) for j in jobs])]

    ctx.out.emit([j.raw for j in jobs], human)
    return EXIT_OK


def cmd_urls(ctx: Context) -> int:
    urls = ctx.ice.get_all_snapshot_urls(ctx.args.job_id, timeout_s=ctx.args.timeout)

    def human() -> list[Block]:
        blocks: list[Block] = [Table(("#", "URL"), list(enumerate(urls.urls, start=1)))] if urls.urls \
            else ["no snapshots"]
        if urls.webvtt_url:
            blocks.append(f"WebVTT: {urls.webvtt_url}")
        return blocks

    ctx.out.emit({"job_id": ctx.args.job_id, "total": urls.total, "urls": list(urls.urls),
                  "webvtt_url": urls.webvtt_url}, human)
    return EXIT_OK


def _why_no_index(ctx: Context, source: OssLocation, index: OssLocation) -> CliError:
    info = ctx.store.head(source.bucket, source.key)
    if info is None:
        return CliError(f"no index at {index.uri}, and no such object {source.uri}")
    claims = ctx.latest_claims(source, info)
    states = [_claim_state(source, claim) if len(claims) == 1 else f"{name}: {_claim_state(source, claim)}"
              for name, claim in claims.items()]
    return CliError(f"no index at {index.uri}: {'; '.join(states)}")


def _claim_state(source: OssLocation, claim: Claim | None) -> str:
    if claim is None:
        return f"it was never submitted (`{PROG} submit {source.uri}`)"
    if claim.job_id:
        return f"job {claim.job_id} is not indexed yet (see `{PROG} job get {claim.job_id}`)"
    return f"its claim is {claim.state} (by {claim.doc.get('owner')}), with no job yet"


def _index_text(location: OssLocation, doc: dict[str, Any]) -> list[Block]:
    """The index's source, then each profile's job and snapshots (a ``snapshot-index/1`` as ``default``)."""
    source = doc.get("source") or {}
    blocks: list[Block] = [Fields([("Index", location.uri), ("Schema", doc.get("schema")),
                                   ("Source", compact(source)), ("Version", source.get("version")),
                                   ("Deleted", doc.get("deleted")), ("Generated", doc.get("generated_at"))])]
    shown = doc.get("profiles")
    profiles: dict[str, Any] = shown if isinstance(shown, dict) else {DEFAULT_PROFILE: doc}
    for name, result in profiles.items():
        blocks += ["", *_profile_text(name, result)]
    return blocks if profiles else [*blocks, "", "no profile results"]


def _profile_text(name: str, result: dict[str, Any]) -> list[Block]:
    job = result.get("job") or {}
    error = job.get("error") or {}
    snapshots = result.get("snapshots") or []
    return [Fields([("Profile", name), ("Job", job.get("id")), ("Status", job.get("status")),
                    ("Type", job.get("type")), ("Template", job.get("template_id")), ("Finished", job.get("finished")),
                    ("Error", f"{error.get('code')}: {error.get('message')}" if error else None)]),
            Table(("#", "TIME", "OBJECT", "URL EXPIRES"),
                  [(s.get("index"), s.get("time"), f"oss://{s.get('bucket')}/{s.get('key')}",
                    s.get("url_expires_at")) for s in snapshots]) if snapshots else "no snapshots"]


def cmd_index(ctx: Context) -> int:
    source: OssLocation = ctx.args.source
    location, doc = ctx.current_index(source)
    if doc is None:
        raise _why_no_index(ctx, source, location)
    ctx.out.emit(doc, lambda: _index_text(location, doc))
    return EXIT_OK
