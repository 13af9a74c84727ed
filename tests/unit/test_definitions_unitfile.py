"""What of a definition reaches its unit file, and how: control characters refused in
every value (FILE:LINE and key named), ``wanted_by`` as unit names, ``%`` escaped, the image
as an image reference; the generator writing nowhere else than its directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rootless.definitions.generator import generate
from rootless.definitions.load import load_definitions
from rootless.definitions.model import ContainerDef
from rootless.definitions.schema import DefinitionError
from rootless.definitions.translate import render_unit
from units.unitfile import UnitSection, Verbatim, quote_word, render_unit_file


def problems_of(tmp_path: Path, text: str, name: str = "app.toml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DefinitionError) as caught:
        load_definitions([path])
    for problem in caught.value.problems:
        assert "\r" not in str(problem) and "\n" not in str(problem)
    return [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]


def loads(tmp_path: Path, text: str) -> ContainerDef:
    path = tmp_path / "ok.toml"
    path.write_text(text)
    return load_definitions([path]).containers[0]


# ---- control characters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('hostname = "web\\r"', "hostname"),
        ('labels = { tier = "a\\rb" }', "labels.tier"),
        ('env = { A = "x\\ry" }', "env.A"),  # newlines yes, a carriage return no
        ('command = ["sh", "-c", "x\\u001b[2J"]', "command"),
        ('entrypoint = "a\\u0000b"', "entrypoint"),
        ('user = "a\\tb"', "user"),
        ('wanted_by = ["x.target\\n[Service]"]', "wanted_by"),
        ('env = { "A\\rB" = "1" }', "env.A\\x0dB"),
    ],
)
def test_a_control_character_in_any_value_is_refused(tmp_path: Path, line: str, key: str) -> None:
    found = problems_of(tmp_path, f'[container.web]\nimage = "x"\n{line}\n')
    assert len(found) == 1
    assert found[0].startswith(f"app.toml:3: [container.web] {key}: the ")
    assert "holds a control character" in found[0]


def test_in_nested_tables_volumes_and_networks_too(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        '[container.web]\nimage = "x"\n[container.web.service]\nDescription = "a\\rExecStartPre=/x"\n'
        '[container.web.healthcheck]\ncmd = "true\\r"\n'
        '[volume.data]\nlabels = { a = "\\r" }\n[network.net]\nsubnet = "10.0.0.0/24\\r"\n',
    )
    assert sorted(found) == [
        "app.toml:10: [network.net] subnet: the value holds a control character: write it "
        "without one",
        "app.toml:4: [container.web] service.Description: the value holds a control character: "
        "write it without one",
        "app.toml:6: [container.web] healthcheck.cmd: the value holds a control character: "
        "write it without one",
        "app.toml:8: [volume.data] labels.a: the value holds a control character: write it "
        "without one",
    ]


def test_a_table_name_with_a_control_character_stays_one_line(tmp_path: Path) -> None:
    found = problems_of(tmp_path, '[container."a\\rb"]\nimage = "x"\n')
    assert found == [
        "app.toml:1: [container.a\\x0db]: the table's name holds a control character: "
        "write it without one"
    ]


def test_scripts_may_span_lines(tmp_path: Path) -> None:
    container = loads(
        tmp_path,
        '[container.web]\nimage = "x"\ncommand = ["sh", "-c", """\nset -e\n\techo hi\n"""]\n'
        'env = { MOTD = "two\\nlines" }\n[container.web.healthcheck]\ncmd = "true\\ntrue"\n',
    )
    assert container.command == ("sh", "-c", "set -e\n\techo hi\n")
    assert container.env == (("MOTD", "two\nlines"),)
    assert "\n" not in "".join(line for line in render_unit(container, ["rctl"]).splitlines())


def test_a_file_name_with_a_control_character_is_refused(tmp_path: Path) -> None:
    found = problems_of(tmp_path, '[container.web]\nimage = "x"\n', name="a\rb.toml")
    assert found == ["a\\x0db.toml:1: the file's name holds a control character"]


def test_a_pass_through_value_may_not_continue_the_line(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path, '[container.web]\nimage = "x"\n[container.web.unit]\nDescription = "x\\\\"\n'
    )
    assert found == [
        "app.toml:4: [container.web.unit] Description: a value ending in '\\' would continue "
        "onto the next line"
    ]


# ---- values checked as what they are --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('wanted_by = ["../../x"]', "'../../x' does not end in a unit type"),
        ('wanted_by = "../../etc/x.target"', "is not a unit name"),
        ('wanted_by = ["getty@.target"]', "is a template, not a unit"),
        ('image = "Docker.io/Library/Nginx"', "must be lowercase"),
        ('image = "nginx:%h"', "bad tag '%h'"),
        ('image = "a b"', "invalid image reference"),
        ("stop_timeout = -1", "negative"),
        ("stop_timeout = 99999999999999", "more than 1000000000 seconds"),
        ('depends_on = ["../x"]', "'../x' is not a container name"),
    ],
)
def test_values_that_reach_the_unit_are_checked(tmp_path: Path, line: str, message: str) -> None:
    text = f"[container.web]\n{line}\n" + ("" if line.startswith("image") else 'image = "x"\n')
    found = problems_of(tmp_path, text)
    assert any(f.startswith("app.toml:2: [container.web] ") and message in f for f in found), found


def test_good_targets_images_and_ids_are_accepted(tmp_path: Path) -> None:
    container = loads(
        tmp_path,
        '[container.web]\nimage = "registry.lan:5000/team/app@sha256:' + "a" * 64 + '"\n'
        'wanted_by = ["multi-user.target", "getty@tty1.service"]\n',
    )
    assert container.wanted_by == ("multi-user.target", "getty@tty1.service")
    assert loads(tmp_path, '[container.web]\nimage = "' + "b" * 64 + '"\n').image == "b" * 64


# ---- rendering --------------------------------------------------------------------------------


def test_percent_is_escaped_except_in_the_pass_through(tmp_path: Path) -> None:
    folder = tmp_path / "50%h"
    folder.mkdir()
    (folder / "app.toml").write_text(
        '[container.web]\nimage = "x"\n[container.web.service]\nEnvironment = "HOME=%h"\n'
    )
    container = load_definitions([folder]).containers[0]
    unit = render_unit(container, ["/opt/50%n/rctl"])
    assert f"SourcePath={tmp_path}/50%%h/app.toml\n" in unit
    assert f"ExecStart=/opt/50%%n/rctl container run-unit --definition {tmp_path}/50%%h/" in unit
    assert "Environment=HOME=%h\n" in unit  # systemd syntax, specifiers meant


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\0b", "a\x1bb", "ends in \\"])
def test_the_renderer_refuses_what_would_break_a_line(value: str) -> None:
    for kind in (str, Verbatim):
        with pytest.raises(ValueError, match="Description="):
            render_unit_file([UnitSection("Unit", (("Description", kind(value)),))])
    with pytest.raises(ValueError, match="header"):
        render_unit_file([], [f"from {value}"] if "\\" not in value else ["a\rb"])


def test_a_command_word_with_control_characters_is_escaped() -> None:
    assert quote_word("a\rb\nc\td\x1b") == '"a\\rb\\nc\\td\\x1b"'
    with pytest.raises(ValueError, match="NUL"):
        quote_word("a\0b")


def test_the_generator_writes_only_into_its_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    defs_dir = tmp_path / "defs"
    out = tmp_path / "a" / "out"
    defs_dir.mkdir()
    out.mkdir(parents=True)
    (defs_dir / "evil.toml").write_text(
        '[container.web]\nimage = "x"\nwanted_by = ["../../x"]\n'
        '[container.db]\nimage = "x"\nhostname = "db\\r"\n'
    )
    (defs_dir / "good.toml").write_text('[container.ok]\nimage = "x"\n')
    assert generate(out, [defs_dir], "/usr/bin/rctl") == [
        "rctl-image-ok.service", "rctl-ok.service",
    ]  # fmt: skip
    assert sorted(os.listdir(tmp_path)) == ["a", "defs"]
    assert sorted(os.listdir(out)) == [
        "default.target.wants", "rctl-image-ok.service", "rctl-ok.service",
    ]  # fmt: skip
    err = capsys.readouterr().err
    assert "wanted_by: '../../x' does not end in a unit type" in err
    assert "hostname: the value holds a control character" in err
