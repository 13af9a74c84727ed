"""The chaos campaign's cases, sized by their callers: test_chaos_smoke.py (``make test``)
and tests/chaos/ (``make chaos``). Each case fails naming every finding at once."""

from __future__ import annotations

import json
import os
import time

from chaoskit import IMAGE, OPERATIONS, OTHER, campaign
from concurrency import at_once, unexpected
from hostkit import Rctl
from invariants import Baseline, violations

SEED = int(os.environ.get("RCTL_CHAOS_SEED", "20261207"))


def kill9(rctl: Rctl, before: Baseline, kills: int, names: list[str] | None = None) -> None:
    """``kills`` seeded SIGKILLs spread over ``names`` (all operations by default)."""
    start = time.monotonic()
    tally = campaign(rctl, SEED, kills, names or list(OPERATIONS), before)
    print(f"\nkill -9 campaign, seed {SEED}, {time.monotonic() - start:.0f} s\n{tally.summary()}")
    assert not tally.findings, "\n".join(tally.findings)


def _check(rctl: Rctl, before: Baseline, case: str, bad: list[str]) -> list[str]:
    found = [f"{case}: {b}" for b in bad]
    found += [f"{case}: afterwards: {v}" for v in violations(rctl, before)]
    print(f"{case}: {len(bad)} unexpected outcomes")
    return found


def parallel_run_rm(rctl: Rctl, before: Baseline, n: int) -> list[str]:
    """``n`` ``run --rm`` at once: every one succeeds, nothing stays."""
    rctl("pull", "-q", IMAGE)
    outcomes = at_once(rctl, [["run", "--rm", IMAGE, "true"]] * n)
    found = _check(rctl, before, f"{n} run --rm", unexpected(outcomes))
    left = rctl("ps", "-aq").stdout.split()
    return found + ([f"{n} run --rm: containers left: {left}"] if left else [])


def parallel_rm_f(rctl: Rctl, before: Baseline, n: int) -> list[str]:
    """``n`` ``rm -f`` of one running container at once: all succeed or find it gone."""
    rctl("run", "-d", "--name", "chaos-victim", IMAGE, "sleep", "1000")
    outcomes = at_once(rctl, [["rm", "-f", "chaos-victim"]] * n)
    found = _check(rctl, before, f"{n} rm -f", unexpected(outcomes, "no such container"))
    if not any(o.returncode == 0 for o in outcomes):
        found.append(f"{n} rm -f: none succeeded")
    return found


def parallel_pull(rctl: Rctl, before: Baseline, n: int) -> list[str]:
    """``n`` pulls of one image missing from the store: all succeed."""
    rctl("rmi", "-f", OTHER, check=False)
    outcomes = at_once(rctl, [["pull", "-q", OTHER]] * n)
    return _check(rctl, before, f"{n} pull", unexpected(outcomes))


def rmi_against_run(rctl: Rctl, before: Baseline, n: int) -> list[str]:
    """``rmi`` of an image while ``n`` containers start from it: either side may lose
    (the image is in use, or gone), the store stays whole."""
    rctl("pull", "-q", OTHER)
    commands = [["run", "--rm", OTHER, "true"]] * n
    commands.insert(n // 2, ["rmi", OTHER])
    outcomes = at_once(rctl, commands)
    # The image gone: before the run resolved it, or between that and the run's lock.
    bad = unexpected(outcomes, "used by a container", "image not known", "image not found",
                     "no such image", "was removed while the container was being created")  # fmt: skip
    return _check(rctl, before, f"rmi against {n} run", bad)


def same_name_create(rctl: Rctl, before: Baseline, n: int) -> list[str]:
    """``n`` creates of one name at once: exactly one wins, the others are told why."""
    outcomes = at_once(rctl, [["create", "--name", "chaos-same", IMAGE, "true"]] * n)
    found = _check(rctl, before, f"{n} same-name create", unexpected(outcomes, "already in use"))
    winners = sum(o.returncode == 0 for o in outcomes)
    if winners != 1:
        found.append(f"{n} same-name create: {winners} succeeded, not 1")
    rctl("rm", "-f", "chaos-same", check=False)
    return found


def apply_twice(rctl: Rctl, before: Baseline, n: int = 2) -> list[str]:
    """One definition file applied ``n`` times at once: all succeed, one container runs."""
    path = rctl.root / "twice.toml"
    path.write_text(f'[container.chaos-twice]\nimage = "{IMAGE}"\ncommand = ["sleep", "1000"]\n')
    outcomes = at_once(rctl, [["apply", "-f", str(path)]] * n)
    found = _check(rctl, before, f"apply x{n}", unexpected(outcomes, "already in use"))
    rows = json.loads(rctl("ps", "-a", "--format", "json").stdout or "[]")
    names = [row["name"] for row in rows]
    if names.count("chaos-twice") != 1:
        found.append(f"apply x{n}: containers named chaos-twice: {names.count('chaos-twice')}")
    down = rctl("down", "-f", str(path), check=False)
    if down.returncode != 0:
        found.append(f"apply x{n}: down failed: {down.stderr.strip()}")
    return found


CONCURRENCY = (parallel_run_rm, parallel_rm_f, parallel_pull, rmi_against_run,
               same_name_create, apply_twice)  # fmt: skip
