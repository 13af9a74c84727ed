"""Integration tests run only inside the test host, as the non-root user.

``tests/host/testhost run -- python -m pytest tests/integration`` gets them there; anywhere
else the session stops at once with that hint (they are not skipped: a skipped integration
test is a failing feature).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, UserNamespace


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("RCTL_TESTHOST") or os.getuid() == 0:
        pytest.exit(
            "integration tests run in the test host as uid 1000: "
            "tests/host/testhost run -- python -m pytest tests/integration",
            returncode=4,
        )


@pytest.fixture(scope="session")
def tier() -> str:
    """``nspawn`` or ``vm``: which tier of the test host this is."""
    return os.environ["RCTL_TESTHOST"]


@pytest.fixture
def userns() -> Iterator[Callable[..., UserNamespace]]:
    """Factory of paused user namespaces; all are killed after the test."""
    made: list[UserNamespace] = []

    def make(script: str, *, net: bool = False) -> UserNamespace:
        ns = UserNamespace(script, net=net)
        made.append(ns)
        return ns

    yield make
    for ns in made:
        ns.kill()


@pytest.fixture
def rctl(tmp_path: Path) -> Iterator[Rctl]:
    """The rctl CLI with a store of its own, removed (inside the user namespace) afterwards."""
    tool = Rctl(tmp_path / "rctl")
    yield tool
    tool.cleanup()
