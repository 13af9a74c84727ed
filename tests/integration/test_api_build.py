"""``POST /build`` through the docker CLI's classic builder, docker-py and docker-compose."""

from __future__ import annotations

import importlib
import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from apikit import BUSYBOX, ApiService, api

__all__ = ["api"]

docker: Any = importlib.import_module("docker")

DOCKERFILE = f"""\
FROM {BUSYBOX}
ARG GREETING=unset
COPY message /message
RUN echo "run saw $GREETING" && echo "$GREETING" > /greeting
CMD ["cat", "/message", "/greeting"]
"""


def classic_build(
    service: ApiService, context: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "build", *args, str(context)], capture_output=True, text=True, timeout=300,
        env={**service.env, "DOCKER_BUILDKIT": "0"}, check=False,
    )  # fmt: skip


def test_docker_build_tags_runs_and_fails(api: ApiService, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "message").write_text("copied\n")
    built = classic_build(api, context, "-t", "mine/built:1", "-t", "mine/built:2",
                          "--build-arg", "GREETING=hello", "--label", "made=api")  # fmt: skip
    assert built.returncode == 0, (built.stdout, built.stderr, api.service_log())
    assert "Step 1/5 : FROM" in built.stdout
    assert "run saw hello" in built.stdout  # a RUN step's output, streamed
    assert "Successfully built" in built.stdout
    assert "Successfully tagged mine/built:1" in built.stdout
    out = api.docker("run", "--rm", "mine/built:2")
    assert out.stdout == "copied\nhello\n"
    label = api.docker("inspect", "--format", "{{.Config.Labels.made}}", "mine/built:1")
    assert label.stdout.strip() == "api"

    quiet = classic_build(api, context, "-q", "-t", "mine/built:1")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip().startswith("sha256:"), quiet.stdout

    (context / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN echo about to fail && exit 3\n")
    failed = classic_build(api, context, "-t", "mine/failed")
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert "about to fail" in failed.stdout
    assert "exited with status 3" in failed.stderr, failed.stderr
    assert api.docker("images", "-q", "mine/failed").stdout.strip() == ""
    assert api.alive()


def test_docker_py_build_from_fileobj(api: ApiService) -> None:
    client = docker.DockerClient(base_url=api.host, timeout=300)
    dockerfile = io.BytesIO(f"FROM {BUSYBOX}\nRUN echo py > /py\n".encode())
    image, logs = client.images.build(fileobj=dockerfile, tag="py/built:1", rm=True)
    assert "py/built:1" in image.tags
    assert any("Step 2/2" in line.get("stream", "") for line in logs)
    assert client.containers.run("py/built:1", ["cat", "/py"], remove=True) == b"py\n"

    broken = io.BytesIO(f"FROM {BUSYBOX}\nRUN false\n".encode())
    try:
        client.images.build(fileobj=broken, tag="py/broken")
    except docker.errors.BuildError as exc:
        assert "exited with status 1" in str(exc)
    else:
        raise AssertionError("a failing RUN built an image")

    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w") as tar:
        info = tarfile.TarInfo("../outside")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    body.seek(0)
    try:
        list(client.api.build(fileobj=body, custom_context=True, decode=True))
    except docker.errors.APIError as exc:
        assert exc.status_code == 400 and "unsafe" in str(exc)
    else:
        raise AssertionError("an unsafe context was accepted")


def test_compose_build(api: ApiService, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN echo composed > /c\n")
    (project / "docker-compose.yml").write_text(
        'version: "3.7"\nservices:\n  app:\n    build: ./app\n    image: proj/app:1\n'
    )
    proc = subprocess.run(
        ["docker-compose", "--ansi", "never", "-p", "proj", "build"], cwd=project,
        env=api.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout, proc.stderr, api.service_log())
    assert "Successfully built" in proc.stdout + proc.stderr
    assert api.docker("run", "--rm", "proj/app:1", "cat", "/c").stdout == "composed\n"
