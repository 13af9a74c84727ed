"""Pull scenarios: cold pulls (the store emptied before every round) and a warm pull (the
image and its layers already present), from the test host's registry at 127.0.0.1:5000."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from kit import REG, Result, Step, measure, scenario_tools, summarize, timed

GROUP = "pull"


def pull_cold(image: str, rounds: int, work: Path) -> list[Result]:
    """``pull IMAGE`` into an empty store (emptied untimed before each round)."""
    with scenario_tools(work, f"cold-{image.replace('/', '-')}") as tools:
        steps = {
            name: Step(timed(partial(tool.run, "pull", "-q", f"{REG}/{image}")), setup=tool.reset)
            for name, tool in tools.items()
        }
        samples = measure(rounds, steps)
    return [summarize(f"cold pull {image}", GROUP, "s", samples, target="ratio <= 0.8")]


def pull_warm(image: str, rounds: int, work: Path) -> list[Result]:
    """``pull IMAGE`` again when the image is already in the store."""
    with scenario_tools(work, "warm") as tools:
        for tool in tools.values():
            tool.pull(image)
        steps = {
            name: Step(timed(partial(tool.run, "pull", "-q", f"{REG}/{image}")))
            for name, tool in tools.items()
        }
        samples = measure(rounds, steps)
    return [summarize(f"warm pull {image}", GROUP, "s", samples, target="ratio <= 1.0")]
