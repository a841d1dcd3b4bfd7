"""Snapshot parameters: TemplateConfig fields as options, shared by ``template create/update`` and the
submission overrides of ``submit`` and ``backfill`` (OverwriteParams has the same fields).
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from ..domain import parse_template_config
from .argtypes import non_negative_int, positive_int

#: The CLI's --type names: TemplateConfig.Type, and CreateCustomTemplate's Subtype.
TYPE_OF = {"normal": "Normal", "sprite": "Sprite", "webvtt": "WebVtt"}
SUBTYPE_OF = {"normal": 1, "sprite": 2, "webvtt": 3}
SUBTYPE_NAMES = {subtype: TYPE_OF[name] for name, subtype in SUBTYPE_OF.items()}

Option = tuple[str, str, Callable[[str], int] | None, str]  # option, TemplateConfig key, type, help
FRAME_OPTIONS: tuple[Option, ...] = (
    ("--frame-type", "FrameType", None, "intra (keyframes, fast) or normal (the exact frame)"),
    ("--time", "Time", non_negative_int, "start time in milliseconds"),
    ("--count", "Count", positive_int, "number of snapshots"),
    ("--interval", "Interval", positive_int, "seconds between snapshots"),
    ("--width", "Width", positive_int, "output width in pixels"),
    ("--height", "Height", positive_int, "output height in pixels"),
    ("--black-level", "BlackLevel", positive_int, "skip a black first frame: percent of black pixels (1-100)"),
    ("--pixel-black-threshold", "PixelBlackThreshold", non_negative_int, "luma under which a pixel is black"),
)
#: These go into TemplateConfig.SpriteSnapshotConfig.
SPRITE_OPTIONS: tuple[Option, ...] = (
    ("--columns", "Columns", positive_int, "sprite: tiles per row"),
    ("--lines", "Lines", positive_int, "sprite: rows per sheet"),
    ("--cell-width", "CellWidth", positive_int, "sprite: tile width"),
    ("--cell-height", "CellHeight", positive_int, "sprite: tile height"),
    ("--padding", "Padding", non_negative_int, "sprite: pixels between tiles"),
    ("--margin", "Margin", non_negative_int, "sprite: pixels around the grid"),
    ("--color", "Color", None, "sprite: background colour, #RRGGBB"),
)


def template_config(template: Mapping[str, Any]) -> dict[str, Any]:
    """The TemplateConfig of a template returned by Get/ListCustomTemplates."""
    return parse_template_config(template.get("TemplateConfig"))


def _dest(option: str) -> str:
    return "p_" + option.lstrip("-").replace("-", "_")


def add_snapshot_options(parser: argparse.ArgumentParser, *, sprite: bool) -> None:
    """The parameter options; ``sprite``: also the SpriteSnapshotConfig and WebVTT ones."""
    group = parser.add_argument_group("snapshot parameters (TemplateConfig fields)")
    for option, _, kind, help_text in FRAME_OPTIONS + (SPRITE_OPTIONS if sprite else ()):
        kwargs: dict[str, Any] = {"dest": _dest(option), "help": help_text}
        if option == "--frame-type":
            kwargs["choices"] = ("intra", "normal")
        elif kind is not None:
            kwargs["type"] = kind
        group.add_argument(option, **kwargs)
    if sprite:
        group.add_argument("--spt-frag", dest="p_spt_frag", action="store_true", default=None,
                           help="webvtt: stitch the images into sprite sheets (IsSptFrag)")


def snapshot_params(args: argparse.Namespace) -> dict[str, Any]:
    """The TemplateConfig fields given as options."""
    params: dict[str, Any] = {}
    sprite: dict[str, Any] = {}
    for options, into in ((FRAME_OPTIONS, params), (SPRITE_OPTIONS, sprite)):
        for option, key, _, _ in options:
            value = getattr(args, _dest(option), None)
            if value is not None:
                into[key] = value
    if getattr(args, "p_spt_frag", None):
        params["IsSptFrag"] = True
    if sprite:
        params["SpriteSnapshotConfig"] = sprite
    return params
