"""The same rctl commands many at once: the results the chaos tests accept.

Each case runs N copies (threads, each an ``rctl`` process) and returns their outcomes;
:func:`unexpected` keeps those that are neither a success nor one of the case's expected
refusals (an ``Error:`` line naming the conflict). A traceback is never expected.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hostkit import Rctl


@dataclass(frozen=True, slots=True)
class Outcome:
    args: tuple[str, ...]
    returncode: int
    stderr: str


def at_once(rctl: Rctl, commands: Sequence[Sequence[str]], timeout: float = 300) -> list[Outcome]:
    """Start every command (each an rctl argument list) together; their outcomes in order."""

    def one(args: Sequence[str]) -> Outcome:
        try:
            proc = rctl(*args, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Outcome(tuple(args), -1, f"timed out after {timeout}s")
        return Outcome(tuple(args), proc.returncode, proc.stderr)

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(one, commands))


def unexpected(outcomes: Sequence[Outcome], *allowed: str) -> list[str]:
    """Outcomes that failed other than with an ``Error:`` containing one of ``allowed``."""
    bad = []
    for o in outcomes:
        if o.returncode == 0:
            continue
        first = o.stderr.strip().splitlines()[0] if o.stderr.strip() else ""
        expected = (
            o.returncode == 125
            and "Traceback" not in o.stderr
            and first.startswith("Error: ")
            and any(text in first for text in allowed)
        )
        if not expected:
            bad.append(f"rctl {' '.join(o.args)} → {o.returncode}: {o.stderr.strip()[-500:]}")
    return bad
