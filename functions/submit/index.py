"""Submit function: fired by the OSS trigger, submits one ICE snapshot job per uploaded video."""
import json

from snapshot_pipeline.runtime import services
from snapshot_pipeline.submit import handle_oss_event


def handler(event, context):
    s = services(context)
    outcomes = handle_oss_event(event, s.settings, s.ice, request_id=getattr(context, "request_id", None))
    return json.dumps([o.__dict__ for o in outcomes], ensure_ascii=False)
