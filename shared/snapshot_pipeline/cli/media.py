"""``snapshots media register``: an OSS object as an ICE media asset (RegisterMediaInfo), by its MediaId."""
from __future__ import annotations

from ..domain import OssLocation
from .context import Context
from .errors import EXIT_OK, CliError


def cmd_media_register(ctx: Context) -> int:
    source: OssLocation = ctx.args.source
    if ctx.store.head(source.bucket, source.key) is None:
        raise CliError(f"no such object: {source.uri}")
    media_id = ctx.ice.register_media(source, title=ctx.args.title, media_type=ctx.args.media_type)
    doc = {"media_id": media_id, "input_url": source.uri}
    ctx.out.emit(doc, lambda: [media_id])
    return EXIT_OK

