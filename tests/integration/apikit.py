"""The API service for the integration tests: ``rctl system service`` on a socket of the
test's own, with the test's private store, and the real clients pointed at it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl

R = "127.0.0.1:5000/test"
BUSYBOX = f"{R}/busybox:latest"
HTTPD = f"{R}/httpd:latest"


class ApiService:
    """A running service and the docker CLI talking to it."""

    def __init__(self, rctl: Rctl, root: Path) -> None:
        self.rctl = rctl
        self.socket = root / "api.sock"
        self.host = f"unix://{self.socket}"
        self.env = {**rctl.env, "DOCKER_HOST": self.host, "DOCKER_CONFIG": str(root / "docker")}
        self.log = root / "service.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["rctl", "system", "service", "--time", "0", self.host],
                env=rctl.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the API service did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120, input_data: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["docker", *args], capture_output=True, text=True, env=self.env, timeout=timeout,
            check=False, input=input_data,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}\n"
                f"service log:\n{self.service_log()}"
            )
        return proc

    def service_log(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        ids = self.rctl("ps", "-aq", check=False).stdout.split()
        if ids:
            self.rctl("rm", "-f", *ids, check=False)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def api(rctl: Rctl, tmp_path: Path) -> Iterator[ApiService]:
    root = tmp_path / "api"
    root.mkdir(mode=0o700)
    service = ApiService(rctl, root)
    yield service
    service.stop()
    assert "Traceback" not in service.service_log(), service.service_log()


__all__ = ["BUSYBOX", "HTTPD", "ApiService", "api", "os"]
