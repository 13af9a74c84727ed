"""The generator over whole files: network, volume and image units that container units
require; a file's problems reported with FILE:LINE and only what they touch skipped."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from rctlbase.errors import ExternalError, NotFoundError, RctlError
from rootless.contracts import Services
from rootless.definitions.fileunits import volume_sources
from rootless.definitions.generator import generate
from rootless.definitions.load import load_definitions
from rootless.definitions.service import DefinitionService
from rootless.models import NetworkCreateOptions

APP = """\
[network.backend]
subnet = "10.89.7.0/24"

[volume.data]

[container.db]
image = "test/busybox"
command = "sleep infinity"
networks = ["backend"]
volumes = ["data:/var/lib/db", "/srv/conf:/conf:ro", "other:/other"]

[container.db.service]
Environment = "HTTPS_PROXY=http://proxy:3128"
Nice = 5

[container.web]
image = "test/httpd"
networks = [{ name = "backend", aliases = ["www"] }]
depends_on = ["db"]
pull = "never"
"""


def values(text: str, key: str) -> list[str]:
    return [line.partition("=")[2] for line in text.splitlines() if line.startswith(key + "=")]


def test_networks_volumes_and_images_get_units_containers_require(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "defs").mkdir()
    app = tmp_path / "defs" / "app.toml"
    app.write_text(APP)
    out = tmp_path / "out"
    out.mkdir()
    written = generate(out, [tmp_path / "defs"], "/usr/bin/rctl")
    assert written == [
        "rctl-network-backend.service", "rctl-volume-data.service",
        "rctl-image-db.service", "rctl-db.service", "rctl-web.service",
    ]  # fmt: skip
    assert capsys.readouterr().err == ""

    network = (out / "rctl-network-backend.service").read_text()
    assert values(network, "Type") == ["oneshot"]
    assert values(network, "RemainAfterExit") == ["yes"]
    assert values(network, "ExecStart") == [
        f"/usr/bin/rctl container prepare-unit --definition {app} --network backend"
    ]
    assert "[Install]" not in network  # started by the containers that need it
    volume = (out / "rctl-volume-data.service").read_text()
    assert values(volume, "ExecStart")[0].endswith(f"--definition {app} --volume data")
    image = (out / "rctl-image-db.service").read_text()
    assert values(image, "ExecStart")[0].endswith(f"--definition {app} --image db")
    assert values(image, "TimeoutStartSec") == ["30min"]
    assert values(image, "Environment") == ["HTTPS_PROXY=http://proxy:3128"]  # not Nice=
    assert values(image, "Nice") == []

    db = (out / "rctl-db.service").read_text()
    wanted = ["rctl-network-backend.service", "rctl-volume-data.service", "rctl-image-db.service"]
    assert values(db, "Requires") == wanted
    assert values(db, "After") == wanted
    web = (out / "rctl-web.service").read_text()
    # pull = "never": no image unit; its network and the container it depends on.
    assert values(web, "Requires") == ["rctl-network-backend.service", "rctl-db.service"]
    assert not (out / "rctl-image-web.service").exists()
    assert (out / "default.target.wants" / "rctl-web.service").is_symlink()
    assert not (out / "default.target.wants" / "rctl-network-backend.service").exists()


def test_a_files_problems_skip_only_what_they_touch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "defs").mkdir()
    app = tmp_path / "defs" / "app.toml"
    app.write_text("""\
[network.broken]
subnet = "10.89.9.0/24"
colour = "blue"

[container.good]
image = "x"

[container.bad]
image = "x"
bogus = 1

[container.after_bad]
image = "x"
depends_on = ["bad"]

[container.on_broken]
image = "x"
networks = ["broken"]

[container.also_good]
image = "x"
""")
    out = tmp_path / "out"
    out.mkdir()
    written = generate(out, [tmp_path / "defs"], "/usr/bin/rctl")
    assert [w for w in written if not w.startswith("rctl-image-")] == [
        "rctl-good.service", "rctl-also_good.service",
    ]  # fmt: skip
    err = capsys.readouterr().err
    assert f"{app}:3: [network.broken] colour: unknown key" in err
    assert f"{app}:10: [container.bad] bogus: unknown key" in err
    assert f"{app}:12: [container.after_bad]: depends on bad, which has problems" in err
    assert f"{app}:16: [container.on_broken]: uses network broken, which has problems" in err
    assert not (out / "rctl-network-broken.service").exists()


def test_a_container_whose_unit_is_a_networks_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "a.toml").write_text(
        '[network.x]\n[container.network-x]\nimage = "i"\npull = "never"\n'
    )
    out = tmp_path / "out"
    out.mkdir()
    assert generate(out, [tmp_path / "defs"], "/usr/bin/rctl") == ["rctl-network-x.service"]
    assert "rctl-network-x.service is another table's unit" in capsys.readouterr().err


def test_volume_sources_are_the_named_volumes(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("""\
[container.c]
image = "i"
volumes = ["data:/d", "./here:/h", "/abs:/a", "data:/again", { source = "logs", target = "/l" }]
mounts = ["type=volume,src=cache,dst=/c", "type=bind,src=/x,dst=/x", "type=tmpfs,dst=/t"]
""")
    container = load_definitions([tmp_path / "a.toml"]).containers[0]
    assert volume_sources(container) == ["data", "logs", "cache"]


# ---- what the network, volume and image units run ------------------------------------------


class FakeNetworks:
    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.created: list[str] = []

    def summaries(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=n) for n in sorted(self.names)]

    def create(self, options: NetworkCreateOptions) -> None:
        self.created.append(options.name)
        self.names.add(options.name)


class FakeVolumes:
    def __init__(self) -> None:
        self.created: list[str] = []

    def ls(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=n) for n in self.created]

    def create(self, name: str, **_: object) -> None:
        self.created.append(name)


class FakeContainers:
    def __init__(self, failures: list[RctlError]) -> None:
        self.failures = failures
        self.calls: list[tuple[str, str]] = []

    def resolve_image(self, name: str, policy: str) -> None:
        self.calls.append((name, policy))
        if self.failures:
            raise self.failures.pop(0)


def service(
    tmp_path: Path, networks: FakeNetworks, containers: FakeContainers | None = None
) -> tuple[DefinitionService, FakeVolumes]:
    volumes = FakeVolumes()
    services = SimpleNamespace(
        containers=containers or FakeContainers([]), images=None, volumes=volumes,
        networks=networks,
    )  # fmt: skip
    return DefinitionService(cast("Services", services), tmp_path), volumes


def test_prepare_makes_a_missing_network_or_volume_once(tmp_path: Path) -> None:
    app = tmp_path / "app.toml"
    app.write_text(APP + '\n[container.broken]\nimage = "x"\nbogus = 1\n')
    networks = FakeNetworks({"bridge"})
    defs, volumes = service(tmp_path, networks)
    defs.prepare_network(app, "backend")  # the broken container elsewhere doesn't matter
    defs.prepare_network(app, "backend")
    assert networks.created == ["backend"]
    defs.prepare_volume(app, "data")
    defs.prepare_volume(app, "data")
    assert volumes.created == ["data"]
    with pytest.raises(NotFoundError, match="no usable network 'other'"):
        defs.prepare_network(app, "other")


def test_prepare_image_waits_for_the_network_but_not_for_a_missing_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app.toml"
    app.write_text(APP)
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    offline = ExternalError("cannot reach registry-1.docker.io: Network is unreachable")
    containers = FakeContainers([offline, offline, offline])
    defs, _ = service(tmp_path, FakeNetworks(set()), containers)
    defs.prepare_image(app, "db")
    assert containers.calls == [("test/busybox", "missing")] * 4
    assert slept == [1.0, 2.0, 4.0]

    gone = FakeContainers([NotFoundError("image test/busybox not found")])
    defs, _ = service(tmp_path, FakeNetworks(set()), gone)
    with pytest.raises(NotFoundError):
        defs.prepare_image(app, "db")
    assert len(gone.calls) == 1

    never = FakeContainers([offline] * 100)
    defs, _ = service(tmp_path, FakeNetworks(set()), never)
    with pytest.raises(ExternalError):
        defs.prepare_image(app, "db", patience=0)
    assert len(never.calls) == 1
