"""OSS's rules for bucket names, object names and object tags, checked before moto sees a request.

OSS: https://help.aliyun.com/zh/oss/user-guide/bucket-naming-conventions,
https://help.aliyun.com/zh/oss/user-guide/object-naming-conventions and
https://help.aliyun.com/zh/oss/user-guide/object-tagging-8
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from localcloud.oss.wire import OssError

#: OSS's longest object name, in bytes of UTF-8.
MAX_OBJECT_NAME_BYTES = 1023
#: At most this many tags per object, keys of 1-128 characters and values of 0-256.
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 10, 128, 256
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def check_bucket_name(name: str) -> None:
    """OSS bucket names: 3-63 lower-case letters, digits and hyphens, not starting/ending with '-'."""
    if not _BUCKET_NAME.fullmatch(name):
        raise OssError(400, "InvalidBucketName", f"The specified bucket {name!r} is not valid: use 3-63 "
                       "lower-case letters, digits and hyphens, starting and ending with a letter or digit.")


def check_object_name(key: str) -> None:
    """OSS object names: 1-1023 bytes of UTF-8, not starting with '/' or '\\'."""
    if len(key.encode("utf-8")) > MAX_OBJECT_NAME_BYTES or key.startswith(("/", "\\")):
        raise OssError(400, "InvalidObjectName", "The specified object is not valid: an object name is 1-1023 "
                       "bytes of UTF-8 and does not start with '/' or '\\'.", ObjectName=key)


def check_tagging(header: str) -> None:
    """An ``x-oss-tagging`` header (``k1=v1&k2=v2``, URL-encoded) that OSS would accept."""
    tags = parse_qsl(header, keep_blank_values=True)
    keys = [key for key, _ in tags]
    if (len(tags) > MAX_TAGS or len(set(keys)) != len(keys)
            or any(not 1 <= len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE for key, value in tags)):
        raise OssError(400, "InvalidArgument", f"The tagging header is not valid: at most {MAX_TAGS} tags, "
                       f"each key once, keys of 1-{MAX_TAG_KEY} characters and values of at most {MAX_TAG_VALUE}.",
                       ArgumentName="x-oss-tagging", ArgumentValue=header)
