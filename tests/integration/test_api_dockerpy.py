"""docker-py 7.2 (the high-level client and the low-level APIClient) against rctl's API."""

from __future__ import annotations

import importlib
import io
import tarfile
from typing import Any

from apikit import BUSYBOX, ApiService, api

__all__ = ["api"]

docker: Any = importlib.import_module("docker")


def client(service: ApiService) -> Any:
    return docker.DockerClient(base_url=service.host, timeout=120)


def test_ping_version_info(api: ApiService) -> None:
    c = client(api)
    assert c.ping() is True
    assert c.version()["ApiVersion"] == "1.44"
    assert c.info()["Containers"] == 0
    assert c.api.api_version == "1.44"


def test_images(api: ApiService) -> None:
    c = client(api)
    image = c.images.pull(BUSYBOX)
    assert image.id.startswith("sha256:")
    assert BUSYBOX in image.tags
    assert c.images.get(BUSYBOX).id == image.id
    assert any(BUSYBOX in i.tags for i in c.images.list())
    image.tag("py/copy", "2")
    assert "py/copy:2" in c.images.get(image.id).tags
    c.images.remove("py/copy:2")
    assert image.history()
    try:
        c.images.get("no/such:image")
    except docker.errors.ImageNotFound:
        pass
    else:
        raise AssertionError("a missing image was found")


def test_containers_run_exec_logs_stop(api: ApiService) -> None:
    c = client(api)
    c.images.pull(BUSYBOX)
    assert c.containers.run(BUSYBOX, ["echo", "hi"], remove=True) == b"hi\n"
    box = c.containers.run(
        BUSYBOX, ["sh", "-c", "echo started; exec sleep 60"], detach=True, name="py",
        labels={"suite": "py"},
    )  # fmt: skip
    box.reload()
    assert box.status == "running"
    assert box.name == "py"
    assert [x.id for x in c.containers.list(filters={"label": "suite=py"})] == [box.id]
    code, out = box.exec_run(["sh", "-c", "echo in; echo err >&2; exit 2"])
    assert (code, out) == (2, b"in\nerr\n")
    code, out = box.exec_run(["cat", "/etc/hostname"], demux=True)
    assert code == 0 and out[0].strip()
    stream = box.logs(stream=True, follow=True)
    assert next(stream) == b"started\n"
    stream.close()
    box.stop(timeout=1)
    box.reload()
    assert box.status == "exited"
    assert box.wait()["StatusCode"] in (137, 143)
    box.remove()
    assert c.containers.list(all=True) == []


def test_low_level_api_client(api: ApiService) -> None:
    low = docker.APIClient(base_url=api.host, version="1.41")
    lines = list(low.pull(BUSYBOX, stream=True, decode=True))
    assert lines and all("error" not in line for line in lines), lines
    assert lines[-1]["status"].startswith("Status:")
    made = low.create_container(BUSYBOX, ["sh", "-c", "echo a; echo b >&2"])
    output = low.attach(made["Id"], stream=True, demux=True)
    low.start(made["Id"])
    got = list(output)
    assert low.wait(made["Id"])["StatusCode"] == 0
    assert (b"a\n", None) in got and (None, b"b\n") in got, got
    assert low.inspect_container(made["Id"])["State"]["ExitCode"] == 0
    low.remove_container(made["Id"])


def test_volumes_and_networks(api: ApiService) -> None:
    c = client(api)
    volume = c.volumes.create("pyvol", labels={"k": "v"})
    assert volume.name == "pyvol"
    assert c.volumes.get("pyvol").attrs["Labels"] == {"k": "v"}
    assert "pyvol" in [v.name for v in c.volumes.list()]
    volume.remove()
    net = c.networks.create("pynet", labels={"k": "v"})
    assert c.networks.get("pynet").name == "pynet"
    assert "pynet" in [n.name for n in c.networks.list()]
    net.remove()


def test_put_archive(api: ApiService) -> None:
    c = client(api)
    c.images.pull(BUSYBOX)
    box = c.containers.run(BUSYBOX, ["sleep", "300"], detach=True)
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w") as tar:
        info = tarfile.TarInfo("put/file")
        info.size, info.uid = 3, 4242
        tar.addfile(info, io.BytesIO(b"put"))
    assert box.put_archive("/tmp", body.getvalue()) is True
    assert box.exec_run(["cat", "/tmp/put/file"]).output == b"put"
    unsafe = io.BytesIO()
    with tarfile.open(fileobj=unsafe, mode="w") as tar:
        info = tarfile.TarInfo("../../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    try:
        box.put_archive("/tmp", unsafe.getvalue())
    except docker.errors.APIError as exc:
        assert exc.status_code == 400 and "unsafe" in str(exc)
    else:
        raise AssertionError("an unsafe archive was accepted")
    assert box.exec_run(["ls", "/escaped"]).exit_code != 0
    box.remove(force=True)


def test_registry_auth_header_and_login(api: ApiService) -> None:
    c = client(api)
    # The test registry is anonymous: valid credentials are passed on and not refused.
    login = c.login("someone", "secret", registry="127.0.0.1:5000")
    assert login["Status"] == "Login Succeeded"
    config = {"username": "someone", "password": "secret"}
    pulled = list(c.api.pull(BUSYBOX, auth_config=config, stream=True, decode=True))
    assert any("Digest" in line.get("status", "") for line in pulled), pulled
    pushed = list(c.api.push(BUSYBOX, auth_config=config, stream=True, decode=True))
    assert not any("error" in line for line in pushed), pushed
    url = c.api._url("/images/create")
    bad = c.api._post(url, params={"fromImage": BUSYBOX}, headers={"X-Registry-Auth": "%%"})
    assert bad.status_code == 400, bad.text
    assert "X-Registry-Auth" in bad.json()["message"]
    assert c.ping() is True
