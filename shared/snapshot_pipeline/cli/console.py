"""``snapshots console``: the web console (uploads, pictures, player) over a bucket, on 127.0.0.1.

It reads with the invocation's credentials and settings (``--local`` for the local cloud's) and
shows the page only short-lived signed URLs; it writes nothing unless ``--allow-upload`` is given.
Serves until Ctrl-C.
"""
from __future__ import annotations

import threading
import webbrowser

from ..console import ConsoleApi, ConsoleConfig, ConsoleServer, UrlSigner
from ..retry import Deadline
from .context import OPERATION_BUDGET_S, Context
from .errors import EXIT_OK


def cmd_console(ctx: Context) -> int:
    a = ctx.args
    settings = ctx.settings()
    api = ConsoleApi(settings, lambda: ctx.adapters(Deadline.after(OPERATION_BUDGET_S)),
                     UrlSigner(ctx.store, ttl_s=a.url_ttl),
                     ConsoleConfig(a.source, allow_upload=a.allow_upload))
    server = ConsoleServer(api, a.port).start()
    ctx.out.emit({"console_url": server.url, "source": a.source.uri, "allow_upload": a.allow_upload},
                 lambda: [f"console of {a.source.uri} at {server.url} "
                          f"({'uploads allowed' if a.allow_upload else 'read only'}; Ctrl-C to stop)"])
    ctx.out.stream.flush()  # the address is what a script waits for, before the server blocks
    if a.open:
        webbrowser.open(server.url)
    try:
        forever = threading.Event()
        # A timed wait: Ctrl-C may be delivered to a server thread, and an untimed wait of the main
        # thread would then never return to run the handler (a test saw the console outlive it by 30 s).
        while not forever.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK
