"""The builder's pure parts: COPY planning from a hostile context, checksums, stage
selection, config instructions, cache keys."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from rctlbase.errors import UsageError
from rootless.build.dockerfile import parse_dockerfile
from rootless.build.ignore import IgnoreRules, parse_ignore
from rootless.build.instructions import StageVars, apply_arg, apply_config
from rootless.build.plan import cache_key, plan_stages
from rootless.build.sources import Owner, checksum, plan_copy, write_layer

NONE = IgnoreRules()


def no_dir(_path: str) -> bool:
    return False


def context(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "main.py").write_text("main")
    (root / "src" / "pkg" / "mod.py").write_text("mod")
    (root / "req.txt").write_text("flask\n")
    return root


def dests(entries: list[Any]) -> list[str]:
    return [entry.dest for entry in entries]


def test_a_directory_copies_its_contents(tmp_path: Path) -> None:
    entries = plan_copy(context(tmp_path), ["src"], "/app", "/", NONE, chmod=None, is_dir=no_dir)
    assert dests(entries) == ["app", "app/main.py", "app/pkg", "app/pkg/mod.py"]


def test_a_file_lands_in_a_directory_or_becomes_the_destination(tmp_path: Path) -> None:
    root = context(tmp_path)
    assert dests(plan_copy(root, ["req.txt"], "/code/", "/", NONE, chmod=None,
                           is_dir=no_dir)) == ["code/req.txt"]  # fmt: skip
    assert dests(plan_copy(root, ["req.txt"], "r.txt", "/code", NONE, chmod=None,
                           is_dir=no_dir)) == ["code/r.txt"]  # fmt: skip
    assert dests(plan_copy(root, ["req.txt"], "/code", "/", NONE, chmod=None,
                           is_dir=lambda p: p == "code")) == ["code/req.txt"]  # fmt: skip


def test_globs_and_ignored_files(tmp_path: Path) -> None:
    root = context(tmp_path)
    rules = parse_ignore("src/pkg\n")
    entries = plan_copy(root, ["src/*"], "/app/", "/", rules, chmod=None, is_dir=no_dir)
    assert dests(entries) == ["app/main.py"]


@pytest.mark.parametrize("source", ["/etc/passwd", "../outside", "src/../../x"])
def test_sources_outside_the_context_are_refused(tmp_path: Path, source: str) -> None:
    with pytest.raises(UsageError, match=r"absolute|outside the build context"):
        plan_copy(context(tmp_path), [source], "/x", "/", NONE, chmod=None, is_dir=no_dir)


def test_a_link_is_copied_as_a_link_and_never_walked_through(tmp_path: Path) -> None:
    root = context(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host")
    (root / "escape").symlink_to(outside)
    entries = plan_copy(root, ["escape"], "/e", "/", NONE, chmod=None, is_dir=no_dir)
    assert [(e.dest, e.kind, e.linkname) for e in entries] == [("e", "symlink", str(outside))]
    with pytest.raises(UsageError, match="not in the build context"):
        plan_copy(root, ["escape/secret"], "/s", "/", NONE, chmod=None, is_dir=no_dir)


def test_fifos_are_refused(tmp_path: Path) -> None:
    root = context(tmp_path)
    os.mkfifo(root / "pipe")
    with pytest.raises(UsageError, match="neither a file"):
        plan_copy(root, ["."], "/x/", "/", NONE, chmod=None, is_dir=no_dir)


def test_missing_sources_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not in the build context"):
        plan_copy(context(tmp_path), ["nope*"], "/x/", "/", NONE, chmod=None, is_dir=no_dir)


def test_checksum_ignores_times_but_not_content_or_owner(tmp_path: Path) -> None:
    root = context(tmp_path)

    def sums(owner: Owner | None = None) -> str:
        entries = plan_copy(root, ["."], "/a/", "/", NONE, chmod=None, is_dir=no_dir)
        return checksum(entries, owner or Owner())

    first = sums()
    os.utime(root / "req.txt", (1, 1))
    assert sums() == first
    assert sums(Owner(1000, 1000)) != first
    (root / "req.txt").write_text("django\n")
    assert sums() != first


def test_layer_has_the_owner_and_mode_asked(tmp_path: Path) -> None:
    root = context(tmp_path)
    out = io.BytesIO()
    entries = plan_copy(root, ["req.txt"], "/r", "/", NONE, chmod=0o600, is_dir=no_dir,
                        owner=Owner(7, 8), out=out)  # fmt: skip
    assert checksum(entries, Owner(7, 8)) != checksum(entries, Owner())
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.uid, member.gid, member.mode) == ("r", 7, 8, 0o600)
        handle = tar.extractfile(member)
        assert handle is not None and handle.read() == b"flask\n"


STAGES = """\
ARG BASE=busybox
FROM $BASE AS build
RUN make
FROM $BASE AS test
RUN make test
FROM build AS assets
RUN make assets
FROM $BASE
COPY --from=assets /out /srv
COPY --from=1 /report /
"""


def test_only_the_stages_needed_are_planned() -> None:
    parsed = parse_dockerfile(STAGES)
    assert [s.index for s in plan_stages(parsed, None, {"BASE": "busybox"})] == [0, 1, 2, 3]
    assert [s.index for s in plan_stages(parsed, "assets", {"BASE": "busybox"})] == [0, 2]
    assert [s.index for s in plan_stages(parsed, "build", {})] == [0]
    with pytest.raises(UsageError, match="no build stage named 'nope'"):
        plan_stages(parsed, "nope", {})


def config_after(text: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    parsed = parse_dockerfile("FROM x\n" + text)
    config = config if config is not None else {}
    vars_ = StageVars()
    for instruction in parsed.stages[0].instructions:
        if instruction.keyword == "ARG":
            apply_arg(instruction, vars_, dict(vars_.args), {"V": "given"}, "\\")
        else:
            apply_config(instruction, config, vars_, "\\")
    return config


def test_env_values_are_those_before_the_instruction() -> None:
    config = config_after("ENV a=1\nENV a=2 b=$a\n")
    assert config["Env"] == ["a=2", "b=1"]


def test_env_legacy_form_and_quotes() -> None:
    assert config_after('ENV greeting hello "world"\n')["Env"] == ["greeting=hello world"]


def test_args_defaults_and_build_args() -> None:
    config = config_after("ARG V=default\nARG W=w\nENV v=$V w=$W\n")
    assert config["Env"] == ["v=given", "w=w"]


def test_cmd_entrypoint_shell_and_base_cmd_reset() -> None:
    config = config_after('SHELL ["/bin/bash", "-c"]\nENTRYPOINT run it\n', {"Cmd": ["sh"]})
    assert config["Entrypoint"] == ["/bin/bash", "-c", "run it"]
    assert config["Cmd"] is None
    kept = config_after('CMD ["a"]\nENTRYPOINT ["b"]\n')
    assert kept["Cmd"] == ["a"] and kept["Entrypoint"] == ["b"]


def test_workdir_is_relative_to_the_previous() -> None:
    assert config_after("WORKDIR /a\nWORKDIR b\nWORKDIR ../c\n")["WorkingDir"] == "/a/c"


def test_healthcheck_and_bad_values() -> None:
    config = config_after("HEALTHCHECK --interval=1m30s --retries=2 CMD curl -f http://x/\n")
    assert config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f http://x/"], "Interval": 90 * 10**9, "Retries": 2,
    }  # fmt: skip
    with pytest.raises(UsageError, match="not a duration"):
        config_after("HEALTHCHECK --interval=soon CMD true\n")
    with pytest.raises(UsageError, match="invalid port"):
        config_after("EXPOSE eighty\n")


def test_cache_key_depends_on_parent_text_args_and_content() -> None:
    base = cache_key("sha256:a", "RUN make", {"V": "1"}, "c")
    assert base == cache_key("sha256:a", "RUN make", {"V": "1"}, "c")
    assert base != cache_key("sha256:b", "RUN make", {"V": "1"}, "c")
    assert base != cache_key("sha256:a", "RUN make all", {"V": "1"}, "c")
    assert base != cache_key("sha256:a", "RUN make", {"V": "2"}, "c")
    assert base != cache_key("sha256:a", "RUN make", {"V": "1"}, "d")


def test_run_mounts(tmp_path: Path) -> None:
    from rootless.build.mounts import parse_secrets, plan_mounts  # noqa: PLC0415

    root = context(tmp_path)
    secret = tmp_path / "token"
    secret.write_text("s3cret")
    secrets = parse_secrets((f"id=token,src={secret}",))
    planned = plan_mounts(
        ["type=cache,target=/root/.cache", "type=tmpfs,target=scratch",
         "type=secret,id=token", "type=bind,source=src,target=/src"],
        root, tmp_path / "caches", secrets, "/work",
    )  # fmt: skip
    assert planned.tmpfs == ("/work/scratch:rw",)
    assert planned.targets == ("/root/.cache", "/work/scratch", "/run/secrets/token", "/src")
    assert planned.mounts[1] == f"type=bind,src={secret},dst=/run/secrets/token,readonly"
    assert "s3cret" not in planned.key and "token" in planned.key
    assert planned.mounts[0].startswith(f"type=bind,src={tmp_path / 'caches'}/")
    again = plan_mounts(["type=cache,target=/root/.cache"], root, tmp_path / "caches", {}, "/")
    assert again.mounts == planned.mounts[:1]


def test_run_mounts_refuse_escapes_and_missing_required_secrets(tmp_path: Path) -> None:
    from rootless.build.mounts import plan_mounts  # noqa: PLC0415

    root = context(tmp_path)
    (root / "out").symlink_to(tmp_path)
    with pytest.raises(UsageError, match="outside the build context"):
        plan_mounts(["type=bind,source=out,target=/x"], root, tmp_path, {}, "/")
    with pytest.raises(UsageError, match="required"):
        plan_mounts(["type=secret,id=k,required"], root, tmp_path, {}, "/")


def test_an_ignored_directory_is_written_only_for_its_exceptions(tmp_path: Path) -> None:
    root = context(tmp_path)
    (root / "data").mkdir()
    (root / "data" / "keep.txt").write_text("k")
    (root / "data" / "drop.txt").write_text("d")
    (root / "empty").mkdir()
    rules = parse_ignore("data\nempty\n!data/keep.txt\n")
    out = io.BytesIO()
    entries = plan_copy(root, ["."], "/c/", "/", rules, chmod=None, is_dir=no_dir, out=out)
    names = [e for e in dests(entries) if e.startswith(("c/data", "c/empty"))]
    assert names == ["c/data", "c/data/keep.txt"]
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert [m.name for m in tar.getmembers()] == dests(entries)


def test_heredoc_layers_and_context_files_are_apart() -> None:
    from rootless.build.sources import heredoc_entry  # noqa: PLC0415

    out = io.BytesIO()
    write_layer([heredoc_entry("/etc/x", "/", b"hi\n", None)], Owner(), out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        member = tar.getmember("etc/x")
        handle = tar.extractfile(member)
        assert handle is not None and handle.read() == b"hi\n"
