"""What the console shows of an index: each profile's result, its pictures as signed URLs, its storyboard.

One accessor reads both index shapes (:func:`profile_results`): ``snapshot-index/1`` is one result
(the profile ``default``), ``snapshot-index/2`` has one per profile under ``profiles.<name>``. The
storyboard the player shows comes from the result's JSON storyboard (``player.json``, see
:mod:`..storyboards`) and is served again as a VTT whose image URLs the console signed, so it works
on a private bucket without ``PUBLIC_BASE_URL``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..domain import DEFAULT_PROFILE
from ..index import profile_result
from ..storyboards import Storyboard, Tile, player_vtt

#: ``sign(bucket, key)``: a short-lived GET URL of an object.
Sign = Callable[[str, str], str]


def profile_results(index: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """Each profile's result in ``index`` (name, result), by name: ``snapshot-index/2``'s ``profiles``,
    or a ``snapshot-index/1`` document as the one result of the profile ``default``
    (:func:`..index.profile_result` decides what each name shows)."""
    profiles = index.get("profiles") if isinstance(index, Mapping) else None
    names = sorted(profiles) if isinstance(profiles, Mapping) else [DEFAULT_PROFILE]
    return [(name, result) for name in names if (result := profile_result(index, name)) is not None]


def result_view(name: str, result: Mapping[str, Any], sign: Sign, storyboard_url: str | None) -> dict[str, Any]:
    """One profile's result as the video page draws it: the job, its pictures (signed, with their
    times), the sprite grid, and where the player reads its storyboard (None: the result has none)."""
    job = result.get("job") or {}
    pictures = [{"index": s.get("index"), "key": s["key"], "time": s.get("time"), "url": sign(s["bucket"], s["key"])}
                for s in sorted(result.get("snapshots") or [], key=lambda s: s.get("index") or 0)]
    sprite = result.get("sprite")
    return {"profile": name, "job": job, "type": job.get("type"),
            "stills": [] if sprite else pictures, "sheets": pictures if sprite else [],
            "sprite": sprite, "storyboard_vtt": storyboard_url if _storyboard_key(result) else None}


def _storyboard_key(result: Mapping[str, Any]) -> str | None:
    key = ((result.get("player") or {}).get("json") or {}).get("key")
    return key if isinstance(key, str) and key else None


def storyboard_vtt(result: Mapping[str, Any], read_json: Callable[[str], Any], sign: Callable[[str], str]) -> \
        bytes | None:
    """The result's storyboard as a player VTT whose images are ``sign(key)`` URLs; None when the
    result has no JSON storyboard (stills) or it cannot be read."""
    key = _storyboard_key(result)
    doc = read_json(key) if key else None
    if not isinstance(doc, Mapping) or not doc.get("images") or not doc.get("tiles"):
        return None
    board = Storyboard(tuple(image["key"] for image in doc["images"]), None,
                       tuple(Tile(t["start"], t["end"], t["image"], t["x"], t["y"], doc["tile_width"],
                                  doc["tile_height"]) for t in doc["tiles"]))
    return player_vtt(board, sign)
