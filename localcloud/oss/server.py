"""LocalOss: the compatibility layer over moto's S3 app, served by werkzeug on a port of its own."""

from __future__ import annotations

import logging
import threading
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from types import TracebackType
from typing import Any

import moto.s3.models
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from localcloud.keyring import Keyring
from localcloud.oss import listing, storage
from localcloud.oss.admin import AdminApp
from localcloud.oss.compat import OssCompatApp, moto_backend
from localcloud.oss.faults import OssFaults
from localcloud.oss.notifications import Listener, Notifier, ObjectChange
from localcloud.oss.wire import OssError, OssRequest

log = logging.getLogger(__name__)

#: OSS's minimum multipart part size (all parts but the last); S3's is 5 MB.
OSS_MIN_PART_SIZE = 100 * 1024


class _QuietRequestHandler(MotoRequestHandler):
    """Werkzeug's handler logs every request line to stderr, signed-URL signatures included;
    log method and path only, at DEBUG."""

    server_version = "AliyunOSS"
    sys_version = ""
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body

    def version_string(self) -> str:
        return "AliyunOSS"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path.split("?", 1)[0], code)

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        # A lost-answer fault (or a client gone): close the connection, or keep-alive would wait on it.
        self.close_connection = True

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            log.warning(message, *args)


class LocalOss:
    """A local OSS endpoint for the unmodified oss2 SDK, with OSS-trigger style notifications.

    ``start()`` serves on ``host:port`` (0 = a free port, which ``endpoint`` then names) in
    background threads; ``endpoint`` is the URL to give ``oss2.Bucket``. Listeners from
    ``subscribe`` get one native FC OSS-trigger event record per created or removed object
    (see :mod:`localcloud.oss.notifications`), from a dispatcher thread, after the write.
    ``set_faults`` sets the rate switches (error rate, latency, lost answers; ``faults()`` reads them,
    as ``/__localcloud/faults`` on the port does, see :mod:`localcloud.oss.admin`; ``injected_faults()``
    counts what they did); ``lose_answers``,
    ``fail_requests`` and ``delay_requests`` arm faults for the next matching requests (see
    :mod:`localcloud.oss.faults`); ``clear_faults`` disarms them all. ``request_counts()``
    gives the requests per operation (``PutObject``: n...) since ``reset_request_counts()``.
    Requests are signed with ``keyring``'s keys (a given one is shared, e.g. with the local ICE),
    else with a keyring of just this pair; ``keyring.issue_sts()`` gives STS credentials.
    Objects live in files (:mod:`localcloud.oss.storage`): under ``data_dir``, where a later
    ``LocalOss`` on the same folder finds them again, else in a temporary folder.
    """

    def __init__(self, *, access_key_id: str = "", access_key_secret: str = "", keyring: Keyring | None = None,
                 host: str = "127.0.0.1", port: int = 0, region: str = "cn-hangzhou",
                 account_id: str = "1000000000000001", data_dir: Path | None = None) -> None:
        self.keyring = keyring or Keyring(access_key_id, access_key_secret)
        self.access_key_id = self.keyring.access_key_id
        self.region = region
        self.account_id = account_id
        self.endpoint = ""
        self._host, self._port = host, port
        self._notifier = Notifier(region=region, account_id=account_id)
        self._faults = OssFaults()
        self._server: BaseWSGIServer | None = None
        self._serve_thread: threading.Thread | None = None
        # moto reads the minimum part size from this module-level setting at CompleteMultipartUpload.
        moto.s3.models.S3_UPLOAD_PART_MIN_SIZE = OSS_MIN_PART_SIZE
        listing.install()  # buckets created from now on list in O(log n + page), not O(bucket)
        files = storage.install(data_dir)
        self._saved = storage.SavedObjects(files) if data_dir is not None else None
        self._app = OssCompatApp(
            inner=create_backend_app("s3"), keyring=self.keyring, region=region, account_id=account_id,
            inner_host=self._inner_host, notify=self._object_changed, faults=self._faults,
        )
        if self._saved is not None and not files.restored:
            files.restored = True
            restored = self._saved.restore(moto_backend(), self.create_bucket)
            log.info("LocalOss: %d objects restored from %s", restored, data_dir)
        self.request_counts = self._app.requests.snapshot
        self.reset_request_counts = self._app.requests.reset
        self.lose_answers = self._faults.lose_answers
        self.fail_requests = self._faults.fail_requests
        self.delay_requests = self._faults.delay_requests
        self.clear_faults = self._faults.clear_faults
        self.set_faults = self._faults.set_rates
        self.faults = self._faults.rates
        self.injected_faults = self._faults.injected

    def __repr__(self) -> str:  # never show the secret
        return f"LocalOss(endpoint={self.endpoint!r}, region={self.region!r}, access_key_id={self.access_key_id!r})"

    def __enter__(self) -> LocalOss:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> LocalOss:
        """Bind and serve in a daemon thread; also start the notification dispatcher."""
        if self._server is not None:
            return self
        self._server = make_server(self._host, self._port, AdminApp(self._app, self._faults), threaded=True,
                                   request_handler=_QuietRequestHandler)
        self._port = self._server.server_port  # the port the OS gave, when asked for port 0
        self.endpoint = f"http://{self._host}:{self._port}"
        self._serve_thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                              name="localoss-http", daemon=True)
        self._serve_thread.start()
        self._notifier.start()
        log.info("LocalOss serving on %s", self.endpoint)
        return self

    def stop(self) -> None:
        """Stop serving, deliver the notifications already queued, and join the threads. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._notifier.stop(timeout=10)
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=10)
            self._serve_thread = None

    def create_bucket(self, name: str) -> None:
        """Create a bucket (idempotent); works before ``start()`` too."""
        try:
            resp = self._app.put_bucket(name)
        except OssError as err:
            raise ValueError(f"LocalOss: cannot create bucket: {err.code}: {err.message}") from None
        if resp.status != 200:
            error = ElementTree.fromstring(resp.body)
            raise ValueError(f"LocalOss: cannot create bucket {name!r}: {resp.status} "
                             f"{error.findtext('Code')}: {error.findtext('Message')}")

    def put_objects(self, bucket: str, objects: dict[str, bytes]) -> None:
        """Admin: store objects straight into the backend, no HTTP, no notification, no request
        counted (seeding 100,000 claims and indexes for a scale benchmark takes seconds, not minutes)."""
        backend = moto_backend()
        for key, data in objects.items():
            backend.put_object(bucket, key, data, disable_notification=True)

    def _object_changed(self, event_name: str, req: OssRequest, key: str, change: ObjectChange) -> None:
        """Called by the layer after each object write, before the answer: keep its record, notify."""
        if self._saved is not None:
            self._saved.record(moto_backend(), req.bucket, key)
        self._notifier.publish(event_name, req, key, change)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(record)`` for every object created or removed from now on (FC OSS-trigger record)."""
        self._notifier.subscribe(listener)

    def _inner_host(self) -> str:
        # moto decides path-style vs virtual-hosted from Host; an IP host means path-style.
        return f"127.0.0.1:{self._port}"
