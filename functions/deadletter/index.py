"""Dead-letter function: the submit function's onFailure destination; keeps each failed event in OSS."""
import json
import time

from snapshot_pipeline.deadletters import DeadLetters, dead_letter_bucket
from snapshot_pipeline.log import request_context
from snapshot_pipeline.runtime import services


def handler(event, context):
    started = time.monotonic()
    s = services(context, started)
    with request_context(s.request_id):
        bucket = dead_letter_bucket(s.settings.output_bucket, event)
        key = DeadLetters(s.store, bucket, s.settings.output_prefix).record(event)
    return json.dumps({"dead_letter": f"oss://{bucket}/{key}"})
