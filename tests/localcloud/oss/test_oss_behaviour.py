"""OSS behaviour that oss2's own test suite found missing (``make conformance``), one focused test each.

A LocalOss of this module's own, and a bucket per test, so the module runs alone.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import uuid
import xml.etree.ElementTree as ElementTree

import oss2
import pytest
import requests
from oss2.utils import Crc64

from localcloud.oss import LocalOss, xml_bodies
from tests.localcloud.oss.support import AK, SK

PART = 100 * 1024  # OSS's minimum part size


@pytest.fixture(scope="module")
def local_oss():
    with LocalOss(access_key_id=AK, access_key_secret=SK) as oss:
        yield oss


@pytest.fixture
def bucket(local_oss) -> oss2.Bucket:
    name = f"behaviour-{uuid.uuid4().hex[:12]}"
    local_oss.create_bucket(name)
    return oss2.Bucket(oss2.Auth(AK, SK), local_oss.endpoint, name)


def crc64(data: bytes) -> int:
    crc = Crc64()
    crc.update(data)
    return crc.crc


def raw_get(bucket: oss2.Bucket, key: str, params: dict) -> requests.Response:
    return requests.get(bucket.sign_url("GET", key, 60, params=params), timeout=10)


def test_list_multipart_uploads_pages_with_next_markers_and_folds_prefixes(bucket):
    keys = ["a", "b", "b", "dir/x", "dir/y", "c"]
    uploads = sorted((key, bucket.init_multipart_upload(key).upload_id) for key in keys)  # by key, then id
    first = bucket.list_multipart_uploads(max_uploads=1)
    assert first.is_truncated and (first.next_key_marker, first.next_upload_id_marker) == uploads[0]
    assert first.upload_list[0].initiation_date > 0
    assert [(u.key, u.upload_id) for u in oss2.MultipartUploadIterator(bucket, max_uploads=1)] == uploads
    folded = bucket.list_multipart_uploads(delimiter="/")
    assert [u.key for u in folded.upload_list] == ["a", "b", "b", "c"] and folded.prefix_list == ["dir/"]
    after_a = bucket.list_multipart_uploads(key_marker="a")
    assert [u.key for u in after_a.upload_list][:1] == ["b"]


def test_list_parts_is_list_parts_result_paged_by_part_number(bucket):
    upload_id = bucket.init_multipart_upload("big").upload_id
    for number in (1, 2, 5):
        bucket.upload_part("big", upload_id, number, b"p" * PART)
    root = ElementTree.fromstring(raw_get(bucket, "big", {"uploadId": upload_id}).content)
    assert root.tag == "ListPartsResult" and root.findtext("NextPartNumberMarker") == "5"
    page = bucket.list_parts("big", upload_id, marker="2")
    assert [p.part_number for p in page.parts] == [5] and page.parts[0].size == PART
    first = bucket.list_parts("big", upload_id, max_parts=2)
    assert first.is_truncated and first.next_marker == "2"


def test_crc64_on_put_get_head_parts_and_complete(bucket):
    data = b"crc me " * 1000
    assert bucket.put_object("k", data).crc == crc64(data)
    assert bucket.get_object("k").server_crc == crc64(data)
    assert int(bucket.head_object("k").headers["x-oss-hash-crc64ecma"]) == crc64(data)
    first, second = b"1" * PART, b"2" * 1000
    upload_id = bucket.init_multipart_upload("m").upload_id
    parts = [oss2.models.PartInfo(n, bucket.upload_part("m", upload_id, n, chunk).etag, size=len(chunk))
             for n, chunk in ((1, first), (2, second))]
    assert bucket.complete_multipart_upload("m", upload_id, parts).crc == crc64(first + second)
    assert int(bucket.head_object("m").headers["x-oss-hash-crc64ecma"]) == crc64(first + second)


def test_control_characters_in_keys_list_and_batch_delete(bucket):
    keys = ["ctl-\x01\x07", "ctl-\x0c-form", "<angle>&"]
    for key in keys:
        bucket.put_object(key, b"x")
    assert sorted(o.key for o in bucket.list_objects().object_list) == sorted(keys)
    assert sorted(o.key for o in bucket.list_objects_v2().object_list) == sorted(keys)
    assert sorted(bucket.batch_delete_objects(keys).deleted_keys) == sorted(keys)
    assert bucket.list_objects_v2().object_list == []


def test_request_xml_may_reference_control_characters():
    """alibabacloud-oss-v2 writes a key's control characters as references (``&#01;``), which XML 1.0
    forbids and OSS accepts; the private-use escape itself survives the round trip."""
    body = "<Delete><Object><Key>a&#01;b&#x1f;c&#57344;\ue000&amp;</Key></Object></Delete>".encode()
    assert xml_bodies.parse_request_body(body).findtext("Object/Key") == "a\x01b\x1fc\ue000\ue000&"


def test_unknown_continuation_token_is_invalid_argument(bucket):
    bucket.put_object("k", b"x")
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.list_objects_v2(continuation_token="not-a-token")


def test_upload_part_copy_honours_an_open_ended_range(bucket):
    source = bytes(range(256)) * 1000
    bucket.put_object("src", source)
    upload_id = bucket.init_multipart_upload("dst").upload_id
    part = bucket.upload_part_copy(bucket.bucket_name, "src", (1000, None), "dst", upload_id, 1)
    bucket.complete_multipart_upload("dst", upload_id, [oss2.models.PartInfo(1, part.etag)])
    assert bucket.get_object("dst").read() == source[1000:]


def test_upload_part_checks_content_md5(bucket):
    upload_id = bucket.init_multipart_upload("md5").upload_id
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.upload_part("md5", upload_id, 1, b"data", headers={"Content-MD5": wrong})
    right = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    assert bucket.upload_part("md5", upload_id, 1, b"data", headers={"Content-MD5": right}).crc == crc64(b"data")


def test_utf8_metadata_round_trips(bucket):
    bucket.put_object("meta", b"x", headers={"x-oss-meta-title": "测试".encode()})
    value = bucket.head_object("meta").headers["x-oss-meta-title"]
    assert value.encode("latin-1").decode("utf-8") == "测试"  # as oss2's own suite reads it


def test_an_upload_without_content_type_is_application_octet_stream(bucket):
    assert requests.put(bucket.sign_url("PUT", "photo.jpg", 60), data=b"x", timeout=10).status_code == 200
    assert bucket.head_object("photo.jpg").content_type == "application/octet-stream"


@pytest.mark.parametrize("key", ["/leading-slash", "\\leading-backslash", "k" * 1024])
def test_invalid_object_names_are_refused(bucket, key):
    with pytest.raises(oss2.exceptions.InvalidObjectName):
        bucket.put_object(key, b"x")


def test_the_longest_object_name_is_accepted(bucket):
    bucket.put_object("k" * 1023, b"x")
    assert bucket.object_exists("k" * 1023)


def test_append_object(bucket):
    first = bucket.append_object("log", 0, b"one ", init_crc=0)
    assert first.next_position == 4 and first.crc == crc64(b"one ")
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength) as err:
        bucket.append_object("log", 0, b"two")
    assert err.value.next_position == 4
    assert bucket.append_object("log", 4, b"two", init_crc=first.crc).crc == crc64(b"one two")
    assert bucket.get_object("log").read() == b"one two"
    assert bucket.head_object("log").object_type == "Appendable"
    bucket.put_object("normal", b"x")
    with pytest.raises(oss2.exceptions.ObjectNotAppendable):
        bucket.append_object("normal", 1, b"y")


def test_complete_all_completes_every_uploaded_part(bucket):
    upload_id = bucket.init_multipart_upload("all").upload_id
    bucket.upload_part("all", upload_id, 1, b"a" * PART)
    bucket.upload_part("all", upload_id, 2, b"b")
    bucket.complete_multipart_upload("all", upload_id, None, headers={"x-oss-complete-all": "yes"})
    assert bucket.get_object("all").read() == b"a" * PART + b"b"


@pytest.mark.parametrize("tagging", ["=empty-key", "k" * 129 + "=v", "&".join(f"k{i}=v" for i in range(11))])
def test_invalid_tags_are_refused(bucket, tagging):
    with pytest.raises(oss2.exceptions.OssError):
        bucket.init_multipart_upload("tagged", headers={"x-oss-tagging": tagging})


def test_text_is_gzipped_when_asked(bucket):
    text = b"hello, compression " * 100
    bucket.put_object("page.txt", text, headers={"Content-Type": "text/plain"})
    answer = requests.get(bucket.sign_url("GET", "page.txt", 60), headers={"Accept-Encoding": "gzip"},
                          stream=True, timeout=10)
    assert answer.headers["Content-Encoding"] == "gzip" and "Content-Length" not in answer.headers
    assert gzip.decompress(answer.raw.read()) == text
    assert bucket.get_object("page.txt").read() == text  # not asked: not compressed


def test_live_channels_list_empty_and_processing_is_not_implemented(bucket):
    assert list(oss2.LiveChannelIterator(bucket)) == []
    bucket.put_object("img.jpg", b"x")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.get_object("img.jpg", process="image/resize,w_10")
    assert (err.value.status, err.value.code) == (501, "NotImplemented")


def test_list_buckets_names_the_local_endpoint(local_oss, bucket):
    service = oss2.Service(oss2.Auth(AK, SK), local_oss.endpoint)
    listed = next(b for b in service.list_buckets(prefix=bucket.bucket_name).buckets)
    assert listed.extranet_endpoint == local_oss.endpoint.removeprefix("http://")
