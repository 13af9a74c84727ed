"""The full chaos campaign (``make chaos``): in the test host as uid 1000, like
tests/integration, whose helpers it uses; not part of ``make test`` (another directory)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from hostkit import Rctl
from invariants import Baseline, baseline


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("RCTL_TESTHOST") or os.getuid() == 0:
        pytest.exit(
            "the chaos campaign runs in the test host as uid 1000: make chaos", returncode=4
        )


@pytest.fixture
def rctl(tmp_path: Path) -> Iterator[Rctl]:
    tool = Rctl(tmp_path / "rctl")
    yield tool
    tool.cleanup()


@pytest.fixture
def before(rctl: Rctl) -> Iterator[Baseline]:
    state = baseline()
    yield state
    for line in rctl("ps", "-aq", "--no-trunc", check=False).stdout.split():
        rctl("rm", "-f", line, check=False)
