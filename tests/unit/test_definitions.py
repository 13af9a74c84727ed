"""Definition files: the position index, every validation error (file:line, table, key),
apply/down planning, changed keys, healthcheck states, the generator's output."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from rctlbase.errors import ConflictError, UsageError
from rootless.containers.health import (
    HealthConfig,
    HealthState,
    next_state,
    parse_duration,
    plan_health,
)
from rootless.definitions.apply import Existing, plan_apply, plan_down
from rootless.definitions.generator import generate
from rootless.definitions.load import load_definitions, parse_file
from rootless.definitions.model import DefinitionLocation
from rootless.definitions.positions import index_positions
from rootless.definitions.schema import DefinitionError, Problem
from rootless.definitions.translate import changed_keys, definition_labels
from rootless.images.manifest import Healthcheck
from rootless.models import RunOptions
from units.unitfile import quote_argv


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(tmp_path: Path, text: str, name: str = "app.toml") -> list[str]:
    path = write(tmp_path, name, text)
    with pytest.raises(DefinitionError) as caught:
        load_definitions([path])
    assert caught.value.exit_code == 125
    return [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]


# ---- positions -----------------------------------------------------------------------------


def test_positions_of_headers_keys_dotted_and_multiline_values() -> None:
    source = '\n'.join([
        "# comment [not.a.table]",            # 1
        "[container.web]",                    # 2
        'image = "x"  # trailing',            # 3
        "ports = [",                          # 4
        '  "80:80",',                         # 5
        '  "fake = 1",',                      # 6
        "]",                                  # 7
        'command = """',                      # 8
        "image = not a key",                  # 9
        '"""',                                # 10
        'labels.tier = "front"',              # 11
        '"quoted key" = { a = 1 }',           # 12
        "[container.web.healthcheck]",        # 13
        "  cmd = 'true'",                     # 14
    ])  # fmt: skip
    index = index_positions(source)
    assert index.line_of(("container", "web")) == 2
    assert index.line_of(("container", "web", "image")) == 3
    assert index.line_of(("container", "web", "ports")) == 4
    assert index.line_of(("container", "web", "command")) == 8
    assert index.line_of(("container", "web", "labels")) == 11
    assert index.line_of(("container", "web", "labels", "tier")) == 11
    assert index.line_of(("container", "web", "quoted key", "a")) == 12  # inline: its key's line
    assert index.line_of(("container", "web", "healthcheck", "cmd")) == 14
    assert ("container", "web", "fake") not in index.lines
    assert ("container", "web", "image") in index.lines and len(
        [k for k in index.lines if k[-1] == "image"]
    ) == 1


# ---- every kind of error names file:line, the table and the key -----------------------------


def test_malformed_toml_names_its_line(tmp_path: Path) -> None:
    found = problems_of(tmp_path, '[container.web]\nimage = "x"\nports = [\n')
    assert found == ["app.toml:3: not valid TOML: Invalid value"]
    found = problems_of(tmp_path, '[container.web]\nimage = "x"\nimage = "y"\n')
    assert found == ["app.toml:3: not valid TOML: Cannot overwrite a value"]


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    found = problems_of(tmp_path, '[container.web]\nimage = "x"\nporst = ["80:80"]\n')
    assert found == ["app.toml:3: [container.web] porst: unknown key (did you mean 'ports'?)"]


def test_unknown_table_and_missing_image(tmp_path: Path) -> None:
    found = problems_of(tmp_path, '[containers.web]\nimage = "x"\n\n[container.db]\nuser = "1"\n')
    assert "app.toml:1: [containers]: unknown table (container, volume, network or pod)" in found
    assert "app.toml:4: [container.db]: missing key 'image'" in found


def test_wrong_types(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        '[container.web]\nimage = "x"\nread_only = "yes"\ncpus = true\nenv = ["A=1"]\n',
    )
    assert "app.toml:3: [container.web] read_only: expected true or false, got a string" in found
    assert "app.toml:4: [container.web] cpus: expected a number of CPUs, got a boolean" in found
    assert "app.toml:5: [container.web] env: expected a table, got a list" in found


def test_values_the_run_flags_refuse(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        '[container.web]\nimage = "x"\nmemory = "lots"\nrestart = "sometimes"\n'
        'ports = ["99999:80"]\ncap_add = ["FLY"]\n',
    )
    lines = [f.split(":")[1] for f in found]
    assert sorted(lines) == ["3", "4", "5", "6"]  # one problem per bad key, each on its line
    assert any(f.startswith("app.toml:3: [container.web] memory:") for f in found)
    assert any(f.startswith("app.toml:4: [container.web] restart:") for f in found)
    assert any(f.startswith("app.toml:6: [container.web] cap_add:") for f in found)
    assert any(f.startswith("app.toml:5: [container.web] ports:") for f in found)


def test_memory_swap_is_checked_with_memory(tmp_path: Path) -> None:
    # As --memory-swap with --memory: refused when the file is checked, not when its unit
    # is generated (where it would have stopped the generator's other units).
    alone = problems_of(tmp_path, '[container.web]\nimage = "x"\nmemory_swap = "1g"\n')
    assert alone == ["app.toml:3: [container.web] memory_swap: needs memory too"]
    smaller = '[container.web]\nimage = "x"\nmemory = "1g"\nmemory_swap = "512m"\n'
    assert [f.split(":")[1] for f in problems_of(tmp_path, smaller)] == ["4"]
    bad_memory = '[container.web]\nimage = "x"\nmemory = "lots"\nmemory_swap = "1g"\n'
    assert [f.split(":")[1] for f in problems_of(tmp_path, bad_memory)] == ["3"]
    fine = '[container.web]\nimage = "x"\nmemory = "1g"\nmemory_swap = "-1"\n'
    (web,) = load_definitions([write(tmp_path, "fine.toml", fine)]).containers
    assert (web.memory, web.memory_swap) == ("1g", "-1")


def test_validating_ports_opens_no_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Host ports are chosen when the container is created, not when a file is checked.
    def no_socket(*args: object, **kwargs: object) -> None:
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", no_socket)
    text = (
        '[container.a]\nimage = "x"\nports = ["0:80", "8000-8010:80", "81", "9000-9002:90-92"]\n'
        '[container.b]\nimage = "x"\nports = ["8000-8010:80/udp", "127.0.0.1::443"]\n'
    )
    a, b = load_definitions([write(tmp_path, "ports.toml", text)]).containers
    assert len(a.ports) == 4 and len(b.ports) == 2


def test_port_published_twice_across_containers(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        '[container.a]\nimage = "x"\nports = ["8080:80"]\n\n'
        '[container.b]\nimage = "x"\nports = ["9000:90", "8080:81"]\n',
    )
    assert found == [
        "app.toml:7: [container.b] ports: host port 8080/tcp is published twice "
        "(also by container a)"
    ]


def test_relative_volume_in_a_system_definition(tmp_path: Path) -> None:
    problems: list[Problem] = []
    parse_file(
        Path("/etc/rctl/definitions/alice/app.toml"),
        '[container.web]\nimage = "x"\nvolumes = ["./site:/srv"]\n',
        problems,
        DefinitionLocation.SYSTEM,
    )
    assert [str(p) for p in problems] == [
        "/etc/rctl/definitions/alice/app.toml:3: [container.web] volumes: './site' is "
        "relative: system definitions need absolute host paths"
    ]


def test_relative_volume_in_a_user_definition_is_resolved(tmp_path: Path) -> None:
    path = write(
        tmp_path, "app.toml", '[container.web]\nimage = "x"\nvolumes = ["./site:/srv:ro"]\n'
    )
    found = load_definitions([path])
    assert found.containers[0].volumes == (f"{tmp_path}/site:/srv:ro",)


def test_dependency_cycle_and_unknown_dependency(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        '[container.a]\nimage = "x"\ndepends_on = ["b"]\n\n'
        '[container.b]\nimage = "x"\ndepends_on = ["a", "ghost"]\n',
    )
    assert "app.toml:7: [container.b] depends_on: unknown container 'ghost'" in found
    assert any(f.startswith("app.toml:") and "depends_on: dependency cycle: " in f for f in found)


def test_healthcheck_errors_name_the_subtable(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        '[container.web]\nimage = "x"\n[container.web.healthcheck]\ncmd = "true"\n'
        'interval = "soon"\non_failure = "explode"\n',
    )
    assert found == [
        "app.toml:5: [container.web.healthcheck] interval: 'soon' is not a duration "
        "(30s, 1m30s, 500ms)",
        "app.toml:6: [container.web.healthcheck] on_failure: 'explode' is not \"restart\" "
        'or "none"',
    ]


def test_unit_pass_through_keys_must_look_like_systemd_settings(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path, '[container.web]\nimage = "x"\n[container.web.service]\nexec_start = "x"\n'
    )
    assert found == [
        "app.toml:4: [container.web.service] exec_start: not a systemd setting name "
        "(like After or Environment)"
    ]


def test_same_name_in_two_files(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", '[container.web]\nimage = "x"\n')
    write(tmp_path, "b.toml", '\n[container.web]\nimage = "y"\n')
    with pytest.raises(DefinitionError) as caught:
        load_definitions([tmp_path])
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/b.toml:2: [container.web]: container 'web' is also defined in "
        f"{tmp_path}/a.toml"
    ]


def test_all_files_are_checked_before_anything(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", "[container.a]\nimage = 5\n")
    write(tmp_path, "b.toml", '[container.b]\nimage = "x"\nhostnam = "b"\n')
    with pytest.raises(DefinitionError) as caught:
        load_definitions([tmp_path])
    files = sorted(Path(p.file).name for p in caught.value.problems)
    assert files == ["a.toml", "b.toml"]


def test_dependency_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "app.toml",
        '[container.web]\nimage = "x"\ndepends_on = ["api"]\n'
        '[container.api]\nimage = "x"\ndepends_on = ["db"]\n[container.db]\nimage = "x"\n',
    )
    assert [c.name for c in load_definitions([path]).containers] == ["db", "api", "web"]


# ---- apply and down planning ---------------------------------------------------------------


def defs(tmp_path: Path, text: str) -> object:
    return load_definitions([write(tmp_path, "app.toml", text)])


def existing_for(tmp_path: Path, text: str, name: str, *, running: bool = True) -> Existing:
    found = load_definitions([write(tmp_path, "old.toml", text)])
    container = found.container(name)
    assert container is not None
    labels = definition_labels(container)
    labels["io.rctl.definition.file"] = str(tmp_path / "app.toml")
    return Existing(f"id-{name}", name, labels, "sha256:img", running)


def test_plan_apply_create_recreate_keep_start_remove(tmp_path: Path) -> None:
    old = '[container.a]\nimage = "x"\n[container.b]\nimage = "x"\nports = ["80:80"]\n' \
          '[container.c]\nimage = "x"\n[container.gone]\nimage = "x"\n'  # fmt: skip
    existing = [
        existing_for(tmp_path, old, "a"),
        existing_for(tmp_path, old, "b"),
        existing_for(tmp_path, old, "c", running=False),
        existing_for(tmp_path, old, "gone"),
    ]
    new = '[container.a]\nimage = "x"\n[container.b]\nimage = "x"\nports = ["81:80"]\n' \
          'env = { A = "1" }\n[container.c]\nimage = "x"\n[container.d]\nimage = "x"\n'  # fmt: skip
    wanted = load_definitions([write(tmp_path, "app.toml", new)])
    actions = plan_apply(wanted, existing, {"x": "sha256:img"}, set(), set())
    assert [a.describe() for a in actions] == [
        "remove container gone",
        "keep container a",
        "recreate container b (env, ports)",
        "start container c",
        "create container d",
    ]


def test_plan_apply_recreates_on_a_new_image(tmp_path: Path) -> None:
    text = '[container.a]\nimage = "x"\n'
    existing = [existing_for(tmp_path, text, "a")]
    wanted = load_definitions([write(tmp_path, "app.toml", text)])
    actions = plan_apply(wanted, existing, {"x": "sha256:newer"}, set(), set())
    assert [a.describe() for a in actions] == ["recreate container a (image (new image ID))"]


def test_plan_apply_refuses_a_container_not_made_from_a_definition(tmp_path: Path) -> None:
    wanted = load_definitions([write(tmp_path, "app.toml", '[container.a]\nimage = "x"\n')])
    with pytest.raises(ConflictError):
        plan_apply(wanted, [Existing("id", "a", {}, "img", True)], {}, set(), set())


def test_plan_apply_volumes_and_networks_first(tmp_path: Path) -> None:
    wanted = load_definitions([write(
        tmp_path, "app.toml",
        '[volume.v1]\n[volume.v2]\n[network.n1]\n[container.a]\nimage = "x"\n',
    )])  # fmt: skip
    actions = plan_apply(wanted, [], {}, {"v2"}, set())
    assert [a.describe() for a in actions] == [
        "create network n1",
        "create volume v1",
        "create container a",
    ]


def test_plan_down_keeps_volumes_unless_asked(tmp_path: Path) -> None:
    text = '[volume.data]\n[container.a]\nimage = "x"\n[container.b]\nimage = "x"\ndepends_on = ["a"]\n'
    existing = [existing_for(tmp_path, text, "a"), existing_for(tmp_path, text, "b"),
                Existing("other", "c", {}, "img", True)]  # fmt: skip
    wanted = load_definitions([write(tmp_path, "app.toml", text)])
    kept = plan_down(wanted, existing, {"data"}, set(), remove_volumes=False)
    assert [a.describe() for a in kept] == ["remove container b", "remove container a"]
    both = plan_down(wanted, existing, {"data"}, set(), remove_volumes=True)
    assert [a.describe() for a in both][-1] == "remove volume data"


def test_changed_keys_against_labels(tmp_path: Path) -> None:
    one = load_definitions([write(tmp_path, "a.toml", '[container.a]\nimage = "x"\nuser = "1"\n')])
    two = load_definitions([write(tmp_path, "a.toml", '[container.a]\nimage = "y"\n')])
    labels = definition_labels(one.containers[0])
    assert changed_keys(labels, two.containers[0]) == ["image", "user"]
    assert changed_keys(labels, one.containers[0]) == []


# ---- healthchecks ----------------------------------------------------------------------------


def test_durations() -> None:
    assert parse_duration("1m30s") == 90
    assert parse_duration("500ms") == 0.5
    assert parse_duration(10) == 10
    assert parse_duration("soon") is None
    assert parse_duration(True) is None


def test_health_states_follow_docker() -> None:
    config = HealthConfig(("CMD", "true"), retries=2, start_period=10)
    state = HealthState()
    state = next_state(state, config, exit_code=1, output="no", started=0, begun=5, ended=5)
    assert (state.status, state.failing_streak) == ("starting", 0)  # in the start period
    state = next_state(state, config, exit_code=1, output="no", started=0, begun=20, ended=20)
    assert (state.status, state.failing_streak) == ("starting", 1)
    state = next_state(state, config, exit_code=1, output="no", started=0, begun=30, ended=30)
    assert (state.status, state.failing_streak) == ("unhealthy", 2)
    state = next_state(state, config, exit_code=0, output="ok", started=0, begun=40, ended=40)
    assert (state.status, state.failing_streak) == ("healthy", 0)
    assert len(state.log) == 4 and state.log[-1]["ExitCode"] == 0


# ---- the generator and unit text -------------------------------------------------------------


def test_generator_skips_a_bad_file_and_links_wanted_by(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    defs_dir = tmp_path / "defs"
    out = tmp_path / "out"
    defs_dir.mkdir()
    out.mkdir()
    write(defs_dir, "good.toml", '[container.web]\nimage = "x"\nwanted_by = "multi.target"\n')
    write(defs_dir, "bad.toml", '[container.db]\nimage = "x"\nbogus = 1\n')
    written = generate(out, [defs_dir, tmp_path / "missing"], "/opt/rctl/bin/rctl")
    assert written == ["rctl-image-web.service", "rctl-web.service"]
    assert (
        "ExecStart=/opt/rctl/bin/rctl container run-unit" in (out / "rctl-web.service").read_text()
    )
    link = out / "multi.target.wants" / "rctl-web.service"
    assert link.is_symlink() and os.readlink(link) == str(out / "rctl-web.service")
    assert not (out / "rctl-db.service").exists()
    assert "bad.toml:3: [container.db] bogus: unknown key" in capsys.readouterr().err


def test_quote_argv_for_systemd() -> None:
    assert quote_argv(["/usr/bin/rctl", "a b", "50%", "$HOME", 'q"']).text == (
        '/usr/bin/rctl "a b" 50%% $$HOME "q\\""'
    )


def test_plan_health_from_flags_over_the_image() -> None:
    image = Healthcheck(("CMD-SHELL", "curl -f localhost"), interval=10 * 10**9, retries=5)
    from_image = plan_health(RunOptions("x"), image)
    assert from_image == HealthConfig(("CMD-SHELL", "curl -f localhost"), interval=10, retries=5)
    assert from_image.argv == ("/bin/sh", "-c", "curl -f localhost")
    flags = RunOptions("x", health_cmd='["test", "-f", "/ok"]', health_interval="1m",
                       health_on_failure="restart")  # fmt: skip
    mine = plan_health(flags, image)
    assert mine is not None and mine.argv == ("test", "-f", "/ok")
    assert (mine.interval, mine.on_failure, mine.retries) == (60, "restart", 3)
    assert plan_health(RunOptions("x", no_healthcheck=True), image) is None
    assert plan_health(RunOptions("x"), Healthcheck(("NONE",))) is None
    with pytest.raises(UsageError, match="--health-on-failure"):
        plan_health(RunOptions("x", health_cmd="true", health_on_failure="kill"), None)
    with pytest.raises(UsageError, match="--health-interval"):
        plan_health(RunOptions("x", health_cmd="true", health_interval="often"), None)
