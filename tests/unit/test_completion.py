"""Shell completion: the scripts of ``rctl completion`` and the store names TAB offers."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.shell_completion import BashComplete

from rootless.cli import cli, main
from rootless.config import Paths
from rootless.containers.record import ContainerRecord, ContainerStore
from rootless.images.store import ImageRecord, Store
from rootless.models import NameKind
from rootless.names import MAX_NAMES, list_names
from rootless.networks.store import NetworkRecord, NetworkStore


def fill_store(data: Path) -> None:
    store = ContainerStore(data / "containers")
    for cid in ("c" * 64, "d" * 64):
        store.dir(cid).mkdir(parents=True)
    store.save(ContainerRecord("c" * 64, "web", "sha256:i", "img", ("true",), 0.0, "overlay"))
    store.save(ContainerRecord("d" * 64, "worker", "sha256:i", "img", ("true",), 1.0, "overlay"))
    images = Store(data)
    images.ensure()
    record = ImageRecord(id="sha256:" + "a" * 64, manifest_digest="sha256:" + "a" * 64,
                         manifest_media_type="m", layers=(),
                         names=("docker.io/library/busybox:latest", "127.0.0.1:5000/app:1"))  # fmt: skip
    images.save_images({record.id: record})
    for name in ("cache", "db-data"):
        (data / "volumes" / name).mkdir(parents=True)
        (data / "volumes" / name / "volume.json").write_text("{}")
    (data / "volumes" / "half-made").mkdir()  # no record yet: not a volume
    (data / "networks").mkdir()
    NetworkStore(data / "networks").save(
        NetworkRecord("backend", "b" * 64, "10.89.1.0/24", "10.89.1.1", "rctl1", False)
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("_RCTL_COMPLETE", "bash_complete")
    fill_store(tmp_path / "rctl")
    return tmp_path


def complete(args: list[str], incomplete: str) -> list[str]:
    completer = BashComplete(cli, {}, "rctl", "_RCTL_COMPLETE")
    return [item.value for item in completer.get_completions(args, incomplete)]


def test_list_names_reads_each_kind(home: Path) -> None:
    paths = Paths.from_env()
    assert list_names(paths, NameKind.CONTAINER) == ["web", "worker"]
    assert list_names(paths, NameKind.VOLUME) == ["cache", "db-data"]
    assert list_names(paths, NameKind.NETWORK, "b") == ["backend", "bridge"]
    assert list_names(paths, NameKind.IMAGE) == [
        "127.0.0.1:5000/app:1", "busybox", "busybox:latest", "docker.io/library/busybox:latest",
    ]  # fmt: skip


def test_list_names_never_fails_on_a_broken_store(tmp_path: Path) -> None:
    data = tmp_path / "rctl"
    (data / "containers" / "x").mkdir(parents=True)
    (data / "containers" / "x" / "container.json").write_text('{"id": 1}')
    (data / "images.json").write_text("[")
    paths = Paths(data=data, runtime=tmp_path / "run", config=tmp_path / "cfg")
    assert list_names(paths, NameKind.CONTAINER) == []
    assert list_names(paths, NameKind.IMAGE) == []
    assert list_names(paths, NameKind.VOLUME) == []


def test_list_names_is_bounded(tmp_path: Path) -> None:
    for i in range(MAX_NAMES + 5):
        (tmp_path / "rctl" / "volumes" / f"v{i:05}").mkdir(parents=True)
        (tmp_path / "rctl" / "volumes" / f"v{i:05}" / "volume.json").write_text("{}")
    paths = Paths(data=tmp_path / "rctl", runtime=tmp_path / "run", config=tmp_path / "cfg")
    assert len(list_names(paths, NameKind.VOLUME)) == MAX_NAMES


@pytest.mark.parametrize(
    ("args", "incomplete", "expected"),
    [
        (["stop"], "w", ["web", "worker"]),
        (["container", "rm"], "", ["web", "worker"]),
        (["logs"], "we", ["web"]),
        (["port"], "wo", ["worker"]),
        (["run"], "busy", ["busybox", "busybox:latest"]),
        (["run", "--network"], "ba", ["backend"]),
        (["rmi"], "127", ["127.0.0.1:5000/app:1"]),
        (["image", "inspect"], "busybox:", ["busybox:latest"]),
        (["volume", "rm"], "", ["cache", "db-data"]),
        (["volume", "inspect"], "d", ["db-data"]),
        (["network", "rm"], "back", ["backend"]),
        (["network", "connect", "backend"], "we", ["web"]),
    ],
)
def test_arguments_complete_to_store_names(
    home: Path, args: list[str], incomplete: str, expected: list[str]
) -> None:
    assert complete(args, incomplete) == expected


def test_subcommands_complete() -> None:
    assert "completion" in complete([], "comp")
    assert complete(["volume"], "pr") == ["prune"]


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "_RCTL_COMPLETE=bash_complete"), ("zsh", "_RCTL_COMPLETE=zsh_complete"),
     ("fish", "_RCTL_COMPLETE=fish_complete")],
)  # fmt: skip
def test_completion_prints_the_shells_script(
    capsys: pytest.CaptureFixture[str], shell: str, marker: str
) -> None:
    assert main(["completion", shell]) == 0
    assert marker in capsys.readouterr().out


def test_completion_refuses_another_shell(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "tcsh"]) == 125
    assert "tcsh" in capsys.readouterr().err
