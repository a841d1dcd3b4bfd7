"""The parameters of a snapshot job: an ICE TemplateConfig validated into a value, and the Output rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_COUNT = 10_000

_TYPES = ("Normal", "Sprite", "WebVtt")
_FRAME_TYPES = ("intra", "normal")
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
_PREFIX = "TemplateConfig"
_SPRITE_PREFIX = f"{_PREFIX}.SpriteSnapshotConfig"


class ParamError(ValueError):
    """A bad TemplateConfig / OverwriteParams / Output value; the API answers InvalidParameter."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- parameters -----------------------------------------------------------------------------------


def _int(config: dict, key: str, prefix: str, lo: int, hi: int | None = None) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    field = f"{prefix}.{key}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(field, f"must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ParamError(field, f"must be {bounds}, got {value}")
    return value


def _choice(config: dict, key: str, prefix: str, choices: tuple[str, ...]) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if value not in choices:
        raise ParamError(f"{prefix}.{key}", f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _reject_unknown(config: Any, known: tuple[str, ...], prefix: str) -> None:
    if not isinstance(config, dict):
        raise ParamError(prefix, f"must be a JSON object, got {type(config).__name__}")
    for key in config:
        if key not in known:
            raise ParamError(f"{prefix}.{key}", f"unknown field; known fields are {', '.join(known)}")


@dataclass(frozen=True)
class SpriteConfig:
    """SpriteSnapshotConfig. None means "not set": the engine applies the defaults (see Assumptions)."""

    cell_width: int | None = None
    cell_height: int | None = None
    padding: int | None = None
    margin: int | None = None
    columns: int | None = None
    lines: int | None = None
    color: str | None = None

    _KEYS = ("CellWidth", "CellHeight", "Padding", "Margin", "Columns", "Lines", "Color")

    @classmethod
    def from_config(cls, config: Any) -> SpriteConfig:
        _reject_unknown(config, cls._KEYS, _SPRITE_PREFIX)
        color = config.get("Color")
        if color is not None and (not isinstance(color, str) or not _COLOR.fullmatch(color)):
            raise ParamError(f"{_SPRITE_PREFIX}.Color", f"must be a colour like #000000, got {color!r}")
        return cls(
            cell_width=_int(config, "CellWidth", _SPRITE_PREFIX, 8, 4096),
            cell_height=_int(config, "CellHeight", _SPRITE_PREFIX, 8, 4096),
            padding=_int(config, "Padding", _SPRITE_PREFIX, 0, 1024),
            margin=_int(config, "Margin", _SPRITE_PREFIX, 0, 1024),
            columns=_int(config, "Columns", _SPRITE_PREFIX, 1, 100),
            lines=_int(config, "Lines", _SPRITE_PREFIX, 1, 100),
            color=color,
        )

    def to_config(self) -> dict:
        values = (self.cell_width, self.cell_height, self.padding, self.margin, self.columns, self.lines, self.color)
        return {key: value for key, value in zip(self._KEYS, values, strict=True) if value is not None}


@dataclass(frozen=True)
class SnapshotParams:
    """The merged TemplateConfig of a snapshot job (template + OverwriteParams), with ICE's meaning."""

    type: str
    frame_type: str = "intra"
    time_ms: int = 0
    count: int | None = None
    interval_s: int | None = None
    width: int | None = None
    height: int | None = None
    black_level: int | None = None
    pixel_black_threshold: int | None = None
    is_spt_frag: bool = False
    sprite: SpriteConfig | None = None

    _KEYS = (
        "Type", "FrameType", "Time", "Count", "Interval", "Width", "Height",
        "BlackLevel", "PixelBlackThreshold", "IsSptFrag", "SpriteSnapshotConfig",
    )

    @classmethod
    def from_config(cls, config: dict) -> SnapshotParams:
        """Validate ICE TemplateConfig JSON keys; raise ParamError naming the first bad field."""
        _reject_unknown(config, cls._KEYS, _PREFIX)
        type_ = _choice(config, "Type", _PREFIX, _TYPES)
        if type_ is None:
            raise ParamError(f"{_PREFIX}.Type", f"is required: one of {', '.join(_TYPES)}")
        is_spt_frag = config.get("IsSptFrag", False)
        if not isinstance(is_spt_frag, bool):
            raise ParamError(f"{_PREFIX}.IsSptFrag", f"must be true or false, got {is_spt_frag!r}")
        sprite_config = config.get("SpriteSnapshotConfig")
        sprite = SpriteConfig.from_config(sprite_config) if sprite_config is not None else None
        if type_ == "Sprite":
            if sprite is None:
                raise ParamError(_SPRITE_PREFIX, "is required for Type Sprite (Columns and Lines at least)")
            for key, value in (("Columns", sprite.columns), ("Lines", sprite.lines)):
                if value is None:
                    raise ParamError(f"{_SPRITE_PREFIX}.{key}", "is required for Type Sprite")
        return cls(
            type=type_,
            frame_type=_choice(config, "FrameType", _PREFIX, _FRAME_TYPES) or "intra",
            time_ms=_int(config, "Time", _PREFIX, 0) or 0,
            count=_int(config, "Count", _PREFIX, 1, MAX_COUNT),
            interval_s=_int(config, "Interval", _PREFIX, 1),
            width=_int(config, "Width", _PREFIX, 8, 4096),
            height=_int(config, "Height", _PREFIX, 8, 4096),
            black_level=_int(config, "BlackLevel", _PREFIX, 1, 100),
            pixel_black_threshold=_int(config, "PixelBlackThreshold", _PREFIX, 0, 255),
            is_spt_frag=is_spt_frag,
            sprite=sprite,
        )

    def to_config(self) -> dict:
        """Back to ICE JSON keys: Type, FrameType and Time always, the rest only when set."""
        config: dict[str, Any] = {"Type": self.type, "FrameType": self.frame_type, "Time": self.time_ms}
        optional = {
            "Count": self.count,
            "Interval": self.interval_s,
            "Width": self.width,
            "Height": self.height,
            "BlackLevel": self.black_level,
            "PixelBlackThreshold": self.pixel_black_threshold,
            "IsSptFrag": True if self.is_spt_frag else None,
            "SpriteSnapshotConfig": self.sprite.to_config() if self.sprite is not None else None,
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        return config

    @property
    def black_filter_on(self) -> bool:
        return self.black_level is not None or self.pixel_black_threshold is not None


def validate_output(params: SnapshotParams, output_object: str) -> None:
    """Check the output object name against ICE's rules; raise ParamError("Output", ...)."""
    if not output_object or output_object.endswith("/"):
        raise ParamError("Output", f"needs an object name, got {output_object!r}")
    if params.type == "Normal":
        if ((params.count or 1) > 1 or params.interval_s is not None) and "{Count}" not in output_object:
            raise ParamError("Output", "several snapshots (Count > 1 or Interval) need {Count} in the object name")
    elif params.type == "Sprite":
        if "{TileCount}" not in output_object:
            raise ParamError("Output", "Sprite snapshots need {TileCount} in the object name")
    elif params.type == "WebVtt":
        if not output_object.endswith(".vtt"):
            raise ParamError("Output", "WebVtt output must end in .vtt")
