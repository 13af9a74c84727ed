"""``rctl kube play`` of ConfigMaps, Secrets and claims (pure): rctl secrets and volumes,
variables and files for containers, a warning per field left out, one-line refusals."""

from __future__ import annotations

import base64

import pytest

from rctlbase.errors import UsageError
from rootless.kube.documents import plan_documents, render_yaml
from rootless.kube.fields import unsupported
from rootless.kube.generate import KubeContainer, KubeKind, secret_uses
from rootless.kube.play import plan_play
from rootless.kube.yamlload import MAX_ALIASES, load_documents

PW = base64.b64encode(b"hunter2").decode()
APP = f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: site}}
data: {{index.html: "<h1>hi</h1>", greeting: hello}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
type: Opaque
data: {{password: {PW}}}
stringData: {{user: admin}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: webdata}}
spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      securityContext: {{runAsUser: 100, runAsGroup: 101}}
      volumes:
      - {{name: data, persistentVolumeClaim: {{claimName: webdata}}}}
      - {{name: page, configMap: {{name: site, defaultMode: 0444}}}}
      - name: secret
        secret: {{secretName: creds, items: [{{key: password, path: db/pw, mode: 0400}}]}}
      containers:
      - name: httpd
        image: i
        imagePullPolicy: Never
        envFrom: [{{configMapRef: {{name: site}}, prefix: SITE_}}, {{secretRef: {{name: creds}}}}]
        env:
        - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: site, key: greeting}}}}}}
        - {{name: DB_PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
        - {{name: user, value: plain}}
        ports: [{{containerPort: 80, hostPort: 8080, hostIP: 127.0.0.1}}]
        volumeMounts:
        - {{name: data, mountPath: /data}}
        - {{name: page, mountPath: /www}}
        - {{name: page, mountPath: /etc/greeting, subPath: greeting}}
        - {{name: secret, mountPath: /run/creds}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{ports: [{{port: 8080}}, {{port: 9090}}]}}
"""


def test_an_app_of_every_kind() -> None:
    plan = plan_play(APP)
    assert plan.claims == ("webdata",)
    secrets = {s.name: s for s in plan.secrets}
    assert {n: s.value for n, s in secrets.items()} == {
        "site.index.html": b"<h1>hi</h1>",
        "site.greeting": b"hello",
        "creds.password": b"hunter2",
        "creds.user": b"admin",
    }
    assert dict(secrets["creds.password"].labels) == {
        "io.rctl.kube.kind": "Secret",
        "io.rctl.kube.name": "creds",
        "io.rctl.kube.key": "password",
    }
    (options,) = plan.containers
    assert options.name == "web-httpd" and options.pull == "never"
    assert options.user == "100:101"
    assert options.publish == ("127.0.0.1:8080:80/tcp",)
    assert options.volumes == ("webdata:/data",)
    # A ConfigMap's values are plain variables; a Secret's never are.
    assert set(options.env) == {
        "SITE_index.html=<h1>hi</h1>", "SITE_greeting=hello", "GREETING=hello", "user=plain",
    }  # fmt: skip
    assert not any("hunter2" in e for e in options.env)
    assert set(options.secrets) == {
        "site.greeting,target=/www/greeting,mode=444",
        "site.index.html,target=/www/index.html,mode=444",
        "site.greeting,target=/etc/greeting,mode=444",
        "creds.password,target=/run/creds/db/pw,mode=400",
        "creds.password,type=env,target=DB_PASSWORD",
        "creds.password,type=env,target=password",  # envFrom; "user" is env's plain value
    }
    assert plan.warnings == ("Service web: port 9090 is no container's hostPort; ignored",)


def test_network_applies_to_every_container() -> None:
    plan = plan_play(APP, network="pasta")
    assert {c.network for c in plan.containers} == {"pasta"}


def test_objects_of_one_file_serve_another() -> None:
    first, rest = APP.split("---", 1)
    plan = plan_play([first, rest])
    assert "SITE_greeting=hello" in plan.containers[0].env


def test_unknown_fields_of_every_kind_warn() -> None:
    text = APP.replace("type: Opaque", "type: Opaque\nimmutable: true").replace(
        "imagePullPolicy: Never", "imagePullPolicy: Never\n        readinessProbe: {}"
    )
    warnings = plan_play(text).warnings
    assert "Secret creds: immutable is not supported; ignored" in warnings
    assert (
        "Deployment web: spec.template.spec.containers[httpd].readinessProbe is not supported; "
        "ignored"
    ) in warnings


def test_the_walk_names_nested_fields() -> None:
    tree = {"a": {"b": None}, "l": [{"x": None}]}
    assert unsupported({"a": {"b": 1, "c": 2}, "l": [{"x": 1, "name": "n", "y": 2}]}, tree) == [
        "a.c",
        "l[n].name",
        "l[n].y",
    ]


def _pod(spec: str) -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec: {spec}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '!!'}\n", "not base64"),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {'a/b': ''}\n",
         "not a valid key"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: 1}\n",
         "not a string"),
        (f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {'c' * 62}}}\ndata: {{key: v}}\n",
         "too long"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ../c}\n", "DNS-1123 subdomain"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "given twice"),
        (_pod("{containers: [{name: C, image: i}]}"), "DNS-1123 label"),
        (_pod("{containers: [{name: c, image: i}, {name: c, image: i}]}"), "same name"),
        (_pod("{containers: [{name: c, image: i, env: [{name: A, valueFrom: "
              "{configMapKeyRef: {name: nope, key: k}}}]}]}"), "not in the files"),
        (_pod("{containers: [{name: c, image: i, envFrom: [{secretRef: {name: nope}}]}]}"),
         "not in the files"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n---\n"
         + _pod("{containers: [{name: c, image: i, env: [{name: A, valueFrom: "
                "{configMapKeyRef: {name: c, key: nope}}}]}]}"), "no key 'nope'"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n---\n"
         + _pod("{volumes: [{name: v, configMap: {name: c, items: [{key: k, path: ../x}]}}], "
                "containers: [{name: c, image: i}]}"), "without '..'"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n---\n"
         + _pod("{volumes: [{name: v, configMap: {name: c}}], containers: [{name: c, image: i, "
                "volumeMounts: [{name: v, mountPath: /x, subPath: nope}]}]}"), "subPath"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: \"a\\0b\"}\n---\n"
         + _pod("{containers: [{name: c, image: i, envFrom: [{configMapRef: {name: c}}]}]}"),
         "NUL"),
        (_pod("{volumes: [{name: v, emptyDir: {}}], containers: [{name: c, image: i, "
              "volumeMounts: [{name: v, mountPath: '/a,b'}]}]}"), "mountPath"),
        (_pod("{volumes: [{name: v, hostPath: {path: rel}}], containers: [{name: c, image: i}]}"),
         "not an absolute path"),
        (_pod("{containers: [{name: c, image: i, ports: [{containerPort: 80, protocol: SCTP}]}]}"),
         "protocol"),
        (_pod("{containers: [{name: c, image: i, ports: [{containerPort: 80, hostPort: 80, "
              "hostIP: 'a b'}]}]}"), "hostIP"),
        (_pod("{containers: [{name: c, image: i, imagePullPolicy: Sometimes}]}"),
         "imagePullPolicy"),
        (_pod("{containers: [{name: c, image: i, resources: {limits: {memory: lots}}}]}"),
         "memory quantity"),
        (_pod("{containers: [{name: c, image: i, livenessProbe: {exec: {command: [x]}, "
              "periodSeconds: -1}}]}"), "periodSeconds"),
        ("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: a..b}\n---\n"
         + _pod("{containers: [{name: c, image: i}]}"), "PersistentVolumeClaim name"),
    ],
)  # fmt: skip
def test_refusals_are_one_line(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        plan_play(text)
    assert "\n" not in caught.value.message


def test_a_few_aliases_are_fine_and_too_many_are_refused() -> None:
    assert load_documents("a: &x [1]\nb: *x\n") == [{"a": [1], "b": [1]}]
    many = "a: &x 1\n" + "".join(f"b{i}: *x\n" for i in range(MAX_ALIASES + 1))
    with pytest.raises(UsageError, match="aliases"):
        load_documents(many)


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(UsageError, match="nests deeper"):
        load_documents("a: " + "[" * 100 + "]" * 100)
    with pytest.raises(UsageError, match="nests deeper"):
        load_documents("a: " + "[" * 100_000)


def test_secret_uses_generate_and_play_back_the_same() -> None:
    plan = plan_play(APP)
    (options,) = plan.containers
    labels = {s.name: dict(s.labels) for s in plan.secrets}
    uses = secret_uses(options.secrets, lambda name: labels.get(name, {}))
    container = KubeContainer(name="httpd", image="i", secrets=uses)
    documents = plan_documents("web", [container], KubeKind.DEPLOYMENT)
    data = [dict(d) for d in load_documents(APP) if d["kind"] in ("ConfigMap", "Secret")]
    again = plan_play(render_yaml([*data, *documents]))
    assert set(again.containers[0].secrets) == set(options.secrets)


def test_a_users_own_secret_is_a_key_of_a_secret_of_its_name() -> None:
    (use,) = secret_uses(["db_pw,type=env,target=PW"], lambda _name: {})
    assert (use.kind, use.name, use.key, use.target, use.env) == (
        "Secret",
        "db-pw",
        "db_pw",
        "PW",
        True,
    )


def test_secrets_alone_are_a_plan() -> None:
    plan = plan_play(APP.split("---")[1])
    assert plan.containers == () and [s.name for s in plan.secrets] == [
        "creds.password",
        "creds.user",
    ]
