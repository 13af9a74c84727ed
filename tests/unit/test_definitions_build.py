"""A definition's ``build``: parsed as a context (string) or compose's table, the image
named by default, and a build unit the container's unit requires."""

from __future__ import annotations

from pathlib import Path

import pytest

from rctlbase.errors import UsageError
from rootless.definitions.generator import generate
from rootless.definitions.load import load_definitions
from rootless.definitions.model import BuildDef
from rootless.definitions.translate import definition_hash


def app(tmp_path: Path, text: str) -> Path:
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "Containerfile").write_text("FROM scratch\n")
    (tmp_path / "defs").mkdir(exist_ok=True)
    path = tmp_path / "defs" / "my app.toml"
    path.write_text(text)
    return path


def test_a_context_string_and_the_default_image_name(tmp_path: Path) -> None:
    path = app(tmp_path, '[container.web]\nbuild = "../app"\n')
    (web,) = load_definitions([path]).containers
    assert web.build == BuildDef(context=str(tmp_path / "app"))
    assert web.image == "localhost/my-app-web"
    assert web.pull == "never"


def test_the_table_form_names_file_args_and_target(tmp_path: Path) -> None:
    path = app(tmp_path, """\
[container.web]
image = "localhost/web:dev"
build = { context = "../app", file = "Containerfile", args = { V = 2 }, target = "prod" }
""")  # fmt: skip
    (web,) = load_definitions([path]).containers
    assert web.build == BuildDef(
        str(tmp_path / "app"), str(tmp_path / "app" / "Containerfile"), (("V", "2"),), "prod"
    )
    assert web.image == "localhost/web:dev"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"../nowhere"', "no such directory"),
        ('{ context = "../app", file = "Nofile" }', "no such file"),
        ('{ context = "../app", dockerfile = "x" }', "unknown key 'dockerfile'"),
        ('{ file = "Containerfile" }', "expected a context directory"),
        ('{ context = "../app", args = { a = [1] } }', "args is a table of strings"),
        ("3", "expected a context directory or a table"),
    ],
)
def test_bad_build_values_name_the_key(tmp_path: Path, value: str, message: str) -> None:
    path = app(tmp_path, f"[container.web]\nbuild = {value}\n")
    with pytest.raises(UsageError) as info:
        load_definitions([path])
    assert "build" in str(info.value) and message in str(info.value)


def test_build_and_pull_together_are_refused(tmp_path: Path) -> None:
    path = app(tmp_path, '[container.web]\nbuild = "../app"\npull = "always"\n')
    with pytest.raises(UsageError, match="never pulls"):
        load_definitions([path])


def test_build_is_not_in_the_container_hash(tmp_path: Path) -> None:
    """What a build makes is the image, whose ID decides a recreate; and containers
    defined before the key existed keep their hash."""
    built = app(tmp_path, '[container.web]\nimage = "localhost/w"\nbuild = "../app"\n')
    (with_build,) = load_definitions([built]).containers
    built.write_text('[container.web]\nimage = "localhost/w"\npull = "never"\n')
    (without,) = load_definitions([built]).containers
    assert definition_hash(with_build) == definition_hash(without)


def test_the_generator_writes_a_build_unit_the_container_requires(tmp_path: Path) -> None:
    app(tmp_path, '[container.web]\nbuild = "../app"\n')
    out = tmp_path / "out"
    out.mkdir()
    written = generate(out, [tmp_path / "defs"], "/usr/bin/rctl")
    assert written == ["rctl-build-web.service", "rctl-web.service"]
    unit = (out / "rctl-build-web.service").read_text()
    assert "--build web" in unit and "Type=oneshot" in unit and "RemainAfterExit=yes" in unit
    assert "TimeoutStartSec=1h" in unit
    container = (out / "rctl-web.service").read_text()
    assert "Requires=rctl-build-web.service" in container
    assert "After=rctl-build-web.service" in container
