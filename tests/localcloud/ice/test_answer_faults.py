"""The local ICE's lost and late answers, injected job failures, the job list a lost answer is found in,
and JSON parameters Python cannot read, through the SDK."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alibabacloud_ice20201109 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException
from Tea.exceptions import UnretryableException

from localcloud.ice.faults import INTERNAL_ERROR_MESSAGE
from tests.localcloud.ice.support import IN, NORMAL, OUT, client_error, create_template, run_job, sdk, submit
from tests.localcloud.ice.test_ice_control import admin_call
from tests.support import PIPELINE_TIMEOUT_S, wait_until

ONE_FRAME = dict(NORMAL, Count=1)
SOURCE = f"oss://{IN}/videos/clip 1.mp4"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Far longer than the short read timeout below, even on a busy machine; short enough to wait out.
ANSWER_DELAY_S = 3.0
READ_TIMEOUT_MS = 300
# The fields ListSnapshotJobs documents for each item (ice-fc-reference.md, ListSnapshotJobs).
LIST_ITEM_FIELDS = {"JobId", "Name", "Status", "Type", "TriggerSource", "Input", "Output", "Count", "Async",
                    "TemplateId", "PipelineId", "CreateTime", "SubmitTime", "FinishTime", "ModifiedTime"}


def jobs_named(client, name, start=None, end=None):
    request = m.ListSnapshotJobsRequest(start_of_create_time=start, end_of_create_time=end, page_size=100)
    return [j for j in client.list_snapshot_jobs(request).body.jobs if j.name == name]


def test_a_lost_submit_answer_raises_yet_the_job_exists(client, ice, video):
    template_id = create_template(client, ONE_FRAME)
    ice.set_faults(lose_answers={"SubmitSnapshotJob": 1})
    with pytest.raises(UnretryableException):
        submit(client, template_id, name="upload-v1")
    assert ice.faults()["lose_answers"] == {"SubmitSnapshotJob": 0}

    (found,) = jobs_named(client, "upload-v1")  # what a caller does to find what its lost call made
    assert found.input.to_map() == {"Type": "OSS", "Media": SOURCE}
    second = submit(client, template_id, name="upload-v2")  # only the next answer was lost
    assert second != found.job_id and len(jobs_named(client, "upload-v2")) == 1


def test_lost_answers_through_the_admin_endpoint_and_by_rate(client, ice):
    status, faults = admin_call(ice, "POST", "faults", {"lose_answer_rates": {"GetEventCallback": 1.0}})
    assert status == 200 and faults["lose_answer_rates"] == {"GetEventCallback": 1.0}
    with pytest.raises(UnretryableException):
        client.get_event_callback()
    client.list_custom_templates(m.ListCustomTemplatesRequest(type="2"))  # other actions answer
    assert admin_call(ice, "POST", "faults", {"lose_answers": {"GetEventCallback": -1}})[0] == 400
    assert admin_call(ice, "POST", "faults", {"lose_answer_rates": {"GetEventCallback": 2}})[0] == 400
    ice.set_faults(lose_answer_rates={})
    client.get_event_callback()


def test_a_late_answer_times_the_client_out_after_the_work_is_done(client, ice, video):
    template_id = create_template(client, ONE_FRAME)
    ice.set_faults(answer_delay_s={"SubmitSnapshotJob": ANSWER_DELAY_S})
    with pytest.raises(UnretryableException, match="[Tt]imed out"):
        submit(sdk(ice, read_timeout=READ_TIMEOUT_MS), template_id, name="slow-answer")
    wait_until(lambda: jobs_named(client, "slow-answer"), "the job the late answer is about")
    client.get_event_callback()  # only the named action is late
    assert ice.wait_idle(PIPELINE_TIMEOUT_S)
    assert [j.status for j in jobs_named(client, "slow-answer")] == ["Success"]


def test_injected_job_failures_carry_the_code_and_cut_no_frames(client, ice, video, bucket_out):
    template_id = create_template(client, ONE_FRAME)
    ice.set_faults(fail_jobs={"code": "InternalError", "count": 2})
    outputs = [f"oss://{OUT}/failed/{i}/snap-{{Count}}.jpg" for i in range(2)]
    failed = [run_job(client, ice, template_id, output=output) for output in outputs]
    assert [(j.status, j.code, j.message, j.count) for j in failed] == [
        ("Fail", "InternalError", INTERNAL_ERROR_MESSAGE, 0)] * 2
    assert list(bucket_out.list_objects(prefix="failed/").object_list) == []
    assert ice.faults()["fail_jobs"] == {}
    assert run_job(client, ice, template_id).status == "Success"

    ice.set_faults(fail_jobs={"code": "Output.WriteFailed", "message": "writing failed: disk full"})
    job = run_job(client, ice, template_id)
    assert (job.status, job.code, job.message) == ("Fail", "Output.WriteFailed", "writing failed: disk full")
    bad_input = run_job(client, ice, template_id, source=f"oss://{IN}/videos/garbage.mp4")
    assert bad_input.code.startswith("InvalidInput.")  # the engine's own codes are untouched


@pytest.mark.parametrize("spec", [{"code": ""}, {"code": "no spaces allowed"}, {"count": 1},
                                  {"code": "InternalError", "count": -1}, {"code": "InternalError", "extra": 1}])
def test_malformed_job_failures_are_refused(ice, spec):
    with pytest.raises(ValueError):
        ice.set_faults(fail_jobs=spec)
    assert admin_call(ice, "POST", "faults", {"fail_jobs": spec})[0] == 400


def test_list_items_carry_the_documented_fields_and_filter_by_create_time(client, ice, video):
    template_id = create_template(client, ONE_FRAME)
    job = run_job(client, ice, template_id, name="listed", user_data="private")
    (item,) = jobs_named(client, "listed")
    assert set(item.to_map()) == LIST_ITEM_FIELDS - {"PipelineId"}  # absent: the job has no pipeline
    assert item.to_map()["Input"] == {"Type": "OSS", "Media": SOURCE}

    created = datetime.strptime(job.create_time, TIME_FORMAT).replace(tzinfo=timezone.utc)
    second = timedelta(seconds=1)

    def window(start, end):
        return [j.job_id for j in jobs_named(client, "listed", start.strftime(TIME_FORMAT), end.strftime(TIME_FORMAT))]

    assert window(created, created) == [job.job_id]  # both ends inclusive
    assert window(created - 2 * second, created - second) == []
    assert window(created + second, created + 2 * second) == []


@pytest.mark.parametrize("config", ['{"Count": 1' + "0" * 5000 + "}", "[" * 5000 + "]" * 5000])
def test_json_parameters_python_cannot_read_are_invalid_parameters(client, config):
    error = client_error(client.create_custom_template, m.CreateCustomTemplateRequest(
        name="huge", type=2, subtype=1, template_config=config))
    assert isinstance(error, ClientException) and error.code == "InvalidParameter"
    assert '"TemplateConfig"' in error.message
