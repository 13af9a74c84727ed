"""docker-compose 1.29 against rctl's API: a two-service app on its project network."""

from __future__ import annotations

import subprocess
from pathlib import Path

from apikit import BUSYBOX, HTTPD, ApiService, api
from hostkit import fetch, free_port, wait_for

__all__ = ["api"]

COMPOSE = """\
version: "3.7"
services:
  web:
    image: {httpd}
    ports: ["127.0.0.1:{port}:80"]
    volumes: ["site:/www"]
  probe:
    image: {busybox}
    command: ["sh", "-c", "while true; do wget -q -O /tmp/page http://web/ && cat /tmp/page; sleep 1; done"]
volumes:
  site:
"""


def compose(service: ApiService, project: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["docker-compose", "--ansi", "never", "-p", "app", *args], cwd=project, env=service.env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker-compose {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}\n"
            f"service log:\n{service.service_log()}"
        )
    return proc.stdout + proc.stderr


def test_compose_up_ps_logs_exec_down(api: ApiService, tmp_path: Path) -> None:
    port = free_port()
    project = tmp_path / "app"
    project.mkdir()
    (project / "docker-compose.yml").write_text(
        COMPOSE.format(httpd=HTTPD, busybox=BUSYBOX, port=port)
    )
    compose(api, project, "pull")
    compose(api, project, "up", "-d")
    page = wait_for("the web service", lambda: fetch(f"http://127.0.0.1:{port}/"), timeout=60)
    assert "rctl test httpd" in str(page)  # the named volume was filled from the image
    listed = compose(api, project, "ps")
    assert "app_web_1" in listed and "app_probe_1" in listed
    assert "Up" in listed
    wait_for(
        "the probe reaching web by name",
        lambda: "rctl test httpd" in compose(api, project, "logs", "probe"),
        timeout=60,
    )
    out = compose(api, project, "exec", "-T", "web", "cat", "/www/index.html")
    assert "rctl test httpd" in out
    compose(api, project, "down", "-v")
    assert api.docker("ps", "-aq").stdout.strip() == ""
    assert "app_site" not in api.docker("volume", "ls", "-q").stdout
    assert "app_default" not in api.docker("network", "ls", "--format", "{{.Name}}").stdout
