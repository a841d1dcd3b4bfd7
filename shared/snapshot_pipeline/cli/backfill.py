"""``snapshots backfill``: wires :class:`snapshot_pipeline.backfill.Backfill` to the invocation and
renders its report (the engine itself lives in the library, beside the reconciler)."""
from __future__ import annotations

from ..backfill import Backfill, BackfillReport, RateLimiter
from ..checkpoint import Checkpoint, checkpoint_key
from ..domain import OssLocation, Outcome, OutcomeKind
from ..layout import output_bucket
from ..settings import Settings
from .context import Context
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from .output import Block, Fields, ProgressBar, Table
from .submit import submission_settings

DEFAULT_RATE = 5.0
#: Failures listed in the human summary (--json lists them all).
FAILURES_SHOWN = 20


def _summary(report: BackfillReport) -> list[Block]:
    counts: list[tuple[str, int]] = [("listed", report.listed), ("examined", report.examined)]
    resumed = [f"resumed after {report.resumed_after} (the checkpoint; --restart examines every object)"] \
        if report.resumed_after else []
    if report.dry_run:
        counts.append(("would submit", len(report.would_submit)))
    else:
        counts += [("submitted", report.submitted), ("already submitted", report.already_submitted),
                   ("refused by ICE", report.rejected)]
    counts += [(f"skipped: {reason}", n) for reason, n in sorted(report.skipped.items())]
    counts.append(("errors", report.errors))
    blocks: list[Block] = []
    if report.dry_run and report.would_submit:
        blocks += [Table(("WOULD SUBMIT", "SIZE"), [(w["key"], w["size"]) for w in report.would_submit]), ""]
    blocks.append(Fields(counts, title=f"backfill {report.source}" + (" (dry run)" if report.dry_run else "")))
    blocks += resumed
    blocks += [f"  failed: {f['key']}: {f['error']}" for f in report.failures[:FAILURES_SHOWN]]
    if len(report.failures) > FAILURES_SHOWN:
        blocks.append(f"  ... and {len(report.failures) - FAILURES_SHOWN} more (--json lists them all)")
    if report.aborted:
        blocks.append(f"stopped: {report.aborted}")
    if report.interrupted:
        blocks.append("interrupted: run the same command again to continue; nothing is submitted twice")
    return blocks


def _checkpoint(ctx: Context, settings: Settings, source: OssLocation) -> Checkpoint:
    """The checkpoint of this backfill, beside the claims: one per source, --retry-failed and --profile."""
    options = {"retry_failed": ctx.args.retry_failed, **({"profile": ctx.args.profile} if ctx.args.profile else {})}
    key = checkpoint_key(settings.output_prefix, source, options)
    return Checkpoint(ctx.store, output_bucket(settings.output_bucket, source.bucket), key, source)


def cmd_backfill(ctx: Context) -> int:
    a = ctx.args
    seams = ctx.seams
    with ProgressBar("backfill") as progress:
        def on_examined(report: BackfillReport, outcome: Outcome | None) -> None:
            progress.update(report.examined, report.listed, report.note())
            if outcome is not None and outcome.outcome == OutcomeKind.SUBMITTED and seams.after_submit:
                seams.after_submit(outcome)

        settings = submission_settings(ctx)
        backfill = Backfill(lambda: ctx.submitter(settings), ctx.store,
                            RateLimiter(a.rate, clock=seams.clock, sleep=seams.sleep), owner=ctx.owner,
                            on_examined=on_examined, retry_failed=a.retry_failed, concurrency=a.concurrency,
                            checkpoint=_checkpoint(ctx, settings, a.source))
        report = backfill.run(a.source, dry_run=a.dry_run, restart=a.restart)
    ctx.out.emit(report.to_dict(), lambda: _summary(report))
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if report.failed else EXIT_OK
