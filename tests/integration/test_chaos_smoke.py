"""The short chaos subset of ``make test``: 24 seeded SIGKILLs (3 per operation), and the
concurrency cases with 5 parallel commands (``make chaos`` runs tests/chaos/: 112 kills,
20 at once). Both fail listing every finding; see docs/reliability.md."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chaoscases import CONCURRENCY, kill9
from hostkit import Rctl, run
from invariants import Baseline, baseline, violations


@pytest.fixture
def before(rctl: Rctl) -> Iterator[Baseline]:
    state = baseline()
    yield state
    for line in rctl("ps", "-aq", "--no-trunc", check=False).stdout.split():
        rctl("rm", "-f", line, check=False)


def test_kill9_smoke(rctl: Rctl, before: Baseline) -> None:
    kill9(rctl, before, kills=24)


@pytest.mark.parametrize("case", CONCURRENCY, ids=lambda c: c.__name__)
def test_concurrency_smoke(rctl: Rctl, before: Baseline, case) -> None:  # type: ignore[no-untyped-def]
    rctl("pull", "-q", "127.0.0.1:5000/test/busybox")
    found = case(rctl, before, 5) if case.__name__ != "apply_twice" else case(rctl, before)
    assert not found, "\n".join(found)


def test_the_checker_sees_leftovers(rctl: Rctl, before: Baseline) -> None:
    """The invariant checker is what every chaos case trusts: it must see a record-less
    container directory, a unit of no container and the process running in it."""
    rctl("pull", "-q", "127.0.0.1:5000/test/busybox")
    assert violations(rctl, before) == []
    orphan = "f" * 64
    (rctl.data / "containers" / orphan).mkdir(parents=True)
    unit = f"rctl-{'e' * 64}.service"
    run("systemd-run", "--user", "--quiet", f"--unit={unit}", "sleep", "300")
    try:
        found = "\n".join(violations(rctl, before))
    finally:
        run("systemctl", "--user", "stop", unit, check=False)
    assert f"container directory {orphan[:12]} without container.json" in found
    assert f"unit {unit[:17]}" in found
    assert "sleep[" in found
