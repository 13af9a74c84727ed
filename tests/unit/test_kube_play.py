"""``rctl kube play``'s reading of YAML (pure): Pods and Deployments → ``rctl run`` options,
warnings for what is left out, one-line refusals for hostile or wrong files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rctlbase.errors import UsageError
from rootless.kube.documents import plan_documents, render_yaml
from rootless.kube.generate import KubeContainer, KubeKind, KubePort
from rootless.kube.play import MAX_YAML_BYTES, load_documents, plan_play
from rootless.kube.service import read_yaml

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-app}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      hostNetwork: true
      containers:
      - name: httpd
        image: 127.0.0.1:5000/test/httpd
        command: [httpd]
        args: [-f, -p, "80"]
        env: [{name: A, value: "1"}]
        ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 53, protocol: UDP}]
        workingDir: /srv
        resources: {limits: {memory: 64Mi, cpu: 500m}}
        stdin: true
"""


def test_a_deployment_becomes_run_options_and_warnings() -> None:
    plan = plan_play(DEPLOYMENT)
    (options,) = plan.containers
    assert options.name == "web-app-httpd"
    assert options.image == "127.0.0.1:5000/test/httpd"
    assert options.entrypoint is not None and json.loads(options.entrypoint) == ["httpd"]
    assert options.command == ("-f", "-p", "80")
    assert options.env == ("A=1",)
    assert options.publish == ("8080:80/tcp",)
    assert (options.memory, options.cpus, options.workdir) == (str(64 << 20), "0.5", "/srv")
    assert options.restart == "always" and options.detach
    assert plan.warnings == (
        "Deployment web-app: spec.template.spec.containers[httpd].stdin is not supported; ignored",
        "Deployment web-app: spec.template.spec.hostNetwork is not supported; ignored",
        "Deployment web-app: replicas 3 run as 1 here",
    )


def test_the_golden_deployment_plays_back_whole() -> None:
    text = (Path(__file__).parent / "golden" / "kube" / "report-deployment.yaml").read_text()
    plan = plan_play(text)
    (options,) = plan.containers
    assert plan.warnings == ()
    assert options.volumes == ("data:/data", "/srv/site:/srv:ro", "/srv/site:/again")
    assert (options.user, options.read_only, options.privileged) == ("1000:1000", True, False)
    assert (options.cap_add, options.cap_drop) == (("NET_ADMIN",), ("MKNOD",))
    assert options.health_cmd is not None
    assert json.loads(options.health_cmd) == ["/bin/sh", "-c", "wget -q -O- http://127.0.0.1/"]
    assert (options.health_interval, options.health_timeout) == ("10s", "1s")
    assert (options.health_start_period, options.health_retries) == ("60s", 2)
    assert options.publish == ("5353:53/udp", "8080:80/tcp")


def test_empty_dir_is_an_anonymous_volume_and_other_kinds_warn() -> None:
    text = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  volumes: [{name: scratch, emptyDir: {}}, {name: nfs, nfs: {server: s, path: /}}]
  containers:
  - name: c
    image: i
    volumeMounts: [{name: scratch, mountPath: /tmp/s}, {name: nfs, mountPath: /etc/c}]
"""
    plan = plan_play(text)
    assert plan.containers[0].volumes == ("/tmp/s",)
    assert plan.warnings == (
        "Pod p: spec.volumes[nfs].nfs is not supported; ignored",
        "Pod p: volume nfs has no source rctl supports (persistentVolumeClaim, hostPath, "
        "emptyDir, configMap, secret); ignored",
    )


def test_generated_yaml_plays_back() -> None:
    container = KubeContainer(
        name="web", image="i", args=("a",), ports=(KubePort(80, "tcp", 8080),), restart="no"
    )
    text = render_yaml(plan_documents("web", [container], KubeKind.POD))
    (options,) = plan_play(text).containers
    assert (options.name, options.publish, options.restart) == ("web-web", ("8080:80/tcp",), "no")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Job\napiVersion: batch/v1\nmetadata: {name: s}\n", "kind 'Job'"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n",
         "needs a name and an image"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: "
         "[{name: c, image: i, ports: [{containerPort: 70000}]}]}\n", "not a port"),
        ("a: [1, 2\n", "invalid YAML"),
        ("- 1\n", "not a mapping"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: Web_App}\n", "DNS-1123"),
        ("!!python/object:os.system {}\n", "invalid YAML"),
        ("", "no Pod, Deployment"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "no Pod, Deployment"),
        ("apiVersion: [v1]\nkind: {Pod: 1}\n", "is not supported"),
        ("apiVersion: v1\nkind: Pod\nmetadata: [p]\n", "metadata is not a mapping"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: [1]\n", "spec is not a mapping"),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: p}\nspec: {template: 3}\n",
         "template is not a mapping"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: "
         "[{name: c, image: i, resources: [1]}]}\n", "resources is not a mapping"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: "
         "[{name: c, image: i, resources: {limits: 1}}]}\n", "limits is not a mapping"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: "
         "[{name: c, image: i, workingDir: [1]}]}\n", "workingDir is not a string"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: "
         "[{name: c, image: i, env: [{name: A, value: {x: 1}}]}]}\n", "string values"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {restartPolicy: [1], "
         "containers: [{name: c, image: i}]}\n", "restartPolicy"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: "
         "[{name: c, image: i, resources: {limits: {cpu: xm}}}]}\n", "CPU quantity"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: "
         "[{name: c, image: i, volumeMounts: [{name: v, mountPath: /v}]}]}\n", "no volume 'v'"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {volumes: [{name: v, "
         "persistentVolumeClaim: {claimName: ../x}}], containers: [{name: c, image: i}]}\n",
         "volumes\\[v\\]"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, "
         "image: i, securityContext: {runAsUser: -1}}]}\n", "runAsUser"),
    ],
)  # fmt: skip
def test_bad_yaml_is_one_line_and_makes_nothing(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        plan_play(text)
    assert "\n" not in caught.value.message


def test_a_billion_laughs_file_is_refused_before_expansion() -> None:
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    with pytest.raises(UsageError, match="once its aliases are expanded"):
        load_documents("\n".join(lines))


def test_size_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_YAML_BYTES + 1))
    with pytest.raises(UsageError, match="larger"):
        read_yaml(big)
    with pytest.raises(UsageError, match="larger"):
        load_documents("#" * (MAX_YAML_BYTES + 1))
