"""``docker diff``, ``docker commit`` and ``docker export`` against ``rctl system service``."""

from __future__ import annotations

import io
import subprocess
import tarfile

from apikit import BUSYBOX, ApiService, api

__all__ = ["api"]


def test_diff_commit_export(api: ApiService) -> None:
    api.docker("run", "--name", "changed", BUSYBOX, "sh", "-c",
               "echo hi > /added; rm /bin/ls; echo x >> /etc/passwd")  # fmt: skip
    diff = set(api.docker("diff", "changed").stdout.splitlines())
    assert {"A /added", "D /bin/ls", "C /etc/passwd"} <= diff, (diff, api.service_log())

    made = api.docker(
        "commit", "-c", "ENV FROM_COMMIT=yes", "-m", "kept", "changed", "mine/committed:1"
    )
    image_id = made.stdout.strip()
    assert image_id.startswith("sha256:"), made.stdout
    shown = api.docker("inspect", "--format", "{{.Id}} {{json .Config.Env}}", "mine/committed:1")
    assert shown.stdout.startswith(image_id), shown.stdout
    assert "FROM_COMMIT=yes" in shown.stdout
    out = api.docker("run", "--rm", "mine/committed:1", "cat", "/added")
    assert out.stdout == "hi\n"

    exported = subprocess.run(
        ["docker", "export", "changed"], env=api.env, capture_output=True, check=True, timeout=120
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        names = set(tar.getnames())
        added = tar.extractfile("added")
        assert added is not None and added.read() == b"hi\n"
    assert "bin/ls" not in names and "bin/sh" in names

    missing = api.docker("export", "no-such-container", check=False)
    assert missing.returncode != 0 and "no such container" in missing.stderr.lower()


def test_system_prune(api: ApiService) -> None:
    api.docker("run", "--name", "stopped", BUSYBOX, "true")
    out = api.docker("system", "prune", "-f", timeout=120)
    assert "Total reclaimed space" in out.stdout, (out.stdout, api.service_log())
    assert api.docker("ps", "-aq").stdout.strip() == ""
    api.docker("builder", "prune", "-f", timeout=60)
