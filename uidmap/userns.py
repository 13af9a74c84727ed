"""Applying an ID-mapping plan to a process, and diagnosing the host when that cannot work.

:func:`apply_plan` writes a process's uid_map and gid_map through newuidmap/newgidmap (the
only way an unprivileged user maps subordinate IDs). A failure is explained precisely
the helper is not privileged, a range is not the user's, a host range is
not mapped in rctl's own namespace, or the kernel refused the map for another reason.
:func:`check_host` lists every such problem up front, with its fix, for ``rctl doctor``.
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from rctlbase.errors import CommandFailed, HostError, NotFoundError, RctlError
from rctlbase.run import install_hint, last_line, spawn_program
from uidmap.mapping import (
    DEFAULT_SIZE,
    DEFAULT_SUB_START,
    IDKind,
    IDMap,
    UsernsPlan,
    find_shortages,
    plan_userns,
    shortage_error,
    subtract,
    usermod_command,
)
from uidmap.maptools import MapTool, inspect_map_tool
from uidmap.subid import SUBGID_PATH, SUBUID_PATH, IDRange, read_subid_file

TOOLS = {IDKind.UID: "newuidmap", IDKind.GID: "newgidmap"}
SUBID_PATHS = {IDKind.UID: SUBUID_PATH, IDKind.GID: SUBGID_PATH}
NOT_ALLOWED = re.compile(r"range \[(\d+)-(\d+)\) -> \[(\d+)-(\d+)\) not allowed")


def describe_maps(maps: tuple[IDMap, ...]) -> str:
    """``0→1000 (1), 1→100000 (65536)``: a map as a person reads it."""
    return ", ".join(f"{m.container_id}→{m.host_id} ({m.size})" for m in maps)


def parse_proc_map(text: str) -> list[IDRange]:
    """The IDs a /proc/PID/uid_map makes visible in its namespace (its first column)."""
    ranges = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and all(f.isdecimal() for f in fields):
            ranges.append(IDRange(int(fields[0]), int(fields[2])))
    return ranges


def unmapped_host_ranges(maps: tuple[IDMap, ...], own: list[IDRange]) -> list[IDRange]:
    """The host IDs of ``maps`` that our own namespace (``own``) does not map."""
    missing = []
    for m in maps:
        pieces = [IDRange(m.host_id, m.size)]
        for visible in own:
            pieces = [part for piece in pieces for part in subtract(piece, visible)]
        missing += pieces
    return missing


def kernel_refusal(
    kind: IDKind, line: str, *, pid: int, maps: tuple[IDMap, ...], own_map: str, alive: bool
) -> HostError:
    """Why the kernel refused a map newuidmap was allowed to write (``write to ... failed``)."""
    if not alive:
        return HostError(f"process {pid} exited before its {kind} map was written")
    missing = unmapped_host_ranges(maps, parse_proc_map(own_map))
    if missing:
        ranges = ", ".join(map(str, missing))
        return HostError(
            f"the kernel refused the {kind} map of process {pid}: host {kind}s {ranges} are "
            "not mapped in rctl's own user namespace",
            hint=f"rctl runs in a user namespace (a container?) whose {kind}_map is "
            f"{' / '.join(own_map.strip().splitlines()) or 'empty'}; map these IDs there "
            "or run rctl on the host",
        )
    reason = line.rsplit(": ", 1)[-1]
    return HostError(
        f"the kernel refused the {kind} map {describe_maps(maps)} of process {pid}: {reason}",
        hint="a map is written once, to a process in a new user namespace of the same user "
        "(user_namespaces(7))",
    )


def explain_map_failure(
    kind: IDKind,
    error: CommandFailed,
    *,
    pid: int,
    maps: tuple[IDMap, ...],
    tool: MapTool,
    user: str,
    own_map: str,
    target_alive: bool,
) -> RctlError:
    """Turn newuidmap/newgidmap's failure into the error that names the cause and the fix.

    Pure: the caller gathers the helper's state, /proc/self/{uid,gid}_map and whether the
    target still exists. The helper's privileges are checked first: without them it fails
    whatever the ranges.
    """
    program = TOOLS[kind]
    unprivileged = tool.unprivileged()
    if unprivileged is not None:
        why, fix = unprivileged
        return HostError(f"{program} ({tool.path}) cannot map subordinate IDs: {why}", hint=fix)
    line = last_line(error.stderr.encode())
    refused = NOT_ALLOWED.search(line)
    if refused:
        inner_start, inner_end, host_start, host_end = map(int, refused.groups())
        return HostError(
            f"{program} refused to map container {kind}s {inner_start}-{inner_end - 1} to "
            f"host {kind}s {host_start}-{host_end - 1}: they are not {user}'s in "
            f"{SUBID_PATHS[kind]}",
            hint=f"sudo usermod --add-sub{kind}s {host_start}-{host_end - 1} {user} "
            "(or fix the subid source in /etc/nsswitch.conf)",
        )
    if "owned by a different user" in line:
        return HostError(
            f"{program} refused process {pid}: {line.split(': ', 1)[-1]}",
            hint="run rctl with your own primary group (not under sg/newgrp or another uid)",
        )
    if "write to" in line:
        return kernel_refusal(kind, line, pid=pid, maps=maps, own_map=own_map, alive=target_alive)
    return error


def map_argv(kind: IDKind, pid: int, maps: tuple[IDMap, ...]) -> list[str]:
    """The newuidmap/newgidmap command writing ``maps`` for ``pid``."""
    argv = [TOOLS[kind], str(pid)]
    for m in maps:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    return argv


def map_failure(kind: IDKind, pid: int, maps: tuple[IDMap, ...], exc: CommandFailed) -> RctlError:
    """Why newuidmap/newgidmap refused, from what it said and what the host looks like."""
    try:
        own_map = Path(f"/proc/self/{kind}_map").read_text()
    except OSError:
        own_map = ""
    return explain_map_failure(
        kind,
        exc,
        pid=pid,
        maps=maps,
        tool=inspect_map_tool(TOOLS[kind]),
        user=current_user(),
        own_map=own_map,
        target_alive=Path(f"/proc/{pid}").exists(),
    )


def apply_plan(pid: int, plan: UsernsPlan) -> None:
    """Write ``plan`` as the uid_map and gid_map of process ``pid`` (in a new user namespace).

    newuidmap and newgidmap run at the same time (the two maps are independent; each is a
    setuid program's start, on every container start). Raises ProgramNotFound when the
    helpers are missing and HostError naming the cause and the fix when they or the kernel
    refuse (the uid map's failure first).
    """
    jobs = [
        (kind, maps, spawn_program(map_argv(kind, pid, maps), stdout="devnull", stderr="pipe"))
        for kind, maps in ((IDKind.UID, plan.uid_maps), (IDKind.GID, plan.gid_maps))
    ]
    failures: list[tuple[RctlError, CommandFailed]] = []
    for kind, maps, proc in jobs:
        _, stderr = proc.communicate()
        if proc.returncode != 0:
            said = last_line(stderr) or f"exit {proc.returncode}"
            exc = CommandFailed(
                f"{TOOLS[kind]} failed: {said}",
                returncode=proc.returncode,
                stderr=stderr.decode(errors="replace"),
            )
            failures.append((map_failure(kind, pid, maps, exc), exc))
    if failures:
        error, cause = failures[0]
        raise error from cause


def current_user() -> str:
    """The name of the real uid (its number when /etc/passwd has no entry)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def load_plan(
    user: str,
    uid: int,
    gid: int,
    *,
    keep_id: bool = False,
    size: int = DEFAULT_SIZE,
    subuid_path: Path = SUBUID_PATH,
    subgid_path: Path = SUBGID_PATH,
) -> UsernsPlan:
    """Read the subid files and plan the user's namespace (hints suggest a free range)."""
    subuids, subgids = read_subid_file(subuid_path), read_subid_file(subgid_path)
    return plan_userns(
        uid,
        gid,
        subuids.ranges_for(user, uid),
        subgids.ranges_for(user, uid),
        keep_id=keep_id,
        size=size,
        user=user,
        subuid_path=subuid_path,
        subgid_path=subgid_path,
        free_start=max(DEFAULT_SUB_START, subuids.highest_end(), subgids.highest_end()),
    )


class ProblemKind(StrEnum):
    """What ``rctl doctor`` found wrong with user namespaces on this host."""

    NO_SUBIDS = "no-subids"
    FEW_SUBIDS = "few-subids"
    MALFORMED_SUBIDS = "malformed-subids"
    TOOL_MISSING = "tool-missing"
    TOOL_UNPRIVILEGED = "tool-unprivileged"
    USERNS_DISABLED = "userns-disabled"
    USERNS_RESTRICTED = "userns-restricted"


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of the host, with the command (or edit) that fixes it."""

    kind: ProblemKind
    message: str
    fix: str


# (sysctl, value that breaks rootless containers, kind, fix) — user_namespaces(7); Debian's
# unprivileged_userns_clone patch; Ubuntu 23.10's AppArmor restriction.
USERNS_SYSCTLS = (
    (
        "user/max_user_namespaces",
        "0",
        ProblemKind.USERNS_DISABLED,
        "user.max_user_namespaces=15000",
    ),
    (
        "kernel/unprivileged_userns_clone",
        "0",
        ProblemKind.USERNS_DISABLED,
        "kernel.unprivileged_userns_clone=1",
    ),
    (
        "kernel/apparmor_restrict_unprivileged_userns",
        "1",
        ProblemKind.USERNS_RESTRICTED,
        "kernel.apparmor_restrict_unprivileged_userns=0",
    ),
)


def userns_problems(proc_sys: Path = Path("/proc/sys")) -> list[Problem]:
    """Kernel settings that stop unprivileged users from making user namespaces."""
    problems = []
    for name, bad, kind, setting in USERNS_SYSCTLS:
        try:
            value = (proc_sys / name).read_text().strip()
        except OSError:
            continue
        if value == bad:
            key = name.replace("/", ".")
            problems.append(
                Problem(
                    kind,
                    f"{key} is {value}: unprivileged user namespaces are not allowed",
                    f"sudo sysctl -w {setting} (and in /etc/sysctl.d/ to keep it)",
                )
            )
    return problems


def subid_problems(
    user: str, uid: int, gid: int, *, size: int, subuid_path: Path, subgid_path: Path
) -> list[Problem]:
    """Missing, too small or malformed entries of the user in the subid files."""
    subuids, subgids = read_subid_file(subuid_path), read_subid_file(subgid_path)
    problems = [
        Problem(
            ProblemKind.MALFORMED_SUBIDS,
            f"{parsed.path} has malformed line(s) {', '.join(map(str, parsed.malformed))}, "
            "which newuidmap and rctl ignore",
            f"edit {parsed.path}: each line is NAME_OR_UID:START:COUNT",
        )
        for parsed in (subuids, subgids)
        if parsed.malformed
    ]
    free_start = max(DEFAULT_SUB_START, subuids.highest_end(), subgids.highest_end())
    shortages = find_shortages(
        uid,
        gid,
        subuids.ranges_for(user, uid),
        subgids.ranges_for(user, uid),
        size=size,
        subuid_path=subuid_path,
        subgid_path=subgid_path,
    )
    for shortage in shortages:
        error = shortage_error(user, [shortage], free_start)
        kind = ProblemKind.NO_SUBIDS if shortage.found == 0 else ProblemKind.FEW_SUBIDS
        problems.append(Problem(kind, error.message, usermod_command(user, [shortage], free_start)))
    return problems


def tool_problems(tools: list[MapTool]) -> list[Problem]:
    """newuidmap/newgidmap missing or unable to map subordinate IDs."""
    problems = []
    for tool in tools:
        if tool.path is None:
            problems.append(
                Problem(
                    ProblemKind.TOOL_MISSING,
                    f"{tool.name} is not installed",
                    install_hint(tool.name).removeprefix("install it: "),
                )
            )
        elif (unprivileged := tool.unprivileged()) is not None:
            why, fix = unprivileged
            problems.append(
                Problem(
                    ProblemKind.TOOL_UNPRIVILEGED,
                    f"{tool.name} ({tool.path}) cannot map subordinate IDs: {why}",
                    fix,
                )
            )
    return problems


def check_host(
    user: str,
    *,
    size: int = DEFAULT_SIZE,
    subuid_path: Path = SUBUID_PATH,
    subgid_path: Path = SUBGID_PATH,
    tools: list[MapTool] | None = None,
    proc_sys: Path = Path("/proc/sys"),
) -> list[Problem]:
    """Everything that would stop ``user`` from running rootless containers here.

    Checks the subid entries (present, ``size`` IDs, well-formed), newuidmap/newgidmap
    (installed, setuid root or capable, not on a nosuid mount; ``tools`` overrides what is
    found on PATH) and the kernel's user-namespace settings. An empty list means all is well.
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise NotFoundError(
            f"no user named {user}", hint="check the name: 'getent passwd NAME' looks it up"
        ) from exc
    return [
        *subid_problems(
            user,
            entry.pw_uid,
            entry.pw_gid,
            size=size,
            subuid_path=subuid_path,
            subgid_path=subgid_path,
        ),
        *tool_problems(
            tools if tools is not None else [inspect_map_tool(t) for t in TOOLS.values()]
        ),
        *userns_problems(proc_sys),
    ]
