"""The wire layer of the local ICE: RPC-style requests in, JSON out, as the real endpoint does it.

What arrives (alibabacloud_ice20201109 6.20.2 over tea-openapi 0.4.6, see ice-fc-reference.md
section 1): ``POST /`` with every parameter in the query string (nested objects as compact JSON
strings), the action in ``x-acs-action``, the version in ``x-acs-version`` and a V3
``ACS3-HMAC-SHA256`` signature in ``Authorization``. This module checks the signature exactly as
``alibabacloud_tea_openapi.utils.Utils.get_authorization`` computes it, decodes the parameters,
calls :class:`~localcloud.ice.models.IceModel` and writes the body the SDK's response models read
(``resp.body.to_map()`` round-trips). A request without ``Authorization`` that carries a
``Signature`` parameter (query or form body) is checked as V2 (HMAC-SHA1, ``signature_v2.py``),
as aliyun-python-sdk-core, @alicloud/pop-core and tea-openapi's ``signature_algorithm='v2'`` send
it; form-body parameters count as request parameters. Errors are ``{"RequestId","HostId","Code","Message",
"Recommend"}`` with the HTTP status and an ``x-acs-request-id`` header.

Assumptions (gateway behaviour the docs do not pin down; the conservative reading is taken):
* Authentication failures use the public gateway codes: no/malformed ``Authorization``, an
  unsupported algorithm, or an ``x-acs-*``/``host`` header left out of ``SignedHeaders`` ->
  ``IncompleteSignature`` (400); unknown AccessKey id -> ``InvalidAccessKeyId.NotFound`` (404);
  wrong secret, altered query/header or a body that does not hash to ``x-acs-content-sha256`` ->
  ``SignatureDoesNotMatch`` (400, the message carries the server's string to sign, never a secret).
  ``x-acs-date`` missing or not ``YYYY-MM-DDTHH:MM:SSZ`` -> ``InvalidTimeStamp.Format`` (400); more
  than 15 minutes off the server clock -> ``InvalidTimeStamp.Expired`` (400); a nonce seen in the
  last 15 minutes -> ``SignatureNonceUsed`` (400). Keys are looked up in the local cloud's
  :class:`~localcloud.keyring.Keyring`; an STS token (``x-acs-security-token``, signed) must be the
  one issued with its STS AccessKeyId: one never issued -> ``InvalidSecurityToken.Malformed`` (400),
  one issued with another key or sent with the permanent key -> ``InvalidSecurityToken.MismatchWithAccessKey``
  (400), an expired one -> ``InvalidSecurityToken.Expired`` (400); an STS AccessKeyId without a
  token is unknown to the gateway -> ``InvalidAccessKeyId.NotFound`` (404). ``x-acs-accesskey-id``
  (if sent) must match the credential. V2 requests get the same checks through the same key lookup,
  on the ``Timestamp`` and ``SignatureNonce`` parameters (and ``SecurityToken``); a
  missing common parameter -> ``MissingParameter`` naming it; ``SignatureMethod`` other than
  HMAC-SHA1 or ``SignatureVersion`` other than 1.0 -> ``IncompleteSignature``. ``Format`` is
  ignored: answers are always JSON.
* Unknown or missing action -> ``InvalidAction`` (403), as the gateway code list in the reference
  gives it; a version other than 2020-11-09 -> ``InvalidVersion`` (400); methods other than
  GET/POST -> ``UnsupportedHTTPMethod`` (403).
* Integers that do not parse answer ``InvalidParameter`` naming the field; so does a JSON-string
  parameter that is not valid JSON, holds a number of more than 4300 digits (Python's int limit)
  or nests deeper than Python's recursion limit.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote_plus

from localcloud import keyring as keys
from localcloud.ice import models, signature_v2
from localcloud.ice.media_responses import MediaResponses
from localcloud.ice.models import IceError, IceModel, format_time, invalid_parameter
from localcloud.ice.models.base import missing_parameter

API_VERSION = "2020-11-09"
SIGN_ALGORITHM = "ACS3-HMAC-SHA256"
MAX_CLOCK_SKEW_S = 15 * 60
_AUTH_RE = re.compile(r"^(?P<alg>\S+)\s+Credential=(?P<ak>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]*),"
                      r"\s*Signature=(?P<sig>[0-9a-fA-F]+)$")


def signature_error(message: str) -> IceError:
    return IceError("SignatureDoesNotMatch", message, 400)


def incomplete_signature(detail: str) -> IceError:
    return IceError("IncompleteSignature", f"The request signature does not conform to Aliyun standards. {detail}",
                    400)


class Headers:
    """Case-insensitive multi-valued request headers."""

    def __init__(self, items: Iterable[tuple[str, str]]):
        self._values: dict[str, list[str]] = {}
        for name, value in items:
            self._values.setdefault(name.lower(), []).append(value)

    def get(self, name: str) -> str | None:
        values = self._values.get(name.lower())
        return values[-1] if values else None

    def all(self, name: str) -> list[str]:
        return self._values.get(name.lower(), [])

    def names(self) -> list[str]:
        return list(self._values)


def parse_query(raw_query: str) -> dict[str, str]:
    """Decode a query string the way the SDK encoded it (``urlencode``: ``+`` for space)."""
    params: dict[str, str] = {}
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        key, _, value = part.partition("=")
        params[unquote_plus(key)] = unquote_plus(value)
    return params


def parse_form(headers: Headers, body: bytes) -> dict[str, str]:
    """The parameters of a form body (V2 clients POST them so; the SDK's V3 calls send none)."""
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded" or not body:
        return {}
    return parse_query(body.decode("utf-8", errors="replace"))


def canonical_query(params: dict[str, str]) -> str:
    return "&".join(f"{key}={quote(params[key], safe='~', encoding='utf-8')}" for key in sorted(params))


class Authenticator:
    """Verifies ACS3-HMAC-SHA256 (V3) request signatures with the keys of the local cloud's keyring."""

    def __init__(self, keyring: keys.Keyring, *, max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
                 clock: Callable[[], float] = time.time):
        self._keyring = keyring
        self._max_skew = max_clock_skew_s
        self._clock = clock
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._nonces.clear()

    def verify(self, method: str, path: str, params: dict[str, str], headers: Headers, body: bytes,
               form: dict[str, str] | None = None) -> None:
        """Check a V3 signature (``Authorization`` header) or, without one, a V2 signature (the
        ``Signature`` parameter in the query or the form body ``form``)."""
        signed_params = {**(form or {}), **params}
        if headers.get("authorization") is None and signature_v2.is_v2(signed_params):
            self._verify_v2(method, signed_params)
            return
        match = _authorization(headers)
        signed = _signed_header_names(match, headers)
        secret = self._secret_for(match["ak"], headers.get("x-acs-security-token"))
        self._check_date(headers.get("x-acs-date"), "x-acs-date")
        payload_hash = headers.get("x-acs-content-sha256") or ""
        if payload_hash != hashlib.sha256(body).hexdigest():
            raise signature_error('The request body does not hash to the "x-acs-content-sha256" header.')
        canonical_headers = "".join(
            f"{name}:{','.join(sorted(v.strip() for v in headers.all(name)))}\n" for name in signed)
        canonical_request = "\n".join([method, path or "/", canonical_query(params), canonical_headers,
                                       ";".join(signed), payload_hash])
        string_to_sign = f"{SIGN_ALGORITHM}\n{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}"
        expected = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match["sig"].lower()):
            raise signature_error("Specified signature does not match our calculation. "
                                  f"server string to sign is:{string_to_sign}")
        self._check_nonce(headers.get("x-acs-signature-nonce"), "x-acs-signature-nonce")

    def _verify_v2(self, method: str, params: dict[str, str]) -> None:
        request = signature_v2.signing_parameters(params)
        secret = self._secret_for(request.access_key_id, request.security_token)
        self._check_date(request.timestamp, "Timestamp")
        string_to_sign = signature_v2.string_to_sign(method, params)
        if not hmac.compare_digest(signature_v2.sign(secret, string_to_sign), request.signature):
            raise signature_error("Specified signature does not match our calculation. "
                                  f"server string to sign is:{string_to_sign}")
        self._check_nonce(request.nonce, "SignatureNonce")

    def _secret_for(self, access_key_id: str, security_token: str | None) -> str:
        """The secret of this AccessKeyId (and STS token), or the gateway's error for the pair."""
        try:
            return self._keyring.secret_for(access_key_id, security_token)
        except keys.SecurityTokenExpired:
            raise IceError("InvalidSecurityToken.Expired", "Specified SecurityToken is expired.", 400) from None
        except keys.SecurityTokenInvalid as err:
            if not err.issued_to_another_key:
                raise IceError("InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed.", 400) from None
            raise _token_mismatch() from None
        except keys.SecurityTokenNotExpected:
            raise _token_mismatch() from None
        except keys.KeyringError:  # unknown, or an STS key without its token
            raise IceError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404) from None

    def _check_date(self, value: str | None, name: str) -> None:
        try:
            sent = datetime.strptime(value or "", models.TIME_FORMAT).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise IceError("InvalidTimeStamp.Format",
                           f'Specified time stamp or date value is not well formatted: "{name}" must be '
                           "UTC YYYY-MM-DDTHH:MM:SSZ.", 400) from None
        if abs(self._clock() - sent) > self._max_skew:
            raise IceError("InvalidTimeStamp.Expired",
                           f'Specified time stamp or date value is expired: "{name}" {value} is more than '
                           f"{int(self._max_skew)} s off the server clock.", 400)

    def _check_nonce(self, nonce: str | None, name: str) -> None:
        if not nonce:
            raise missing_parameter(name)
        now = self._clock()
        with self._lock:
            for old in [n for n, seen in self._nonces.items() if now - seen > self._max_skew]:
                del self._nonces[old]
            if nonce in self._nonces:
                raise IceError("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
            self._nonces[nonce] = now


def _token_mismatch() -> IceError:
    return IceError("InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.", 400)


def _authorization(headers: Headers) -> re.Match[str]:
    """The parts of a V3 Authorization header: alg, ak (the AccessKeyId), signed (header names), sig."""
    authorization = headers.get("authorization")
    if not authorization:
        raise incomplete_signature('Neither an "Authorization" header (V3) nor a "Signature" parameter (V2) is sent.')
    match = _AUTH_RE.match(authorization.strip())
    if not match:
        raise incomplete_signature('The "Authorization" header is malformed; expected '
                                   f'"{SIGN_ALGORITHM} Credential=...,SignedHeaders=...,Signature=...".')
    if match["alg"] != SIGN_ALGORITHM:
        raise incomplete_signature(f'Unsupported signature algorithm "{match["alg"]}"; use {SIGN_ALGORITHM}.')
    return match


def _signed_header_names(match: re.Match[str], headers: Headers) -> list[str]:
    """SignedHeaders, checked: lower case, sorted, unique, and covering host and every x-acs-* header."""
    signed = match["signed"].split(";") if match["signed"] else []
    if signed != sorted(set(signed)) or any(name != name.lower() for name in signed):
        raise incomplete_signature("SignedHeaders must be lower-case, sorted and unique.")
    for name in headers.names():
        if (name == "host" or name.startswith("x-acs-")) and name not in signed:
            raise incomplete_signature(f'The header "{name}" must be signed.')
    sent_ak = headers.get("x-acs-accesskey-id")
    if sent_ak is not None and sent_ak != match["ak"]:
        raise incomplete_signature('"x-acs-accesskey-id" does not match the Credential of the signature.')
    return signed


class Params:
    """Typed access to one request's decoded query parameters; errors name the parameter."""

    def __init__(self, values: dict[str, str]):
        self._values = values

    def text(self, name: str) -> str | None:
        value = self._values.get(name)
        return value if value != "" else None

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise invalid_parameter(name, f"must be an integer, got {value!r}.") from None

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise invalid_parameter(name, f"must be true or false, got {value!r}.")
        return value.lower() == "true"

    def json(self, name: str) -> Any:
        value = self.text(name)
        if value is None:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise invalid_parameter(name, f"must be a JSON string ({exc.msg} at position {exc.pos}).") from None
        except ValueError:  # json.loads refuses integers of more than 4300 digits (sys.get_int_max_str_digits)
            raise invalid_parameter(name, "must be a JSON string whose numbers have at most 4300 digits.") from None
        except RecursionError:
            raise invalid_parameter(name, "must be a JSON string nested less deeply.") from None

    def time(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return datetime.strptime(value, models.TIME_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            raise invalid_parameter(name, f"must be a UTC time YYYY-MM-DDTHH:MM:SSZ, got {value!r}.") from None


def _oss_file(location: models.OssLocation) -> dict[str, Any]:
    return {"Type": location.type, "Media": location.media,
            "OssFile": {"Bucket": location.bucket, "Location": location.location, "Object": location.object}}


def _job_wire(job: models.SnapshotJob, *, detail: bool) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "JobId": job.job_id, "Name": job.name, "Status": job.status, "Type": job.type,
        "TriggerSource": job.trigger_source, "Async": job.async_, "Count": job.count,
        "TemplateId": job.template_id, "PipelineId": job.pipeline_id,
        "CreateTime": format_time(job.create_time), "SubmitTime": format_time(job.submit_time),
        "FinishTime": format_time(job.finish_time), "ModifiedTime": format_time(job.modified_time),
    }
    if detail:
        wire.update(Input=_oss_file(job.input), Output=_oss_file(job.output), UserData=job.user_data,
                    Code=job.code, Message=job.message,
                    TemplateConfig=json.dumps(job.template_config, separators=(",", ":"), ensure_ascii=False))
    else:
        wire.update(Input={"Type": job.input.type, "Media": job.input.media},
                    Output={"Type": job.output.type, "Media": job.output.media})
    return {k: v for k, v in wire.items() if v is not None}


def _template_wire(template: models.Template, *, subtype_as_name: bool = False) -> dict[str, Any]:
    wire = {
        "TemplateId": template.template_id, "TemplateName": template.name, "Type": template.type,
        "TypeName": "SnapshotTemplate", "TemplateConfig": json.dumps(template.config, separators=(",", ":"),
                                                                     ensure_ascii=False),
        "Status": template.status, "IsDefault": template.is_default,
        "CreateTime": format_time(template.create_time), "ModifiedTime": format_time(template.modified_time),
    }
    if subtype_as_name:
        wire["Subtype"] = template.subtype_name
    else:
        wire.update(Subtype=template.subtype, SubtypeName=template.subtype_name)
    return wire


class IceResponses:
    """Turns one HTTP request into (status, headers, body). ``gate(action)`` injects faults before
    the action runs, ``settle(action)`` after it ran (it may delay the answer or raise to lose it)."""

    def __init__(self, model: IceModel, authenticator: Authenticator, *,
                 sign_url: Callable[[str, str, int], str],
                 on_job_submitted: Callable[[models.SnapshotJob], object],
                 gate: Callable[[str], None] = lambda action: None,
                 settle: Callable[[str], None] = lambda action: None,
                 host_id: str = "ice.cn-hangzhou.aliyuncs.com"):
        self.model = model
        self.auth = authenticator
        self._sign_url = sign_url
        self._on_job_submitted = on_job_submitted
        self._gate = gate
        self._settle = settle
        self._host_id = host_id
        self._actions: dict[str, Callable[[Params], dict[str, Any]]] = {
            "CreateCustomTemplate": self.create_custom_template,
            "GetCustomTemplate": self.get_custom_template,
            "ListCustomTemplates": self.list_custom_templates,
            "UpdateCustomTemplate": self.update_custom_template,
            "DeleteCustomTemplate": self.delete_custom_template,
            "SetDefaultCustomTemplate": self.set_default_custom_template,
            "SubmitSnapshotJob": self.submit_snapshot_job,
            "GetSnapshotJob": self.get_snapshot_job,
            "ListSnapshotJobs": self.list_snapshot_jobs,
            "GetSnapshotUrls": self.get_snapshot_urls,
            "SetEventCallback": self.set_event_callback,
            "GetEventCallback": self.get_event_callback,
            **MediaResponses(model).actions(),
        }

    def handle(self, method: str, path: str, raw_query: str, headers: Headers,
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        request_id = str(uuid.uuid4()).upper()
        performed: str | None = None  # the action, once it has run
        try:
            if method not in ("GET", "POST"):
                raise IceError("UnsupportedHTTPMethod", f"Specified http method {method} is not supported.", 403)
            query = parse_query(raw_query)
            form = parse_form(headers, body)
            self.auth.verify(method, path, query, headers, body, form)
            params = {**form, **query}
            action = headers.get("x-acs-action") or params.get("Action")
            handler = self._actions.get(action or "")
            if action is None or handler is None:
                raise IceError("InvalidAction", f'Specified api "{action}" is not found, please check your url and '
                                                "method.", 403)
            version = headers.get("x-acs-version") or params.get("Version")
            if version != API_VERSION:
                raise IceError("InvalidVersion", f'Specified parameter Version "{version}" is not valid; '
                                                 f"use {API_VERSION}.", 400)
            self._gate(action)
            performed = action
            result = handler(Params(params))
            status, payload = 200, {"RequestId": request_id, **result}
        except IceError as exc:
            status, payload = exc.status, {"RequestId": request_id, "HostId": self._host_id, "Code": exc.code,
                                           "Message": exc.message, "Recommend": exc.recommend}
        if performed:
            self._settle(performed)
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return status, {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": request_id}, data

    # ---- templates -------------------------------------------------------------------------

    def create_custom_template(self, p: Params) -> dict[str, Any]:
        template = self.model.create_template(name=p.text("Name"), type=p.integer("Type"), subtype=p.integer("Subtype"),
                                              template_config=p.json("TemplateConfig"))
        return {"CustomTemplate": _template_wire(template, subtype_as_name=True)}

    def get_custom_template(self, p: Params) -> dict[str, Any]:
        template = self.model.get_template(template_id=p.text("TemplateId"), type=p.integer("Type"),
                                           subtype=p.integer("Subtype"))
        return {"CustomTemplate": _template_wire(template)}

    def list_custom_templates(self, p: Params) -> dict[str, Any]:
        templates, total = self.model.list_templates(
            type=p.integer("Type"), subtype=p.integer("Subtype"), name=p.text("Name"), template_id=p.text("TemplateId"),
            order_by=p.text("OrderBy"), page_number=p.integer("PageNumber"), page_size=p.integer("PageSize"))
        return {"CustomTemplateList": [_template_wire(t) for t in templates], "Total": total}

    def update_custom_template(self, p: Params) -> dict[str, Any]:
        self.model.update_template(template_id=p.text("TemplateId"), name=p.text("Name"),
                                   template_config=p.json("TemplateConfig"))
        return {"Success": True}

    def delete_custom_template(self, p: Params) -> dict[str, Any]:
        self.model.delete_template(template_id=p.text("TemplateId"))
        return {"Success": True}

    def set_default_custom_template(self, p: Params) -> dict[str, Any]:
        self.model.set_default_template(template_id=p.text("TemplateId"))
        return {"Success": True}

    # ---- snapshot jobs ---------------------------------------------------------------------

    def submit_snapshot_job(self, p: Params) -> dict[str, Any]:
        job = self.model.submit_snapshot_job(
            input=p.json("Input"), output=p.json("Output"), template_config=p.json("TemplateConfig"),
            name=p.text("Name"), user_data=p.text("UserData"), schedule_config=p.json("ScheduleConfig"))
        self._on_job_submitted(job)
        return {"JobId": job.job_id}

    def get_snapshot_job(self, p: Params) -> dict[str, Any]:
        return {"SnapshotJob": _job_wire(self.model.get_job(p.text("JobId")), detail=True)}

    def list_snapshot_jobs(self, p: Params) -> dict[str, Any]:
        jobs, token = self.model.list_jobs(
            job_id=p.text("JobId"), status=p.text("Status"), order_by=p.text("OrderBy"),
            page_size=p.integer("PageSize"),
            next_page_token=p.text("NextPageToken"), start_of_create_time=p.time("StartOfCreateTime"),
            end_of_create_time=p.time("EndOfCreateTime"))
        result: dict[str, Any] = {"Jobs": [_job_wire(j, detail=False) for j in jobs]}
        if token:
            result["NextPageToken"] = token
        return result

    def get_snapshot_urls(self, p: Params) -> dict[str, Any]:
        page = self.model.snapshot_urls(job_id=p.text("JobId"), page_number=p.integer("PageNumber"),
                                        page_size=p.integer("PageSize"), order_by=p.text("OrderBy"),
                                        timeout=p.integer("Timeout"))
        urls = [self._sign_url(page.bucket, key, page.timeout_s) for key in page.keys]
        result: dict[str, Any] = {"Total": page.total, "SnapshotUrls": urls}
        if page.vtt_key:
            result["WebVTTUrl"] = self._sign_url(page.bucket, page.vtt_key, page.timeout_s)
        return result

    # ---- event callback --------------------------------------------------------------------

    def set_event_callback(self, p: Params) -> dict[str, Any]:
        self.model.set_event_callback(
            callback_type=p.text("CallbackType"), callback_url=p.text("CallbackURL"),
            callback_queue_name=p.text("CallbackQueueName"), event_type_list=p.text("EventTypeList"),
            auth_switch=p.text("AuthSwitch"), auth_key=p.text("AuthKey"))
        return {"Success": True}

    def get_event_callback(self, p: Params) -> dict[str, Any]:
        setting = self.model.get_event_callback()
        wire = {"CallbackType": setting.callback_type, "CallbackURL": setting.callback_url,
                "CallbackQueueName": setting.callback_queue_name, "EventTypeList": setting.event_type_list,
                "AuthSwitch": setting.auth_switch if setting.callback_type else None, "AuthKey": setting.auth_key}
        return {k: v for k, v in wire.items() if v is not None}
