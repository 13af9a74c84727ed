"""A healthcheck's output is the container's to choose: the check keeps its tail only
(rootless.containers.health.run_check, run_output_tail)."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rootless.containers import health
from rootless.containers.health import OUTPUT_LIMIT, HealthConfig, run_output_tail

FLOOD = 128 << 20  # what a check printing /dev/zero writes within its timeout, and more


def containers_running(tmp_path: Path, argv: list[str]) -> Any:
    """What run_check uses of the container service, the check's command being ``argv``."""
    record = SimpleNamespace(id="c0ffee", name="web", created=0.0, unit="rctl-c0ffee.service")
    state = SimpleNamespace(active_enter_usec=1, main_pid=1)
    return SimpleNamespace(
        store=SimpleNamespace(get=lambda ref: record, dir=lambda cid: tmp_path),
        running_state=lambda rec: state,
        exec_argv=lambda rec, pid, check: argv,
    )


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_a_check_flooding_its_output_costs_the_tail_not_the_flood(tmp_path: Path) -> None:
    health.save_config(tmp_path, HealthConfig(("CMD", "flood"), timeout=60))
    flood = ["sh", "-c", f"head -c {FLOOD} /dev/zero | tr '\\0' x; echo end; exit 1"]
    before = peak_rss()
    state = health.run_check(containers_running(tmp_path, flood), "web")
    grown = peak_rss() - before
    assert grown < 32 << 20, f"the check's output took {grown >> 20} MiB"
    (entry,) = state.log
    assert entry["ExitCode"] == 1
    assert entry["Output"] == "x" * (OUTPUT_LIMIT - 4) + "end\n"


def test_the_tail_merges_both_streams_and_keeps_the_status() -> None:
    argv = ["sh", "-c", "echo out; echo err >&2; exit 3"]
    assert run_output_tail(argv, 10, OUTPUT_LIMIT) == (3, b"out\nerr\n")
    assert run_output_tail(["sh", "-c", "seq 1000"], 10, 8) == (0, b"999\n1000\n"[-8:])


def test_a_check_past_its_timeout_is_killed() -> None:
    begun = time.monotonic()
    assert run_output_tail(["sh", "-c", "echo started; sleep 30"], 0.5, OUTPUT_LIMIT) is None
    assert time.monotonic() - begun < 5
