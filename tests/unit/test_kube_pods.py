"""Kubernetes Pods of several containers as rctl pods, and back."""

from __future__ import annotations

from rootless.kube.generate import KubeContainer, KubePort
from rootless.kube.play import plan_play
from rootless.kube.pods import pod_containers
from rootless.kube.podspec import POD_LABEL

TWO = """\
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  containers:
  - {name: web, image: httpd, ports: [{containerPort: 80, hostPort: 8080}]}
  - {name: side, image: busybox, ports: [{containerPort: 9000, hostPort: 9000, protocol: UDP}]}
"""


def test_a_pod_of_two_containers_plays_as_an_rctl_pod() -> None:
    plan = plan_play(TWO)
    (pod,) = plan.pods
    assert pod.name == "app"
    assert pod.publish == ("8080:80/tcp", "9000:9000/udp")
    assert pod.labels == {POD_LABEL: "app"}
    assert [(c.name, c.pod, c.publish) for c in plan.containers] == [
        ("app-web", "app", ()),
        ("app-side", "app", ()),
    ]


def test_a_pod_of_one_container_stays_a_container() -> None:
    one = TWO.rsplit("  - {name: side", 1)[0]
    plan = plan_play(one)
    assert plan.pods == ()
    (web,) = plan.containers
    assert (web.pod, web.publish) == (None, ("8080:80/tcp",))


def test_an_rctl_pods_ports_go_on_the_member_exposing_them() -> None:
    web = KubeContainer("app-web", "httpd", ports=(KubePort(80, "tcp"),))
    side = KubeContainer("app-side", "busybox")
    out = pod_containers("app", [web, side], [KubePort(80, "tcp", 8080), KubePort(53, "udp", 53)])
    assert [c.name for c in out] == ["web", "side"]
    assert out[0].ports == (KubePort(80, "tcp", 8080), KubePort(53, "udp", 53))
    assert out[1].ports == ()
    # A member named like its pod keeps its name.
    (alone,) = pod_containers("app", [KubeContainer("app-", "x")], [])
    assert alone.name == "app-"
