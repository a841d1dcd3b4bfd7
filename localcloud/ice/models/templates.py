"""Snapshot templates: CreateCustomTemplate and the calls that read, list, change and delete them.

Assumptions (the docs are silent; the conservative reading is taken):
* Snapshot templates only: CreateCustomTemplate accepts ``Type=2`` (Subtype 1 Normal, 2 Sprite,
  3 WebVtt); other template types answer ``InvalidParameter`` naming ``Type``. ``TemplateConfig.Type``
  must agree with ``Subtype``; without ``Subtype`` it is derived from ``TemplateConfig.Type``.
* Template descriptors: ``TypeName`` is ``SnapshotTemplate``, ``SubtypeName`` is the subtype's name,
  ``Status`` is ``Normal``. CreateCustomTemplate answers ``Subtype`` as the subtype *name* (the SDK
  types it ``str``, "the template subtype name"); Get/ListCustomTemplates answer it as the int with
  ``SubtypeName`` beside it (as the SDK types them).
* A custom template is not a default one until SetDefaultCustomTemplate marks it (one default per
  Type/Subtype); GetCustomTemplate by ``Type`` without a default answers ``ResourceNotFound`` (404).
  There are no system templates.
* ListCustomTemplates: ``Name`` and ``TemplateId`` filter by exact match; PageNumber default 1,
  PageSize default 10, range 1..100; OrderBy default ``CreationTime:Desc``.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from localcloud.ice import engine
from localcloud.ice.models.base import (
    ModelState,
    invalid_parameter,
    missing_parameter,
    one_of,
    page_bounds,
    resource_not_found,
)

SNAPSHOT_TEMPLATE_TYPE = 2
SUBTYPES = {1: "Normal", 2: "Sprite", 3: "WebVtt"}
SUBTYPE_IDS = {name: number for number, name in SUBTYPES.items()}
TEMPLATES_PAGE_SIZE_DEFAULT = 10
TEMPLATES_PAGE_SIZE_MAX = 100


@dataclass
class Template:
    template_id: str
    name: str
    subtype: int
    config: dict[str, Any]
    create_time: datetime
    modified_time: datetime
    seq: int
    is_default: bool = False
    type: int = SNAPSHOT_TEMPLATE_TYPE
    status: str = "Normal"

    @property
    def subtype_name(self) -> str:
        return SUBTYPES[self.subtype]


class TemplatesBackend(ModelState):
    """The templates of one account in one region."""

    _templates: dict[str, Template]

    def _validated_template_config(self, config: Any, subtype: int | None) -> tuple[dict[str, Any], int]:
        if not isinstance(config, dict):
            raise invalid_parameter("TemplateConfig", "must be a JSON object.")
        try:
            params = engine.SnapshotParams.from_config(config)
        except engine.ParamError as exc:  # the engine names fields "TemplateConfig.<Key>[.<SubKey>]"
            raise invalid_parameter(exc.field or "TemplateConfig", exc.message) from None
        params_type = params.to_config().get("Type")
        if params_type not in SUBTYPE_IDS:
            raise invalid_parameter("TemplateConfig.Type",
                                    f"must be one of {', '.join(SUBTYPE_IDS)}, got {params_type!r}.")
        if subtype is None:
            subtype = SUBTYPE_IDS[params_type]
        elif SUBTYPES[subtype] != params_type:
            raise invalid_parameter(
                "TemplateConfig.Type",
                f"{params_type!r} does not agree with Subtype {subtype} ({SUBTYPES[subtype]}).")
        return copy.deepcopy(config), subtype

    def create_template(self, *, name: str | None, type: int | None, subtype: int | None,
                        template_config: Any) -> Template:
        if not name:
            raise missing_parameter("Name")
        if type is None:
            raise missing_parameter("Type")
        if template_config is None:
            raise missing_parameter("TemplateConfig")
        if type != SNAPSHOT_TEMPLATE_TYPE:
            raise invalid_parameter("Type", f"the local ICE supports only snapshot templates (Type=2), got {type}.")
        if subtype is not None and subtype not in SUBTYPES:
            raise invalid_parameter("Subtype", f"must be 1 (Normal), 2 (Sprite) or 3 (WebVtt), got {subtype}.")
        config, subtype = self._validated_template_config(template_config, subtype)
        with self._lock:
            now = self._clock()
            template = Template(template_id=uuid.uuid4().hex, name=name, subtype=subtype, config=config,
                                create_time=now, modified_time=now, seq=self._next_seq())
            self._templates[template.template_id] = template
            return replace(template)

    def _template(self, template_id: str) -> Template:
        template = self._templates.get(template_id)
        if template is None:
            raise resource_not_found("Template", f"TemplateId: {template_id}")
        return template

    def get_template(self, *, template_id: str | None = None, type: int | None = None,
                     subtype: int | None = None) -> Template:
        with self._lock:
            if template_id:
                return replace(self._template(template_id))
            if type is None:
                raise missing_parameter("TemplateId")
            for template in sorted(self._templates.values(), key=lambda t: t.seq):
                if template.is_default and template.type == type and subtype in (None, template.subtype):
                    return replace(template)
            raise resource_not_found("Template", f"No default template for Type {type}"
                                     + (f" Subtype {subtype}." if subtype is not None else "."))

    def list_templates(self, *, type: int | None, subtype: int | None = None, name: str | None = None,
                       template_id: str | None = None, order_by: str | None = None,
                       page_number: int | None = None, page_size: int | None = None) -> tuple[list[Template], int]:
        if type is None:
            raise missing_parameter("Type")
        order_by = one_of("OrderBy", order_by, ("CreationTime:Desc", "CreationTime:Asc"))
        start, size = page_bounds(page_number, page_size, default_size=TEMPLATES_PAGE_SIZE_DEFAULT,
                                   max_size=TEMPLATES_PAGE_SIZE_MAX)
        with self._lock:
            matches = [t for t in self._templates.values()
                       if t.type == type
                       and (subtype is None or t.subtype == subtype)
                       and (not name or t.name == name)
                       and (not template_id or t.template_id == template_id)]
            matches.sort(key=lambda t: t.seq, reverse=order_by.endswith("Desc"))
            return [replace(t) for t in matches[start:start + size]], len(matches)

    def update_template(self, *, template_id: str | None, name: str | None = None,
                        template_config: Any = None) -> Template:
        if not template_id:
            raise missing_parameter("TemplateId")
        with self._lock:
            template = self._template(template_id)
            config = None
            if template_config is not None:
                config, _ = self._validated_template_config(template_config, template.subtype)
            if name:
                template.name = name
            if config is not None:
                template.config = config
            template.modified_time = self._clock()
            return replace(template)

    def delete_template(self, *, template_id: str | None) -> None:
        if not template_id:
            raise missing_parameter("TemplateId")
        with self._lock:
            self._template(template_id)
            del self._templates[template_id]

    def set_default_template(self, *, template_id: str | None) -> None:
        if not template_id:
            raise missing_parameter("TemplateId")
        with self._lock:
            chosen = self._template(template_id)
            for template in self._templates.values():
                if template.type == chosen.type and template.subtype == chosen.subtype:
                    template.is_default = template is chosen
            chosen.modified_time = self._clock()


    def _templates_state(self) -> list[dict[str, Any]]:
        """The templates as JSON-able records (see :meth:`IceModel.state`)."""
        return [{**asdict(t), "create_time": t.create_time.isoformat(), "modified_time": t.modified_time.isoformat()}
                for t in sorted(self._templates.values(), key=lambda t: t.seq)]

    def _restore_templates(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            template = Template(**{**record, "create_time": datetime.fromisoformat(record["create_time"]),
                                   "modified_time": datetime.fromisoformat(record["modified_time"])})
            self._templates[template.template_id] = template
