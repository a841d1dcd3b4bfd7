"""``alibabacloud-oss-v2`` (the current official OSS SDK) with its defaults, V4 signatures, against the
local OSS: every operation the product and its users need, presigned URLs and their expiry, an
issued STS token, and the refusals (a wrong secret, another region, a made-up token).

The only setting changed from the SDK's defaults is the address style: the local OSS serves
path-style URLs (``bucket`` in the path), as it does for oss2.
"""
from __future__ import annotations

import datetime
import time
import uuid

import alibabacloud_oss_v2 as oss
import pytest
import requests

from localcloud.oss import LocalOss
from tests.localcloud.oss.support import error_of

AK, SK = "LTAI-oss-v2-client-tests", "oss-v2-client-tests-secret"
REGION = "cn-hangzhou"
PART = 100 * 1024  # OSS's minimum part size
KEY = "dir/a b+c&d=e/ü#1.txt"


@pytest.fixture(scope="module")
def local_oss():
    with LocalOss(access_key_id=AK, access_key_secret=SK, region=REGION) as server:
        yield server


def make_client(local_oss: LocalOss, access_key_id: str = AK, access_key_secret: str = SK,
                security_token: str | None = None, region: str = REGION) -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(access_key_id, access_key_secret,
                                                                         security_token)
    cfg.region = region
    cfg.endpoint = local_oss.endpoint
    cfg.use_path_style = True
    return oss.Client(cfg)


@pytest.fixture
def client(local_oss) -> oss.Client:
    return make_client(local_oss)


@pytest.fixture
def bucket(local_oss) -> str:
    name = f"ossv2-{uuid.uuid4().hex[:12]}"
    local_oss.create_bucket(name)
    return name


def service_error(call, *args) -> oss.exceptions.ServiceError:
    with pytest.raises(oss.exceptions.OperationError) as err:
        call(*args)
    cause = err.value.unwrap()
    assert isinstance(cause, oss.exceptions.ServiceError), cause
    return cause


def test_objects_put_get_range_head_copy_delete(client, bucket):
    client.put_object(oss.PutObjectRequest(bucket=bucket, key=KEY, body=b"0123456789", content_type="text/plain",
                                           metadata={"origin": "tests"}))
    assert client.get_object(oss.GetObjectRequest(bucket=bucket, key=KEY)).body.read() == b"0123456789"
    ranged = client.get_object(oss.GetObjectRequest(bucket=bucket, key=KEY, range_header="bytes=2-5"))
    assert ranged.body.read() == b"2345"
    head = client.head_object(oss.HeadObjectRequest(bucket=bucket, key=KEY))
    assert (head.content_length, head.metadata) == (10, {"origin": "tests"})
    client.copy_object(oss.CopyObjectRequest(bucket=bucket, key="copy/of it", source_key=KEY))
    assert client.get_object(oss.GetObjectRequest(bucket=bucket, key="copy/of it")).body.read() == b"0123456789"
    client.delete_object(oss.DeleteObjectRequest(bucket=bucket, key="copy/of it"))
    assert not client.is_object_exist(bucket, "copy/of it")
    deleted = client.delete_multiple_objects(oss.DeleteMultipleObjectsRequest(
        bucket=bucket, objects=[oss.DeleteObject(key=KEY), oss.DeleteObject(key="never/was")]))
    assert sorted(d.key for d in deleted.deleted_objects) == sorted([KEY, "never/was"])
    assert not client.is_object_exist(bucket, KEY)


def test_listing_v1_and_v2_page_with_delimiters(client, bucket):
    keys = ["l/a/1", "l/a/2", "l/b/1", "l/c", "l/d e", "l/f+g"]
    for key in keys:
        client.put_object(oss.PutObjectRequest(bucket=bucket, key=key, body=b"x"))
    expected = ["l/a/", "l/b/", "l/c", "l/d e", "l/f+g"]
    v1 = client.list_objects_paginator(limit=2).iter_page(oss.ListObjectsRequest(bucket=bucket, prefix="l/",
                                                                                  delimiter="/"))
    v2 = client.list_objects_v2_paginator(limit=2).iter_page(oss.ListObjectsV2Request(bucket=bucket, prefix="l/",
                                                                                       delimiter="/"))
    for pages in (v1, v2):
        listed = [name for page in pages for name in page_names(page)]
        assert listed == expected
    after = client.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket, prefix="l/a/", start_after="l/a/1"))
    assert [o.key for o in after.contents] == ["l/a/2"]


def page_names(page) -> list[str]:
    """A listing page's keys and common prefixes, in name order (as OSS interleaves them)."""
    return sorted([o.key for o in page.contents or []] + [p.prefix for p in page.common_prefixes or []])


def test_multipart_with_part_copy_list_parts_abort_complete(client, bucket):
    source = bytes(range(256)) * 1024  # 256 KiB
    client.put_object(oss.PutObjectRequest(bucket=bucket, key="mp/source", body=source))
    upload_id = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(
        bucket=bucket, key="mp/target")).upload_id
    first = client.upload_part(oss.UploadPartRequest(bucket=bucket, key="mp/target", upload_id=upload_id,
                                                     part_number=1, body=source[:PART]))
    copied = client.upload_part_copy(oss.UploadPartCopyRequest(
        bucket=bucket, key="mp/target", upload_id=upload_id, part_number=2, source_key="mp/source",
        source_range=f"bytes={PART}-{2 * PART - 1}"))
    parts = [oss.UploadPart(part_number=1, etag=first.etag), oss.UploadPart(part_number=2, etag=copied.etag)]
    client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=bucket, key="mp/target", upload_id=upload_id,
        complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts)))
    assert client.get_object(oss.GetObjectRequest(bucket=bucket, key="mp/target")).body.read() == source[:2 * PART]

    abandoned = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(
        bucket=bucket, key="mp/abandoned")).upload_id
    client.abort_multipart_upload(oss.AbortMultipartUploadRequest(bucket=bucket, key="mp/abandoned",
                                                                  upload_id=abandoned))
    gone = service_error(client.list_parts, oss.ListPartsRequest(bucket=bucket, key="mp/abandoned",
                                                                 upload_id=abandoned))
    assert gone.code == "NoSuchUpload"


def test_list_parts(client, bucket):
    upload_id = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=bucket, key="lp")).upload_id
    client.upload_part(oss.UploadPartRequest(bucket=bucket, key="lp", upload_id=upload_id, part_number=1, body=b"x"))
    listed = client.list_parts(oss.ListPartsRequest(bucket=bucket, key="lp", upload_id=upload_id))
    assert [(p.part_number, p.size) for p in listed.parts] == [(1, 1)]


def test_list_multipart_uploads(client, bucket):
    upload_id = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(
        bucket=bucket, key="mpu/open")).upload_id
    listed = client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=bucket, prefix="mpu/"))
    assert [u.upload_id for u in listed.uploads] == [upload_id]


def test_presigned_get_and_put_urls_work_then_expire(client, bucket):
    put = client.presign(oss.PutObjectRequest(bucket=bucket, key=KEY))
    assert "x-oss-signature-version=OSS4-HMAC-SHA256" in put.url
    assert requests.put(put.url, data=b"by url").status_code == 200
    assert requests.get(client.presign(oss.GetObjectRequest(bucket=bucket, key=KEY)).url).content == b"by url"

    short = client.presign(oss.GetObjectRequest(bucket=bucket, key=KEY), expires=datetime.timedelta(seconds=1))
    time.sleep(2.1)
    expired = requests.get(short.url)
    assert expired.status_code == 403
    assert (error_of(expired.content)["Code"], error_of(expired.content)["Message"]) == ("AccessDenied",
                                                                                         "Request has expired.")


def test_an_issued_sts_token_works_and_a_made_up_one_is_refused(local_oss, bucket):
    issued = local_oss.keyring.issue_sts(900)
    sts = make_client(local_oss, issued.access_key_id, issued.access_key_secret, issued.security_token)
    sts.put_object(oss.PutObjectRequest(bucket=bucket, key="by-sts", body=b"ok"))
    assert sts.get_object(oss.GetObjectRequest(bucket=bucket, key="by-sts")).body.read() == b"ok"
    assert requests.get(sts.presign(oss.GetObjectRequest(bucket=bucket, key="by-sts")).url).content == b"ok"
    made_up = make_client(local_oss, issued.access_key_id, issued.access_key_secret, "CAISmade-up")
    err = service_error(made_up.get_object, oss.GetObjectRequest(bucket=bucket, key="by-sts"))
    assert (err.status_code, err.code) == (403, "InvalidSecurityToken")


def test_wrong_secret_and_another_region_are_refused(local_oss, bucket):
    err = service_error(make_client(local_oss, access_key_secret="not-the-secret").get_object,
                        oss.GetObjectRequest(bucket=bucket, key=KEY))
    assert (err.status_code, err.code) == (403, "SignatureDoesNotMatch")
    assert err.error_fileds["StringToSign"].startswith("OSS4-HMAC-SHA256\n")
    assert SK not in str(err.error_fileds)
    err = service_error(make_client(local_oss, region="cn-beijing").get_object,
                        oss.GetObjectRequest(bucket=bucket, key=KEY))
    assert (err.status_code, err.code) == (400, "InvalidArgument")
