"""The systemd user generator: definitions become ``rctl-NAME.service`` units at every
``daemon-reload`` and at the user manager's start (systemd.generator(7)).

Installed as ``rctl-user-generator`` in a user-generators directory (packaging/install.sh);
the user manager runs it as the user, with the manager's environment (HOME is set for
``user@.service``; the password database is the fallback), three output directories as
arguments, early in its start: so it must be quick and must not talk to D-Bus or the
manager. It reads ``$XDG_CONFIG_HOME/rctl/definitions/*.toml`` and
``/etc/rctl/definitions/USER/*.toml`` (an administrator's definitions for that user), writes
one unit per valid container into the normal directory and links it into the ``.wants/`` of
each of its ``wanted_by`` targets (what ``systemctl enable`` would do: systemd refuses to
enable generated units). The files' networks, volumes and pods, and each container's image,
get units of their own that the container units require
(:mod:`rootless.definitions.fileunits`).
A bad definition never fails the manager: each problem goes to stderr (the user manager's
journal) as ``FILE:LINE: ...``, and only what it concerns is skipped: the container with the
problem, the containers that use a bad network, volume or pod or depend on a skipped one;
the file's other containers still get their units. Exit status is 0.
"""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from rctlbase.errors import UsageError, run_main
from rootless.definitions.fileunits import (
    build_unit_name,
    container_needs,
    image_unit_name,
    network_unit_name,
    pod_unit_name,
    render_build_unit,
    render_image_unit,
    render_network_unit,
    render_pod_unit,
    render_volume_unit,
    volume_sources,
    volume_unit_name,
)
from rootless.definitions.load import (
    check_together,
    definition_files,
    parse_file,
    user_definition_dirs,
)
from rootless.definitions.model import ContainerDef, DefinitionSet
from rootless.definitions.schema import Problem
from rootless.definitions.translate import render_unit, unit_name


def rctl_executable() -> str:
    """The ``rctl`` next to this Python (a venv's bin), else the one on PATH."""
    import shutil  # noqa: PLC0415 - keep the generator's imports few

    beside = Path(sys.executable).parent / "rctl"
    if beside.exists():
        return str(beside)
    return shutil.which("rctl") or "/usr/bin/rctl"


def config_home() -> Path:
    """``$XDG_CONFIG_HOME``, else ``$HOME/.config`` (HOME from the password file if unset)."""
    if os.environ.get("XDG_CONFIG_HOME"):
        return Path(os.environ["XDG_CONFIG_HOME"])
    home = os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    return Path(home) / ".config"


def collect(dirs: list[Path]) -> tuple[DefinitionSet, list[Problem]]:
    """Every valid container of ``dirs``' files; the problems of the others."""
    return collect_files(definition_files([d for d in dirs if d.is_dir()]))


def collect_files(paths: Iterable[Path]) -> tuple[DefinitionSet, list[Problem]]:
    """What of ``paths`` can get units: the tables without problems, minus the containers
    that depend on or use one with problems; and all the problems."""
    problems: list[Problem] = []
    parts = []
    for path in paths:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), 1, "", "", f"cannot read: {exc}"))
            continue
        parts.append(parse_file(path, text, problems))
    merged = check_together(parts, problems)
    bad = {p.table for p in problems}
    networks = tuple(n for n in merged.networks if f"network.{n.name}" not in bad)
    volumes = tuple(v for v in merged.volumes if f"volume.{v.name}" not in bad)
    bad_networks = {t.partition(".")[2] for t in bad if t.startswith("network.")}
    bad_volumes = {t.partition(".")[2] for t in bad if t.startswith("volume.")}
    bad_pods = {t.partition(".")[2] for t in bad if t.startswith("pod.")}
    pods = tuple(d for d in merged.pods if f"pod.{d.name}" not in bad)
    kept: list[ContainerDef] = []
    skipped = {t.partition(".")[2] for t in bad if t.startswith("container.")}
    # In start order: a container's dependencies come before it.
    for container in merged.containers:
        if f"container.{container.name}" in bad:
            skipped.add(container.name)
            continue
        reason = _unusable(container, skipped, bad_networks, bad_volumes, bad_pods)
        if reason:
            line = container.lines.get("", 1)
            problems.append(
                Problem(container.file, line, f"container.{container.name}", "", reason)
            )
            skipped.add(container.name)
            continue
        kept.append(container)
    return DefinitionSet(merged.files, tuple(kept), volumes, networks, pods), problems


def _unusable(
    container: ContainerDef,
    skipped: set[str],
    bad_networks: set[str],
    bad_volumes: set[str],
    bad_pods: set[str],
) -> str:
    """Why ``container`` can't get a unit when others were skipped, or ''."""
    for dep in container.depends_on:
        if dep in skipped:
            return f"depends on {dep}, which has problems"
    for ref in container.networks:
        if ref.name in bad_networks:
            return f"uses network {ref.name}, which has problems"
    for volume in volume_sources(container):
        if volume in bad_volumes:
            return f"uses volume {volume}, which has problems"
    if container.pod is not None and container.pod in bad_pods:
        return f"joins pod {container.pod}, which has problems"
    return ""


def generate(output: Path, dirs: list[Path], rctl: str) -> list[str]:
    """Write the units of ``dirs``' definitions into ``output``; return their names."""
    found, problems = collect(dirs)
    for problem in problems:
        print(f"rctl-user-generator: {problem} (skipped)", file=sys.stderr)
    units: dict[str, tuple[str, str]] = {}  # unit name -> (text, file it comes from)
    for network in found.networks:
        units[network_unit_name(network.name)] = (
            render_network_unit(network, [rctl]),
            network.file,
        )
    for volume in found.volumes:
        units[volume_unit_name(volume.name)] = (render_volume_unit(volume, [rctl]), volume.file)
    for pod in found.pods:
        units[pod_unit_name(pod.name)] = (render_pod_unit(pod, [rctl]), pod.file)
    network_names = [n.name for n in found.networks]
    volume_names = [v.name for v in found.volumes]
    written = []
    for name, (text, source) in units.items():
        if _write(output, name, text, (), source):
            written.append(name)
    for container in found.containers:
        name = unit_name(container.name)
        if name in units:
            print(f"rctl-user-generator: {container.file}: [container.{container.name}]: "
                  f"its unit {name} is another table's unit: rename the container (skipped)",
                  file=sys.stderr)  # fmt: skip
            continue
        needs = container_needs(
            container, network_names, volume_names, [d.name for d in found.pods]
        )
        try:
            text = render_unit(container, [rctl], needs)
        except UsageError as exc:
            print(f"rctl-user-generator: {container.file}: {name}: {exc}", file=sys.stderr)
            continue
        image_unit = _image_unit(container, rctl)
        if image_unit and _write(output, image_unit[0], image_unit[1], (), container.file):
            written.append(image_unit[0])
        if _write(output, name, text, container.wanted_by, container.file):
            written.append(name)
    return written


def _image_unit(container: ContainerDef, rctl: str) -> tuple[str, str] | None:
    """The unit that builds or pulls ``container``'s image (name, text), if it has one."""
    if container.build is not None:
        return build_unit_name(container.name), render_build_unit(container, [rctl])
    if container.pull != "never":
        return image_unit_name(container.name), render_image_unit(container, [rctl])
    return None


def _write(output: Path, name: str, text: str, wanted_by: Sequence[str], source: str) -> bool:
    """Write unit ``name`` and its ``.wants/`` links; False (reported) if that failed."""
    try:
        (output / name).write_text(text)
        for target in wanted_by:
            wants = output / f"{target}.wants"
            if wants.parent != output:  # validated as unit names: never outside output
                raise ValueError(f"wanted_by {target!r} is not a unit name")
            wants.mkdir(exist_ok=True)
            link = wants / name
            if not link.is_symlink():
                link.symlink_to(output / name)
    except (OSError, ValueError) as exc:
        print(f"rctl-user-generator: {source}: {name}: {exc}", file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: rctl-user-generator NORMAL_DIR [EARLY_DIR LATE_DIR]", file=sys.stderr)
        return 0

    def body() -> int:
        user = pwd.getpwuid(os.getuid()).pw_name
        generate(Path(args[0]), user_definition_dirs(config_home(), user), rctl_executable())
        return 0

    # A generator must never fail the manager: every error is reported, the status is 0.
    return run_main(body, error_code=0, internal_code=0)


if __name__ == "__main__":
    sys.exit(main())
