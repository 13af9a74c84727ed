"""rctl auto-update's decisions against a fake host: update, keep, roll back, dry run, skip;
and the definition key that asks for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rctlbase.errors import CommandFailed, RctlError
from rootless.autoupdate import LABEL, Candidate, Host, UnitProbe, auto_update, candidates
from rootless.definitions.load import load_definitions
from rootless.definitions.schema import DefinitionError

OLD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64
WEB = Candidate("web", "rctl-web.service", "127.0.0.1:5000/app:1", OLD, "registry")


@dataclass
class FakeHost:
    """A registry with ``remote`` behind each name, units whose start on an image succeeds
    per ``starts``, and healthchecks per image."""

    remote: str = NEW
    local: str | None = OLD
    starts: dict[str, bool] = field(default_factory=lambda: {OLD: True, NEW: True})
    health: dict[str, str | None] = field(default_factory=dict)
    running: str = OLD
    log: list[str] = field(default_factory=list)
    now: float = 0.0

    def pull(self, name: str) -> str:
        self.log.append(f"pull {name}")
        self.local = self.remote
        return self.remote

    def tag(self, image: str, name: str) -> None:
        self.log.append(f"tag {image[7:8]} {name}")
        self.local = image

    def restart(self, unit: str) -> None:
        self.log.append(f"restart {unit}")
        assert self.local is not None
        self.running = self.local
        if not self.starts[self.running]:
            raise CommandFailed("systemctl --user restart failed", hint="see the journal")

    def probe(self, unit: str) -> UnitProbe:
        return UnitProbe("active" if self.starts[self.running] else "failed", 0)

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def host(self) -> Host:
        return Host(
            image_id=lambda name: self.local,
            pull=self.pull,
            remote_differs=lambda name, image: self.remote != image,
            tag=self.tag,
            restart=self.restart,
            probe=self.probe,
            health=lambda name: self.health.get(self.running),
            sleep=self.sleep,
            clock=lambda: self.now,
        )


def run(fake: FakeHost, *found: Candidate, **kw: bool) -> list[str]:
    options = {"dry_run": False, "rollback": True, **kw}
    reports = auto_update(found, fake.host(), timeout=30, **options)
    return [r.updated for r in reports]


def test_a_newer_image_restarts_the_unit_on_it() -> None:
    fake = FakeHost()
    assert run(fake, WEB) == ["true"]
    assert fake.log == ["pull 127.0.0.1:5000/app:1", "restart rctl-web.service"]
    assert fake.running == NEW
    assert fake.now >= 5  # it had to stay up a while (no healthcheck)


def test_the_same_image_changes_nothing() -> None:
    fake = FakeHost(remote=OLD)
    assert run(fake, WEB) == ["false"]
    assert fake.log == ["pull 127.0.0.1:5000/app:1"]


def test_a_unit_that_fails_on_the_new_image_is_rolled_back() -> None:
    fake = FakeHost(starts={OLD: True, NEW: False})
    assert run(fake, WEB) == ["rolled back"]
    assert fake.log == [
        "pull 127.0.0.1:5000/app:1", "restart rctl-web.service",
        "tag a 127.0.0.1:5000/app:1", "restart rctl-web.service",
    ]  # fmt: skip
    assert fake.running == OLD


def test_an_unhealthy_new_image_is_rolled_back_and_a_healthy_one_kept() -> None:
    sick = FakeHost(health={OLD: "healthy", NEW: "unhealthy"})
    assert run(sick, WEB) == ["rolled back"]
    assert sick.running == OLD
    well = FakeHost(health={NEW: "healthy"})
    assert run(well, WEB) == ["true"]
    assert well.now == 0  # healthy at once: no settling wait
    slow = FakeHost(health={NEW: "starting"})
    assert run(slow, WEB) == ["rolled back"]  # never healthy within the timeout
    assert slow.now > 30


def test_without_rollback_a_failure_stays() -> None:
    fake = FakeHost(starts={OLD: True, NEW: False})
    assert run(fake, WEB, rollback=False) == ["failed: the unit did not start on the new image"]
    assert not any(line.startswith("tag") for line in fake.log)


def test_dry_run_and_local_policy() -> None:
    fake = FakeHost()
    assert run(fake, WEB, dry_run=True) == ["pending"]
    assert fake.log == []
    local = Candidate("db", "rctl-db.service", "db:1", OLD, "local")
    assert run(FakeHost(local=OLD), local) == ["false"]
    assert run(FakeHost(local=NEW), local, dry_run=True) == ["pending"]
    fake = FakeHost(local=NEW)
    assert run(fake, local) == ["true"]
    assert fake.log == ["restart rctl-db.service"]  # local: nothing pulled


def test_containers_without_a_unit_or_with_a_bad_policy_are_skipped() -> None:
    rows = [
        ("t", "", "img", OLD, {LABEL: "registry"}),
        ("p", "rctl-p.service", "img", OLD, {LABEL: "weekly"}),
        ("n", "rctl-n.service", "img", OLD, {"other": "x"}),
    ]
    found = candidates(rows)
    assert [c.name for c in found] == ["p", "t"]
    assert run(FakeHost(), *found) == [
        "skipped: policy 'weekly' is not registry/local",
        "skipped: not run by a generated unit",
    ]


def test_an_error_fails_only_its_container() -> None:
    fake = FakeHost()

    def offline(name: str) -> str:
        raise RctlError("cannot reach 127.0.0.1:5000", hint="check the network")

    host = fake.host()
    broken = Host(**{**{f: getattr(host, f) for f in host.__slots__}, "pull": offline})
    other = Candidate("zz", "rctl-zz.service", "x:1", OLD, "local")
    reports = auto_update([WEB, other], broken, dry_run=False, rollback=True, timeout=30)
    assert [r.updated for r in reports] == ["failed: cannot reach 127.0.0.1:5000", "false"]


def test_the_definition_key_becomes_the_label(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text('[container.c]\nimage = "i"\nauto_update = "registry"\n')
    assert dict(load_definitions([path]).containers[0].labels) == {LABEL: "registry"}
    path.write_text('[container.c]\nimage = "i"\nauto_update = "daily"\n')
    with pytest.raises(DefinitionError, match=r"a.toml:3: \[container.c\] auto_update: 'daily'"):
        load_definitions([path])
