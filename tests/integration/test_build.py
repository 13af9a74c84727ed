"""Images made from containers (``rctl diff``, ``rctl commit``) and from Dockerfiles
(``rctl build``), as uid 1000 against the local registry's images."""

from __future__ import annotations

import json
from typing import Any

from hostkit import Rctl

BUSYBOX = "127.0.0.1:5000/test/busybox"


def inspect(rctl: Rctl, name: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(rctl("image", "inspect", name).stdout)
    return data[0]


def test_diff_lists_added_changed_and_deleted_paths(rctl: Rctl) -> None:
    rctl("run", "--name", "d1", BUSYBOX, "sh", "-c",
         "echo new > /etc/new && echo x >> /etc/passwd && rm /etc/group && mkdir /tmp/dir")  # fmt: skip
    lines = rctl("diff", "d1").stdout.splitlines()
    assert "A /etc/new" in lines
    assert "C /etc/passwd" in lines
    assert "D /etc/group" in lines
    assert "C /etc" in lines
    assert "A /tmp/dir" in lines or "A /tmp" in lines


def test_commit_makes_a_runnable_image_with_changes_and_history(rctl: Rctl) -> None:
    rctl("run", "--name", "c1", BUSYBOX, "sh", "-c",
         "echo committed > /greeting && rm /etc/group")  # fmt: skip
    image_id = rctl(
        "commit", "-c", 'CMD ["cat", "/greeting"]', "-c", "ENV MODE=test", "-m", "by hand",
        "-a", "Jane", "c1", "localhost/committed:v1",
    ).stdout.strip()  # fmt: skip
    assert image_id.startswith("sha256:")
    info = inspect(rctl, "localhost/committed:v1")
    assert info["Id"] == image_id
    assert info["Config"]["Cmd"] == ["cat", "/greeting"]
    assert "MODE=test" in info["Config"]["Env"]
    assert info["Author"] == "Jane"
    assert rctl("run", "--rm", "localhost/committed:v1").stdout == "committed\n"
    gone = rctl("run", "--rm", "localhost/committed:v1", "ls", "/etc/group", check=False)
    assert gone.returncode != 0
    history = rctl("history", "--no-trunc", "localhost/committed:v1").stdout
    assert "by hand" in history


def test_commit_of_a_running_container_pauses_it_and_it_goes_on(rctl: Rctl) -> None:
    rctl("run", "-d", "--name", "r1", BUSYBOX, "sh", "-c", "echo hi > /hi; sleep 300")
    rctl("commit", "r1", "localhost/running")
    state = rctl("inspect", "--format", "{{.State.Status}}", "r1").stdout.strip()
    assert state == "running"
    assert rctl("run", "--rm", "localhost/running", "cat", "/hi").stdout == "hi\n"
    rctl("rm", "-f", "r1")


def test_commit_of_an_unknown_container_is_one_error_line(rctl: Rctl) -> None:
    out = rctl("commit", "nosuch", check=False)
    assert out.returncode == 125
    assert out.stderr.startswith("Error: ")
