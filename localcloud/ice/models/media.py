"""Media assets (IMS media library): RegisterMediaInfo, GetMediaInfo, ListMediaBasicInfos.

An asset names one OSS object by a MediaId; SubmitSnapshotJob's ``Type=Media`` references resolve
through :meth:`MediaBackend.media_location`. API reference:
https://www.alibabacloud.com/help/en/ims/developer-reference/api-ice-2020-11-09-registermediainfo
(and the GetMediaInfo / ListMediaBasicInfos pages beside it); field names from the SDK 6.20.2 models.

Assumptions (the docs are silent; the conservative reading is taken):
* Registration is synchronous and the asset is ``Normal`` at once; the OSS object is not read (no
  media analysis: no size, duration or stream info). A job on an asset whose object is missing
  fails as a job on that OSS URL does. Only OSS URLs (``oss://bucket/key`` or this region's
  ``http(s)://bucket.oss-<region>.aliyuncs.com/key``); ``vod://`` answers ``InvalidParameter``.
* The two URL forms of one object are one asset. Registering a registered URL again with
  ``Overwrite`` false answers the existing MediaId and changes nothing; with ``Overwrite`` true the
  old asset is deleted and a new MediaId is answered. A ``ClientToken`` seen before answers the
  MediaId it answered then, whatever else the request says.
* ``MediaType`` defaults from the file extension (video, image, audio); other extensions need it.
  ``ReferenceId`` (6-64 of ``A-Za-z0-9_-``) is unique among assets: a second use answers
  ``InvalidParameter``. ``GetMediaInfo`` by MediaId, else by InputURL (either form); unknown
  -> ``ResourceNotFound`` (404) naming "Media".
* ListMediaBasicInfos: ``StartTime`` exclusive, ``EndTime`` inclusive (as the official sample's
  comments say), ``MaxResults`` 1..100 (default 10), ``SortBy`` ``utcCreate:Desc`` (default) or
  ``utcCreate:Asc``, ``NextToken`` opaque (the next asset's id), absent on the last page;
  ``TotalCount`` counts every asset the filters match.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any

from localcloud.ice.models.base import (
    TIME_FORMAT,
    format_time,
    invalid_parameter,
    missing_parameter,
    one_of,
    resource_not_found,
    up_to,
)
from localcloud.ice.models.jobs import JobsBackend, OssLocation

MEDIA_TYPES = ("video", "image", "audio", "text")
MEDIA_TYPE_OF_EXTENSION = {
    **dict.fromkeys(("mp4", "mov", "m4v", "mkv", "webm", "flv", "avi", "ts", "m3u8", "mpg", "mpeg", "wmv", "3gp"),
                    "video"),
    **dict.fromkeys(("jpg", "jpeg", "png", "gif", "bmp", "webp", "heic"), "image"),
    **dict.fromkeys(("mp3", "m4a", "aac", "wav", "flac", "ogg", "opus"), "audio"),
}
MEDIA_STATUS = "Normal"  # every asset: registration is synchronous here
MEDIA_SOURCE = "oss"
LIST_MAX_RESULTS_DEFAULT = 10
LIST_MAX_RESULTS_MAX = 100
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")


@dataclass
class MediaAsset:
    """One registered media asset; ``location`` is its OSS object."""

    media_id: str
    input_url: str
    location: OssLocation
    media_type: str
    create_time: datetime
    seq: int
    title: str | None = None
    description: str | None = None
    business_type: str | None = None
    media_tags: str | None = None
    cover_url: str | None = None
    user_data: str | None = None
    reference_id: str | None = None
    client_token: str | None = None

    @property
    def modified_time(self) -> datetime:
        return self.create_time


class MediaBackend(JobsBackend):
    """The media assets of one account in one region, and the MediaIds snapshot jobs may name."""

    _media: dict[str, MediaAsset]
    _media_by_object: dict[tuple[str, str], str]  # (bucket, key) -> MediaId
    _media_by_token: dict[str, str]  # ClientToken -> MediaId

    def _reset_media(self) -> None:
        self._media, self._media_by_object, self._media_by_token = {}, {}, {}

    def register_media_info(self, *, input_url: str | None, media_type: str | None = None, title: str | None = None,
                            overwrite: bool = False, client_token: str | None = None,
                            reference_id: str | None = None, **details: str | None) -> MediaAsset:
        """``details``: description, business_type, media_tags, cover_url, user_data (stored, echoed)."""
        if not input_url:
            raise missing_parameter("InputURL")
        location = self.parse_oss_url("InputURL", input_url)
        media_type = media_type or _media_type_of(location.object)
        if media_type not in MEDIA_TYPES:
            raise invalid_parameter("MediaType", f"must be one of {', '.join(MEDIA_TYPES)}, got {media_type!r}.")
        if reference_id is not None and not _REFERENCE_ID.match(reference_id):
            raise invalid_parameter("ReferenceId", "must be 6 to 64 letters, digits, hyphens or underscores.")
        with self._lock:
            if client_token and client_token in self._media_by_token:
                return replace(self._media[self._media_by_token[client_token]])
            registered = self._media_by_object.get((location.bucket, location.object))
            if registered and not overwrite:
                return replace(self._media[registered])
            self._check_reference_id_free(reference_id, replacing=registered)
            if registered:
                self._delete_media(registered)
            asset = MediaAsset(media_id=uuid.uuid4().hex, input_url=input_url, location=location,
                               media_type=media_type, create_time=self._clock(), seq=self._next_seq(), title=title,
                               reference_id=reference_id, client_token=client_token, **details)
            self._add_media(asset)
            return replace(asset)

    def _check_reference_id_free(self, reference_id: str | None, *, replacing: str | None) -> None:
        owner = next((a.media_id for a in self._media.values() if reference_id and a.reference_id == reference_id),
                     None)
        if owner is not None and owner != replacing:
            raise invalid_parameter("ReferenceId", f"is already used by media asset {owner}.")

    def _add_media(self, asset: MediaAsset) -> None:
        self._media[asset.media_id] = asset
        self._media_by_object[(asset.location.bucket, asset.location.object)] = asset.media_id
        if asset.client_token:
            self._media_by_token[asset.client_token] = asset.media_id

    def _delete_media(self, media_id: str) -> None:
        asset = self._media.pop(media_id)
        del self._media_by_object[(asset.location.bucket, asset.location.object)]

    def get_media_info(self, *, media_id: str | None = None, input_url: str | None = None) -> MediaAsset:
        if not media_id and not input_url:
            raise missing_parameter("MediaId")
        with self._lock:
            if media_id:
                asset = self._media.get(media_id)
            else:
                location = self.parse_oss_url("InputURL", input_url or "")
                asset = self._media.get(self._media_by_object.get((location.bucket, location.object), ""))
            if asset is None:
                raise resource_not_found("Media", f"No media asset matches {media_id or input_url!r}.")
            return replace(asset)

    def media_location(self, field_name: str, media_id: str) -> OssLocation:
        with self._lock:
            asset = self._media.get(media_id)
            if asset is None:
                return super().media_location(field_name, media_id)
            return asset.location

    def list_media_basic_infos(self, *, start_time: datetime | None = None, end_time: datetime | None = None,
                               media_type: str | None = None, status: str | None = None,
                               sort_by: str | None = None, max_results: int | None = None,
                               next_token: str | None = None) -> tuple[list[MediaAsset], int, str | None]:
        """(one page of assets, how many match, the next page's token or None)."""
        sort_by = one_of("SortBy", sort_by, ("utcCreate:Desc", "utcCreate:Asc"))
        size = up_to("MaxResults", max_results, default=LIST_MAX_RESULTS_DEFAULT, maximum=LIST_MAX_RESULTS_MAX)
        with self._lock:
            matching = sorted((a for a in self._media.values()
                               if (start_time is None or a.create_time > start_time)
                               and (end_time is None or a.create_time <= end_time)
                               and media_type in (None, a.media_type) and status in (None, MEDIA_STATUS)),
                              key=lambda a: a.seq, reverse=sort_by.endswith("Desc"))
            ids = [a.media_id for a in matching]
            if next_token is not None and next_token not in ids:
                raise invalid_parameter("NextToken", "is unknown or no longer valid for these filters.")
            start = ids.index(next_token) if next_token else 0
            page = [replace(a) for a in matching[start:start + size]]
            token = ids[start + size] if start + size < len(ids) else None
            return page, len(ids), token

    def media_state(self) -> list[dict[str, Any]]:
        """The assets as JSON-ready records (``IceModel.state()["media"]``)."""
        with self._lock:
            return [{**asdict(asset), "create_time": format_time(asset.create_time)}
                    for asset in sorted(self._media.values(), key=lambda a: a.seq)]

    def restore_media(self, records: list[dict[str, Any]]) -> None:
        """Replace the assets with ``records`` (from :meth:`media_state`)."""
        with self._lock:
            self._reset_media()
            for record in records:
                created = datetime.strptime(record["create_time"], TIME_FORMAT).replace(tzinfo=timezone.utc)
                self._add_media(MediaAsset(**{**record, "create_time": created,
                                              "location": OssLocation(**record["location"])}))
                self._seq = max(self._seq, record["seq"])


def _media_type_of(key: str) -> str:
    extension = key.rsplit(".", 1)[-1].lower() if "." in key else ""
    media_type = MEDIA_TYPE_OF_EXTENSION.get(extension)
    if media_type is None:
        raise missing_parameter("MediaType")
    return media_type
