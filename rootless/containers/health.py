"""Healthchecks: the image's ``HEALTHCHECK`` or the user's (``--health-*``, a definition's
``healthcheck``), run on an interval by a systemd timer, their results kept with the container.

Mechanism (why a timer): each check is ``rctl healthcheck run ID`` started by a transient
timer ``rctl-…-healthcheck.timer`` that the container's start creates, ``BindsTo=`` the
container's unit so that it stops with it. systemd does the scheduling, logs each run in the
journal and keeps nothing of ours alive between checks (no per-container monitor, as in the
rest of rctl); podman makes the same choice. A check runs the command inside the running
container (``exec``), with the timeout, and records the result (the last 4 KiB of the
output, which is read as it comes: the container decides how much it writes).

Files in the container's directory: ``healthcheck.json`` (the configuration, written when the
container is created) and ``health.json`` (docker's ``State.Health``: Status, FailingStreak,
Log of the last five results), removed on every start. Status follows docker: ``starting``
until the first success or the end of the start period after which failures count,
``healthy`` after a success, ``unhealthy`` after ``retries`` consecutive failures.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rctlbase.errors import UsageError
from rctlbase.run import spawn_program
from units.properties import CollectMode, ServiceSpec, ServiceType
from units.timer import TimerSpec

if TYPE_CHECKING:
    from rootless.containers.service import ContainerService

CONFIG_FILE = "healthcheck.json"
STATE_FILE = "health.json"
LOG_SIZE = 5
OUTPUT_LIMIT = 4096
NS = 1_000_000_000
USEC = 1_000_000
_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?"
)


def parse_duration(value: object) -> float | None:
    """Seconds from ``30``, ``1.5``, ``"30s"``, ``"1m30s"``, ``"500ms"``, ``"1h"`` (None if bad)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """What to run and when: docker's Test form (``CMD …`` / ``CMD-SHELL cmd``), seconds."""

    test: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    on_failure: str = "none"  # none | restart

    @property
    def argv(self) -> tuple[str, ...]:
        kind, *rest = self.test
        return ("/bin/sh", "-c", rest[0]) if kind == "CMD-SHELL" else tuple(rest)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> HealthConfig:
        raw = json.loads(text)
        raw["test"] = tuple(raw["test"])
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class HealthState:
    """docker's ``State.Health``."""

    status: str = "starting"  # starting | healthy | unhealthy
    failing_streak: int = 0
    log: tuple[dict[str, Any], ...] = ()

    def inspect(self) -> dict[str, Any]:
        return {"Status": self.status, "FailingStreak": self.failing_streak, "Log": list(self.log)}


def _duration_option(value: str | None, flag: str, default: float) -> float:
    if value is None:
        return default
    seconds = parse_duration(value)
    if seconds is None:
        raise UsageError(f"invalid {flag} {value!r}", hint="give a duration like 30s or 1m30s")
    return seconds


def plan_health(options: Any, image_check: Any) -> HealthConfig | None:
    """The container's healthcheck from ``--health-*`` options over the image's
    ``HEALTHCHECK`` (``image_check``: :class:`rootless.images.manifest.Healthcheck` or None);
    None when there is none or ``--no-healthcheck`` / ``HEALTHCHECK NONE``."""
    if options.no_healthcheck:
        return None
    base = None
    if image_check is not None and image_check.test and image_check.test[0] != "NONE":
        test = tuple(image_check.test)
        base = HealthConfig(
            test=test,
            interval=image_check.interval / NS if image_check.interval else 30.0,
            timeout=image_check.timeout / NS if image_check.timeout else 30.0,
            retries=image_check.retries or 3,
            start_period=image_check.start_period / NS if image_check.start_period else 0.0,
        )
    if options.health_cmd is not None:
        cmd = options.health_cmd
        if cmd.startswith("["):
            try:
                argv = json.loads(cmd)
            except json.JSONDecodeError:
                argv = None
            if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
                raise UsageError(
                    f"invalid --health-cmd {cmd!r}", hint='give a shell command or ["CMD", "ARG"]'
                )
            test = tuple(argv) if argv[0] in ("CMD", "CMD-SHELL") else ("CMD", *argv)
        elif not cmd or cmd.lower() == "none":
            return None
        else:
            test = ("CMD-SHELL", cmd)
        base = HealthConfig(test=test)
    if base is None:
        return None
    on_failure = options.health_on_failure or base.on_failure
    if on_failure not in ("none", "restart"):
        raise UsageError(f"invalid --health-on-failure {on_failure!r}", hint="use none or restart")
    retries = options.health_retries if options.health_retries is not None else base.retries
    if retries < 1:
        raise UsageError("--health-retries must be at least 1", hint="e.g. --health-retries 3")
    config = replace(
        base,
        interval=_duration_option(options.health_interval, "--health-interval", base.interval),
        timeout=_duration_option(options.health_timeout, "--health-timeout", base.timeout),
        start_period=_duration_option(
            options.health_start_period, "--health-start-period", base.start_period
        ),
        retries=retries,
        on_failure=on_failure,
    )
    if config.interval < 1 or config.timeout < 1:
        raise UsageError("healthcheck interval and timeout must be at least 1s", hint="e.g. 30s")
    return config


def next_state(
    state: HealthState,
    config: HealthConfig,
    *,
    exit_code: int,
    output: str,
    started: float,
    begun: float,
    ended: float,
) -> HealthState:
    """The state after one check that began at ``begun`` for a container started at
    ``started`` (docker's rules: failures within the start period don't count)."""
    entry = {
        "Start": _iso(begun),
        "End": _iso(ended),
        "ExitCode": exit_code,
        "Output": output[-OUTPUT_LIMIT:],
    }
    log = (*state.log, entry)[-LOG_SIZE:]
    if exit_code == 0:
        return HealthState("healthy", 0, log)
    if begun - started < config.start_period and state.status == "starting":
        return HealthState("starting", state.failing_streak, log)
    streak = state.failing_streak + 1
    status = "unhealthy" if streak >= config.retries else state.status
    return HealthState(status, streak, log)


def _iso(moment: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1e9):09d}Z"
    )


def save_config(directory: Path, config: HealthConfig | None) -> None:
    """Write (or, for None, remove) the container's healthcheck configuration."""
    path = directory / CONFIG_FILE
    if config is None:
        path.unlink(missing_ok=True)
        return
    path.write_text(config.to_json())


def load_config(directory: Path) -> HealthConfig | None:
    try:
        return HealthConfig.from_json((directory / CONFIG_FILE).read_text())
    except FileNotFoundError:
        return None


def load_state(directory: Path) -> HealthState | None:
    """The last recorded state, None before the first check (or without a healthcheck)."""
    try:
        raw = json.loads((directory / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return HealthState(raw["status"], raw["failing_streak"], tuple(raw["log"]))


def save_state(directory: Path, state: HealthState) -> None:
    tmp = directory / f".{STATE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(asdict(state)))
    tmp.replace(directory / STATE_FILE)


def reset_state(directory: Path) -> None:
    """A (re)start: the health is ``starting`` again."""
    (directory / STATE_FILE).unlink(missing_ok=True)


def status_suffix(directory: Path) -> str:
    """`` (healthy)`` for ``rctl ps``'s STATUS column ('' without a healthcheck)."""
    if load_config(directory) is None:
        return ""
    state = load_state(directory)
    return f" ({state.status if state else 'starting'})"


def inspect_health(directory: Path) -> dict[str, Any] | None:
    """``State.Health`` for inspect, None without a healthcheck."""
    if load_config(directory) is None:
        return None
    return (load_state(directory) or HealthState()).inspect()


def rctl_command() -> str:
    """The ``rctl`` executable next to this Python (a venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "rctl"
    if beside.exists():
        return str(beside)
    return shutil.which("rctl") or "rctl"


def timer_unit(container_unit: str) -> str:
    """The healthcheck timer's unit name (without suffix) for a container's unit."""
    return container_unit.removesuffix(".service") + "-healthcheck"


def timer_spec(
    container_unit: str, ref: str, config: HealthConfig, environ: Mapping[str, str]
) -> TimerSpec:
    """The transient timer that runs the checks of ``ref``, and its service: the first
    check ``interval`` (at least 1 s) after the start, then every ``interval`` after the
    last check began; bound to the container's unit, both collected once they end."""
    name = timer_unit(container_unit)
    description = f"healthcheck of rctl container {ref}"
    service = ServiceSpec(
        name=f"{name}.service",
        exec_start=(rctl_command(), "healthcheck", "run", ref),
        description=description,
        service_type=ServiceType.SIMPLE,
        environment={
            key: environ[key]
            for key in ("XDG_DATA_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME")
            if key in environ
        },
        collect_mode=CollectMode.INACTIVE_OR_FAILED,
    )
    return TimerSpec(
        name=f"{name}.timer",
        service=service,
        description=description,
        on_active_usec=round(max(config.interval, 1.0) * USEC),
        on_unit_active_usec=round(config.interval * USEC),
        accuracy_usec=100_000,
        binds_to=(container_unit,),
        after=(container_unit,),
        collect_mode=CollectMode.INACTIVE_OR_FAILED,
    )


def run_output_tail(argv: Sequence[str], timeout: float, keep: int) -> tuple[int, bytes] | None:
    """Run ``argv`` with stdout and stderr in one pipe; its exit status and the last
    ``keep`` bytes it wrote, or None when it did not finish within ``timeout`` seconds
    (it is killed then).

    The check's command runs in the container, which decides how much it writes: the
    output is read as it comes and only its tail kept, so a check printing gigabytes
    costs this process ``keep`` bytes and a read buffer, not the whole output.
    """
    read_end, write_end = os.pipe()  # one pipe for both streams, as docker's check has
    try:
        proc = spawn_program(argv, stdin="devnull", stdout=write_end, stderr=write_end)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    deadline = time.monotonic() + timeout
    tail = bytearray()
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(read_end, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if not selector.select(left):
                    continue
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                tail += chunk
                del tail[:-keep]
        while (code := proc.poll()) is None:  # its output is closed: it is ending
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)
        return code, bytes(tail)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(read_end)


def run_check(containers: ContainerService, ref: str) -> HealthState:
    """``rctl healthcheck run``: one check of a running container, recorded; with
    ``on_failure = "restart"``, a container that just turned unhealthy is restarted.

    ``containers`` is the :class:`rootless.containers.service.ContainerService`. The restart
    is a restart job of the container's unit, not waited for: systemd re-runs
    its start (the launcher, or the generated unit's ``run-unit``) and propagates the
    restart to the healthcheck timer bound to it, so the timer lives on.
    """
    record = containers.store.get(ref)
    directory = containers.store.dir(record.id)
    config = load_config(directory)
    if config is None:
        raise UsageError(
            f"container {record.name} has no healthcheck",
            hint="give one with --health-cmd or a definition's [container.NAME.healthcheck]",
        )
    state = containers.running_state(record)
    started = state.active_enter_usec / 1_000_000 if state.active_enter_usec else record.created
    argv = containers.exec_argv(record, state.main_pid, config.argv)
    begun = time.time()
    result = run_output_tail(argv, config.timeout, OUTPUT_LIMIT)
    if result is None:
        code, output = -1, f"Health check exceeded timeout ({config.timeout:g}s)"
    else:
        code, output = result[0], result[1].decode(errors="replace")
    before = load_state(directory) or HealthState()
    after = next_state(
        before, config, exit_code=code, output=output, started=started, begun=begun,
        ended=time.time(),
    )  # fmt: skip
    save_state(directory, after)
    if (
        after.status == "unhealthy"
        and before.status != "unhealthy"
        and config.on_failure == "restart"
    ):
        containers.manager.restart(record.unit, wait=False)
    return after
