"""``snapshots webhook test``: one signed sample event to the webhook URL, and what it answered."""
from __future__ import annotations

import time

from ..webhooks import post_event, sample_event
from .context import Context
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from .output import Block, Fields


def cmd_webhook_test(ctx: Context) -> int:
    settings = ctx.settings()
    url = ctx.args.url or settings.webhook_url
    if not url or not settings.webhook_secret:
        raise CliError("no webhook to test: set WEBHOOK_URL and WEBHOOK_SECRET (with --local: "
                       "`python -m localcloud up --webhook-url URL`)", EXIT_USAGE)
    event = sample_event(time.time())
    delivery = post_event(url, settings.webhook_secret, event, timeout_s=ctx.args.timeout)
    doc = {"url": url, "event_id": event["id"], "status": delivery.status, "delivered": delivery.delivered,
           "error": delivery.error, "answer": delivery.answer}

    def human() -> list[Block]:
        outcome = "delivered" if delivery.delivered else "NOT delivered (the pipeline would retry)"
        return [Fields([("URL", url), ("Event", event["id"]), ("Status", delivery.status),
                        ("Error", delivery.error), ("Answer", delivery.answer)], title=f"webhook test: {outcome}")]

    ctx.out.emit(doc, human)
    return EXIT_OK if delivery.delivered else EXIT_FAILED
