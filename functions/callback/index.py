"""Callback function: ICE's HTTP callback; verifies it, confirms the job, writes index.json."""
import time

from snapshot_pipeline.callback import handle_callback
from snapshot_pipeline.events import EventError, http_response, parse_http_event
from snapshot_pipeline.log import log, request_context
from snapshot_pipeline.runtime import services


def handler(event, context):
    started = time.monotonic()
    try:
        request = parse_http_event(event)
    except EventError as exc:
        with request_context(getattr(context, "request_id", None)):
            log("callback", outcome="bad_event", http_status=400, reason=str(exc))
        return http_response(400, {"error": str(exc)})
    s = services(context, started)
    with request_context(s.request_id or request.request_id):
        return handle_callback(request, s.settings, s.ice, s.store)
