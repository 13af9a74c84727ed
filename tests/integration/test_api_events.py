"""``docker events`` against ``rctl system service``: a followed stream and a closed range."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time

from apikit import BUSYBOX, ApiService, api

__all__ = ["api"]


def read_until(
    proc: subprocess.Popen[bytes], action: str, timeout: float
) -> list[dict[str, object]]:
    """The events ``proc`` prints until one with ``action`` (or the timeout)."""
    assert proc.stdout is not None
    fd, buffered, seen = proc.stdout.fileno(), b"", []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        data = os.read(fd, 65536)
        if not data:
            break
        buffered += data
        *lines, buffered = buffered.split(b"\n")
        seen += [json.loads(line) for line in lines if line.strip()]
        if any(event.get("Action") == action for event in seen):
            break
    return seen


def test_events_followed_and_in_a_range(api: ApiService) -> None:
    api.docker("pull", BUSYBOX)
    began = time.time()
    follow = subprocess.Popen(
        ["docker", "events", "--format", "{{json .}}", "--filter", "type=container"],
        env=api.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        time.sleep(1.5)  # the stream is open before the container comes
        assert follow.poll() is None, follow.stderr.read() if follow.stderr else ""
        api.docker("run", "--name", "evented", BUSYBOX, "true")
        api.docker("rm", "evented")
        seen = read_until(follow, "destroy", 30)
    finally:
        follow.terminate()
        follow.wait(10)

    def name(event: dict[str, object]) -> object:
        actor = event.get("Actor")
        attributes = actor.get("Attributes") if isinstance(actor, dict) else None
        return attributes.get("name") if isinstance(attributes, dict) else None

    ours = [e for e in seen if name(e) == "evented"]
    actions = [str(e["Action"]) for e in ours]
    for wanted in ("create", "start", "die", "destroy"):
        assert wanted in actions, (seen, api.service_log())
    assert actions.index("create") < actions.index("start") < actions.index("destroy")
    assert all(e["Type"] == "container" for e in seen)

    ended = api.docker(
        "events", "--since", f"{began:.3f}", "--until", f"{time.time():.3f}",
        "--filter", "container=evented", "--format", "{{.Action}}", timeout=30,
    )  # fmt: skip
    assert ended.stdout.split() == actions, (ended.stdout, actions)

    bad = api.docker("events", "--since", "2030-01-01", "--until", "2020-01-01", check=False)
    assert bad.returncode != 0
    assert "since" in bad.stderr, bad.stderr
