"""The chaos campaign's moves: rctl commands killed with SIGKILL at seeded random moments,
and the same commands run many at once. Used by test_chaos_smoke.py (a short subset in
``make test``) and tests/chaos/ (``make chaos``).

What is killed: each command starts in a process group of its own, as a shell job does.
A kill hits either the ``rctl`` process alone (``kill -9 PID``, the OOM killer) or its whole
group (``kill -9 -PGID``: rctl and the helpers it is waiting for: newuidmap, crun create,
unshare jobs), chosen by the seeded random source, half and half. The moment is a
uniform random delay between 0 and the command's uninterrupted duration, measured once
per operation beforehand. Timing makes the interrupted step vary from run to run even with
one seed; the seed fixes which operation, which delay and which kind of kill.

After each kill: the killed group's survivors get 10 s to end, then :mod:`invariants`
checks everything, then the operation's *next* step (pull again, rm -f, apply again...)
must succeed, then everything is checked again.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hostkit import Rctl
from invariants import Baseline, litter, user_processes, violations

R = "127.0.0.1:5000/test"
IMAGE = f"{R}/busybox"
OTHER = f"{R}/layered"  # pulled, killed and removed: more layers, more steps
DEFINITION = """\
[container.chaos-web]
image = "{image}"
command = ["sleep", "1000"]
"""


@dataclass(frozen=True, slots=True)
class Operation:
    """A command to kill, what must hold before it, and what must succeed after it."""

    name: str
    command: Callable[[int], list[str]]  # round number → rctl arguments
    prepare: Callable[[Rctl, int], None]
    recover: Callable[[Rctl, int], None]


def _ok(rctl: Rctl, *args: str) -> None:
    rctl(*args, timeout=120)


def _rm_f(rctl: Rctl, name: str) -> None:
    proc = rctl("rm", "-f", name, check=False, timeout=120)
    if proc.returncode != 0 and "no such container" not in proc.stderr:
        raise AssertionError(f"rm -f {name} after the kill exited {proc.returncode}: "
                             f"{proc.stderr.strip()}")  # fmt: skip


def _definition(rctl: Rctl) -> Path:
    path = rctl.root / "chaos.toml"
    path.write_text(DEFINITION.format(image=IMAGE))
    return path


def _none(rctl: Rctl, n: int) -> None:
    pass


def _rmi_other(rctl: Rctl, n: int) -> None:
    rctl("rmi", "-f", OTHER, check=False)


def _recover_pull(rctl: Rctl, n: int) -> None:
    _ok(rctl, "pull", "-q", OTHER)


def _run_detached(rctl: Rctl, n: int) -> None:
    _ok(rctl, "run", "-d", "--name", f"chaos-rm{n}", IMAGE, "sleep", "1000")


def _pull_other(rctl: Rctl, n: int) -> None:
    _ok(rctl, "pull", "-q", OTHER)


def _recover_rmi(rctl: Rctl, n: int) -> None:
    proc = rctl("rmi", OTHER, check=False)
    if proc.returncode != 0 and "not known" not in proc.stderr:
        raise AssertionError(f"rmi after the kill exited {proc.returncode}: {proc.stderr}")
    _ok(rctl, "pull", "-q", OTHER)  # and the image comes back whole


def _recover_apply(rctl: Rctl, n: int) -> None:
    path = _definition(rctl)
    _ok(rctl, "apply", "-f", str(path))
    _ok(rctl, "down", "-f", str(path))


OPERATIONS = {
    op.name: op
    for op in (
        Operation("pull", lambda n: ["pull", "-q", OTHER], _rmi_other, _recover_pull),
        Operation("run", lambda n: ["run", "--name", f"chaos-run{n}", IMAGE, "true"], _none,
                  lambda r, n: _rm_f(r, f"chaos-run{n}")),
        Operation("run-d", lambda n: ["run", "-d", "--name", f"chaos-rund{n}", "-p", "0:80",
                                      IMAGE, "sleep", "1000"], _none,
                  lambda r, n: _rm_f(r, f"chaos-rund{n}")),
        Operation("run-rm", lambda n: ["run", "--rm", "--name", f"chaos-runrm{n}", IMAGE, "true"],
                  _none, lambda r, n: _rm_f(r, f"chaos-runrm{n}")),
        Operation("create", lambda n: ["create", "--name", f"chaos-create{n}", IMAGE, "true"],
                  _none, lambda r, n: _rm_f(r, f"chaos-create{n}")),
        Operation("rm", lambda n: ["rm", "-f", f"chaos-rm{n}"], _run_detached,
                  lambda r, n: _rm_f(r, f"chaos-rm{n}")),
        Operation("rmi", lambda n: ["rmi", OTHER], _pull_other, _recover_rmi),
        Operation("apply", lambda n: ["apply", "-f", "{definition}"], _none, _recover_apply),
    )
}  # fmt: skip


@dataclass(slots=True)
class Tally:
    """What a campaign did and found."""

    kills: dict[str, int] = field(default_factory=dict)  # operation → SIGKILLs sent
    finished: dict[str, int] = field(default_factory=dict)  # ended before the kill
    group_kills: int = 0
    findings: list[str] = field(default_factory=list)
    litter: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"kills: {sum(self.kills.values())} (process group: {self.group_kills})"]
        for name in sorted(set(self.kills) | set(self.finished)):
            lines.append(f"  {name}: {self.kills.get(name, 0)} killed, "
                         f"{self.finished.get(name, 0)} ended before the kill")  # fmt: skip
        lines.append(f"litter seen: {self.litter}")
        lines.append(f"findings: {len(self.findings)}")
        lines += [f"  {f}" for f in self.findings]
        return "\n".join(lines)


def _args(rctl: Rctl, op: Operation, n: int) -> list[str]:
    return [str(_definition(rctl)) if a == "{definition}" else a for a in op.command(n)]


def duration(rctl: Rctl, op: Operation) -> float:
    """How long ``op`` takes uninterrupted: the second of two runs (the first one warms the
    caches and the store), each recovered from."""
    took = 0.0
    for _ in range(2):
        op.prepare(rctl, 0)
        start = time.monotonic()
        rctl(*_args(rctl, op, 0), timeout=180)
        took = time.monotonic() - start
        op.recover(rctl, 0)
    return took


def _group_survivors(pgid: int) -> list[str]:
    return [f"{p.comm}[{p.pid}]" for p in user_processes() if p.pgid == pgid]


def kill_once(
    rctl: Rctl, op: Operation, n: int, delay: float, whole_group: bool, tally: Tally,
    before: Baseline,
) -> None:  # fmt: skip
    """Start ``op``, SIGKILL it after ``delay`` seconds, check, recover, check."""
    where = f"{op.name}#{n} (delay {delay:.3f}s, {'group' if whole_group else 'process'})"
    op.prepare(rctl, n)
    proc = subprocess.Popen(
        ["rctl", *_args(rctl, op, n)], env=rctl.env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        proc.wait(timeout=delay)
        tally.finished[op.name] = tally.finished.get(op.name, 0) + 1
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        if "Traceback" in stderr or "Error: internal error" in stderr:  # a bug, not a refusal
            tally.findings.append(f"{where}: internal error without a kill: {stderr[-400:]}")
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL) if whole_group else proc.kill()
        proc.wait()
        tally.kills[op.name] = tally.kills.get(op.name, 0) + 1
        tally.group_kills += whole_group
    if proc.stderr:
        proc.stderr.close()
    deadline = time.monotonic() + 10
    while (left := _group_survivors(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        tally.findings.append(f"{where}: still running 10 s after the kill: {left}")
        for pid in [int(s.rsplit("[", 1)[1][:-1]) for s in left]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for problem in violations(rctl, before):
        tally.findings.append(f"{where}: after the kill: {problem}")
    try:
        op.recover(rctl, n)
    except AssertionError as exc:
        tally.findings.append(f"{where}: the next operation failed: {str(exc)[:600]}")
    for problem in violations(rctl, before):
        tally.findings.append(f"{where}: after recovery: {problem}")
    for item in litter(rctl):
        kind = item.split("/")[0] if "/" in item else item.split("-")[0]
        tally.litter[kind] = tally.litter.get(kind, 0) + 1


def campaign(rctl: Rctl, seed: int, kills: int, names: list[str], before: Baseline) -> Tally:
    """``kills`` SIGKILLs over the operations ``names`` in turn, seeded."""
    rng = random.Random(seed)
    ops = [OPERATIONS[name] for name in names]
    _ok(rctl, "pull", "-q", IMAGE)
    durations = {op.name: duration(rctl, op) for op in ops}
    tally = Tally()
    n = 0
    # Rounds whose command ended before its kill don't count: go on until ``kills`` were sent.
    while sum(tally.kills.values()) < kills and n < 4 * kills:
        n += 1
        op = ops[(n - 1) % len(ops)]
        delay = rng.uniform(0, durations[op.name])
        kill_once(rctl, op, n, delay, rng.random() < 0.5, tally, before)
    return tally
