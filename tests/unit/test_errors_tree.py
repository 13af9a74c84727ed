"""Every RctlError subclass is drawn in :mod:`rctlbase.errors`'s tree, and every one a user
can reach carries a hint: the raiser passes ``hint=`` or the class supplies one."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import rctlbase.errors
from rctlbase.errors import ConflictError, HostError, NotFoundError, RctlError, UsageError
from rootless.definitions.tables import DefinitionError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rctlbase", "rootless", "units", "uidmap", "netns")


def project_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        found = pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")
        names.extend(info.name for info in found if not info.name.endswith("__main__"))
    return names


def all_subclasses(cls: type[RctlError]) -> set[type[RctlError]]:
    found: set[type[RctlError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *all_subclasses(sub)}
    return found


@pytest.fixture(scope="module")
def error_classes() -> dict[str, type[RctlError]]:
    for name in project_modules():
        importlib.import_module(name)
    classes: set[type[RctlError]] = {RctlError, *all_subclasses(RctlError)}
    # Only the project's classes: a test module may define its own.
    return {c.__name__: c for c in classes if c.__module__.split(".")[0] in PACKAGES}


def tree_lines() -> list[str]:
    doc = rctlbase.errors.__doc__ or ""
    return doc.split("::", 1)[1].split("\n\n", 2)[1].splitlines()


def test_the_walk_finds_the_classes_of_other_modules(error_classes: dict[str, type]) -> None:
    assert {"DefinitionError", "UnitStartFailed", "UnsafeLayerError"} <= set(error_classes)


def test_every_error_class_is_drawn_in_the_tree(error_classes: dict[str, type]) -> None:
    drawn = {line.split("── ")[-1].split()[0] for line in tree_lines() if "── " in line}
    drawn.add(tree_lines()[0].split()[0])
    missing = sorted(set(error_classes) - drawn)
    assert not missing, f"not drawn in rctlbase/errors.py's tree: {missing}"


def test_classes_defined_elsewhere_name_their_module(error_classes: dict[str, type]) -> None:
    for name, cls in error_classes.items():
        if cls.__module__ == "rctlbase.errors":
            continue
        where = cls.__module__.removeprefix("rootless.")
        line = next(line for line in tree_lines() if f"── {name} " in line)
        assert f"({where})" in line, f"{name} is defined in {cls.__module__}"


def test_http_statuses_follow_the_classes() -> None:
    assert UsageError.http_status == 400
    assert DefinitionError.http_status == 400
    assert NotFoundError.http_status == 404
    assert ConflictError.http_status == 409
    assert HostError.http_status == 500
    assert RctlError.http_status == 500


def supplies_its_hint(cls: type[RctlError]) -> bool:
    """The class gives every instance a hint: a default, or a constructor without ``hint``
    that passes its own (a definition file's errors)."""
    return cls.default_hint is not None or "hint" not in inspect.signature(cls).parameters


def project_names(tree: ast.Module) -> set[str]:
    """The names a module imports from the project or defines as classes (not, say,
    ``click``'s UsageError)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
    return names


def hintless_constructions(error_classes: dict[str, type[RctlError]]) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            ours = project_names(tree)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                    continue
                name = node.func.id
                cls = error_classes.get(name) if name in ours else None
                if cls is None or supplies_its_hint(cls):
                    continue
                hint = next((k.value for k in node.keywords if k.arg == "hint"), None)
                if hint is None or (isinstance(hint, ast.Constant) and not hint.value):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    return found


def test_every_error_a_user_can_reach_has_a_hint(error_classes: dict[str, type]) -> None:
    missing = hintless_constructions(error_classes)
    assert not missing, "errors without hint=:\n" + "\n".join(missing)


def test_the_hint_check_sees_a_hintless_raise(
    error_classes: dict[str, type[RctlError]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rctlbase").mkdir()
    (tmp_path / "rctlbase" / "bad.py").write_text(
        "from rctlbase.errors import UsageError\nimport click\n"
        "def f():\n    raise UsageError('no')\n\ndef g():\n    raise UsageError('no', hint='yes')\n"
        "def h():\n    raise click.UsageError('not ours')\n"
    )
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert hintless_constructions(error_classes) == ["rctlbase/bad.py:4: UsageError"]
