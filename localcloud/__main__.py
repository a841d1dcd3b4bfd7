"""``python -m localcloud up``: the local cloud in the foreground.
``python -m localcloud demo [--video PATH]``: the whole product once, end to end.

``up`` prints one JSON line first (endpoints, bucket, credentials, callback URL and key, and with
``--webhook-url`` the ``webhook_secret`` the events are signed with: what a client needs to talk to
it), then serves until Ctrl-C. It also records that state, with its
pid, in ``.localcloud/state.json`` and in ``$SNAPSHOTS_LOCAL_STATE`` (else a per-user file), where
``snapshots --local`` finds it (both sides use ``snapshot_pipeline.cli.local_state``).
Ctrl-C (SIGINT) or SIGTERM, even while it is starting, stops it quietly and in order, exit status 0.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cloud import LocalCloudOptions
    from .webhook_receiver import WebhookReceiver

#: How long the demo waits for the webhook event once the index is there (it is sent right after).
DEMO_WEBHOOK_WAIT_S = 10.0


def _options(args: argparse.Namespace) -> LocalCloudOptions:
    from .cloud import LocalCloudOptions

    options = LocalCloudOptions(host=args.host, bucket=args.bucket, code=args.code, echo_logs=args.verbose,
                                oss_port=args.oss_port, ice_port=args.ice_port, callback_port=args.callback_port,
                                data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
                                webhook_url=getattr(args, "webhook_url", None))
    if args.template_config:
        options.template_config = json.loads(args.template_config)
    if getattr(args, "profiles", None):
        options.profiles = _profiles_file(args.profiles)
    return options


def _profiles_file(path: str) -> str:
    """The profiles FILE declares, checked before anything starts (SystemExit naming every problem)."""
    from snapshot_pipeline.profiles import parse_profiles

    try:
        raw = Path(path).read_text(encoding="utf-8")
        parse_profiles(raw, require_template_ids=False)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"localcloud: error: --profiles {path}: {exc}") from None
    return raw


def _qps_limit(value: str) -> tuple[str, float]:
    action, sep, rate = value.partition("=")
    try:
        if not sep or not action:
            raise ValueError
        return action, float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ACTION=QPS, e.g. SubmitSnapshotJob=50, not {value!r}") from None


def _number_in(low: float, high: float, what: str) -> Callable[[str], float]:
    """An argparse type: a number from ``low`` to ``high`` (a fault rate, a delay)."""
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"expected {what}, not {value!r}")
        return number
    return parse


_share = _number_in(0.0, 1.0, "a share between 0 and 1")
_seconds = _number_in(0.0, math.inf, "seconds >= 0")


def _faults(args: argparse.Namespace) -> dict:
    """The local ICE's fault settings from the flags (the admin endpoint changes them later)."""
    faults: dict = {}
    if args.qps_limit:
        faults["qps_limits"] = dict(args.qps_limit)
    for flag, name in (("error_rate", "error_rate"), ("latency", "latency_s"),
                       ("callback_drop_rate", "callback_drop_rate"), ("job_delay", "job_delay_s")):
        if getattr(args, flag) is not None:
            faults[name] = getattr(args, flag)
    if args.fault_seed is not None:
        faults["seed"] = args.fault_seed
    return faults


def _oss_faults(args: argparse.Namespace) -> dict:
    """The local OSS's rate switches from the flags (its admin endpoint changes them later)."""
    faults = {name: getattr(args, flag) for flag, name in (
        ("oss_error_rate", "error_rate"), ("oss_latency", "latency_s"),
        ("oss_drop_response_rate", "drop_response_rate")) if getattr(args, flag) is not None}
    if args.fault_seed is not None:
        faults["seed"] = args.fault_seed
    return faults


def cmd_up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    # Before the local cloud is even imported: a Ctrl-C at any moment asks for the same orderly stop,
    # never a KeyboardInterrupt in the middle of starting or stopping (the function instances run in
    # sessions of their own, so the terminal's SIGINT does not reach them).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    from snapshot_pipeline.cli.local_state import files_up_writes, remove_local_state, write_local_state

    from .cloud import LocalCloud

    cloud = LocalCloud(_options(args)).start()
    written: list[Path] = []
    try:
        cloud.set_faults(**_faults(args))
        cloud.set_oss_faults(**_oss_faults(args))
        cloud.start_console()
        info = cloud.describe()
        for path in files_up_writes(os.environ):
            try:
                write_local_state(path, dict(info, pid=os.getpid()))
                written.append(path)
            except OSError as exc:
                print(f"cannot record the local cloud's state in {path}: {exc}", file=sys.stderr, flush=True)
        print(json.dumps(info), flush=True)  # after the state files: a client that read it can use --local
        print(f"local cloud up: upload videos to oss://{info['bucket']}/uploads/ (Ctrl-C to stop)",
              file=sys.stderr, flush=True)
        while not stop.wait(0.5):  # a timed wait: the signal handler runs at the latest every 0.5 s
            pass
    except KeyboardInterrupt:  # whenever it comes, even right after the JSON line
        pass
    finally:
        for path in written:
            remove_local_state(path, os.getpid())
        cloud.stop()
        print("local cloud stopped", file=sys.stderr, flush=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from PIL import Image

    from .cloud import LocalCloud
    from .webhook_receiver import WebhookReceiver

    out = Path(args.out)
    if args.video and not Path(args.video).is_file():
        print(f"demo: VIDEO={args.video!r} is not a file", file=sys.stderr)
        return 2
    receiver = WebhookReceiver(args.host).start()
    options = _options(args)
    options.webhook_url = receiver.url
    with LocalCloud(options) as cloud, contextlib.closing(receiver):
        receiver.secret = cloud.webhook_secret
        if args.video:
            data, name = Path(args.video).read_bytes(), Path(args.video).name
        else:
            from .media import make_test_video

            data, name = make_test_video(duration_s=8.0, width=640, height=360), "demo.mp4"
        key = f"uploads/{name}"
        started = time.monotonic()
        cloud.bucket().put_object(key, data)
        print(f"uploaded {len(data)} bytes to oss://{cloud.options.bucket}/{key}", file=sys.stderr)
        index = cloud.wait_for_index(key, timeout=args.timeout, profiles=cloud.profiles_for(key))
        elapsed = time.monotonic() - started
        saved = 0
        for name, result in index["profiles"].items():  # each profile's snapshots in a folder of its own
            (out / name).mkdir(parents=True, exist_ok=True)
            for snap in result["snapshots"]:
                body = cloud.bucket(snap["bucket"]).get_object(snap["key"]).read()
                Image.open(io.BytesIO(body)).verify()  # every snapshot decodes
                (out / name / Path(snap["key"]).name).write_bytes(body)
                saved += 1
        (out / "index.json").write_text(json.dumps(index, indent=2, ensure_ascii=False))
        print(json.dumps(index, indent=2, ensure_ascii=False))
        print(f"{saved} snapshots of {len(index['profiles'])} profile(s) indexed {elapsed:.1f}s after upload; "
              f"saved to {out}/", file=sys.stderr)
        _show_webhook(receiver)
        failed = [f"{name}: job {result['job']['status']}" for name, result in index["profiles"].items()
                  if result["job"]["status"] != "Success"]
        expected = None if args.video or cloud.profiles is not None else cloud.options.template_config.get("Count")
        if failed or (expected and saved != expected):
            print(f"demo failed: {', '.join(failed) or f'{saved} snapshots'}", file=sys.stderr)
            return 1
        print(f"console: {cloud.start_console().video_url(key)}", file=sys.stderr, flush=True)
        if args.serve:
            _serve_until_interrupted()
    return 0


def _serve_until_interrupted() -> None:
    """Keep the demo's cloud (and its console) up until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print("the console stays up until Ctrl-C", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass


def _show_webhook(receiver: WebhookReceiver) -> None:
    event = receiver.wait_for_event(DEMO_WEBHOOK_WAIT_S)
    if event is None:
        print(f"no webhook event reached {receiver.url} within {DEMO_WEBHOOK_WAIT_S:g}s", file=sys.stderr)
        return
    print(f"webhook {receiver.url} got event {event['id']} ({event['type']}, signature verified): "
          f"{json.dumps(event, ensure_ascii=False)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("up", "run the local cloud in the foreground"),
                            ("demo", "upload a video and print the index the pipeline writes")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--bucket", default="media")
        p.add_argument("--code", choices=("source", "build"), default="source",
                       help="run the functions from functions/ (default) or from the `make build` folders")
        p.add_argument("--template-config", help="TemplateConfig JSON of the snapshot template to create")
        p.add_argument("--profiles", metavar="FILE",
                       help="deploy the profiles in FILE (SNAPSHOT_PROFILES' JSON list; a profile may give "
                            "template_config instead of template_id: that template is created at start)")
        p.add_argument("--oss-port", type=int, default=0)
        p.add_argument("--ice-port", type=int, default=0)
        p.add_argument("--callback-port", type=int, default=0)
        p.add_argument("-v", "--verbose", action="store_true", help="echo the functions' logs")
        if name == "up":
            p.add_argument("--webhook-url", metavar="URL", help="POST the signed index-change events here "
                           "(the functions' WEBHOOK_URL; the JSON line gives the webhook_secret)")
            p.add_argument("--data-dir", metavar="DIR", help="keep objects, ICE jobs and templates, and the "
                           "credentials in DIR across restarts (default: ephemeral)")
            faults = p.add_argument_group("faults of the local ICE (also: POST /__localcloud/faults on it)")
            faults.add_argument("--qps-limit", type=_qps_limit, action="append", metavar="ACTION=QPS",
                                help="answer Throttling.User above QPS calls per second of ACTION (repeatable)")
            faults.add_argument("--error-rate", type=_share, metavar="P", help="fail this share of calls with a 5xx")
            faults.add_argument("--latency", type=_seconds, metavar="S", help="add S seconds to every API call")
            faults.add_argument("--callback-drop-rate", type=_share, metavar="P", help="drop this share of callbacks")
            faults.add_argument("--job-delay", type=_seconds, metavar="S",
                                help="wait S seconds before running each job")
            faults.add_argument("--fault-seed", type=int,
                                help="seed of the fault RNGs (ICE's and OSS's), for reproducible runs")
            oss_faults = p.add_argument_group("faults of the local OSS (also: POST /__localcloud/faults on it)")
            oss_faults.add_argument("--oss-error-rate", type=_share, metavar="P",
                                    help="answer this share of requests 500/503 without performing them")
            oss_faults.add_argument("--oss-latency", type=_seconds, metavar="S", help="add S seconds to every request")
            oss_faults.add_argument("--oss-drop-response-rate", type=_share, metavar="P",
                                    help="perform this share of requests, then close the connection unanswered")
        if name == "demo":
            p.add_argument("--video", help="a video file to upload (default: generate one)")
            p.add_argument("--out", default="demo-output")
            p.add_argument("--timeout", type=float, default=120)
            p.add_argument("--serve", action="store_true",
                           help="keep the local cloud and its console up after the demo, until Ctrl-C")
    args = parser.parse_args(argv)
    return cmd_up(args) if args.command == "up" else cmd_demo(args)


if __name__ == "__main__":
    sys.exit(main())
