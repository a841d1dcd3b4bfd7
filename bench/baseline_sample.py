"""Baseline for the cold-start benchmark: the callback written the way Alibaba's samples are.

The OpenAPI Explorer sample for ICE and the Function Compute samples: the SDKs imported at the
top of the handler module, a credentials client, an ICE client and an oss2 bucket built per
invocation, then the same calls the pipeline makes (GetSnapshotJob, every GetSnapshotUrls page,
HEAD the source, PUT the index). Never deployed; ``bench/cold_start.py`` runs it as ``index``.
"""
import hashlib
import json
import os
import time

import oss2
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_ice20201109 import models as ice20201109_models
from alibabacloud_ice20201109.client import Client as ICE20201109Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models


def create_client(context) -> ICE20201109Client:
    creds = context.credentials
    credential = CredentialClient(CredentialConfig(
        type="sts", access_key_id=creds.access_key_id, access_key_secret=creds.access_key_secret,
        security_token=creds.security_token))
    config = open_api_models.Config(credential=credential)
    config.endpoint = os.environ["ICE_ENDPOINT"]
    config.protocol = os.environ.get("ICE_PROTOCOL", "https")
    config.region_id = os.environ["REGION"]
    return ICE20201109Client(config)


def response(status, body):
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "isBase64Encoded": False, "body": json.dumps(body)}


def handler(event, context):
    evt = json.loads(event)
    headers = {k.lower(): v for k, v in evt["headers"].items()}
    timestamp = headers.get("x-ice-timestamp", "")
    text = f"{os.environ['CALLBACK_URL']}|{timestamp}|{os.environ['ICE_CALLBACK_AUTH_KEY']}"
    if headers.get("x-ice-signature") != hashlib.md5(text.encode("utf-8")).hexdigest() \
            or abs(time.time() - int(timestamp)) > 300:
        return response(401, {"error": "invalid signature"})
    job_id = json.loads(evt["body"])["MessageBody"]["JobId"]

    client = create_client(context)
    runtime = util_models.RuntimeOptions()
    job = client.get_snapshot_job_with_options(
        ice20201109_models.GetSnapshotJobRequest(job_id=job_id), runtime).body.snapshot_job
    if job.status not in ("Success", "Fail"):
        return response(202, {"job_id": job_id, "status": job.status})
    timeout = int(os.environ.get("SNAPSHOT_URL_TIMEOUT", "3600"))
    urls, page = [], 1
    while True:
        body = client.get_snapshot_urls_with_options(ice20201109_models.GetSnapshotUrlsRequest(
            job_id=job_id, page_number=page, page_size=30, order_by="Asc", timeout=timeout), runtime).body
        urls += body.snapshot_urls or []
        if not body.snapshot_urls or len(urls) >= (body.total or 0):
            break
        page += 1

    creds = context.credentials
    auth = oss2.StsAuth(creds.access_key_id, creds.access_key_secret, creds.security_token)
    source = json.loads(job.user_data)["source"]
    src_bucket = oss2.Bucket(auth, os.environ["OSS_ENDPOINT"], source["bucket"])
    head = src_bucket.head_object(source["key"])
    out_bucket_name, _, pattern = job.output.media[len("oss://"):].partition("/")
    out_bucket = oss2.Bucket(auth, os.environ["OSS_ENDPOINT"], out_bucket_name)
    key = pattern.rsplit("/", 1)[0] + "/index.json"
    doc = {"schema": "snapshot-index/1",
           "source": dict(source, size=head.content_length),
           "job": {"id": job.job_id, "status": job.status, "type": job.type,
                   "created": job.create_time, "finished": job.finish_time},
           "snapshots": [{"index": i, "url": u} for i, u in enumerate(urls, start=1)],
           "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out_bucket.put_object(key, json.dumps(doc, indent=2), headers={"Content-Type": "application/json"})
    return response(200, {"job_id": job_id, "status": job.status, "index": f"oss://{out_bucket_name}/{key}"})
