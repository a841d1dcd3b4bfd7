"""``snapshots template create|list|get|update|delete``: snapshot templates (CustomTemplate, Type=2)."""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .context import PROG, Context
from .errors import EXIT_OK, UsageError
from .output import Block, Fields, Table, compact
from .params import SUBTYPE_NAMES, SUBTYPE_OF, TYPE_OF, snapshot_params, template_config

#: What ``template create`` makes without parameter options.
DEFAULT_CONFIG = {"FrameType": "intra", "Time": 0, "Count": 5}


def _template_type(template: Mapping[str, Any]) -> str:
    subtype = template.get("SubtypeName") or template.get("Subtype")
    if isinstance(subtype, int):
        return SUBTYPE_NAMES.get(subtype, str(subtype))
    return str(subtype or template_config(template).get("Type") or "")


def _template_doc(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template as --json prints it: its TemplateConfig an object, not a JSON string."""
    return {**template, "TemplateConfig": template_config(template)}


def _template_fields(template: Mapping[str, Any]) -> Fields:
    return Fields([("Template", template.get("TemplateId")), ("Name", template.get("TemplateName")),
                   ("Type", _template_type(template)), ("Default", "yes" if template.get("IsDefault") else "no"),
                   ("Status", template.get("Status")), ("Created", template.get("CreateTime")),
                   ("Modified", template.get("ModifiedTime")), ("Config", compact(template_config(template)))])


def _no_config_with_params(config: Any, params: Mapping[str, Any]) -> None:
    if config is not None and params:
        raise UsageError("--config cannot be combined with parameter options such as --count")


def cmd_template_create(ctx: Context) -> int:
    a = ctx.args
    params = snapshot_params(a)
    _no_config_with_params(a.config, params)
    type_name = TYPE_OF[a.type]
    if a.config is not None:
        config = dict(a.config)
        if config.setdefault("Type", type_name) != type_name:
            raise UsageError(f"--config has Type {config['Type']!r} but --type is {a.type}")
    else:
        config = {"Type": type_name, **DEFAULT_CONFIG, **params}
    name = a.name or f"{PROG}-{a.type}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    template = ctx.ice.create_snapshot_template(name, config, SUBTYPE_OF[a.type])
    ctx.out.emit(_template_doc(template), lambda: [f"created template {template.get('TemplateId')}",
                                                   _template_fields(template)])
    return EXIT_OK


def cmd_template_list(ctx: Context) -> int:
    templates = ctx.ice.list_snapshot_templates(subtype=SUBTYPE_OF[ctx.args.type] if ctx.args.type else None)

    def human() -> list[Block]:
        if not templates:
            return ["no snapshot templates"]
        return [Table(("TEMPLATE", "NAME", "TYPE", "DEFAULT", "CREATED", "CONFIG"),
                      [(t.get("TemplateId"), t.get("TemplateName"), _template_type(t),
                        "yes" if t.get("IsDefault") else "", t.get("CreateTime"), compact(template_config(t)))
                       for t in templates])]

    ctx.out.emit([_template_doc(t) for t in templates], human)
    return EXIT_OK


def cmd_template_get(ctx: Context) -> int:
    template = ctx.ice.get_snapshot_template(ctx.args.template_id)
    ctx.out.emit(_template_doc(template), lambda: [_template_fields(template)])
    return EXIT_OK


def _merged_config(current: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` over the current config, one level into SpriteSnapshotConfig."""
    params = dict(params)
    sprite = {**(current.get("SpriteSnapshotConfig") or {}), **params.pop("SpriteSnapshotConfig", {})}
    merged = {**current, **params}
    if sprite:
        merged["SpriteSnapshotConfig"] = sprite
    return merged


def cmd_template_update(ctx: Context) -> int:
    a = ctx.args
    params = snapshot_params(a)
    _no_config_with_params(a.config, params)
    if a.config is None and not params and not a.name:
        raise UsageError("nothing to update: give --name, --config or parameter options such as --count")
    config = a.config
    if params:
        config = _merged_config(template_config(ctx.ice.get_snapshot_template(a.template_id)), params)
    ctx.ice.update_snapshot_template(a.template_id, name=a.name, config=config)
    template = ctx.ice.get_snapshot_template(a.template_id)
    ctx.out.emit(_template_doc(template), lambda: [f"updated template {a.template_id}", _template_fields(template)])
    return EXIT_OK


def cmd_template_delete(ctx: Context) -> int:
    ctx.ice.delete_snapshot_template(ctx.args.template_id)
    ctx.out.emit({"TemplateId": ctx.args.template_id, "deleted": True},
                 lambda: [f"deleted template {ctx.args.template_id}"])
    return EXIT_OK
