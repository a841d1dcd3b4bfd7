"""What the engine's outcomes look like through the SDK: a job that made fewer snapshots than Count
says so in Message (Status stays Success), and a failed job leaves nothing in the output bucket."""
from __future__ import annotations

import uuid

import oss2
from alibabacloud_ice20201109 import models as m

from localcloud.media import cut_short, make_test_video, with_noise
from tests.localcloud.ice.support import FPS, IN, OUT, create_template, get_job, run_job, submit
from tests.support import PIPELINE_TIMEOUT_S


def test_fewer_snapshots_than_count_is_in_the_message(client, ice, video):
    template_id = create_template(client)  # Count 5, Interval 2 s
    job = run_job(client, ice, template_id, overwrite={"time": 30000})  # 30, 32, 34 s of a 36 s clip
    assert (job.status, job.count, job.code) == ("Success", 3, None)
    assert job.message == "video ended after 3 of 5 snapshots (duration 36.000 s)"
    body = m.GetSnapshotJobResponseBody(snapshot_job=job)
    assert m.GetSnapshotJobResponseBody().from_map(body.to_map()).snapshot_job.message == job.message


def test_a_full_set_has_no_message(client, ice, video):
    job = run_job(client, ice, create_template(client))
    assert (job.status, job.count, job.message) == ("Success", 5, None)


def test_failed_jobs_leave_no_outputs(client, ice, bucket_in, bucket_out):
    clip = make_test_video(duration_s=4.0, fps=FPS, width=128, height=96, gop_s=1.0, faststart=True)
    bucket_in.put_object("videos/cut.mp4", cut_short(clip))
    bucket_in.put_object("videos/damaged.mp4", with_noise(clip))  # fails after its first still
    template_id = create_template(client, {"Type": "Normal", "FrameType": "normal", "Count": 4})
    for source, code in (("cut.mp4", "InvalidInput.Truncated"), ("damaged.mp4", "InvalidInput.NotDecodable")):
        prefix = f"failed/{uuid.uuid4().hex}/"
        job_id = submit(client, template_id, output=f"oss://{OUT}/{prefix}snap-{{Count}}.jpg",
                        source=f"oss://{IN}/videos/{source}")
        assert ice.wait_idle(PIPELINE_TIMEOUT_S)
        job = get_job(client, job_id)
        assert (job.status, job.code) == ("Fail", code), job.message
        assert [o.key for o in oss2.ObjectIterator(bucket_out, prefix=prefix)] == []

