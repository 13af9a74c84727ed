"""``rctl system prune`` (``Engine.system_prune``): its filters are checked whole before
anything is removed, and each prune runs in docker's order with them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rctlbase.errors import UsageError
from rootless.config import Paths, Settings
from rootless.engine import Engine
from rootless.models import SystemPruneReport


class Recorder:
    def __init__(self, kind: str, calls: list[tuple[str, Any]], removed: list[str]) -> None:
        self.kind, self.calls, self.removed = kind, calls, removed

    def prune(self, filters: Any = (), **options: Any) -> list[str]:
        self.calls.append((self.kind, (tuple(filters), options)))
        return self.removed


def engine_with_recorders(tmp_path: Path) -> tuple[Engine, list[tuple[str, Any]]]:
    engine = Engine(Paths(tmp_path / "data", tmp_path / "run", tmp_path / "config"), Settings())
    calls: list[tuple[str, Any]] = []
    fakes = {
        "containers": Recorder("containers", calls, ["c1"]),
        "volumes": Recorder("volumes", calls, ["v1"]),
        "images": Recorder("images", calls, ["sha256:i1"]),
    }
    engine.__dict__.update(fakes)  # the cached properties, and images
    vars(fakes["containers"])["networks"] = Recorder("networks", calls, ["n1"])
    return engine, calls


def test_everything_is_pruned_in_docker_order(tmp_path: Path) -> None:
    engine, calls = engine_with_recorders(tmp_path)
    report = engine.system_prune(all_images=True, volumes=True, filters=["label=a"])
    assert [kind for kind, _ in calls] == ["containers", "networks", "volumes", "images"]
    assert calls[-1][1] == (("label=a",), {"all_images": True})
    assert report == SystemPruneReport(("c1",), ("n1",), ("v1",), ("sha256:i1",))
    assert report.to_docker()["ImagesDeleted"] == [{"Deleted": "sha256:i1"}]


def test_volumes_are_kept_without_the_flag(tmp_path: Path) -> None:
    engine, calls = engine_with_recorders(tmp_path)
    assert engine.system_prune().volumes == ()
    assert "volumes" not in [kind for kind, _ in calls]


@pytest.mark.parametrize(
    ("filters", "volumes", "message"),
    [
        (["dangling=true"], False, "invalid filter 'dangling'"),
        (["until=1h"], True, "'until' filter is not supported with --volumes"),
    ],
)
def test_bad_filters_are_refused_before_anything_goes(
    tmp_path: Path, filters: list[str], volumes: bool, message: str
) -> None:
    engine, calls = engine_with_recorders(tmp_path)
    with pytest.raises(UsageError, match=message):
        engine.system_prune(volumes=volumes, filters=filters)
    assert calls == []


def test_the_cli_prints_docker_sections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner  # noqa: PLC0415

    from rootless.cli import lifecycle  # noqa: PLC0415

    report = SystemPruneReport(("c1", "c2"), (), ("v1",), ("sha256:i1",))
    fake = SimpleNamespace(system_prune=lambda **_options: report)
    monkeypatch.setattr(lifecycle, "engine", lambda ctx: fake)
    result = CliRunner().invoke(lifecycle.system_prune, ["-f"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Deleted Containers:\nc1\nc2\n\nDeleted Volumes:\nv1\n\n"
        "Deleted Images:\ndeleted: sha256:i1\n\n"
    )
