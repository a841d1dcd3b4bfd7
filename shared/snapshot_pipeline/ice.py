"""The ICE adapter: the :class:`.ports.Ice` calls (and the operator's template and callback calls)
through ``alibabacloud_ice20201109``.

API reference: https://www.alibabacloud.com/help/en/ims/developer-reference/api-ice-2020-11-09-submitsnapshotjob
(and the GetSnapshotJob / GetSnapshotUrls / ListSnapshotJobs pages beside it).

The SDK is imported on first use, not at module import: it is the largest part of a
function's cold start, and the callback answers within ICE's 3-second budget.
Responses are turned into the frozen values of :mod:`.domain`; SDK exceptions into
:class:`.ports.IceError`.
"""
from __future__ import annotations

import copy
import json
import math
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from .credentials import Credentials
from .domain import EventCallback, OssLocation, SnapshotJob, SnapshotJobPage, SnapshotUrls
from .ports import IceError
from .retry import Deadline, RetryPolicy

URL_PAGE_SIZE = 30  # GetSnapshotUrls' maximum PageSize
# Pages after the first are fetched at once, up to this many at a time: 1,200 URLs in three round
# trips (job, first page, the rest). It matches the SDK's connection pool (darabonba's
# DEFAULT_POOL_MAXSIZE, 40), so every concurrent call reuses a kept-alive connection. The threads are
# the instance's, kept between invocations: starting 33 threads per callback, each waiting for the
# GIL while the others parse their pages, took longer than the round trip itself.
URL_PAGE_WORKERS = 40


def _translate(exc: BaseException) -> IceError:
    code = getattr(exc, "code", None)
    if code and code != "InvalidCredentials" and hasattr(exc, "status_code"):
        data = getattr(exc, "data", None) or {}
        message = data.get("Message") if isinstance(data, dict) else None
        return IceError(str(code), message or str(getattr(exc, "message", exc)),
                        request_id=getattr(exc, "request_id", None) or (data or {}).get("RequestId"),
                        status_code=getattr(exc, "status_code", None))
    if code == "InvalidCredentials":
        return IceError("InvalidCredentials", str(exc))
    return IceError("NetworkError", f"{type(exc).__name__}: {exc}")


_MODELS = "alibabacloud_ice20201109.models"
_models_lock = threading.Lock()


def _import_models_lazily() -> None:
    """Register the SDK's ``models`` package so that it imports each model's module on first use.

    ``alibabacloud_ice20201109/models/__init__.py`` imports all of its ~1,300 model modules
    (about 0.2 s, a quarter of the callback's cold start) where a job needs a dozen. This makes the
    package a module whose ``__getattr__`` (PEP 562) imports the one module that defines a name,
    as read from that same ``__init__.py`` (its ``from ._module import Name`` lines): the SDK's own
    classes and client run unchanged. When the package is already imported, or its layout is not
    the expected one, nothing changes and the SDK imports as usual.
    """
    with _models_lock:
        if _MODELS in sys.modules:
            return
        try:
            import importlib
            import importlib.util
            import re

            spec = importlib.util.find_spec(_MODELS)
            if spec is None or not spec.origin or not spec.submodule_search_locations:
                return
            with open(spec.origin, encoding="utf-8") as f:
                where = {name: module for module, name in
                         re.findall(r"^from \.(\w+) import (\w+)$", f.read(), re.MULTILINE)}
            if not {"GetSnapshotJobRequest", "GetSnapshotUrlsRequest", "SubmitSnapshotJobRequest"} <= set(where):
                return
            module = importlib.util.module_from_spec(spec)
        except Exception:  # the eager import below still works
            return

        def __getattr__(name: str) -> Any:
            submodule = where.get(name)
            if submodule is None:
                raise AttributeError(f"module {_MODELS!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(f"{_MODELS}.{submodule}"), name)
            setattr(module, name, value)
            return value

        vars(module).update(__getattr__=__getattr__, __all__=list(where),
                            __dir__=lambda: sorted(set(where) | set(vars(module))))
        sys.modules[_MODELS] = module
        vars(sys.modules[_MODELS.rpartition(".")[0]])["models"] = module


class _SdkConnection:
    """The SDK client of one endpoint and set of credentials, built on first use and shared by every
    deadline-bound copy of an :class:`IceClient` (one connection pool per instance, not per call)."""

    def __init__(self, *, endpoint: str, credentials: Credentials, region: str, protocol: str,
                 read_timeout_ms: int, connect_timeout_ms: int):
        self._config = dict(endpoint=endpoint, region_id=region, protocol=protocol, read_timeout=read_timeout_ms,
                            connect_timeout=connect_timeout_ms)
        self._credentials = credentials
        self._lock = threading.Lock()
        self._client: Any = None
        self._pages: ThreadPoolExecutor | None = None
        self.models: Any = None

    def page_fetchers(self) -> ThreadPoolExecutor:
        """The threads that fetch URL pages concurrently, started on first use and kept."""
        with self._lock:
            if self._pages is None:
                self._pages = ThreadPoolExecutor(max_workers=URL_PAGE_WORKERS, thread_name_prefix="ice-url-pages")
            return self._pages

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                _import_models_lazily()
                from alibabacloud_ice20201109 import models
                from alibabacloud_ice20201109.client import Client
                from alibabacloud_tea_openapi.models import Config

                c = self._credentials
                self._client = Client(Config(access_key_id=c.access_key_id, access_key_secret=c.access_key_secret,
                                             security_token=c.security_token, **self._config))
                self.models = models
            return self._client


class IceClient:
    """Adapter over the ICE SDK client for snapshot jobs and templates.

    ``deadline`` bounds the retries of every call; :meth:`with_deadline` gives the next invocation
    (or operation) its own, sharing the SDK client and its connection pool.
    """

    def __init__(self, *, endpoint: str, credentials: Credentials, region: str, deadline: Deadline,
                 protocol: str = "https", read_timeout_ms: int = 10000, connect_timeout_ms: int = 5000,
                 retry: RetryPolicy | None = None):
        self.retry = retry or RetryPolicy()
        self.deadline = deadline
        self._first_page_ahead: tuple[str, int, Future[SnapshotUrls]] | None = None
        self._connection = _SdkConnection(endpoint=endpoint, credentials=credentials, region=region,
                                          protocol=protocol, read_timeout_ms=read_timeout_ms,
                                          connect_timeout_ms=connect_timeout_ms)

    def with_deadline(self, deadline: Deadline) -> IceClient:
        """This adapter, sharing its SDK client, with retries bounded by ``deadline``."""
        bound = copy.copy(self)
        bound.deadline = deadline
        return bound

    def _sdk(self) -> tuple[Any, Any]:
        client = self._connection.client()
        return client, self._connection.models

    def _call(self, method: str, request: Any = None, *, idempotent: bool = True) -> dict[str, Any]:
        """One API call, retried on throttling and 5xx within the deadline, and on network errors
        when repeating it is harmless (a submit whose answer was lost may have created a job)."""
        client, _ = self._sdk()

        def once() -> dict[str, Any]:
            try:
                response = getattr(client, method)(request) if request is not None else getattr(client, method)()
            except Exception as exc:
                raise _translate(exc) from None
            body: dict[str, Any] = response.body.to_map()
            return body

        return self.retry.call(once, deadline=self.deadline,
                               retryable=lambda e: isinstance(e, IceError) and e.retryable
                               and (idempotent or e.code != "NetworkError"),
                               throttled=lambda e: isinstance(e, IceError) and e.throttled)

    # --- jobs ---------------------------------------------------------------------------------
    def submit_snapshot_job(self, *, input: OssLocation, output: OssLocation, template_id: str,
                            overwrite_params: Mapping[str, Any] | None = None,
                            user_data: str | None = None, name: str | None = None,
                            pipeline_id: str | None = None) -> str:
        _, m = self._sdk()
        template_config: dict[str, Any] = {"TemplateId": template_id}
        if overwrite_params:
            template_config["OverwriteParams"] = dict(overwrite_params)
        request = m.SubmitSnapshotJobRequest(
            input=m.SubmitSnapshotJobRequestInput(type="OSS", media=input.uri),
            output=m.SubmitSnapshotJobRequestOutput(type="OSS", media=output.uri),
            template_config=m.SubmitSnapshotJobRequestTemplateConfig().from_map(template_config),
            user_data=user_data,
            name=name,
            schedule_config=m.SubmitSnapshotJobRequestScheduleConfig(pipeline_id=pipeline_id) if pipeline_id else None,
        )
        return str(self._call("submit_snapshot_job", request, idempotent=False)["JobId"])

    def get_snapshot_job(self, job_id: str) -> SnapshotJob:
        _, m = self._sdk()
        body = self._call("get_snapshot_job", m.GetSnapshotJobRequest(job_id=job_id))
        return SnapshotJob.from_map(body.get("SnapshotJob") or {})

    def list_snapshot_jobs(self, *, status: str | None = None, start_of_create_time: str | None = None,
                           end_of_create_time: str | None = None, page_size: int = 100,
                           next_page_token: str | None = None, order_by: str | None = None) -> SnapshotJobPage:
        _, m = self._sdk()
        body = self._call("list_snapshot_jobs", m.ListSnapshotJobsRequest(
            status=status, start_of_create_time=start_of_create_time, end_of_create_time=end_of_create_time,
            page_size=page_size, next_page_token=next_page_token, order_by=order_by))
        return SnapshotJobPage(tuple(SnapshotJob.from_map(j) for j in body.get("Jobs") or ()),
                               body.get("NextPageToken") or None)

    def get_snapshot_urls_page(self, job_id: str, page_number: int, *, page_size: int = URL_PAGE_SIZE,
                               timeout_s: int = 3600, order_by: str = "Asc") -> SnapshotUrls:
        _, m = self._sdk()
        body = self._call("get_snapshot_urls", m.GetSnapshotUrlsRequest(
            job_id=job_id, page_number=page_number, page_size=page_size, order_by=order_by, timeout=timeout_s))
        return SnapshotUrls(int(body.get("Total") or 0), tuple(body.get("SnapshotUrls") or ()),
                            body.get("WebVTTUrl") or None)

    def get_all_snapshot_urls(self, job_id: str, *, timeout_s: int = 3600) -> SnapshotUrls:
        """Every URL of a job, in order. Pages after the first are fetched concurrently."""
        first = self._first_page(job_id, timeout_s)
        return self._urls_after(job_id, first, timeout_s=timeout_s)

    def _urls_after(self, job_id: str, first: SnapshotUrls, *, timeout_s: int) -> SnapshotUrls:
        """``first`` (page 1) followed by every later page, fetched at once (``URL_PAGE_WORKERS`` at a time)."""
        pages = math.ceil(first.total / URL_PAGE_SIZE)
        urls = list(first.urls)
        fetchers = self._connection.page_fetchers()
        rest = [fetchers.submit(self.get_snapshot_urls_page, job_id, n, timeout_s=timeout_s)
                for n in range(2, pages + 1)]
        try:
            for page in rest:
                urls.extend(page.result().urls)
        finally:
            wait(rest)  # no page outlives the call, even when one failed
        return SnapshotUrls(first.total, tuple(urls), first.webvtt_url)

    @contextmanager
    def first_urls_page_ahead(self, job_id: str, *, timeout_s: int) -> Iterator[IceClient]:
        """This adapter, with page 1 of ``job_id``'s GetSnapshotUrls already on its way: the callback
        knows only the JobId when it starts, so the page travels beside GetSnapshotJob instead of after it.

        ``get_all_snapshot_urls`` of that job and ``timeout_s`` then starts from that page (its error, if
        it failed, is raised there, as a failed first page is today); other calls are unchanged. A page
        nobody asks for is dropped; leaving the block waits for it, so no call outlives the invocation.
        """
        first = self._connection.page_fetchers().submit(self.get_snapshot_urls_page, job_id, 1, timeout_s=timeout_s)
        try:
            ahead = copy.copy(self)
            ahead._first_page_ahead = (job_id, timeout_s, first)
            yield ahead
        finally:
            wait([first])

    def _first_page(self, job_id: str, timeout_s: int) -> SnapshotUrls:
        ahead = self._first_page_ahead
        if ahead is not None and ahead[:2] == (job_id, timeout_s):
            return ahead[2].result()
        return self.get_snapshot_urls_page(job_id, 1, timeout_s=timeout_s)

    # --- media assets (https://www.alibabacloud.com/help/en/ims/developer-reference/api-ice-2020-11-09-registermediainfo)
    def register_media(self, source: OssLocation, *, title: str | None = None,
                       media_type: str | None = None) -> str:
        """Register an OSS object as a media asset; its MediaId. A registered object answers its
        existing MediaId, and one ClientToken covers the retries, so repeating is harmless."""
        _, m = self._sdk()
        request = m.RegisterMediaInfoRequest(input_url=source.uri, title=title, media_type=media_type,
                                             client_token=uuid.uuid4().hex)
        return str(self._call("register_media_info", request)["MediaId"])

    def media_source(self, media_id: str) -> OssLocation:
        """The OSS object a media asset names (GetMediaInfo's InputURL)."""
        _, m = self._sdk()
        info = self._call("get_media_info", m.GetMediaInfoRequest(media_id=media_id)).get("MediaInfo") or {}
        input_url = (info.get("MediaBasicInfo") or {}).get("InputURL") or ""
        location = OssLocation.parse(input_url)
        if location is None:
            raise IceError("InvalidParameter", f"media asset {media_id} is not an OSS object: {input_url!r}")
        return location

    # --- templates and event callback (operator workflow) -------------------------------------
    def create_snapshot_template(self, name: str, config: Mapping[str, Any], subtype: int) -> dict:
        _, m = self._sdk()
        body = self._call("create_custom_template", m.CreateCustomTemplateRequest(
            name=name, type=2, subtype=subtype, template_config=json.dumps(dict(config), separators=(",", ":"))))
        return body.get("CustomTemplate") or {}

    def get_snapshot_template(self, template_id: str) -> dict:
        _, m = self._sdk()
        body = self._call("get_custom_template", m.GetCustomTemplateRequest(template_id=template_id))
        return body.get("CustomTemplate") or {}

    def list_snapshot_templates(self, *, subtype: int | None = None, name: str | None = None,
                                page_size: int = 100) -> list[dict]:
        """Every custom snapshot template (``Type=2``), newest first, following the pages."""
        _, m = self._sdk()
        templates: list[dict] = []
        page = 1
        while True:
            body = self._call("list_custom_templates", m.ListCustomTemplatesRequest(
                type="2", subtype=str(subtype) if subtype is not None else None, name=name,
                page_number=page, page_size=page_size))
            batch = body.get("CustomTemplateList") or []
            templates.extend(batch)
            if not batch or len(templates) >= int(body.get("Total") or 0):
                return templates
            page += 1

    def update_snapshot_template(self, template_id: str, *, name: str | None = None,
                                 config: Mapping[str, Any] | None = None) -> None:
        _, m = self._sdk()
        self._call("update_custom_template", m.UpdateCustomTemplateRequest(
            template_id=template_id, name=name,
            template_config=json.dumps(dict(config), separators=(",", ":")) if config is not None else None))

    def delete_snapshot_template(self, template_id: str) -> None:
        _, m = self._sdk()
        self._call("delete_custom_template", m.DeleteCustomTemplateRequest(template_id=template_id))

    def set_event_callback(self, callback_url: str, *, auth_key: str | None = None,
                           event_types: tuple[str, ...] = ()) -> None:
        """Point the region's HTTP event callback at ``callback_url``; authentication is on exactly
        when an ``auth_key`` is given (https://www.alibabacloud.com/help/en/ims/user-guide/callback-authentication)."""
        _, m = self._sdk()
        self._call("set_event_callback", m.SetEventCallbackRequest(
            callback_type="HTTP", callback_url=callback_url, auth_switch="on" if auth_key else "off",
            auth_key=auth_key, event_type_list=",".join(event_types) or None))

    def get_event_callback(self) -> EventCallback:
        body = self._call("get_event_callback")
        return EventCallback(
            callback_type=body.get("CallbackType") or None, callback_url=body.get("CallbackURL") or None,
            callback_queue_name=body.get("CallbackQueueName") or None,
            event_types=tuple(t.strip() for t in (body.get("EventTypeList") or "").split(",") if t.strip()),
            auth_switch=body.get("AuthSwitch") or None, auth_key=body.get("AuthKey") or None)
