"""The local OSS and the local ICE, each serving from a child process of its own.

In one process the emulator's CPU (moto parsing and answering, the ICE signing URLs and cutting
frames) shares one GIL with whatever drives it: a benchmark's upload threads and the FC runner's
relays wait for it, and a burst partly measures the emulator. ``LocalCloudOptions(own_processes=True)``
starts each service in a child Python instead, serving a :mod:`multiprocessing.managers` server (one
connection per calling thread, so controls from several threads do not queue behind each other). The
child is a plain ``python -c`` of :func:`serve`, not a multiprocessing spawn, so the caller's main
module is never imported again there; it ends when its stdin closes, so it cannot outlive this process.
Clients reach the services over HTTP exactly as before; only the controls a test or a benchmark uses
(faults, counters, waiting, the model's queries) cross the process boundary, and only those named
in :data:`OSS_CONTROLS` and :data:`ICE_CONTROLS`.

Two things a shared process gave for free are carried across: the keyring (the child starts with the
parent's keys and the STS triples issued so far, and every triple issued later is sent to it) and the
local OSS's notifications (the child queues each record; a thread here hands them to the listeners of
:meth:`OssProcess.subscribe`, as a notification service would).
"""
from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.managers import BaseManager
from typing import Any

from .keyring import Keyring, StsCredentials

log = logging.getLogger(__name__)

#: What callers do with a LocalOss, forwarded to the child's.
OSS_CONTROLS = ("create_bucket", "put_objects", "set_faults", "faults", "lose_answers", "fail_requests",
                "delay_requests", "clear_faults", "injected_faults", "request_counts", "reset_request_counts")
#: What callers do with a LocalIce, forwarded to the child's.
ICE_CONTROLS = ("set_event_callback", "set_faults", "faults", "set_instant_jobs", "bulk_load_jobs",
                "resume_unfinished_jobs", "request_counts", "reset_request_counts", "refusal_counts",
                "deliveries", "reset", "wait_idle", "hold_jobs", "holding", "held_jobs", "release_job",
                "release_all", "redeliver_callback")
#: The model's read-only queries (``ice.model.list_jobs(...)``), forwarded to the child's model.
ICE_MODEL_QUERIES = ("list_templates", "list_jobs", "get_job", "find_job")
#: How long the notification thread waits for a record before it looks whether it must stop.
_RECORD_POLL_S = 0.2
_SERVICE_CALLS = ("attribute", "accept_sts", "stop")


class _Served:
    """Child side: the service, and what the process boundary needs besides its own methods."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self._records: queue.Queue[dict[str, Any]] = queue.Queue()

    def __getattr__(self, name: str) -> Any:  # the manager calls only the names it was told to expose
        return getattr(self.service, name)

    def attribute(self, name: str) -> Any:
        return getattr(self.service, name)

    def accept_sts(self, credentials: StsCredentials) -> None:
        self.service.keyring.accept(credentials)

    def model_query(self, query: str, /, *args: Any, **kwargs: Any) -> Any:
        if query not in ICE_MODEL_QUERIES:
            raise AttributeError(f"the model's {query!r} is not one of the forwarded queries")
        return getattr(self.service.model, query)(*args, **kwargs)

    def subscribe(self) -> None:
        self.service.subscribe(self._records.put)

    def take_records(self, timeout: float) -> list[dict[str, Any]]:
        """The records queued so far, waiting up to ``timeout`` for the first."""
        try:
            records = [self._records.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                records.append(self._records.get_nowait())
            except queue.Empty:
                return records

    def stop(self) -> None:
        self.service.stop()


def _keyring(access_key_id: str, access_key_secret: str, issued: list[StsCredentials]) -> Keyring:
    keyring = Keyring(access_key_id, access_key_secret)
    for credentials in issued:
        keyring.accept(credentials)
    return keyring


def _serve_oss(keys: tuple[str, str, list[StsCredentials]], options: dict[str, Any]) -> _Served:
    from .oss import LocalOss

    return _Served(LocalOss(keyring=_keyring(*keys), **options).start())


def _serve_ice(keys: tuple[str, str, list[StsCredentials]], options: dict[str, Any]) -> _Served:
    from .ice.server import LocalIce

    return _Served(LocalIce(keyring=_keyring(*keys), **options).start())


class _Manager(BaseManager):
    pass


_Manager.register("oss", _serve_oss, exposed=(*_SERVICE_CALLS, "subscribe", "take_records", *OSS_CONTROLS))
_Manager.register("ice", _serve_ice, exposed=(*_SERVICE_CALLS, "model_query", *ICE_CONTROLS))


def serve() -> None:
    """The child: read the authkey from stdin, serve the manager on a free loopback port (its address
    is the first line on stdout), exit when stdin closes (the parent stopped or died)."""
    authkey = bytes.fromhex(sys.stdin.readline().strip())
    server = _Manager(address=("127.0.0.1", 0), authkey=authkey).get_server()
    address = server.address
    assert isinstance(address, tuple)  # a TCP address: (host, port)
    print(json.dumps(list(address)), flush=True)

    def exit_when_parent_goes() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=exit_when_parent_goes, daemon=True).start()
    server.serve_forever()


def _child_env() -> dict[str, str]:
    """This process's environment, with its import path, so the child imports the same localcloud."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


class _ServiceProcess:
    """Parent side: starts the child, forwards the controls, keeps its keyring in step."""

    _kind = ""
    _controls: tuple[str, ...] = ()

    def __init__(self, *, keyring: Keyring, **options: Any) -> None:
        self.keyring = keyring
        self._options = options
        self._child: subprocess.Popen[str] | None = None
        self._remote: Any = None
        self.endpoint = ""

    def start(self) -> Any:
        authkey = secrets.token_bytes(32)
        child = self._child = subprocess.Popen(
            [sys.executable, "-c", "from localcloud.own_process import serve; serve()"], env=_child_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self._connect(child, authkey)
        except BaseException:
            self.stop()  # the child ends with its stdin
            raise
        return self

    def _connect(self, child: subprocess.Popen[str], authkey: bytes) -> None:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(authkey.hex() + "\n")
        child.stdin.flush()
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the local {self._kind.upper()}'s process ended before serving (exit {child.wait()})")
        manager = _Manager(address=tuple(json.loads(line)), authkey=authkey)
        manager.connect()
        keys = (self.keyring.access_key_id, self.keyring.access_key_secret, self.keyring.issued())
        self._remote = getattr(manager, self._kind)(keys, self._options)
        self.endpoint = self._remote.attribute("endpoint")
        self.keyring.on_issue(self._remote.accept_sts)

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._child.pid if self._child is not None else None

    def __getattr__(self, name: str) -> Any:
        remote = self.__dict__.get("_remote")  # not self._remote: that would come back here before __init__
        if name in type(self)._controls and remote is not None:
            return getattr(remote, name)
        raise AttributeError(f"{type(self).__name__} has no {name!r} (forwarded: {', '.join(self._controls)})")

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        try:
            if self._remote is not None:
                self.keyring.remove_issue_listener(self._remote.accept_sts)
                self._remote.stop()  # the service's own orderly stop: queued notifications, joined threads
        finally:
            self._remote = None
            assert child.stdin is not None
            child.stdin.close()  # the child exits
            child.wait()


class OssProcess(_ServiceProcess):
    """A :class:`~localcloud.oss.LocalOss` in a child process (options as LocalOss's, no ``data_dir``)."""

    _kind = "oss"
    _controls = OSS_CONTROLS

    def __init__(self, *, keyring: Keyring, **options: Any) -> None:
        super().__init__(keyring=keyring, **options)
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._relay: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> OssProcess:
        super().start()
        self._remote.subscribe()
        self._stopping.clear()
        self._relay = threading.Thread(target=self._relay_records, name="local-oss-notifications", daemon=True)
        self._relay.start()
        return self

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener(record)`` for every object created or removed from now on, as LocalOss does."""
        self._listeners.append(listener)

    def _relay_records(self) -> None:
        remote = self._remote
        while not self._stopping.is_set():
            for record in remote.take_records(_RECORD_POLL_S):
                for listener in list(self._listeners):
                    try:  # as the in-process Notifier does: one failing listener stops no other record
                        listener(record)
                    except Exception:
                        log.exception("local OSS process: listener %r failed on a record", listener)

    def stop(self) -> None:
        self._stopping.set()
        if self._relay is not None:
            self._relay.join()
            self._relay = None
        super().stop()


class _RemoteModel:
    """``ice.model`` of an :class:`IceProcess`: the read-only queries of the child's model."""

    def __init__(self, remote: Any) -> None:
        self._remote = remote

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in ICE_MODEL_QUERIES:
            raise AttributeError(f"the model of a local ICE in its own process answers only {ICE_MODEL_QUERIES}")
        return lambda *args, **kwargs: self._remote.model_query(name, *args, **kwargs)


class IceProcess(_ServiceProcess):
    """A :class:`~localcloud.ice.server.LocalIce` in a child process (options as LocalIce's)."""

    _kind = "ice"
    _controls = ICE_CONTROLS

    def start(self) -> IceProcess:
        super().start()
        self.url = f"http://{self.endpoint}"
        self.model = _RemoteModel(self._remote)
        return self
