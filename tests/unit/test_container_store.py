"""The container directory's one owner: ``ContainerStore`` (rootless.containers.record) and,
for the helpers systemd runs, ``rootless.containers.layout``; no other module names the
directory's files."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

from netns.ports import Protocol, PublishedPort
from rootless.containers import layout
from rootless.containers.plan import LaunchPlan
from rootless.containers.record import ContainerStore

ROOT = Path(__file__).resolve().parents[2]
OWNER = "rootless/containers/layout.py"
NAMES = {layout.RECORD, layout.UNIT_INPUTS, layout.EXIT, layout.BUNDLE, layout.LAUNCH}
ID = "a" * 64


def spelled_names(root: Path) -> list[str]:
    """``FILE:LINE: NAME`` for every string literal of the code naming a file of the
    container directory outside its owner (docstrings and comments are prose, not code)."""
    found = []
    for path in sorted((root / "rootless").rglob("*.py")):
        rel = str(path.relative_to(root))
        if rel == OWNER:
            continue
        tree = ast.parse(path.read_text(), rel)
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
            ):
                named = {part for part in node.value.split("/") if part in NAMES}
                found += [f"{rel}:{node.lineno}: {name}" for name in sorted(named)]
    return sorted(found)


def test_only_the_layout_module_names_the_container_directory_s_files() -> None:
    assert spelled_names(ROOT) == []


def test_the_name_check_catches_a_stray_spelling(tmp_path: Path) -> None:
    (tmp_path / "rootless" / "containers").mkdir(parents=True)
    (tmp_path / OWNER).write_text('LAUNCH = "launch.json"\n')
    (tmp_path / "rootless" / "sneaky.py").write_text(
        '"""Reads bundle/launch.json."""\n'
        "from pathlib import Path\n"
        'def read(d: Path) -> str:\n    return (d / "bundle/launch.json").read_text()\n'
        'EXIT = "exit.json"\n'
    )
    assert spelled_names(tmp_path) == [
        "rootless/sneaky.py:4: bundle",
        "rootless/sneaky.py:4: launch.json",
        "rootless/sneaky.py:5: exit.json",
    ]


def launch_plan() -> LaunchPlan:
    return LaunchPlan(
        container_id=ID, uid_maps=((0, 1000, 1),), gid_maps=((0, 1000, 1),),
        network="pasta", ports=(PublishedPort(Protocol.TCP, "", 8080, 80),), pidfile="/p",
        bundle="/b",
        runtime="crun", runtime_root="/r", rootfs={"driver": "overlay"},
    )  # fmt: skip


def test_the_store_keeps_the_launch_plan_in_the_bundle(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    store.bundle(ID).mkdir(parents=True)
    store.save_launch(ID, launch_plan())
    assert store.launch_file(ID) == tmp_path / ID / "bundle" / "launch.json"
    assert Path(layout.launch_file(store.dir(ID))) == store.launch_file(ID)
    assert store.load_launch(ID) == launch_plan()
    assert store.oci_config_file(ID) == tmp_path / ID / "bundle" / "config.json"
    assert store.pid_file(ID).parent == store.bundle(ID)


def test_the_store_reads_what_the_stop_hook_wrote(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    store.dir(ID).mkdir()
    assert store.exit_record(ID) is None
    assert store.finished_at(ID) == 0.0
    Path(layout.exit_file(store.dir(ID))).write_text(
        json.dumps({"exit_code": 3, "finished": 1700000000.5})
    )
    code, finished = store.exit_record(ID) or (None, None)
    assert code == 3
    assert finished == os.stat(layout.exit_file(store.dir(ID))).st_mtime
    assert store.finished_at(ID) == 1700000000.5
    store.forget_exit(ID)
    store.forget_exit(ID)  # gone already: nothing to do
    assert store.exit_record(ID) is None
    assert store.exit_record("b" * 64) is None  # no such directory


def test_the_store_keeps_the_unit_inputs(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    store.dir(ID).mkdir()
    inputs = {"restart": "always", "stop_timeout": 10, "stop_signal": "SIGTERM", "limits": {}}
    store.save_unit_inputs(ID, inputs)
    assert store.load_unit_inputs(ID) == inputs
    assert (tmp_path / ID / "spec.json").is_file()


def test_the_store_knows_which_containers_have_bridge_networks(tmp_path: Path) -> None:
    from rootless.networks.attach import (  # noqa: PLC0415
        Attachment,
        ContainerNetworks,
        save_container_networks,
    )

    store = ContainerStore(tmp_path)
    store.dir(ID).mkdir()
    assert not store.has_networks(ID)
    save_container_networks(store.dir(ID), ContainerNetworks((Attachment("front", ()),)))
    assert store.has_networks(ID) and not store.has_networks("b" * 64)
