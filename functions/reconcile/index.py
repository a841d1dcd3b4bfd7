"""Reconcile function: on a timer, index finished jobs whose callback was lost and resubmit
uploads whose claim never got a job."""
import json
import time

from snapshot_pipeline.log import request_context
from snapshot_pipeline.reconcile import Reconciler
from snapshot_pipeline.runtime import services


def handler(event, context):
    started = time.monotonic()
    s = services(context, started)
    with request_context(s.request_id):
        report = Reconciler(s.settings, s.ice, s.store, deadline=s.deadline, lease_s=s.timeout_s).run()
    if report.errors:
        raise RuntimeError(f"reconcile finished with {len(report.errors)} error(s); first: {report.errors[0]}")
    return json.dumps(report.to_dict())
