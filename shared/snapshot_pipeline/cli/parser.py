"""The command line's argument table: every command, its options, and the handler that runs it."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from ..backfill import DEFAULT_CONCURRENCY
from . import argtypes
from .audit import DEFAULT_CONCURRENCY as AUDIT_CONCURRENCY
from .audit import DEFAULT_RATE as AUDIT_RATE
from .audit import cmd_audit
from .backfill import DEFAULT_RATE, cmd_backfill
from .callback import DEFAULT_AUTH_KEY_ENV, cmd_callback_set, cmd_callback_show
from .console import cmd_console
from .context import PROG, Context
from .errors import UsageError
from .jobs import DEFAULT_JOBS_LIMIT, cmd_index, cmd_job_get, cmd_jobs_list, cmd_urls
from .local_state import LOCAL_STATE_ENV
from .media import cmd_media_register
from .params import TYPE_OF, add_snapshot_options
from .reconcile import cmd_reconcile
from .submit import cmd_submit
from .templates import (
    cmd_template_create,
    cmd_template_delete,
    cmd_template_get,
    cmd_template_list,
    cmd_template_update,
)
from .webhook import cmd_webhook_test

Handler = Callable[[Context], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """The global options, accepted before or after the command (the copies default to SUPPRESS)."""
    flag_default = default if default is argparse.SUPPRESS else False
    g = parser.add_argument_group("global options")
    g.add_argument("--local", action="store_true", default=flag_default,
                   help=f"use the local cloud of `python -m localcloud up` (found via ${LOCAL_STATE_ENV}, "
                        "./.localcloud/state.json upwards, or the per-user state file)")
    g.add_argument("--json", action="store_true", default=flag_default, help="machine-readable JSON on stdout")
    g.add_argument("--region", default=default, help="region of ICE and OSS (default $REGION)")
    g.add_argument("--ice-endpoint", default=default, help="default $ICE_ENDPOINT, else ice.<region>.aliyuncs.com")
    g.add_argument("--oss-endpoint", default=default,
                   help="default $OSS_ENDPOINT, else the public https://oss-<region>.aliyuncs.com")
    g.add_argument("--output-bucket", default=default, help="default $OUTPUT_BUCKET, else the source bucket")
    g.add_argument("--output-prefix", default=default, help="default $OUTPUT_PREFIX, else snapshots/")


def _submission_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", metavar="NAME",
                        help="only this profile of the deployment's ($SNAPSHOT_PROFILES), e.g. one added later")
    parser.add_argument("--template", help="snapshot template ID (default $SNAPSHOT_TEMPLATE_ID): one profile, "
                                           "'default', instead of the deployment's")
    parser.add_argument("--type", dest="snapshot_type", choices=tuple(TYPE_OF),
                        help="output naming and OverwriteParams.Type (default $SNAPSHOT_TYPE, else the template's)")
    parser.add_argument("--overwrite", type=argtypes.json_object, metavar="JSON",
                        help="OverwriteParams as a JSON object (over $SNAPSHOT_OVERWRITE_PARAMS)")
    add_snapshot_options(parser, sprite=False)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Operate the ICE video-snapshot pipeline: templates, jobs, "
                                            "URLs, indexes, the event callback, backfill, audit and reconcile.",
                     epilog="exit codes: 0 done, 1 failed (ICE/OSS error), 2 bad arguments or configuration, "
                            "3 no credentials or no local cloud, 130 interrupted")
    _global_options(parser, None)
    common = _Parser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def leaf(group: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(handler=handler)
        return p

    template = commands.add_parser("template", help="snapshot templates (CreateCustomTemplate Type=2)")
    templates = template.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = leaf(templates, "create", cmd_template_create, "create a snapshot template")
    p.add_argument("--type", required=True, choices=tuple(TYPE_OF), help="Normal stills, a Sprite sheet or a WebVTT")
    p.add_argument("--name", help="template name (default snapshots-<type>-<UTC time>)")
    p.add_argument("--config", type=argtypes.json_object, metavar="JSON",
                   help="the whole TemplateConfig, instead of the parameter options")
    add_snapshot_options(p, sprite=True)
    p = leaf(templates, "list", cmd_template_list, "list the snapshot templates")
    p.add_argument("--type", choices=tuple(TYPE_OF), help="only this subtype")
    p = leaf(templates, "get", cmd_template_get, "show a template")
    p.add_argument("template_id", metavar="ID")
    p = leaf(templates, "update", cmd_template_update, "rename a template or change its parameters")
    p.add_argument("template_id", metavar="ID")
    p.add_argument("--name")
    p.add_argument("--config", type=argtypes.json_object, metavar="JSON", help="replace the whole TemplateConfig")
    add_snapshot_options(p, sprite=True)
    p = leaf(templates, "delete", cmd_template_delete, "delete a template")
    p.add_argument("template_id", metavar="ID")

    p = leaf(commands, "submit", cmd_submit, "submit a snapshot job for one video, as the submit function does")
    p.add_argument("source", type=argtypes.object_or_media_id, metavar="oss://BUCKET/KEY|MEDIA_ID",
                   help="the video, or the MediaId of a media asset (its OSS object is submitted)")
    _submission_options(p)

    media = commands.add_parser("media", help="ICE media assets")
    media_actions = media.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = leaf(media_actions, "register", cmd_media_register,
             f"register a video as a media asset (RegisterMediaInfo); prints its MediaId, which `{PROG} submit` "
             "and SubmitSnapshotJob Type=Media accept")
    p.add_argument("source", type=argtypes.object_uri, metavar="oss://BUCKET/KEY")
    p.add_argument("--title", help="the asset's Title")
    p.add_argument("--media-type", choices=("video", "image", "audio"), help="default: from the file extension")

    job = commands.add_parser("job", help="one snapshot job")
    job_actions = job.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = leaf(job_actions, "get", cmd_job_get, "show a snapshot job (GetSnapshotJob)")
    p.add_argument("job_id", metavar="JOB")

    jobs = commands.add_parser("jobs", help="snapshot jobs")
    jobs_actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = leaf(jobs_actions, "list", cmd_jobs_list, "list snapshot jobs (ListSnapshotJobs, every page up to --limit)")
    p.add_argument("--status", choices=("Init", "Success", "Fail"))
    p.add_argument("--since", type=argtypes.point_in_time,
                   help="created at or after: 2026-11-24T03:00:00Z, 2026-11-24, or 6h, 7d...")
    p.add_argument("--until", type=argtypes.point_in_time, help="created at or before (same forms)")
    p.add_argument("--input", metavar="oss://BUCKET/PREFIX", help="only jobs whose input starts with this")
    p.add_argument("--order", choices=("desc", "asc"), default="desc", help="by creation time (default desc)")
    p.add_argument("--limit", type=argtypes.non_negative_int, default=DEFAULT_JOBS_LIMIT,
                   help=f"at most this many jobs (default {DEFAULT_JOBS_LIMIT}; 0 for all)")

    p = leaf(commands, "urls", cmd_urls, "every snapshot URL of a job (GetSnapshotUrls, all pages)")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("--timeout", type=argtypes.positive_int, default=3600, help="validity of the signed URLs, seconds")

    p = leaf(commands, "index", cmd_index, "print the index.json of a source video")
    p.add_argument("source", type=argtypes.object_uri, metavar="oss://BUCKET/KEY")

    callback = commands.add_parser("callback", help="the region's ICE event callback")
    callback_actions = callback.add_subparsers(dest="action", required=True, metavar="ACTION")
    leaf(callback_actions, "show", cmd_callback_show, "show the event callback (GetEventCallback)")
    p = leaf(callback_actions, "set", cmd_callback_set, "point the event callback at a URL (SetEventCallback)")
    p.add_argument("--url", help="the callback function's URL (default $CALLBACK_URL)")
    p.add_argument("--auth-key-env", metavar="NAME",
                   help=f"environment variable holding the AuthKey (default {DEFAULT_AUTH_KEY_ENV})")
    p.add_argument("--no-auth", action="store_true", help="turn callback authentication off")
    p.add_argument("--events", metavar="A,B",
                   help="EventTypeList, e.g. SnapshotComplete; '' for every event (default: keep the current list)")

    p = leaf(commands, "backfill", cmd_backfill,
             "submit every video under a prefix that has no index and no claim yet; safe to interrupt and rerun")
    p.add_argument("source", type=argtypes.prefix_uri, metavar="oss://BUCKET/PREFIX")
    p.add_argument("--rate", type=argtypes.rate, default=DEFAULT_RATE,
                   help=f"at most this many submissions per second (default {DEFAULT_RATE:g})")
    p.add_argument("--dry-run", action="store_true", help="list what would be submitted, submit nothing")
    p.add_argument("--retry-failed", action="store_true",
                   help="also resubmit videos whose index records a failure (a failed job, or one ICE "
                        "refused), e.g. after fixing the template")
    p.add_argument("--concurrency", type=argtypes.positive_int, default=DEFAULT_CONCURRENCY,
                   help=f"objects checked and submitted at once (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--restart", action="store_true",
                   help="examine every object, not only those after the checkpoint an interrupted run left")
    _submission_options(p)

    p = leaf(commands, "audit", cmd_audit,
             "every video under a prefix with its state (indexed, failed, pending, dead-lettered, stale, missing, "
             "deleted) and the failed webhook deliveries; exit 0 only when each video is indexed or failed and no "
             "delivery failed")
    p.add_argument("source", type=argtypes.prefix_uri, metavar="oss://BUCKET/PREFIX")
    p.add_argument("--list", action="store_true", help="list every video, indexed ones too")
    p.add_argument("--concurrency", type=argtypes.positive_int, default=AUDIT_CONCURRENCY,
                   help=f"objects judged at once (default {AUDIT_CONCURRENCY})")
    p.add_argument("--rate", type=argtypes.rate, default=AUDIT_RATE,
                   help=f"at most this many requests per second (default {AUDIT_RATE:g})")
    p.add_argument("--fix", action="store_true",
                   help="submit missing and stale videos (as a backfill does), record lost deletions, replay "
                        "dead letters, make failed webhook deliveries due again")
    p.add_argument("-v", "--verbose", action="store_true", help="the library's log lines (of --fix) on stderr")
    _submission_options(p)

    p = leaf(commands, "reconcile", cmd_reconcile, "index finished jobs and resubmit abandoned claims, now")
    p.add_argument("--since", type=argtypes.point_in_time,
                   help="jobs created since (default: the last $RECONCILE_WINDOW_HOURS, 24)")
    p.add_argument("--max-time", type=argtypes.positive_int, default=600, help="time budget in seconds (default 600)")
    p.add_argument("-v", "--verbose", action="store_true", help="the reconciler's log lines on stderr")

    p = leaf(commands, "console", cmd_console,
             "a web console on 127.0.0.1: the videos under a prefix with their state, each video's pictures and "
             "player with storyboard previews; read only unless --allow-upload")
    p.add_argument("source", type=argtypes.prefix_uri, metavar="oss://BUCKET/PREFIX")
    p.add_argument("--port", type=argtypes.non_negative_int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--allow-upload", action="store_true", help="show an upload box that puts videos under the prefix")
    p.add_argument("--url-ttl", type=argtypes.positive_int, default=900,
                   help="validity of the signed URLs the page gets, seconds (default 900)")
    p.add_argument("--open", action="store_true", help="open the console in the default browser")

    webhook = commands.add_parser("webhook", help="the webhook that is told of index changes")
    webhook_actions = webhook.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = leaf(webhook_actions, "test", cmd_webhook_test,
             "POST a signed sample event (type webhook.test) to the webhook URL and show the answer")
    p.add_argument("--url", help="send it here instead of $WEBHOOK_URL (signed with $WEBHOOK_SECRET)")
    p.add_argument("--timeout", type=argtypes.positive_int, default=10, help="seconds to wait for the answer")
    return parser
