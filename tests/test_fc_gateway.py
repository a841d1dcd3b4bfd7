"""The local FC's HTTP trigger takes bodies as FC's gateway does (chunked ones decoded, a bad framing a clean
400 in FC's JSON, no traceback), and Ctrl-C on `python -m localcloud up` stops every process quietly."""
from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import oss2
import pytest

from localcloud import fc_http
from localcloud.fc import LocalFc
from localcloud.slsyaml import FunctionSpec
from tests.conftest import ROOT
from tests.support import wait_until

ECHO_HANDLER = """
import json

def handler(event, context):
    request = json.loads(event)
    return {"statusCode": 200, "body": json.dumps({"body": request["body"], "b64": request["isBase64Encoded"],
                                                   "headers": request["headers"]})}
"""
STOP_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    code = tmp_path_factory.mktemp("echo")
    (code / "index.py").write_text(ECHO_HANDLER)
    spec = FunctionSpec("echo", {"handler": "index.handler", "triggers": [{"triggerType": "http"}]})
    fc = LocalFc({"echo": spec}, code_dirs={"echo": code}, context_base={}, env_overrides={}).start()
    yield fc
    fc.stop()


def exchange(fc: LocalFc, raw: bytes, answers: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``raw`` bytes on one connection; the ``answers`` responses read back (status, headers, body)."""
    port = int(fc.url("echo").rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        reader = sock.makefile("rb")
        responses = []
        for _ in range(answers):
            status = int(reader.readline().split()[1])
            headers = {}
            while (line := reader.readline().decode("latin-1").strip()):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            responses.append((status, headers, reader.read(int(headers["content-length"]))))
        return responses


def test_a_chunked_body_reaches_the_function_decoded_and_the_connection_stays_usable(echo):
    chunked = (b"POST /hook HTTP/1.1\r\nHost: fc\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    plain = b"POST /next HTTP/1.1\r\nHost: fc\r\nContent-Length: 4\r\n\r\nnext"
    (status, _, body), (next_status, _, next_body) = exchange(echo, chunked + plain, answers=2)
    seen = json.loads(body)
    assert status == 200 and seen["body"] == "hello world" and not seen["b64"]
    assert "Transfer-Encoding" not in seen["headers"]
    assert next_status == 200 and json.loads(next_body)["body"] == "next"


def test_a_client_that_streams_its_body_in_chunks_is_served(echo):
    port = int(echo.url("echo").rstrip("/").rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = bytes(range(256)) * 64  # binary: handed over base64-encoded
        connection.request("POST", "/", body=iter([payload[:5000], payload[5000:]]), encode_chunked=True)
        response = connection.getresponse()
        seen = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 200 and seen["b64"] and base64.b64decode(seen["body"]) == payload


@pytest.mark.parametrize("framing, error", [
    (b"Content-Length: abc\r\n", "InvalidArgument"),
    (b"Content-Length: -1\r\n", "InvalidArgument"),
    (b"Content-Length: 4\r\nContent-Length: 5\r\n", "InvalidArgument"),
    (b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "InvalidArgument"),
    (b"Transfer-Encoding: gzip, chunked\r\n", "InvalidArgument"),
    (f"Content-Length: {fc_http.MAX_BODY_BYTES + 1}\r\n".encode(), "EntityTooLarge"),
])
def test_a_bad_framing_is_a_clean_400_in_fcs_json_and_invokes_nothing(echo, capfd, framing, error):
    before = len(echo.invocations)
    ((status, headers, body),) = exchange(echo, b"POST / HTTP/1.1\r\nHost: fc\r\n" + framing + b"\r\nbody")
    assert status == 400 and headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert json.loads(body)["errorCode"] == error and "x-fc-request-id" in headers
    assert len(echo.invocations) == before
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("chunks", [b"zz\r\nhello\r\n0\r\n\r\n", b"2\r\nhello\r\n0\r\n\r\n",
                                    b"0x5\r\nhello\r\n0\r\n\r\n"])
def test_broken_chunks_are_a_clean_400(echo, capfd, chunks):
    chunked = b"POST / HTTP/1.1\r\nHost: fc\r\nTransfer-Encoding: chunked\r\n\r\n"
    ((status, _, body),) = exchange(echo, chunked + chunks)
    assert status == 400 and json.loads(body)["errorCode"] == "InvalidArgument"
    assert "Traceback" not in capfd.readouterr().err


def test_a_chunked_body_over_the_limit_is_entity_too_large(echo, monkeypatch):
    monkeypatch.setattr(fc_http, "MAX_BODY_BYTES", 8)
    ((status, _, body),) = exchange(echo, b"POST / HTTP/1.1\r\nHost: fc\r\nTransfer-Encoding: chunked\r\n\r\n"
                                          b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n")
    assert status == 400 and json.loads(body)["errorCode"] == "EntityTooLarge"


def test_a_request_the_http_server_refuses_is_answered_in_json_too(echo):
    ((status, headers, body),) = exchange(echo, b"NOT A REQUEST LINE AT ALL\r\n\r\n")
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["errorCode"] == "InvalidArgument"


# --- Ctrl-C on `up` ----------------------------------------------------------------------------------

def start_up(tmp_path: Path) -> subprocess.Popen:
    """`python -m localcloud up` in a process group of its own, as a shell starts it in a terminal."""
    return subprocess.Popen([sys.executable, "-m", "localcloud", "up"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "SNAPSHOTS_LOCAL_STATE": str(tmp_path / "state.json")})


def ctrl_c(proc: subprocess.Popen) -> str:
    """SIGINT to the whole process group, as a terminal sends it; stderr once the process ended."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the local cloud did not stop within {STOP_TIMEOUT_S} s of Ctrl-C") from None
    return err


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(child) for child in (task / "children").read_text().split())
        except FileNotFoundError:  # the thread ended since the listing
            continue
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


@pytest.mark.parametrize("after_s", [0.8, 2.0])
def test_ctrl_c_while_up_is_starting_stops_it_quietly(tmp_path, after_s):
    proc = start_up(tmp_path)
    time.sleep(after_s)  # while it imports, or while it starts its servers: every moment must stop cleanly
    err = ctrl_c(proc)
    assert proc.returncode == 0 and "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_ctrl_c_with_invocations_in_flight_stops_every_process_quietly(tmp_path, small_video):
    proc = start_up(tmp_path)
    try:
        info = json.loads(proc.stdout.readline())
        bucket = oss2.Bucket(oss2.Auth(info["access_key_id"], info["access_key_secret"]), info["oss_endpoint"],
                             info["bucket"])
        for i in range(3):
            bucket.put_object(f"uploads/ctrl-c-{i}.mp4", small_video)
        instances = wait_until(lambda: children(proc.pid), "a function instance started")
    except BaseException:
        proc.kill()
        raise
    err = ctrl_c(proc)
    assert proc.returncode == 0 and "local cloud stopped" in err, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    wait_until(lambda: all(gone(pid) for pid in instances), "every function instance ended", timeout=10)
