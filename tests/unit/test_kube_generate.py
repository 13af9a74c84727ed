"""``rctl kube generate``'s pure translation: container reports and definitions → YAML.

Golden files in tests/unit/golden/kube/: CASE.yaml is what the case below renders.
Regenerate with ``RCTL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_kube_generate.py``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from rctlbase.errors import UsageError
from rootless.definitions.load import check_together, parse_file
from rootless.definitions.schema import DefinitionError, Problem
from rootless.kube.documents import plan_documents, render_yaml
from rootless.kube.generate import (
    KubeContainer,
    KubeKind,
    container_from_definition,
    container_from_inspect,
    dns_name,
    is_label,
)
from rootless.kube.service import generate_yaml
from rootless.reports.containers import (
    ContainerConfig,
    ContainerInspect,
    ContainerState,
    HealthcheckConfig,
    HostConfig,
    MountReport,
    PortBinding,
    RctlFields,
)

GOLDEN = Path(__file__).parent / "golden" / "kube"
DEFINITIONS = Path(__file__).parent / "golden" / "definitions"
UPDATE = os.environ.get("RCTL_UPDATE_GOLDEN") == "1"
SECOND = 1_000_000_000


def web_report(name: str = "my_web.1") -> ContainerInspect:
    return ContainerInspect(
        id="a" * 64,
        name=name,
        created="2026-01-01T00:00:00Z",
        image_id="sha256:" + "b" * 64,
        path="httpd",
        args=("-f",),
        state=ContainerState(status="running", running=True),
        config=ContainerConfig(
            image="sha256:" + "b" * 64,
            user="1000:1000",
            env=("PATH=/bin", "GREETING=hello world", "EMPTY="),
            cmd=("-f", "-p", "80"),
            entrypoint=("httpd",),
            working_dir="/srv",
            labels={"tier": "front", "com.example/bad label": "has spaces"},
            exposed_ports=("80/tcp", "53/udp"),
            healthcheck=HealthcheckConfig(
                test=("CMD-SHELL", "wget -q -O- http://127.0.0.1/"),
                interval_ns=10 * SECOND,
                timeout_ns=SECOND // 2,
                start_period_ns=60 * SECOND,
                retries=2,
            ),
        ),
        host_config=HostConfig(
            network_mode="slirp4netns",
            runtime="crun",
            port_bindings=(PortBinding("80/tcp", "", 8080), PortBinding("53/udp", "", 5353)),
            restart_policy="on-failure",
            restart_retries=3,
            memory=256 << 20,
            nano_cpus=1_500_000_000,
            cap_add=("CAP_NET_ADMIN",),
            cap_drop=("mknod",),
            readonly_rootfs=True,
        ),
        driver="overlay",
        rctl=RctlFields(unit="rctl-a.service", log_tag="a", image_name="127.0.0.1:5000/test/httpd"),
        mounts=(
            MountReport("volume", "/home/u/.local/share/rctl/volumes/data/_data", "/data", "data"),
            MountReport("bind", "/srv/site", "/srv", rw=False),
            MountReport("bind", "/srv/site", "/again"),
            MountReport("tmpfs", "", "/tmp"),
        ),
    )


def check_golden(case: str, text: str) -> None:
    path = GOLDEN / f"{case}.yaml"
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()


def definition_containers(case: str) -> list[KubeContainer]:
    problems: list[Problem] = []
    home = Path("/home/alice/.config/rctl/definitions")
    part = parse_file(home / f"{case}.toml", (DEFINITIONS / f"{case}.toml").read_text(), problems)
    merged = check_together([part], problems)
    if problems:
        raise DefinitionError(problems)
    return [container_from_definition(c) for c in merged.containers]


@pytest.mark.parametrize("kind", list(KubeKind))
def test_golden_from_report(kind: KubeKind) -> None:
    container = container_from_inspect(web_report())
    documents = plan_documents(container.name, [container], kind, service=True)
    check_golden(f"report-{kind}", render_yaml(documents))


def test_golden_from_definition() -> None:
    documents = plan_documents("web", definition_containers("web"), KubeKind.POD, service=True)
    check_golden("definition-web", render_yaml(documents))


def test_every_document_loads_back_as_written() -> None:
    container = container_from_inspect(web_report())
    documents = plan_documents("x", [container], KubeKind.DEPLOYMENT, service=True)
    assert list(yaml.safe_load_all(render_yaml(documents))) == documents


def workload(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in documents if d["kind"] in ("Pod", "Deployment"))


def test_names_are_dns_1123_labels() -> None:
    assert dns_name("My_Web.1") == "my-web-1"
    assert dns_name("--a__b--") == "a-b"
    assert len(dns_name("x" * 100)) == 63
    assert dns_name("a" * 62 + "_b") == "a" * 62  # no trailing dash after the cut
    with pytest.raises(UsageError):
        dns_name("___")


def test_invalid_labels_become_annotations() -> None:
    assert is_label("tier", "front")
    assert is_label("example.com/tier", "")
    assert not is_label("com.example/bad label", "x")
    assert not is_label("tier", "has spaces")
    container = container_from_inspect(web_report())
    meta = workload(plan_documents("w", [container], KubeKind.POD))["metadata"]
    assert meta["labels"] == {"app": "w", "tier": "front"}
    assert meta["annotations"] == {"com.example/bad label": "has spaces"}


def test_a_named_user_is_left_out() -> None:
    container = KubeContainer(name="c", image="i", user="nobody", read_only=True)
    spec = workload(plan_documents("c", [container], KubeKind.POD))["spec"]
    assert spec["containers"][0]["securityContext"] == {"readOnlyRootFilesystem": True}


def test_deployment_restarts_always_and_pod_follows_the_policy() -> None:
    never = KubeContainer(name="c", image="i", restart="no")
    assert workload(plan_documents("c", [never], KubeKind.POD))["spec"]["restartPolicy"] == "Never"
    deployment = workload(plan_documents("c", [never], KubeKind.DEPLOYMENT))
    assert deployment["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "c"}


def test_no_service_without_published_ports() -> None:
    container = KubeContainer(name="c", image="i")
    kinds = [d["kind"] for d in plan_documents("c", [container], KubeKind.POD, service=True)]
    assert kinds == ["Pod"]


def test_volume_names_stay_unique_after_sanitising() -> None:
    report = web_report()
    container = container_from_inspect(report)
    spec = workload(plan_documents("c", [container], KubeKind.POD))["spec"]
    names = [v["name"] for v in spec["volumes"]]
    assert len(names) == len(set(names)) == 2  # data, and /srv/site mounted twice
    mounts = spec["containers"][0]["volumeMounts"]
    assert [m["mountPath"] for m in mounts] == ["/data", "/srv", "/again"]


def test_healthcheck_none_gives_no_probe() -> None:
    container = container_from_inspect(web_report())
    assert container.probe is not None
    assert container.probe.timeout == 1  # half a second rounds up: Kubernetes counts seconds
    assert container.probe.command == ("/bin/sh", "-c", "wget -q -O- http://127.0.0.1/")


def test_generate_refuses_mixed_sources_and_bad_type() -> None:
    def inspect(ref: str) -> ContainerInspect:
        return web_report(ref)

    with pytest.raises(UsageError, match="together"):
        generate_yaml(["web", "app.toml"], inspect)
    with pytest.raises(UsageError, match="--type"):
        generate_yaml(["web"], inspect, "job")
    text = generate_yaml(["one", "two"], inspect, "deployment")
    assert workload(list(yaml.safe_load_all(text)))["metadata"]["name"] == "one-pod"


def test_durations_are_whole_seconds_without_float_creep() -> None:
    probe = container_from_inspect(web_report()).probe
    assert probe is not None
    assert (probe.initial_delay, probe.period) == (60, 10)


def test_yaml_has_no_anchors() -> None:
    container = container_from_inspect(web_report())
    text = render_yaml(plan_documents("x", [container], KubeKind.DEPLOYMENT))
    assert "&id" not in text and "*id" not in text
