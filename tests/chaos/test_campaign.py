"""The full campaign: 112 seeded SIGKILLs (14 per operation; RCTL_CHAOS_KILLS, RCTL_CHAOS_SEED
change them), then every concurrency case with 20 commands at once."""

from __future__ import annotations

import os

import pytest
from chaoscases import CONCURRENCY, kill9
from hostkit import Rctl
from invariants import Baseline

KILLS = int(os.environ.get("RCTL_CHAOS_KILLS", "112"))


def test_kill9(rctl: Rctl, before: Baseline) -> None:
    kill9(rctl, before, kills=KILLS)


@pytest.mark.parametrize(
    "case",
    CONCURRENCY,
    ids=lambda c: c.__name__,
)
def test_concurrency(rctl: Rctl, before: Baseline, case) -> None:  # type: ignore[no-untyped-def]
    rctl("pull", "-q", "127.0.0.1:5000/test/busybox")
    found = case(rctl, before, 20) if case.__name__ != "apply_twice" else case(rctl, before)
    assert not found, "\n".join(found)
