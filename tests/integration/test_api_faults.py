"""Faults against rctl's API: clients leaving mid-stream, 50 requests at once, malformed and
oversized requests. After each, the real docker CLI still gets its answers."""

from __future__ import annotations

import contextlib
import importlib
import socket
import subprocess
import threading
import time
from typing import Any

from apikit import BUSYBOX, ApiService, api
from hostkit import wait_for

__all__ = ["api"]

docker: Any = importlib.import_module("docker")


def send(service: ApiService, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(str(service.socket))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)  # refused half-way: the answer came before the rest was read
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def still_serving(service: ApiService) -> None:
    assert service.alive(), service.service_log()
    service.docker("version")
    service.docker("ps")


def test_client_leaving_a_followed_log(api: ApiService) -> None:
    api.docker("pull", BUSYBOX)
    api.docker("run", "-d", "--name", "chatty", BUSYBOX, "sh", "-c",
               "while true; do echo tick; sleep 0.2; done")  # fmt: skip
    for _ in range(3):
        follower = subprocess.Popen(
            ["docker", "logs", "-f", "chatty"], env=api.env, stdout=subprocess.PIPE
        )
        assert follower.stdout is not None
        assert follower.stdout.readline() == b"tick\n"
        follower.kill()
        follower.wait()
    still_serving(api)
    api.docker("rm", "-f", "chatty")


def test_client_leaving_a_pull_and_an_attach(api: ApiService) -> None:
    answer = send(api, b"POST /v1.41/images/create?fromImage=" + BUSYBOX.encode()
                  + b" HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    api.docker("create", "--name", "quiet", BUSYBOX, "sleep", "2")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(api.socket))
        sock.sendall(b"POST /v1.41/containers/quiet/attach?stream=1&stdout=1 HTTP/1.1\r\n"
                     b"Host: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")  # fmt: skip
        assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    api.docker("start", "quiet")  # the attached client left: the start goes on unattached
    assert api.docker("wait", "quiet").stdout.strip() == "0"
    still_serving(api)


def test_fifty_concurrent_requests(api: ApiService) -> None:
    c = docker.DockerClient(base_url=api.host, timeout=120, max_pool_size=50)
    api.docker("pull", BUSYBOX)
    errors: list[BaseException] = []
    done: list[int] = []

    def one(i: int) -> None:
        try:
            if i % 5 == 0:
                c.containers.list(all=True)
            elif i % 5 == 1:
                c.images.list()
            elif i % 5 == 2:
                c.version()
            elif i % 5 == 3:
                c.volumes.list()
            else:
                c.ping()
            done.append(i)
        except Exception as exc:  # collected for the assertion
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - started
    assert errors == []
    assert len(done) == 50
    print(f"50 concurrent requests: {elapsed:.2f} s")
    still_serving(api)


def test_malformed_requests(api: ApiService) -> None:
    for request in (
        b"GARBAGE\r\n\r\n",
        b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nConnection: close\r\n"
        b"Content-Length: 5\r\n\r\n{bad}",
        b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nConnection: close\r\n"
        b'Content-Length: 14\r\n\r\n{"Image": [1]}',
        b"GET /v1.41/containers/json?filters=%7B HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
        b"GET /v1.41/containers/json?all=maybe HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
        b"\xff" * 70_000,
    ):
        answer = send(api, request)
        assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), (request[:60], answer[:300])
        assert b"Traceback" not in answer
    still_serving(api)


def test_oversized_upload(api: ApiService) -> None:
    answer = send(api, b"POST /v1.41/images/load HTTP/1.1\r\nHost: d\r\n"
                  b"Content-Length: 100000000000\r\n\r\n" + b"x" * 65536)  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    big = b"x" * (9 * 2**20)
    answer = send(api, b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n"
                  + b"%x\r\n" % len(big) + big + b"\r\n0\r\n\r\n")  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    still_serving(api)
    wait_for("the service", api.alive)
