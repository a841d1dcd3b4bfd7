"""``snapshots callback show|set``: the region's ICE event callback. The AuthKey is never printed and
never taken from the command line (where the shell history and ``ps`` would keep it)."""
from __future__ import annotations

import hmac
import re

from .context import Context
from .errors import EXIT_OK, UsageError
from .output import Fields

#: SetEventCallback's rule for AuthKey: at most 32 characters, with upper- and lower-case letters and digits.
AUTH_KEY_RULE = re.compile(r"^(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9]).{1,32}$")
DEFAULT_AUTH_KEY_ENV = "ICE_CALLBACK_AUTH_KEY"


def cmd_callback_show(ctx: Context) -> int:
    setting = ctx.ice.get_event_callback()
    ours = ctx.settings().callback_auth_key
    matches = (hmac.compare_digest(setting.auth_key.encode(), ours.encode())
               if setting.auth_key and ours else None)
    doc = {"callback_type": setting.callback_type, "callback_url": setting.callback_url,
           "callback_queue_name": setting.callback_queue_name, "event_types": list(setting.event_types),
           "auth_switch": setting.auth_switch, "auth_key_set": bool(setting.auth_key),
           "auth_key_matches_pipeline": matches}
    key_text = ("not set" if not setting.auth_key else
                "set" + ("" if matches is None else f", matches {DEFAULT_AUTH_KEY_ENV}" if matches
                         else f", DIFFERS from {DEFAULT_AUTH_KEY_ENV}: callbacks will be refused (401)"))
    ctx.out.emit(doc, lambda: [Fields([
        ("Type", setting.callback_type or "none"), ("URL", setting.callback_url),
        ("Queue", setting.callback_queue_name), ("Events", ",".join(setting.event_types) or "all"),
        ("Auth", setting.auth_switch), ("Auth key", key_text)]) if setting.callback_type
        else "no event callback is set"])
    return EXIT_OK


def _callback_url(ctx: Context) -> str:
    url = ctx.args.url or ctx.settings().callback_url
    if not url:
        raise UsageError("no callback URL: pass --url or set CALLBACK_URL")
    if not re.match(r"^https?://[^/\s]+", url) or len(url.encode("utf-8")) > 256:
        raise UsageError(f"--url must be an http(s) URL of at most 256 bytes, got {url!r}")
    return url


def _auth_key(ctx: Context) -> str | None:
    """The AuthKey to set, from the environment variable --auth-key-env names (or the pipeline's);
    None with --no-auth."""
    a = ctx.args
    if a.no_auth:
        return None
    if a.auth_key_env:
        key = ctx.environ.get(a.auth_key_env)
        if not key:
            raise UsageError(f"environment variable {a.auth_key_env} (the AuthKey) is not set")
    else:
        key = ctx.settings().callback_auth_key
        if not key:
            raise UsageError(f"no AuthKey: pass --auth-key-env NAME (a variable holding it), set "
                             f"{DEFAULT_AUTH_KEY_ENV}, or --no-auth")
    if not AUTH_KEY_RULE.match(key):
        raise UsageError("the AuthKey must be at most 32 characters with upper-case letters, "
                         "lower-case letters and digits")
    return key


def cmd_callback_set(ctx: Context) -> int:
    a = ctx.args
    url, key = _callback_url(ctx), _auth_key(ctx)
    if a.events is None:  # keep the event types already set: SetEventCallback replaces the whole setting
        events = ctx.ice.get_event_callback().event_types
    else:
        events = tuple(e.strip() for e in a.events.split(",") if e.strip())
    ctx.ice.set_event_callback(url, auth_key=key, event_types=events)
    source = a.auth_key_env or DEFAULT_AUTH_KEY_ENV
    ctx.out.emit({"callback_type": "HTTP", "callback_url": url, "auth_switch": "on" if key else "off",
                  "event_types": list(events)},
                 lambda: [f"event callback set: HTTP {url}, authentication "
                          + (f"on (AuthKey from {source})" if key else "off")])
    return EXIT_OK
