"""``rctl doctor``: everything this host lacks for rootless containers, each with its fix.

Checks, in order: subordinate IDs and newuidmap/newgidmap (through ``uidmap``), the user's
systemd manager and bus, linger, the cgroup controllers delegated to the user, /dev/fuse,
/dev/net/tun, and the programs rctl runs: the OCI runtime rctl.toml's ``[engine] runtime``
names (crun by default), installed and answering ``--version``, fuse-overlayfs, pasta or
slirp4netns; and, by a probe unit, whether this systemd's user manager hands a unit's
``LogExtraFields=`` to journald (a note, not a failure: rctl finds a container's lines by
their syslog identifier either way).
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rctlbase.errors import RctlError
from uidmap.userns import check_host, current_user
from units.journal import JournalEntry, JournalQuery, read_journal
from units.properties import CollectMode, ServiceSpec, ServiceType

WANTED_CONTROLLERS = ("cpu", "io", "memory", "pids")


@dataclass(frozen=True, slots=True)
class Finding:
    """One check: what was checked, whether it passed, and how to fix it when not."""

    check: str
    ok: bool
    detail: str = ""
    fix: str = ""
    note: bool = False  # worth knowing, never a failure


def user_manager_finding(env: dict[str, str]) -> Finding:
    runtime = env.get("XDG_RUNTIME_DIR")
    if not runtime:
        how = "log in through a real session (ssh, login, machinectl shell USER@)"
        return Finding("user session", False, "XDG_RUNTIME_DIR is not set", how)
    bus = Path(runtime) / "bus"
    if not bus.is_socket():
        return Finding(
            "user bus",
            False,
            f"{bus} does not exist",
            "sudo apt-get install dbus-user-session, then log in again",
        )
    try:
        from units.manager import UserManager  # noqa: PLC0415 - connects to D-Bus

        with UserManager() as manager:
            manager.list_units("rctl-")
    except RctlError as exc:
        return Finding("user manager", False, exc.message, exc.hint or "systemctl --user status")
    return Finding("user manager", True, "reachable over D-Bus")


def linger_finding(user: str) -> Finding:
    if Path(f"/var/lib/systemd/linger/{user}").exists():
        return Finding("linger", True, "containers can start at boot")
    return Finding(
        "linger",
        False,
        "containers stop when you log out and don't start at boot",
        f"sudo loginctl enable-linger {user}",
    )


def cgroup_finding(uid: int) -> Finding:
    manager = f"user.slice/user-{uid}.slice/user@{uid}.service"
    path = Path("/sys/fs/cgroup") / manager / "cgroup.controllers"
    try:
        have = set(path.read_text().split())
    except OSError:
        return Finding(
            "cgroup v2 controllers",
            False,
            f"{path} is not readable (cgroup v1 host?)",
            "boot with systemd.unified_cgroup_hierarchy=1",
        )
    missing = [c for c in WANTED_CONTROLLERS if c not in have]
    if not missing:
        return Finding("cgroup v2 controllers", True, " ".join(sorted(have)))
    dropin = "/etc/systemd/system/user@.service.d"
    fix = (
        f"sudo mkdir -p {dropin} && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n'"
        f" | sudo tee {dropin}/delegate.conf && sudo systemctl daemon-reload"
    )
    return Finding(
        "cgroup v2 controllers",
        False,
        f"not delegated: {', '.join(missing)} (limits won't apply)",
        fix,
    )


def device_finding(path: str, package: str) -> Finding:
    if os.access(path, os.R_OK | os.W_OK):
        return Finding(path, True, "usable")
    return Finding(
        path,
        False,
        "missing or not accessible",
        f"sudo modprobe {package} && sudo chmod 0666 {path}",
    )


def program_finding(names: tuple[str, ...], package: str) -> Finding:
    found = [name for name in names if shutil.which(name)]
    if found:
        return Finding(" or ".join(names), True, shutil.which(found[0]) or "")
    return Finding(" or ".join(names), False, "not installed", f"sudo apt-get install {package}")


def runtime_finding(env: dict[str, str]) -> Finding:
    """The runtime new containers get (``[engine] runtime``), installed and working: the
    other one being installed does not help them."""
    from rctlbase.run import run_program  # noqa: PLC0415 - doctor only
    from rootless.config import Paths, load_settings  # noqa: PLC0415

    try:
        runtime = load_settings(Paths.from_env(env)).runtime
    except RctlError as exc:
        return Finding("OCI runtime", False, exc.message, exc.hint or "")
    check = f"OCI runtime ({runtime})"
    path = shutil.which(runtime)
    if path is None:
        return Finding(check, False, "not installed", f"sudo apt-get install {runtime}")
    try:
        answer = run_program([path, "--version"], check=False, timeout=10)
    except RctlError as exc:
        return Finding(check, False, exc.message, exc.hint or "")
    if answer.returncode != 0:
        return Finding(check, False, f"{path} --version failed", f"reinstall {runtime}")
    version = answer.stdout.decode(errors="replace").splitlines()[:1]
    return Finding(check, True, f"{path}: {version[0] if version else 'working'}")


LOG_FIELDS_CHECK = "journal fields (LogExtraFields=)"
# How long the probe's line may take to reach journald and be indexed.
PROBE_WAIT = 5.0


def journal_fields_finding(
    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
) -> Finding:
    """Start a unit that prints one line with ``LogExtraFields=RCTL_DOCTOR_PROBE=TOKEN`` and
    look for the field on that line. systemd 252's user manager keeps the fields to itself
    (it exports them to journald for system units only, systemd#29956), so on Debian 12 a
    container's lines carry ``SYSLOG_IDENTIFIER=NAME`` but no ``CONTAINER_NAME=``."""
    from units.manager import UserManager  # noqa: PLC0415 - connects to D-Bus

    token = secrets.token_hex(8)
    ident = f"rctl-doctor-{token}"
    spec = ServiceSpec(
        name=f"{ident}.service",
        exec_start=("/bin/echo", "rctl doctor: journal fields probe"),
        service_type=ServiceType.ONESHOT,
        syslog_identifier=ident,
        log_extra_fields={"RCTL_DOCTOR_PROBE": token},
        collect_mode=CollectMode.INACTIVE_OR_FAILED,
    )
    try:
        with UserManager() as manager:
            manager.start_transient(spec)
        deadline = clock() + PROBE_WAIT
        while True:
            entries = read_journal(JournalQuery(matches={"SYSLOG_IDENTIFIER": ident}), timeout=10)
            if entries or clock() >= deadline:
                break
            sleep(0.2)
    except RctlError as exc:
        return Finding(LOG_FIELDS_CHECK, True, f"not probed: {exc.message}", note=True)
    return log_fields_finding(entries, token)


def log_fields_finding(entries: list[JournalEntry], token: str) -> Finding:
    """What the probe's journal entries say about ``LogExtraFields=``."""
    if not entries:
        return Finding(
            LOG_FIELDS_CHECK,
            False,
            "the probe unit's output did not reach the journal",
            "systemctl status systemd-journald; journalctl --user needs a persistent or "
            "volatile journal the user may read",
        )
    if any(entry.fields.get("RCTL_DOCTOR_PROBE") == token for entry in entries):
        return Finding(
            LOG_FIELDS_CHECK,
            True,
            "units' CONTAINER_NAME=, CONTAINER_ID=, IMAGE_NAME= reach the journal",
        )
    return Finding(
        LOG_FIELDS_CHECK,
        True,
        "this systemd's user manager does not pass LogExtraFields= to journald "
        "(systemd#29956, as on systemd 252): container lines carry no CONTAINER_NAME=; "
        "'rctl logs NAME' and 'journalctl --user -t NAME' find them by name",
        note=True,
    )


def run_checks(env: dict[str, str] | None = None, *, probe_journal: bool = True) -> list[Finding]:
    """Every check; the CLI prints them and exits 1 when one failed."""
    env = dict(os.environ if env is None else env)
    user = current_user()
    findings = [
        Finding(f"user namespaces ({p.kind})", False, p.message, p.fix) for p in check_host(user)
    ] or [Finding("user namespaces", True, "subordinate IDs and newuidmap/newgidmap are usable")]
    findings += [
        user_manager_finding(env),
        linger_finding(user),
        cgroup_finding(os.getuid()),
        device_finding("/dev/fuse", "fuse"),
        device_finding("/dev/net/tun", "tun"),
        runtime_finding(env),
        program_finding(("fuse-overlayfs",), "fuse-overlayfs"),
        program_finding(("pasta", "slirp4netns"), "passt"),
    ]
    if probe_journal and findings[1].ok:  # the user manager answers
        findings.append(journal_fields_finding())
    return findings
