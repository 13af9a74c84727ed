"""The OCI runtime choice (rootless.containers.runtime, [engine] runtime, rctl doctor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rctlbase.errors import ProgramNotFound, UsageError
from rootless.config import Paths, load_settings
from rootless.containers.runtime import (
    choose_runtime,
    move_net_sysctls,
    parse_runtime,
    runtime_options,
)
from rootless.doctor import runtime_finding


def fake_program(bin_dir: Path, name: str, script: str = "echo $0 version 1.0") -> None:
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / name).chmod(0o755)


def test_runtime_names() -> None:
    assert parse_runtime("runc") == "runc"
    with pytest.raises(UsageError) as info:
        parse_runtime("nosuch")
    assert info.value.message == "--runtime: unknown OCI runtime 'nosuch'"
    assert runtime_options("crun") == ("--cgroup-manager=disabled",)
    assert runtime_options("/usr/bin/runc") == ()


def test_choose_runtime_is_the_flag_then_the_setting_and_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_program(tmp_path / "bin", "runc")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert choose_runtime("runc", "crun") == "runc"
    assert choose_runtime(None, "runc") == "runc"
    with pytest.raises(ProgramNotFound, match="crun is not installed"):
        choose_runtime(None, "crun")
    with pytest.raises(UsageError, match="unknown OCI runtime"):
        choose_runtime("nosuch", "runc")


def test_engine_runtime_setting(tmp_path: Path) -> None:
    paths = Paths(data=tmp_path / "d", runtime=tmp_path / "r", config=tmp_path / "c")
    paths.config.mkdir()
    assert load_settings(paths).runtime == "crun"
    (paths.config / "rctl.toml").write_text('[engine]\nruntime = "runc"\n')
    assert load_settings(paths).runtime == "runc"
    (paths.config / "rctl.toml").write_text('[engine]\nruntime = "kata"\n')
    with pytest.raises(UsageError, match=r"\[engine\] runtime: unknown OCI runtime 'kata'"):
        load_settings(paths)


def test_runc_gets_no_net_sysctls_the_launcher_sets_them() -> None:
    config = {"linux": {"sysctl": {"net.ipv4.ping_group_range": "0 65535"}}}
    assert move_net_sysctls(config, "crun") == ()
    assert config["linux"]["sysctl"] == {"net.ipv4.ping_group_range": "0 65535"}
    assert move_net_sysctls(config, "runc") == (("net.ipv4.ping_group_range", "0 65535"),)
    assert config == {"linux": {}}
    mixed = {"linux": {"sysctl": {"kernel.shmmax": "1", "net.core.somaxconn": "9"}}}
    assert move_net_sysctls(mixed, "runc") == (("net.core.somaxconn", "9"),)
    assert mixed == {"linux": {"sysctl": {"kernel.shmmax": "1"}}}


def test_doctor_checks_the_configured_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only runc installed: doctor passed (crun or runc); containers need crun."""
    bin_dir = tmp_path / "bin"
    fake_program(bin_dir, "runc")
    monkeypatch.setenv("PATH", str(bin_dir))
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    missing = runtime_finding(env)
    assert (missing.check, missing.ok, missing.detail) == (
        "OCI runtime (crun)",
        False,
        "not installed",
    )
    (tmp_path / "config" / "rctl").mkdir(parents=True)
    (tmp_path / "config" / "rctl" / "rctl.toml").write_text('[engine]\nruntime = "runc"\n')
    found = runtime_finding(env)
    assert found.ok and found.detail.endswith("version 1.0")
    fake_program(bin_dir, "runc", "exit 1")
    assert not runtime_finding(env).ok
