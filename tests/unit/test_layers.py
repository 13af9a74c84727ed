"""The import direction of rctl's packages (docs/dev/architecture.md), checked on every module's AST.

- ``rctlbase`` imports only the standard library;
- ``units``, ``uidmap`` and ``netns`` import the standard library, ``rctlbase`` and their own
  third-party library (dbus-fast, pyroute2), never ``rootless`` and never each other;
- ``rootless.cli`` and ``rootless.api`` import the engine, the models and the reports only (plus
  ``rctlbase.errors``, ``rctlbase.timeline`` and their UI libraries), nothing below them;
- nothing outside them imports ``rootless.cli`` or ``rootless.api``;
- ``rootless.reports`` imports only itself and ``rootless.timestamps``;
- the entry points call the engine and its services' use cases, never what a service is made of
  (its store, the systemd manager, its parts: ``COLLABORATORS``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rootless", "units", "uidmap", "netns", "rctlbase")
ADAPTER_LIBS = {"units": {"dbus_fast"}, "uidmap": set(), "netns": {"pyroute2"}, "rctlbase": set()}
ENTRY_POINTS = ("rootless.cli", "rootless.api")
ENTRY_MAY_IMPORT = (
    "rootless.engine", "rootless.models", "rootless.reports", "rctlbase.errors",
    "rctlbase.timeline", *ENTRY_POINTS,
)  # fmt: skip
# The reports are shapes the entry points see: they import no service or adapter.
REPORTS = "rootless.reports"
REPORTS_MAY_IMPORT = (REPORTS, "rootless.timestamps")
ENTRY_LIBS = {"click", "rich", "h11"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every module a file imports, relative ones resolved.

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module.
    """
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names]
            subs = [name for name in subs if is_project_module(name, root)]
            found += [(node.lineno, name) for name in subs or [target]]
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def is_project_module(name: str, root: Path) -> bool:
    """Whether ``name`` is a module (not an attribute) of one of the project's packages."""
    parts = name.split(".")
    return (root / Path(*parts)).is_dir() or (root / Path(*parts)).with_suffix(".py").exists()


def violation(importer: str, imported: str) -> str | None:
    """Why this import breaks the layering, or None when it is allowed."""
    top = imported.split(".", maxsplit=1)[0]
    own = importer.split(".", maxsplit=1)[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return None
    if own in ADAPTER_LIBS:
        if top == own or top in ADAPTER_LIBS[own] or (top == "rctlbase" and own != "rctlbase"):
            return None
        return f"{own} may import only the standard library, rctlbase and its own library"
    if importer == "rootless.__main__" or any(within(importer, e) for e in ENTRY_POINTS):
        if top in ENTRY_LIBS or imported == "rootless":
            return None
        if any(within(imported, allowed) for allowed in ENTRY_MAY_IMPORT):
            return None
        return "the CLI and API import the engine and the models only"
    if any(within(imported, entry) for entry in ENTRY_POINTS):
        return "nothing below the entry points imports them"
    if within(importer, REPORTS) and not any(within(imported, a) for a in REPORTS_MAY_IMPORT):
        return "the reports import only each other and rootless.timestamps"
    return None


def check(root: Path) -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            importer = module_name(path, root)
            for line, imported in imports_of(path, importer, root):
                reason = violation(importer, imported)
                if reason:
                    where = path.relative_to(root)
                    problems.append(f"{where}:{line}: {importer} imports {imported}: {reason}")
    return problems


def test_project_respects_import_layers() -> None:
    assert check(ROOT) == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("units/bad.py", "import rootless.engine\n", "units may import only"),
        ("uidmap/bad.py", "from netns import ports\n", "uidmap may import only"),
        ("netns/bad.py", "import dbus_fast\n", "netns may import only"),
        ("rctlbase/bad.py", "from uidmap import x\n", "rctlbase may import only"),
        ("rootless/cli/bad.py", "from rootless.images import store\n", "engine and the models"),
        ("rootless/cli/bad.py", "import uidmap\n", "engine and the models"),
        ("rootless/api/bad.py", "from ..images import store\n", "engine and the models"),
        ("rootless/engine.py", "from rootless.cli import main\n", "nothing below"),
        ("rootless/reports/bad.py", "from rootless.images import store\n", "the reports import"),
    ],
)
def test_checker_catches_violations(tmp_path: Path, path: str, source: str, expected: str) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for sub in ("cli", "api", "images", "reports"):
        (tmp_path / "rootless" / sub).mkdir()
        (tmp_path / "rootless" / sub / "__init__.py").write_text("")
    (tmp_path / "rootless" / "images" / "store.py").write_text("")
    target = tmp_path / path
    target.write_text(source)
    problems = check(tmp_path)
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_checker_allows_the_designed_imports(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "rootless" / "cli").mkdir()
    (tmp_path / "rootless" / "cli" / "main.py").write_text(
        "import click\nfrom rootless.engine import Engine\nfrom rctlbase.errors import RctlError\n"
    )
    (tmp_path / "rootless" / "engine.py").write_text("import uidmap\nimport units\nimport netns\n")
    (tmp_path / "units" / "dbus.py").write_text("import dbus_fast\nfrom rctlbase import run\n")
    (tmp_path / "netns" / "bridge.py").write_text("from pyroute2 import IPRoute\n")
    assert check(tmp_path) == []


# One door to external programs, one module for syscalls.
DOORS = {"subprocess": "rctlbase/run.py", "ctypes": "rctlbase/syscalls.py"}


def door_violations(root: Path) -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = str(path.relative_to(root))
            tree = ast.parse(path.read_text(), rel)
            for node in ast.walk(tree):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    for child in ast.walk(node):
                        setattr(child, "type_checking_only", True)  # noqa: B010
            for node in ast.walk(tree):
                if getattr(node, "type_checking_only", False):
                    continue
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    door = DOORS.get(name.split(".", 1)[0])
                    if door and rel != door:
                        problems.append(f"{rel}:{node.lineno}: imports {name}; only {door} may")
    return problems


def test_programs_and_syscalls_go_through_their_one_module() -> None:
    assert door_violations(ROOT) == []


def test_door_check_catches_a_stray_subprocess(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "units" / "sneaky.py").write_text("import subprocess\n")
    (tmp_path / "netns" / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import subprocess\n"
    )
    assert door_violations(tmp_path) == [
        "units/sneaky.py:1: imports subprocess; only rctlbase/run.py may"
    ]


def empty_type_checking_blocks(root: Path) -> list[str]:
    """``FILE:LINE`` of every ``if TYPE_CHECKING:`` that imports nothing (dead weight)."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = str(path.relative_to(root))
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if (
                    isinstance(node, ast.If)
                    and "TYPE_CHECKING" in ast.unparse(node.test)
                    and all(isinstance(child, ast.Pass) for child in node.body)
                ):
                    found.append(f"{rel}:{node.lineno}")
    return found


def test_no_empty_type_checking_blocks(tmp_path: Path) -> None:
    assert empty_type_checking_blocks(ROOT) == []
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "units" / "x.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\n"
    )
    assert empty_type_checking_blocks(tmp_path) == ["units/x.py:2"]


# What the engine and its services are made of: an entry point calls use cases, never these.
COLLABORATORS = {
    "store", "manager", "ctx", "lifecycle", "host", "services", "remover", "paths",
    "settings", "userns_plan", "run_layer_jobs", "run_volume_jobs", "layer_format",
}  # fmt: skip


def collaborator_uses(root: Path) -> list[str]:
    """``FILE:LINE: .NAME`` wherever the CLI or the API reaches past a use case."""
    found = []
    for entry in ENTRY_POINTS:
        for path in sorted((root / Path(*entry.split("."))).rglob("*.py")):
            rel = str(path.relative_to(root))
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if isinstance(node, ast.Attribute) and node.attr in COLLABORATORS:
                    found.append(f"{rel}:{node.lineno}: .{node.attr}")
    return sorted(found)


def test_entry_points_call_only_use_cases(tmp_path: Path) -> None:
    assert collaborator_uses(ROOT) == []
    (tmp_path / "rootless" / "api").mkdir(parents=True)
    (tmp_path / "rootless" / "api" / "kill.py").write_text(
        "def kill(eng, ref):\n"
        "    eng.containers.kill(ref, 9)\n"
        "    eng.containers.manager.kill(eng.containers.store.get(ref).unit, 9)\n"
    )
    assert collaborator_uses(tmp_path) == [
        "rootless/api/kill.py:3: .manager",
        "rootless/api/kill.py:3: .store",
    ]
