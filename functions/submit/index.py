"""Submit function: fired by the OSS trigger, submits one ICE snapshot job per uploaded video."""
import json
import time

from snapshot_pipeline.log import request_context
from snapshot_pipeline.runtime import services
from snapshot_pipeline.submit import Submitter


def handler(event, context):
    started = time.monotonic()
    s = services(context, started)
    with request_context(s.request_id):
        outcomes = Submitter(s.settings, s.ice, s.store, lease_s=s.timeout_s).handle_event(event, s.request_id)
    return json.dumps([o.to_dict() for o in outcomes], ensure_ascii=False)
