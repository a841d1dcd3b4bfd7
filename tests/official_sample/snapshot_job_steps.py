"""The official ICE snapshot-job sample's steps, written here (the sample itself is not committed: see
``tests/test_official_sample.py``): create a snapshot template, submit a job on a media asset, read
the job, find it in the job list, print its snapshot URLs. Runs with any ``alibabacloud_ice20201109``
from 1.3.11 on, in its own interpreter. Settings come from the environment: ``ICE_ENDPOINT``,
``ICE_PROTOCOL``, ``MEDIA_ID``, ``OUTPUT_MEDIA`` (``oss://bucket/...-{Count}.jpg``), optionally
``SIGNATURE_ALGORITHM=v2``, and the credentials the default chain reads
(``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``)."""
import json
import os
import time

from alibabacloud_credentials.client import Client as CredClient
from alibabacloud_ice20201109 import models as ice_models
from alibabacloud_ice20201109.client import Client as IceClient
from alibabacloud_tea_openapi.models import Config

TEMPLATE_CONFIG = {"Type": "Normal", "FrameType": "normal", "Time": 0, "Count": 10}


def create_client() -> IceClient:
    config = Config(credential=CredClient(), signature_algorithm=os.environ.get("SIGNATURE_ALGORITHM"))
    config.endpoint = os.environ["ICE_ENDPOINT"]
    config.protocol = os.environ.get("ICE_PROTOCOL", "https")
    return IceClient(config)


def wait_for_job(client: IceClient, job_id: str, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get_snapshot_job(ice_models.GetSnapshotJobRequest(job_id=job_id)).body.snapshot_job
        if job.status != "Init" or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def main() -> None:
    client = create_client()
    template = client.create_custom_template(ice_models.CreateCustomTemplateRequest(
        name="sample-snapshot-template", type=2, subtype=1,
        template_config=json.dumps(TEMPLATE_CONFIG))).body.custom_template
    print("template id:", template.template_id)
    job_id = client.submit_snapshot_job(ice_models.SubmitSnapshotJobRequest(
        name="sample-snapshot-job",
        input=ice_models.SubmitSnapshotJobRequestInput(type="Media", media=os.environ["MEDIA_ID"]),
        output=ice_models.SubmitSnapshotJobRequestOutput(type="OSS", media=os.environ["OUTPUT_MEDIA"]),
        template_config=ice_models.SubmitSnapshotJobRequestTemplateConfig(template_id=template.template_id),
    )).body.job_id
    print("job id:", job_id)
    print("job status:", wait_for_job(client, job_id).status)
    listed = client.list_snapshot_jobs(ice_models.ListSnapshotJobsRequest(page_size=20)).body.jobs
    print("job listed:", any(job.job_id == job_id for job in listed))
    urls = client.get_snapshot_urls(ice_models.GetSnapshotUrlsRequest(job_id=job_id, page_size=30)).body
    print("snapshot urls:", urls.total)
    for url in urls.snapshot_urls:
        print(url)


if __name__ == "__main__":
    main()
