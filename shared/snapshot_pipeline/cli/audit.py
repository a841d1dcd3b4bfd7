"""``snapshots audit``: wires :class:`snapshot_pipeline.audit.Audit` to the invocation and renders its
report: a summary by state, the videos not indexed with the reason, what ``--fix`` did."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import sys

from ..audit import Audit, AuditReport, Fixer, State
from ..backfill import RateLimiter
from ..retry import Deadline
from ..settings import profile_named
from .context import OPERATION_BUDGET_S, Context
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from .output import Block, Fields, ProgressBar, Table
from .submit import submission_settings

DEFAULT_CONCURRENCY = 8
DEFAULT_RATE = 100.0
#: Objects listed in the human summary without --list (--json lists them all).
OBJECTS_SHOWN = 50


def _summary(report: AuditReport, list_all: bool) -> list[Block]:
    blocks: list[Block] = []
    shown = report.objects if list_all else report.objects[:OBJECTS_SHOWN]
    if shown:
        blocks += [Table(("KEY", "PROFILE", "STATE", "REASON"),
                         [(o["key"], o.get("profile"), _state_text(o), o.get("reason")) for o in shown])]
        if len(report.objects) > len(shown):
            blocks.append(f"... and {len(report.objects) - len(shown)} more (--list or --json lists them all)")
        blocks.append("")
    if report.fixed:
        blocks += [Table(("FIXED", "PROFILE", "STATE", "ACTION", "OUTCOME"),
                         [(f["key"], f.get("profile"), f["state"], f["action"],
                           f.get("job_id") or f.get("outcome") or f.get("reason")) for f in report.fixed]), ""]
    counts = [(str(state), report.counts[state]) for state in State if report.counts[state]]
    counts += [(f"skipped: {reason}", n) for reason, n in sorted(report.skipped.items())]
    blocks.append(Fields([("listed", report.listed), *counts], title=f"audit {report.source}"))
    blocks += _webhook_blocks(report)
    blocks += report.notes
    if report.interrupted:
        blocks.append("interrupted: the counts cover only the objects judged so far")
    elif report.settled:
        blocks.append("every video is indexed or failed with a recorded reason")
    return blocks


def _webhook_blocks(report: AuditReport) -> list[Block]:
    """The webhook events still in the outbox: how many wait for a retry, and every dead one."""
    webhooks = report.webhooks
    if not webhooks.pending and not webhooks.failed:
        return []
    blocks: list[Block] = [Fields([("pending", webhooks.pending), ("failed", webhooks.failed)],
                                  title="webhook deliveries")]
    if webhooks.failed_deliveries:
        blocks.append(Table(("EVENT", "TYPE", "SOURCE", "ATTEMPTS", "LAST ERROR"),
                            [(d["id"], d["type"], d["source"], d["attempts"], d["last_error"])
                             for d in webhooks.failed_deliveries]))
    return blocks


def _state_text(doc: dict[str, str]) -> str:
    return f"{doc['state']} ({doc['code']})" if doc.get("code") else doc["state"]


def cmd_audit(ctx: Context) -> int:
    a = ctx.args
    fixer = None
    if a.fix:
        settings = submission_settings(ctx)
        fixer = Fixer(lambda: ctx.submitter(settings), ctx.owner)
    sink = sys.stderr if a.verbose else io.StringIO()
    judged = ctx.settings()
    if a.profile:  # judge that profile only
        judged = dataclasses.replace(judged, profiles=(profile_named(judged.profiles, a.profile),))
    with ProgressBar("audit") as progress, contextlib.redirect_stdout(sink):  # the library logs JSON lines to stdout
        audit = Audit(judged, lambda: ctx.adapters(Deadline.after(OPERATION_BUDGET_S)),
                      pacer=RateLimiter(a.rate, clock=ctx.seams.clock, sleep=ctx.seams.sleep),
                      concurrency=a.concurrency, list_all=a.list, fixer=fixer,
                      on_judged=lambda r: progress.update(r.done, max(r.listed, r.done), r.note()))
        report = audit.run(a.source)
    ctx.out.emit(report.to_dict(), lambda: _summary(report, a.list))
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.settled and not report.webhooks.failed else EXIT_FAILED
