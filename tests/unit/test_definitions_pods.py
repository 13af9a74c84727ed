"""``[pod.NAME]`` and ``pod =`` in definition files: validation, apply/down planning, the
generator's pod unit and its members' dependencies."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootless.definitions.apply import Existing, plan_apply, plan_down
from rootless.definitions.generator import generate
from rootless.definitions.load import load_definitions
from rootless.definitions.schema import DefinitionError
from rootless.definitions.translate import LABEL_FILE, pod_create_options, run_options

APP = """\
[pod.app]
ports = ["127.0.0.1:8080:80"]
network = "pasta"
labels = { tier = "web" }
share = ["ipc"]
hostname = "apphost"

[container.web]
image = "test/httpd"
pod = "app"

[container.side]
image = "test/busybox"
pod = "app"
depends_on = ["web"]
"""


def values(text: str, key: str) -> list[str]:
    return [line.partition("=")[2] for line in text.splitlines() if line.startswith(key + "=")]


def problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "app.toml").write_text(text)
    with pytest.raises(DefinitionError) as caught:
        load_definitions([tmp_path / "app.toml"])
    return [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]


def test_a_pod_and_its_members_load(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text(APP)
    wanted = load_definitions([tmp_path / "app.toml"])
    (pod,) = wanted.pods
    assert (pod.name, pod.ports, pod.network, pod.share) == (
        "app", ("127.0.0.1:8080:80",), "pasta", ("net", "ipc"),
    )  # fmt: skip
    options = pod_create_options(pod)
    assert options.labels == {"tier": "web", LABEL_FILE: str(tmp_path / "app.toml")}
    assert options.share == "net,ipc"
    assert options.hostname == "apphost"
    web = wanted.container("web")
    assert web is not None
    assert run_options(web).pod == "app"
    assert run_options(web).publish == ()


def test_pod_problems_name_their_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        '[pod."../x"]\n\n[pod.p]\nnetwork = "bridge"\nshare = ["pid"]\nports = ["80:x"]\n'
        'colour = 1\n\n[container.c]\nimage = "i"\npod = "p"\nports = ["80"]\n',
    )
    assert "app.toml:1: [pod.../x]: invalid pod name '../x' (letters, digits, _ . -)" in found
    assert any(p.startswith("app.toml:4: [pod.p] network:") for p in found)
    assert any(p.startswith("app.toml:5: [pod.p] share: 'pid' can't be shared") for p in found)
    assert any(p.startswith("app.toml:6: [pod.p] ports:") for p in found)
    assert any(p.startswith("app.toml:7: [pod.p] colour: unknown key") for p in found)
    assert "app.toml:12: [container.c] ports: a member of pod 'p' can't set ports: set it on " \
        "the pod" in found  # fmt: skip


def test_apply_creates_the_pod_first_and_down_removes_it_last(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text(APP)
    wanted = load_definitions([tmp_path / "app.toml"])
    actions = plan_apply(wanted, [], {}, set(), set())
    assert [a.describe() for a in actions] == [
        "create pod app", "create container web", "create container side",
    ]  # fmt: skip
    owned = {"app": {LABEL_FILE: str(tmp_path / "app.toml")}}
    assert next(a.describe() for a in plan_apply(wanted, [], {}, set(), set(), (), owned)) == (
        "create container web"
    )
    labels = {LABEL_FILE: str(tmp_path / "app.toml")}
    existing = [Existing("1", "web", labels, "i", True), Existing("2", "side", labels, "i", True)]
    down = plan_down(wanted, existing, set(), set(), remove_volumes=False, pods=owned)
    assert [a.describe() for a in down] == [
        "remove container side", "remove container web", "remove pod app",
    ]  # fmt: skip
    # A pod of that name made otherwise is left.
    other = {"app": {LABEL_FILE: "/elsewhere.toml"}}
    kept = plan_down(wanted, existing, set(), set(), remove_volumes=False, pods=other)
    assert "remove pod app" not in [a.describe() for a in kept]


def test_the_generator_makes_the_pod_unit_members_bind_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "defs").mkdir()
    app = tmp_path / "defs" / "app.toml"
    app.write_text(APP)
    out = tmp_path / "out"
    out.mkdir()
    written = generate(out, [tmp_path / "defs"], "/usr/bin/rctl")
    assert written[0] == "rctl-pod-app.service"
    assert capsys.readouterr().err == ""
    pod = (out / "rctl-pod-app.service").read_text()
    assert values(pod, "Type") == ["forking"]
    assert values(pod, "ExecStart") == [
        f"/usr/bin/rctl pod run-unit --definition {app} --pid-file %t/rctl-pod-app.pid app"
    ]
    assert values(pod, "PIDFile") == ["%t/rctl-pod-app.pid"]
    assert "[Install]" not in pod  # started by its members
    web = (out / "rctl-web.service").read_text()
    assert values(web, "Requires") == ["rctl-pod-app.service", "rctl-image-web.service"]
    assert values(web, "BindsTo") == ["rctl-pod-app.service"]
    side = (out / "rctl-side.service").read_text()
    assert "rctl-web.service" in values(side, "Requires")
    assert values(side, "BindsTo") == ["rctl-pod-app.service"]


def test_a_bad_pod_skips_its_members_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "defs").mkdir()
    app = tmp_path / "defs" / "app.toml"
    app.write_text(
        '[pod.p]\nnetwork = "bridge"\n\n[container.m]\nimage = "i"\npod = "p"\n\n'
        '[container.alone]\nimage = "i"\n'
    )
    out = tmp_path / "out"
    out.mkdir()
    written = generate(out, [tmp_path / "defs"], "/usr/bin/rctl")
    assert "rctl-alone.service" in written
    assert "rctl-m.service" not in written
    assert "rctl-pod-p.service" not in written
    err = capsys.readouterr().err
    assert f"{app}:4: [container.m]: joins pod p, which has problems" in err
