"""Images made from containers (``rctl diff``, ``rctl commit``) and from Dockerfiles
(``rctl build``), as uid 1000 against the local registry's images."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
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
    # The runtime's mount points (busybox has no /etc/hosts) are not the container's.
    assert not [line for line in lines if line.endswith(("/etc/hosts", "/etc/resolv.conf"))]


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


DEBIAN = "127.0.0.1:5000/test/debian"
NOTES = f"""\
FROM {DEBIAN}
WORKDIR /code
ADD requirements.txt /code/
RUN python3 -c "print(open('requirements.txt').read().strip())" > /code/installed.txt
ADD . /code
CMD ["python3", "app.py"]
"""
APP = "print('hello from', open('installed.txt').read().strip())\n"


def notes_context(tmp_path: Path) -> Path:
    context = tmp_path / "app"
    context.mkdir()
    (context / "Dockerfile").write_text(NOTES)
    (context / "requirements.txt").write_text("flask\n")
    (context / "app.py").write_text(APP)
    return context


def test_the_notes_dockerfile_builds_and_runs(rctl: Rctl, tmp_path: Path) -> None:
    context = notes_context(tmp_path)
    out = rctl("build", "-t", "localhost/notes", str(context))
    assert "STEP 4/6: RUN python3 -c" in out.stdout
    assert "Successfully tagged localhost/notes" in out.stdout
    assert rctl("run", "--rm", "localhost/notes").stdout == "hello from flask\n"
    history = rctl("history", "--no-trunc", "localhost/notes").stdout
    assert "WORKDIR /code" in history and "RUN python3 -c" in history


def test_rebuild_uses_the_cache_and_a_changed_file_reruns_from_its_step(
    rctl: Rctl, tmp_path: Path
) -> None:
    context = notes_context(tmp_path)
    first = rctl("build", "-q", str(context)).stdout.strip()
    again = rctl("build", str(context)).stdout
    assert again.count("--> Using cache") == 5
    assert again.strip().endswith(first.removeprefix("sha256:"))
    (context / "app.py").write_text(APP.replace("hello", "bye"))
    changed = rctl("build", "-t", "localhost/changed", str(context)).stdout
    assert changed.count("--> Using cache") == 3  # WORKDIR, ADD requirements, RUN
    assert rctl("run", "--rm", "localhost/changed").stdout == "bye from flask\n"
    os.utime(context / "requirements.txt", (1, 1))  # a touch does not invalidate
    touched = rctl("build", str(context)).stdout
    assert touched.count("--> Using cache") == 5


def test_multi_stage_builds_only_the_stages_needed(rctl: Rctl, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"""\
ARG BASE={BUSYBOX}
FROM $BASE AS builder
RUN mkdir /out && echo built > /out/result && chmod 600 /out/result
FROM $BASE AS broken
RUN exit 3
FROM $BASE
COPY --from=builder --chown=1000:1000 /out/result /srv/
CMD ["cat", "/srv/result"]
""")
    out = rctl("build", "-t", "localhost/multi", str(tmp_path))
    assert "RUN exit 3" not in out.stdout
    assert rctl("run", "--rm", "localhost/multi").stdout == "built\n"
    owner = rctl("run", "--rm", "localhost/multi", "stat", "-c", "%u:%g", "/srv/result")
    assert owner.stdout.strip() == "1000:1000"
    target = rctl("build", "--target", "builder", "-t", "localhost/stage1", str(tmp_path))
    assert "RUN exit 3" not in target.stdout
    assert rctl("run", "--rm", "localhost/stage1", "cat", "/out/result").stdout == "built\n"


def test_a_failing_run_exits_1_tags_nothing_and_leaves_no_container(
    rctl: Rctl, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN echo about to fail; exit 7\n")
    out = rctl("build", "-t", "localhost/failed", str(tmp_path), check=False)
    assert out.returncode == 1
    assert "about to fail" in out.stdout
    assert "exited with status 7" in out.stderr
    assert "localhost/failed" not in rctl("images").stdout
    assert rctl("ps", "-a", "-q").stdout.strip() == ""


def test_dockerignore_with_exceptions(rctl: Rctl, tmp_path: Path) -> None:
    tmp_path = tmp_path / "context"
    tmp_path.mkdir()
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nCOPY . /ctx/\n")
    (tmp_path / ".dockerignore").write_text("*.log\n!keep.log\nsecret/\n")
    for name in ("a.log", "keep.log", "app.txt"):
        (tmp_path / name).write_text(name)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key").write_text("key")
    rctl("build", "-t", "localhost/ignored", str(tmp_path))
    listing = rctl("run", "--rm", "localhost/ignored", "ls", "-A", "/ctx").stdout.split()
    assert sorted(listing) == [".dockerignore", "Dockerfile", "app.txt", "keep.log"]


def test_config_instructions_heredocs_and_build_args(rctl: Rctl, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"""\
FROM {BUSYBOX}
ARG GREETING=hello
ENV A=1 B="two words"
ENV C=$A-${{GREETING}}
LABEL org.example.role="test" version=1
EXPOSE 8080 53/udp
USER 1000:1000
WORKDIR /home/app
COPY --chmod=0755 <<EOF /home/app/run.sh
#!/bin/sh
echo "$GREETING from the heredoc"
EOF
RUN <<EOF
echo "$GREETING" > /tmp/greeting
EOF
ENTRYPOINT ["/home/app/run.sh"]
""")
    rctl("build", "--build-arg", "GREETING=hi", "-t", "localhost/config", str(tmp_path))
    config = inspect(rctl, "localhost/config")["Config"]
    assert {"A=1", "B=two words", "C=1-hi"} <= set(config["Env"])
    assert config["Labels"] == {"org.example.role": "test", "version": "1"}
    assert set(config["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/home/app"
    assert rctl("run", "--rm", "localhost/config").stdout == "hi from the heredoc\n"
    greeting = rctl("run", "--rm", "--entrypoint", "cat", "localhost/config", "/tmp/greeting")
    assert greeting.stdout == "hi\n"


def test_stopsignal_and_a_dockerfile_on_stdin(rctl: Rctl) -> None:
    text = f"FROM {BUSYBOX}\nSTOPSIGNAL SIGINT\n".encode()
    image = rctl("build", "-q", "-", input_data=text).stdout.decode().strip()
    assert inspect(rctl, image)["Config"]["StopSignal"] == "SIGINT"
    # The unit's KillSignal= reaches the attached run's output copier too: it must drain
    # the container's output whatever the signal (SIGINT lost it every other run).
    for _ in range(8):
        assert rctl("run", "--rm", image, "echo", "hello").stdout == "hello\n"


def test_a_symlink_in_the_context_is_copied_as_a_link(rctl: Rctl, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nCOPY link /copied\n")
    (tmp_path / "link").symlink_to("/etc/shadow")
    rctl("build", "-t", "localhost/link", str(tmp_path))
    out = rctl("run", "--rm", "localhost/link", "stat", "-c", "%N", "/copied")
    assert out.stdout == "'/copied' -> '/etc/shadow'\n"
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nCOPY ../x /x\n")
    refused = rctl("build", str(tmp_path), check=False)
    assert refused.returncode == 125 and "outside the build context" in refused.stderr


def test_cache_mounts_persist_and_secrets_stay_out_of_layers(rctl: Rctl, tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    secret = tmp_path / "token"
    secret.write_text("s3cret-value")
    (context / "Dockerfile").write_text(f"""\
FROM {BUSYBOX}
ARG RUN_ID
RUN --mount=type=cache,target=/cache echo "$RUN_ID" >> /cache/runs && cat /cache/runs > /seen
RUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /length
""")
    rctl("build", "--build-arg", "RUN_ID=one", "--secret", f"id=token,src={secret}", str(context))
    rctl("build", "--build-arg", "RUN_ID=two", "--secret", f"id=token,src={secret}",
         "-t", "localhost/mounts", str(context))  # fmt: skip
    assert rctl("run", "--rm", "localhost/mounts", "cat", "/seen").stdout == "one\ntwo\n"
    assert rctl("run", "--rm", "localhost/mounts", "cat", "/length").stdout.strip() == "12"
    listing = rctl("run", "--rm", "localhost/mounts", "ls", "-A", "/run/secrets", check=False)
    assert "token" not in listing.stdout
    for blob in (rctl.data / "blobs" / "sha256").iterdir():
        assert b"s3cret-value" not in blob.read_bytes()
    assert "s3cret-value" not in rctl("history", "--no-trunc", "localhost/mounts").stdout


def test_an_interrupted_build_leaves_no_container_and_the_next_one_works(
    rctl: Rctl, tmp_path: Path
) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN echo started; sleep 60\n")
    for signum in (signal.SIGINT, signal.SIGKILL):
        proc = rctl.popen("build", str(tmp_path / "ctx"))
        assert proc.stdout is not None
        while "started" not in proc.stdout.readline():
            pass
        proc.send_signal(signum)
        proc.wait(timeout=60)
        assert proc.returncode != 0
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN echo done\n")
    rctl("build", str(tmp_path / "ctx"))
    assert rctl("ps", "-a", "-q").stdout.strip() == ""


def test_onbuild_triggers_run_in_a_child_build(rctl: Rctl, tmp_path: Path) -> None:
    parent, child = tmp_path / "parent", tmp_path / "child"
    parent.mkdir()
    child.mkdir()
    (parent / "Dockerfile").write_text(f"FROM {BUSYBOX}\nONBUILD COPY hello.txt /hello.txt\n")
    rctl("build", "-t", "localhost/onbuild-base", str(parent))
    (child / "Dockerfile").write_text('FROM localhost/onbuild-base\nCMD ["cat", "/hello.txt"]\n')
    (child / "hello.txt").write_text("triggered\n")
    out = rctl("build", "-t", "localhost/onbuild-child", str(child)).stdout
    assert "Running ONBUILD trigger: COPY hello.txt /hello.txt" in out
    assert rctl("run", "--rm", "localhost/onbuild-child").stdout == "triggered\n"
    assert inspect(rctl, "localhost/onbuild-child")["Config"].get("OnBuild") in (None, [])


def test_a_built_image_is_pushed_and_read_back_by_skopeo(rctl: Rctl, tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(
        f'FROM {BUSYBOX}\nRUN echo pushed > /pushed\nCMD ["cat", "/pushed"]\n'
    )
    image = rctl("build", "-q", "-t", "localhost/topush", str(tmp_path / "ctx")).stdout.strip()
    rctl("push", "localhost/topush", "127.0.0.1:5000/build/pushed:latest")
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--config",
         "docker://127.0.0.1:5000/build/pushed:latest"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    config = json.loads(out.stdout)
    assert config["config"]["Cmd"] == ["cat", "/pushed"]
    rctl("rmi", "-f", image)
    pulled = rctl("run", "--rm", "127.0.0.1:5000/build/pushed:latest")
    assert pulled.stdout == "pushed\n"


def test_a_run_of_a_missing_program_fails_the_build_with_1(rctl: Rctl, tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f'FROM {BUSYBOX}\nRUN ["no-such-program"]\n')
    out = rctl("build", str(tmp_path / "ctx"), check=False)
    assert out.returncode == 1
    assert "no-such-program" in out.stderr


@pytest.mark.parametrize("driver", ["overlay", "fuse-overlayfs", "vfs"])
def test_each_storage_driver_builds_layers_with_owners_and_whiteouts(
    rctl: Rctl, tmp_path: Path, driver: str
) -> None:
    config = Path(rctl.env["XDG_CONFIG_HOME"]) / "rctl"
    config.mkdir(parents=True, exist_ok=True)
    (config / "rctl.toml").write_text(f'[storage]\ndriver = "{driver}"\n')
    (tmp_path / "files").mkdir()
    for name in ("a", "b"):
        (tmp_path / "files" / name).write_text(f"file {name}\n")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BUSYBOX} AS one\n"
        "RUN mkdir /d && echo run > /d/f && chown 7:8 /d/f\n"
        f"FROM {BUSYBOX}\n"
        "COPY files /data/\n"
        "COPY --chown=5:6 files/a /owned\n"
        "COPY --from=one --chown=7:8 /d/f /copied\n"
        "RUN rm /etc/group /data/a && echo x > /data/c && chown 9:9 /data/c\n"
    )
    rctl("build", "-q", "-t", "localhost/drivers", str(tmp_path))
    out = rctl("run", "--rm", "localhost/drivers", "sh", "-c",
               "ls /data; stat -c '%n %u:%g' /owned /copied /data/c; cat /copied;"
               " ls /etc/group 2>/dev/null || echo gone").stdout.splitlines()  # fmt: skip
    assert out == ["b", "c", "/owned 5:6", "/copied 7:8", "/data/c 9:9", "run", "gone"], out
    # Every layer was renamed into place: no unpack left half-done.
    assert list(rctl.data.glob("layers/*/.tmp-*")) == []
