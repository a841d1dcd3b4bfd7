"""``snapshots reconcile``: the reconciler's run, now, with a time budget of its own."""
from __future__ import annotations

import contextlib
import io
import sys

from .context import Context
from .errors import EXIT_FAILED, EXIT_OK
from .output import Block, Fields, one_line


def cmd_reconcile(ctx: Context) -> int:
    reconciler = ctx.reconciler(ctx.args.max_time)
    sink = sys.stderr if ctx.args.verbose else io.StringIO()
    with contextlib.redirect_stdout(sink):  # the library logs JSON lines to stdout (for SLS)
        report = reconciler.run(since=ctx.args.since)
    doc = report.to_dict()

    def human() -> list[Block]:
        counts = [(k.replace("_", " "), v) for k, v in doc.items() if isinstance(v, int) and not isinstance(v, bool)]
        blocks: list[Block] = [Fields(counts, title=f"reconciled jobs created {report.since} .. {report.until}")]
        blocks += [f"  error: {one_line(e)}" for e in report.errors]
        if not report.complete:
            blocks.append("stopped early (time budget): run again to finish")
        return blocks

    ctx.out.emit(doc, human)
    return EXIT_FAILED if report.errors or not report.complete else EXIT_OK
