"""``rctl kube generate`` and ``kube play`` in the test host, as uid 1000: YAML from real
containers and from a definition file, every document validated against Kubernetes'
schemas with kubernetes-validate (strict: an unknown or misplaced field fails); generated
YAML played back, serving on the same port; bad YAML refused in one line, nothing made.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostkit import Rctl, fetch, free_port, run, wait_for

R = "127.0.0.1:5000/test"


@pytest.fixture(autouse=True)
def remove_containers(rctl: Rctl) -> Iterator[None]:
    yield
    rctl("rm", "-f", "web", "side", "web-web", "web-side", "app-web", check=False)


def validate(path: Path) -> list[dict[str, Any]]:
    """Every document of ``path`` checked by kubernetes-validate (a current release's
    schemas, strict); the documents, read back."""
    proc = run(sys.executable, "-m", "kubernetes_validate", "--strict", str(path), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert documents
    return documents


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def test_generate_from_containers_validates(rctl: Rctl, tmp_path: Path) -> None:
    port = free_port()
    site = tmp_path / "site"
    site.mkdir()
    rctl(
        "run", "-d", "--name", "web", "-p", f"{port}:80", "-e", "GREETING=hello world",
        "-v", "webdata:/data", "-v", f"{site}:/srv:ro", "--memory", "64m", "--cpus", "0.5",
        "--health-cmd", "wget -q -O- http://127.0.0.1/ || exit 1", "--health-interval", "10s",
        "--restart", "on-failure:2", "--label", "tier=front", "--cap-drop", "NET_RAW",
        "--read-only", f"{R}/httpd",
    )  # fmt: skip
    rctl("run", "-d", "--name", "side", "--user", "1000:1000", f"{R}/busybox", "sleep", "infinity")

    for kind in ("pod", "deployment"):
        out = tmp_path / f"{kind}.yaml"
        rctl("kube", "generate", "--type", kind, "--service", "-f", str(out), "web", "side")
        documents = validate(out)
        assert [d["kind"] for d in documents] == [
            "PersistentVolumeClaim",
            "Pod" if kind == "pod" else "Deployment",
            "Service",
        ]
        workload = by_kind(documents, "Pod" if kind == "pod" else "Deployment")[0]
        spec = workload["spec"] if kind == "pod" else workload["spec"]["template"]["spec"]
        web, side = spec["containers"]
        assert web["name"] == "web" and side["name"] == "side"
        assert web["image"] == f"{R}/httpd:latest"
        assert {"name": "GREETING", "value": "hello world"} in web["env"]
        assert web["ports"] == [{"containerPort": 80, "hostPort": port, "protocol": "TCP"}]
        assert web["resources"] == {"limits": {"memory": "64Mi", "cpu": "500m"}}
        assert web["livenessProbe"]["exec"]["command"][-1].startswith("wget")
        assert web["livenessProbe"]["periodSeconds"] == 10
        assert web["securityContext"]["readOnlyRootFilesystem"] is True
        assert web["securityContext"]["capabilities"] == {"drop": ["NET_RAW"]}
        assert side["args"] == ["sleep", "infinity"]
        assert side["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000}
        assert spec["restartPolicy"] == ("OnFailure" if kind == "pod" else "Always")
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["webdata"]["persistentVolumeClaim"] == {"claimName": "webdata"}
        assert any(v.get("hostPath", {}).get("path") == str(site) for v in volumes.values())
        assert workload["metadata"]["labels"]["tier"] == "front"
        service = by_kind(documents, "Service")[0]
        assert service["spec"]["ports"][0]["port"] == port
        assert service["spec"]["ports"][0]["targetPort"] == 80

    printed = rctl("kube", "generate", "web").stdout
    assert [d["kind"] for d in yaml.safe_load_all(printed)] == ["PersistentVolumeClaim", "Pod"]


def test_generate_from_a_definition_file_validates(rctl: Rctl, tmp_path: Path) -> None:
    definition = tmp_path / "shop.toml"
    definition.write_text(
        f"""
[container.shop_front]
image = "{R}/httpd"
ports = ["{free_port()}:80"]
volumes = ["shopdata:/data"]
env = {{ MODE = "prod" }}
memory = "128m"
restart = "always"

[container.shop_front.healthcheck]
cmd = "true"
interval = "5s"
"""
    )
    out = tmp_path / "shop.yaml"
    rctl("kube", "generate", "--service", "-f", str(out), str(definition))
    documents = validate(out)
    pod = by_kind(documents, "Pod")[0]
    assert pod["metadata"]["name"] == "shop"
    assert pod["spec"]["containers"][0]["name"] == "shop-front"
    assert pod["spec"]["restartPolicy"] == "Always"
    assert by_kind(documents, "PersistentVolumeClaim")[0]["metadata"]["name"] == "shopdata"


def test_generate_of_a_missing_container_is_one_line(rctl: Rctl) -> None:
    proc = rctl("kube", "generate", "nosuch", check=False)
    assert proc.returncode == 125
    assert proc.stderr.startswith("Error: ") and "Traceback" not in proc.stderr


def names(rctl: Rctl) -> set[str]:
    return set(rctl("ps", "-a", "--format", "{{.Names}}").stdout.split())


def test_generate_then_play_serves_the_same_port_and_data(rctl: Rctl, tmp_path: Path) -> None:
    port = free_port()
    rctl("run", "-d", "--name", "web", "-p", f"{port}:80", "-v", "webdata:/www", f"{R}/httpd")
    rctl("exec", "web", "sh", "-c", "echo kept in the volume > /www/index.html")
    assert wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/"))
    assert fetch(f"http://127.0.0.1:{port}/") == "kept in the volume\n"
    out = tmp_path / "web.yaml"
    rctl("kube", "generate", "--type", "deployment", "--service", "-f", str(out), "web")
    validate(out)
    rctl("rm", "-f", "web")

    played = rctl("kube", "play", str(out))
    assert played.stdout.split() == ["web-web"]
    assert played.stderr == ""  # everything generated is carried back: no warning
    page = wait_for("the played page", lambda: fetch(f"http://127.0.0.1:{port}/"))
    assert page == "kept in the volume\n"
    rctl("kube", "play", "--down", str(out))
    assert "web-web" not in names(rctl)


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: s}\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec: {containers: [{name: web}]}\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec: {containers: "
        "[{name: web, image: i, ports: [{containerPort: 80, hostPort: 99999}]}]}\n",
    ],
)
def test_play_of_bad_yaml_is_one_line_and_makes_nothing(
    rctl: Rctl, tmp_path: Path, text: str
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: app}}\n"
        f"spec: {{containers: [{{name: web, image: {R}/httpd}}]}}\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    before = names(rctl)
    proc = rctl("kube", "play", str(good), str(bad), check=False)
    assert proc.returncode == 125
    assert proc.stderr.startswith("Error: ") and len(proc.stderr.splitlines()) == 2
    assert names(rctl) == before


TOKEN = "tok-9f8e7d6c"
CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata: {name: site}
data:
  index.html: "<h1>from the configmap</h1>\\n"
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
type: Opaque
stringData: {token: TOKEN}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: appdata}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
""".replace("TOKEN", TOKEN)
# The page: the ConfigMap's file, the Secret as a variable and as a file, and a mark
# written once into the claim's volume (the same mark after a replay: the same data).
SCRIPT = (
    "[ -f /data/mark ] || date +%s%N > /data/mark; "
    "{ cat /etc/site/index.html; echo env=$TOKEN; cat /run/creds/token; echo; "
    "cat /data/mark; } > /www/index.html; exec httpd -f -p 80 -h /www"
)
APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      volumes:
      - {name: data, persistentVolumeClaim: {claimName: appdata}}
      - {name: page, configMap: {name: site}}
      - {name: creds, secret: {secretName: creds}}
      containers:
      - name: web
        image: REGISTRY/httpd
        command: [/bin/sh, -c]
        args: [SCRIPT]
        env:
        - {name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}
        ports: [{containerPort: 80, hostPort: PORT}]
        volumeMounts:
        - {name: data, mountPath: /data}
        - {name: page, mountPath: /etc/site}
        - {name: creds, mountPath: /run/creds}
"""


def _units(rctl: Rctl) -> str:
    return run("systemctl", "--user", "list-units", "--all", "--plain", "--no-legend").stdout


def test_an_app_of_configmap_secret_and_claim_round_trips(rctl: Rctl, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    app = tmp_path / "app.yaml"
    script = json.dumps(SCRIPT)  # a JSON string is a YAML string
    app.write_text(APP.replace("REGISTRY", R).replace("SCRIPT", script).replace("PORT", str(port)))
    try:
        played = rctl("kube", "play", str(config), str(app))
        assert played.stdout.split() == ["app-web"] and played.stderr == ""
        page = wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/"))
        assert isinstance(page, str)
        lines = page.splitlines()
        assert lines[:3] == ["<h1>from the configmap</h1>", f"env={TOKEN}", TOKEN]
        assert TOKEN not in rctl("inspect", "app-web").stdout
        assert {"site.index.html", "creds.token"} <= set(
            rctl("secret", "ls", "--format", "{{.Name}}").stdout.split()
        )
        ids = rctl("ps", "-aq", "--no-trunc").stdout.split()

        generated = tmp_path / "generated.yaml"
        rctl("kube", "generate", "--type", "deployment", "--service", "-f", str(generated),
             "app-web")  # fmt: skip
        documents = validate(generated)
        deployment = by_kind(documents, "Deployment")[0]
        assert deployment["metadata"]["name"] == "app"
        (web,) = deployment["spec"]["template"]["spec"]["containers"]
        assert web["name"] == "web"
        assert {
            "name": "TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}},
        } in web["env"]
        assert TOKEN not in generated.read_text()
        assert [d["metadata"]["name"] for d in by_kind(documents, "PersistentVolumeClaim")] == [
            "appdata"
        ]

        rctl("kube", "down", str(app), str(config))
        assert rctl("ps", "-aq").stdout == ""
        assert rctl("secret", "ls", "-q").stdout == ""
        assert rctl("volume", "ls", "-q").stdout.split() == ["appdata"]  # data outlives pods

        replayed = rctl("kube", "play", str(config), str(generated))
        assert replayed.stdout.split() == ["app-web"], replayed.stderr
        again = wait_for("the replayed page", lambda: fetch(f"http://127.0.0.1:{port}/"))
        assert again == page  # the same mark: the same volume data
        ids += rctl("ps", "-aq", "--no-trunc").stdout.split()

        rctl("kube", "down", "--force", str(config), str(generated))
        assert rctl("ps", "-aq").stdout == ""
        assert rctl("secret", "ls", "-q").stdout == ""
        assert rctl("volume", "ls", "-q").stdout == ""
        units = _units(rctl)
        assert not any(container_id[:12] in units for container_id in ids)
    finally:
        rctl("kube", "down", "--force", str(config), str(app), check=False)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '!!'}\n", "base64"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, "
         "image: i, env: [{name: A, valueFrom: {secretKeyRef: {name: nope, key: k}}}]}]}\n",
         "not in the files"),
        ("a: &a [1]\n" + "".join(f"b{i}: *a\n" for i in range(200)), "aliases"),
    ],
)  # fmt: skip
def test_play_of_bad_objects_makes_nothing(
    rctl: Rctl, tmp_path: Path, text: str, said: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = rctl("kube", "play", str(config), str(bad), check=False)
    assert proc.returncode == 125 and said in proc.stderr
    assert len(proc.stderr.splitlines()) == 2
    assert rctl("secret", "ls", "-q").stdout == ""
    assert rctl("volume", "ls", "-q").stdout == ""
    assert rctl("ps", "-aq").stdout == ""
