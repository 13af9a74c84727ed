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
enable generated units). A bad file never fails the manager: its problems go to stderr (the
user manager's journal) and only that file's containers are skipped. Exit status is 0.
"""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

from rctlbase.errors import UsageError, run_main
from rootless.definitions.load import (
    check_together,
    definition_files,
    parse_file,
    user_definition_dirs,
)
from rootless.definitions.model import DefinitionSet
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
    problems: list[Problem] = []
    parts = []
    for path in definition_files([d for d in dirs if d.is_dir()]):
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), 1, "", "", f"cannot read: {exc}"))
            continue
        parts.append(parse_file(path, text, problems))
    merged = check_together(parts, problems)
    bad = {p.table.partition(".")[2] for p in problems if p.table.startswith("container.")}
    bad_files = {p.file for p in problems if not p.table.startswith(("volume.", "network."))}
    kept = tuple(c for c in merged.containers if c.name not in bad and c.file not in bad_files)
    return DefinitionSet(merged.files, kept, merged.volumes, merged.networks), problems


def generate(output: Path, dirs: list[Path], rctl: str) -> list[str]:
    """Write the units of ``dirs``' definitions into ``output``; return their names."""
    found, problems = collect(dirs)
    for problem in problems:
        print(f"rctl-user-generator: {problem} (skipped)", file=sys.stderr)
    written = []
    for container in found.containers:
        name = unit_name(container.name)
        try:
            text = render_unit(container, [rctl])
            (output / name).write_text(text)
            for target in container.wanted_by:
                wants = output / f"{target}.wants"
                if wants.parent != output:  # validated as unit names: never outside output
                    raise ValueError(f"wanted_by {target!r} is not a unit name")
                wants.mkdir(exist_ok=True)
                link = wants / name
                if not link.is_symlink():
                    link.symlink_to(output / name)
        except (OSError, ValueError, UsageError) as exc:
            print(f"rctl-user-generator: {container.file}: {name}: {exc}", file=sys.stderr)
            continue
        written.append(name)
    return written


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
