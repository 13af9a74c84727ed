"""The full campaign: 112 seeded SIGKILLs (14 per operation; RCTL_CHAOS_KILLS, RCTL_CHAOS_SEED
change them), then every concurrency case with 20 commands at once."""

from __future__ import annotations

import os

import pytest
from chaoscases import CONCURRENCY, kill9, parallel_rm_f
from hostkit import Rctl
from invariants import Baseline

KILLS = int(os.environ.get("RCTL_CHAOS_KILLS", "112"))


def test_kill9(rctl: Rctl, before: Baseline) -> None:
    kill9(rctl, before, kills=KILLS)


# A race, so not strict: 1 of 20 parallel `rm -f` of one container failed with
# "Error: no unit rctl-ID.service" (docs/reliability.md, finding 9).
RM_RACE = pytest.mark.xfail(strict=False, reason="concurrent rm -f: 'no unit rctl-ID.service'")


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=RM_RACE) if c is parallel_rm_f else c for c in CONCURRENCY],
    ids=lambda c: c.__name__,
)
def test_concurrency(rctl: Rctl, before: Baseline, case) -> None:  # type: ignore[no-untyped-def]
    rctl("pull", "-q", "127.0.0.1:5000/test/busybox")
    found = case(rctl, before, 20) if case.__name__ != "apply_twice" else case(rctl, before)
    assert not found, "\n".join(found)
