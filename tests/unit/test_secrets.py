"""Secrets: ``--secret`` parsing, the owner-only store, and what a container is given."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.secrets.parse import MAX_SECRET_BYTES, SecretKind, SecretRequest, parse_secret
from rootless.secrets.service import SecretService
from rootless.volumes.userjob import VolumeJob


def _service(tmp_path: Path, jobs: list[VolumeJob] | None = None) -> SecretService:
    def run(batch: Sequence[VolumeJob]) -> None:
        (jobs if jobs is not None else []).extend(batch)

    return SecretService(tmp_path, run)


def test_parse_defaults_to_a_file_under_run_secrets() -> None:
    assert parse_secret("db") == SecretRequest("db", SecretKind.MOUNT, "/run/secrets/db")


def test_parse_options() -> None:
    request = parse_secret("db,target=pw,uid=1000,gid=10,mode=0400")
    assert request == SecretRequest("db", SecretKind.MOUNT, "/run/secrets/pw", 1000, 10, 0o400)
    assert parse_secret("db,target=/etc/pw").target == "/etc/pw"
    assert parse_secret("db,type=env").target == "db"
    assert parse_secret("db,type=env,target=DB_PASSWORD").target == "DB_PASSWORD"


@pytest.mark.parametrize(
    "value",
    [
        "", "../x", "a/b", "db,type=file", "db,bogus=1", "db,mode=999", "db,uid=-1",
        "db,type=env,target=A-B", "db,type=env,mode=0400", "db,target=/", "x" * 65,
    ],
)  # fmt: skip
def test_parse_refuses(value: str) -> None:
    with pytest.raises(UsageError):
        parse_secret(value)


def test_store_is_owner_only_and_inspect_has_no_value(tmp_path: Path) -> None:
    service = _service(tmp_path)
    report = service.create("db", b"hunter2", {"a": "b"})
    root = tmp_path / "secrets"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "db").stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "db" / "value").stat().st_mode) == 0o600
    document = json.dumps(service.inspect("db").to_docker())
    assert "hunter2" not in document
    assert "hunter2" not in (root / "db" / "secret.json").read_text()
    assert service.inspect(report.id[:6]).name == "db"
    assert [r.name for r in service.reports(["label=a=b"])] == ["db"]
    assert service.reports(["label=a=c"]) == []
    assert service.exists("db") and not service.exists("nope")


def test_create_twice_is_a_conflict_unless_replaced(tmp_path: Path) -> None:
    service = _service(tmp_path)
    service.create("db", b"one")
    with pytest.raises(ConflictError):
        service.create("db", b"two")
    service.create("db", b"two", replace=True)
    assert service.store.value("db") == b"two"


def test_size_is_bounded(tmp_path: Path) -> None:
    service = _service(tmp_path)
    service.create_from("big", "-", io.BytesIO(b"x" * MAX_SECRET_BYTES))
    with pytest.raises(UsageError, match="larger"):
        service.create_from("bigger", "-", io.BytesIO(b"x" * (MAX_SECRET_BYTES + 1)))
    assert not service.exists("bigger")


def test_provide_writes_files_and_variables(tmp_path: Path) -> None:
    jobs: list[VolumeJob] = []
    service = _service(tmp_path, jobs)
    service.create("db", b"hunter2")
    container = tmp_path / "containers" / "c1"
    container.mkdir(parents=True)
    requests = service.plan_uses(["db,mode=0400,uid=5", "db,type=env,target=PW"])
    given = service.provide(requests, container)
    assert given.env == ("PW=hunter2",)
    (mount,) = given.mounts
    assert mount.destination == "/run/secrets/db" and mount.read_only
    assert Path(mount.source).read_bytes() == b"hunter2"
    assert stat.S_IMODE(Path(mount.source).stat().st_mode) == 0o400
    assert jobs == [VolumeJob("chown", mount.source, 5, 0)]
    assert service.users("db") == ["c1"]


def test_rm_of_a_secret_in_use_is_refused(tmp_path: Path) -> None:
    service = _service(tmp_path)
    service.create("db", b"hunter2")
    container = tmp_path / "containers" / "c1"
    container.mkdir(parents=True)
    service.provide(service.plan_uses(["db"]), container)
    with pytest.raises(ConflictError, match="in use"):
        service.remove(["db"])
    (container / "secrets.json").unlink()
    assert service.remove(["db"]) == ["db"]
    with pytest.raises(NotFoundError):
        service.inspect("db")


def test_unknown_secret_is_refused_before_a_container_exists(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        _service(tmp_path).plan_uses(["nope"])


def test_binary_secret_cannot_be_a_variable(tmp_path: Path) -> None:
    service = _service(tmp_path)
    service.create("bin", b"a\0b")
    container = tmp_path / "c"
    container.mkdir()
    with pytest.raises(UsageError, match="NUL"):
        service.provide(service.plan_uses(["bin,type=env,target=X"]), container)


def test_definition_secrets_reach_the_run_options(tmp_path: Path) -> None:
    from rootless.definitions.load import load_definitions  # noqa: PLC0415
    from rootless.definitions.translate import run_options  # noqa: PLC0415

    path = tmp_path / "app.toml"
    path.write_text('[container.web]\nimage = "x"\nsecrets = ["pw", "pw,type=env,target=PW"]\n')
    (container,) = load_definitions([path]).containers
    assert run_options(container).secrets == ("pw", "pw,type=env,target=PW")
    path.write_text('[container.web]\nimage = "x"\nsecrets = ["pw,type=bogus"]\n')
    with pytest.raises(UsageError, match=r"app.toml:3: \[container.web\] secrets:"):
        load_definitions([path])
