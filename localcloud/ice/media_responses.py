"""The wire layer of the local ICE's media assets: RegisterMediaInfo, GetMediaInfo, ListMediaBasicInfos.

Parameters and response keys as the SDK 6.20.2 models name them (``RegisterMediaInfoRequest``,
``GetMediaInfoResponseBody``, ``ListMediaBasicInfosResponseBody``); the rules live in
:mod:`localcloud.ice.models.media`. ``FileBasicInfo.FileUrl`` is the object's unsigned OSS URL
(``http://bucket.oss-<region>.aliyuncs.com/key``): nothing is analysed, so no size, duration or
stream fields are given.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from localcloud.ice.models import IceModel, MediaAsset, format_time
from localcloud.ice.models.media import LIST_MAX_RESULTS_DEFAULT, MEDIA_SOURCE, MEDIA_STATUS

if TYPE_CHECKING:
    from localcloud.ice.responses import Params


def media_basic_info(asset: MediaAsset) -> dict[str, Any]:
    wire = {
        "MediaId": asset.media_id, "InputURL": asset.input_url, "MediaType": asset.media_type,
        "BusinessType": asset.business_type, "Source": MEDIA_SOURCE, "Title": asset.title,
        "Description": asset.description, "MediaTags": asset.media_tags, "CoverURL": asset.cover_url,
        "UserData": asset.user_data, "ReferenceId": asset.reference_id, "Status": MEDIA_STATUS,
        "CreateTime": format_time(asset.create_time), "ModifiedTime": format_time(asset.modified_time),
    }
    return {k: v for k, v in wire.items() if v is not None}


def file_info_list(asset: MediaAsset) -> list[dict[str, Any]]:
    location = asset.location
    region = location.location.removeprefix("oss-")
    return [{"FileBasicInfo": {
        "FileName": location.object.rsplit("/", 1)[-1], "FileStatus": "Normal", "FileType": "source_file",
        "FileUrl": f"http://{location.bucket}.{location.location}.aliyuncs.com/{quote(location.object)}",
        "Region": region, "CreateTime": format_time(asset.create_time),
        "ModifiedTime": format_time(asset.modified_time)}}]


class MediaResponses:
    """The media actions, each taking one request's parameters and answering its body."""

    def __init__(self, model: IceModel):
        self.model = model

    def actions(self) -> dict[str, Callable[[Params], dict[str, Any]]]:
        return {"RegisterMediaInfo": self.register_media_info, "GetMediaInfo": self.get_media_info,
                "ListMediaBasicInfos": self.list_media_basic_infos}

    def register_media_info(self, p: Params) -> dict[str, Any]:
        asset = self.model.register_media_info(
            input_url=p.text("InputURL"), media_type=p.text("MediaType"), title=p.text("Title"),
            overwrite=p.boolean("Overwrite") or False, client_token=p.text("ClientToken"),
            reference_id=p.text("ReferenceId"), description=p.text("Description"),
            business_type=p.text("BusinessType"), media_tags=p.text("MediaTags"), cover_url=p.text("CoverURL"),
            user_data=p.text("UserData"))
        return {"MediaId": asset.media_id}

    def get_media_info(self, p: Params) -> dict[str, Any]:
        asset = self.model.get_media_info(media_id=p.text("MediaId"), input_url=p.text("InputURL"))
        return {"MediaInfo": {"MediaId": asset.media_id, "MediaBasicInfo": media_basic_info(asset),
                              "FileInfoList": file_info_list(asset)}}

    def list_media_basic_infos(self, p: Params) -> dict[str, Any]:
        assets, total, token = self.model.list_media_basic_infos(
            start_time=p.time("StartTime"), end_time=p.time("EndTime"), media_type=p.text("MediaType"),
            status=p.text("Status"), sort_by=p.text("SortBy"), max_results=p.integer("MaxResults"),
            next_token=p.text("NextToken"))
        with_files = p.boolean("IncludeFileBasicInfo")
        infos = [{"MediaId": a.media_id, "MediaBasicInfo": media_basic_info(a),
                  **({"FileInfoList": file_info_list(a)} if with_files else {})} for a in assets]
        result: dict[str, Any] = {"TotalCount": total, "MediaInfos": infos,
                                  "MaxResults": p.integer("MaxResults") or LIST_MAX_RESULTS_DEFAULT}
        if token:
            result["NextToken"] = token
        return result
