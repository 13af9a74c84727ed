"""rctl's directories (owner-only, refused when another user could write them) and
rctl.toml (every key's type checked, unknown tables and keys refused)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rctlbase.errors import HostError, UsageError
from rootless.cli import main
from rootless.config import Paths, Settings, ensure_private_dir, load_settings

OTHER_UID = os.getuid() + 4242


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# ---- directories -------------------------------------------------------------------------


def test_without_xdg_runtime_dir_the_fallback_is_rctls_own(tmp_path: Path) -> None:
    paths = Paths.from_env({"HOME": str(tmp_path)})
    assert paths.runtime_top == Path(f"/tmp/rctl-{os.getuid()}")
    assert paths.runtime == paths.runtime_top / "rctl"
    with_xdg = Paths.from_env({"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)})
    assert with_xdg.runtime_top is None
    assert with_xdg.runtime == tmp_path / "rctl"


def test_the_runtime_fallback_is_made_owner_only(tmp_path: Path) -> None:
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /tmp: world-writable and sticky, above what is rctl's
    paths = Paths(tmp_path / "data", sticky / "rctl-1" / "rctl", tmp_path, sticky / "rctl-1")
    assert paths.ensure_runtime() == sticky / "rctl-1" / "rctl"
    assert mode(sticky / "rctl-1") == 0o700
    assert mode(sticky / "rctl-1" / "rctl") == 0o700


def test_a_runtime_fallback_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = tmp_path / "rctl-1"
    (top / "rctl").mkdir(parents=True, mode=0o700)
    top.chmod(0o700)
    monkeypatch.setattr(os, "getuid", lambda: OTHER_UID)  # the directory is someone else's
    paths = Paths(tmp_path / "data", top / "rctl", tmp_path, top)
    with pytest.raises(HostError, match=rf"{top} belongs to uid \d+, not to you") as caught:
        paths.ensure_runtime()
    assert "XDG_RUNTIME_DIR" in (caught.value.hint or "")


def test_a_runtime_fallback_that_others_can_write_is_refused(tmp_path: Path) -> None:
    top = tmp_path / "rctl-1"
    top.mkdir()
    top.chmod(0o777)  # made by someone else, or chmod'ed: they could swap what is inside
    paths = Paths(tmp_path / "data", top / "rctl", tmp_path, top)
    with pytest.raises(HostError, match="can be written by other users"):
        paths.ensure_runtime()
    assert not (top / "rctl").exists()  # nothing made below a refused directory


def test_a_symlink_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "rctl-1").symlink_to(target)
    monkeypatch.setattr(os, "getuid", lambda: OTHER_UID)
    with pytest.raises(HostError, match="is a symbolic link of uid"):
        ensure_private_dir(tmp_path / "rctl-1" / "rctl", tmp_path / "rctl-1")


def test_the_users_own_symlink_to_a_private_directory_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "disk"
    target.mkdir(mode=0o700)
    (tmp_path / "rctl").symlink_to(target)
    assert ensure_private_dir(tmp_path / "rctl") == tmp_path / "rctl"
    group_writable = tmp_path / "shared"
    group_writable.mkdir()
    group_writable.chmod(0o770)
    (tmp_path / "rctl2").symlink_to(group_writable)
    with pytest.raises(HostError, match="can be written by other users"):
        ensure_private_dir(tmp_path / "rctl2")


def test_a_data_directory_others_can_write_is_refused_and_read_bits_are_dropped(
    tmp_path: Path,
) -> None:
    data = tmp_path / "share" / "rctl"
    data.mkdir(parents=True)
    data.chmod(0o775)
    with pytest.raises(HostError, match=r"mode 775"):
        ensure_private_dir(data)
    data.chmod(0o755)
    ensure_private_dir(data)
    assert mode(data) == 0o700


def test_a_file_in_place_of_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rctl").write_text("")
    with pytest.raises(HostError, match="is not a directory"):
        ensure_private_dir(tmp_path / "rctl")


def test_parents_made_on_the_way_are_owner_only(tmp_path: Path) -> None:
    ensure_private_dir(tmp_path / "a" / "b" / "rctl")
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/rctl")] == [0o700] * 3


# ---- rctl.toml ---------------------------------------------------------------------------


def settings(tmp_path: Path, text: str) -> Settings:
    (tmp_path / "rctl.toml").write_text(text)
    return load_settings(Paths(tmp_path / "data", tmp_path / "run", tmp_path))


def test_a_complete_file_is_read(tmp_path: Path) -> None:
    got = settings(
        tmp_path,
        '[registries]\nsearch = ["quay.io", "docker.io"]\ninsecure = ["registry.lan:5000"]\n'
        '[storage]\ndriver = "vfs"\n[engine]\nruntime = "crun"\n'
        '[network]\ndefault = "pasta"\nhost_loopback = true\n',
    )
    assert got.search_registries == ("quay.io", "docker.io")
    assert got.insecure_registries == ("registry.lan:5000",)
    assert (got.storage_driver, got.runtime, got.network, got.host_loopback) == (
        "vfs",
        "crun",
        "pasta",
        True,
    )
    assert settings(tmp_path, "") == Settings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("registries = 5", r"registries must be a table"),
        ('[registries]\nsearch = "docker.io"', r"\[registries\] search must be a list"),
        ("[registries]\nsearch = [5]", r"\[registries\] search: 5 is not a registry"),
        ('[registries]\ninsecure = ["a b"]', r"insecure: 'a b' is not a registry"),
        ('[registries]\nsearch = ["docker.io/library"]', r"is not a registry"),
        ('[registries]\nserach = ["docker.io"]', r"\[registries\] unknown key 'serach'"),
        ("[storage]\ndriver = 5", r"\[storage\] driver must be a non-empty string"),
        ('[storage]\ndriver = "zfs"', r"\[storage\] driver: unknown storage driver 'zfs'"),
        ("[engine]\nruntime = true", r"\[engine\] runtime must be a non-empty string"),
        ('[engine]\nruntime = "youki"', r"unknown OCI runtime 'youki'"),
        ("[network]\ndefault = 1", r"\[network\] default must be a non-empty string"),
        ('[network]\nhost_loopback = "yes"', r"host_loopback must be true or false"),
        ("[network]\nhost_loopback = 1", r"host_loopback must be true or false"),
        ("[netwrok]\ndefault = 'pasta'", r"unknown table \[netwrok\]"),
        ("[registries", r"Expected"),
    ],
)
def test_wrong_values_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        settings(tmp_path, text)
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith(str(tmp_path / "rctl.toml"))
    assert caught.value.hint


def test_a_close_key_gets_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        settings(tmp_path, '[registries]\nserach = ["docker.io"]')
    assert "did you mean 'search'?" in (caught.value.hint or "")


def test_the_cli_reports_a_bad_rctl_toml_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rctl").mkdir()
    (tmp_path / "rctl" / "rctl.toml").write_text("registries = 5\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert main(["images"]) == 125
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"Error: {tmp_path}/rctl/rctl.toml: registries must be a table"
    assert err[1].startswith("Hint: ")
    assert len(err) == 2


def test_the_engine_makes_the_data_directory_before_its_services_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Services make their subdirectories with parents=True, which would leave the data
    # directory with the umask's mode (0775 with umask 002), refused at the next check.
    from rootless.engine import Engine  # noqa: PLC0415

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    old = os.umask(0o002)
    try:
        paths = Paths.from_env({"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)})
        engine = Engine(paths, Settings())
        assert engine.volumes is not None
        (paths.data / "volumes").mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old)
    assert mode(paths.data) == 0o700
    assert mode(tmp_path / ".local" / "share") == 0o700
    ensure_private_dir(paths.data)  # the next command's check passes


def test_a_directory_that_cannot_be_made_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: object, mode: int = 0o777) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "mkdir", refuse)
    with pytest.raises(HostError, match=r"cannot create .*/rctl: Permission denied"):
        ensure_private_dir(tmp_path / "rctl")
