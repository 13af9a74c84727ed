"""Turn a bench run into ``bench/results.json``, one PNG chart per group and ``bench/RESULTS.md``.

Runs on the machine that runs ``make bench`` (not in the test host), with matplotlib from
the repository's .venv:

    .venv/bin/python bench/report.py bench/out/raw.json   # split a run's output, then draw
    .venv/bin/python bench/report.py                      # redraw from results.json
    .venv/bin/python bench/report.py --merge bench/out/raw.json  # a subset's rows replace theirs

``raw.json`` is what ``bench/bench.py`` printed: the command, the environment and the rows.
The rows go to ``results.json`` (a list, one object per scenario), the rest to
``environment.json``; both are then read back to draw the charts and write RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import matplotlib
from kit import Result

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
DASH, TIMES = "\u2013", "\u00d7"  # typographic, spelled out for ruff (RUF001)
GROUPS = {
    "lifecycle": "Container life cycle (wall time, lower is better)",
    "pull": "Image pulls (wall time, lower is better)",
    "memory": "Memory per idle container (lower is better)",
    "network": "Port throughput (higher is better)",
    "portload": "Published ports under load, slirp4netns (time and memory: lower is better)",
    "storage": "Writes inside the container (higher is better)",
    "api": "The docker CLI against each tool's API service (lower is better)",
}
COLORS = {"rctl": "#1f77b4", "podman": "#ff7f0e", "host": "#7f7f7f"}
METHOD = """\
- Everything runs in the test host's nspawn tier as the unprivileged test user, with the
  images of its local registry (`127.0.0.1:5000/test/*`, plain HTTP: podman through the
  tier's registries.conf, rctl because the registry is on loopback).
- Each tool gets a store of its own per scenario (rctl: `XDG_DATA_HOME`/`XDG_CONFIG_HOME`
  with an `rctl.toml` naming the storage driver and crun; podman: `--root`, `--runroot`,
  `--storage-driver`, `--runtime crun`). podman's overlay is the kernel's (no
  mount_program) unless the row says fuse-overlayfs; the bench checks `podman info` says
  overlay and crun before it starts.
- Rounds interleave the tools (rctl, podman, rctl, podman, ...) after one warm-up round
  that is not counted (the RSS scenario has no warm-up: it measures a state, not a
  speed). The table gives the median over the rounds and the spread (max - min); the
  ratio is rctl's median over podman's. Set-up and clean-up between rounds are untimed.
- Both tools use their default network unless the row names one: slirp4netns for both
  (rctl's default since Debian 12's passt is too old; podman 4.3's), each with a port proxy
  of its own for published ports (rctl's relay, podman's rootlessport).
- A scenario or a tool that can't run is kept as a row whose note says why."""


# A row of results.json is the runner's Result, read back.
Row = Result


def load_rows(path: Path) -> list[Row]:
    names = {f.name for f in fields(Row)}
    return [
        Row(**{k: v for k, v in raw.items() if k in names}) for raw in json.loads(path.read_text())
    ]


def fmt(value: float | None, unit: str = "") -> str:
    """A number with 3 significant digits (and its unit), or an en dash."""
    if value is None:
        return DASH
    digits = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 0
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".strip()


def with_spread(value: float | None, spread: float | None) -> str:
    if value is None:
        return DASH
    return fmt(value) + (f" ± {fmt(spread / 2)}" if spread else "")


def target_text(target: str) -> str:
    """``ratio <= 0.5`` -> ``≤ 0.5x`` (a multiplication sign); ``rctl <= 0.3`` -> ``rctl ≤ 0.3 s``."""
    if not target:
        return ""
    subject, op, bound = target.split()
    sign = "≤" if op == "<=" else "≥"
    return f"{sign} {bound}{TIMES}" if subject == "ratio" else f"rctl {sign} {bound} s"


def verdict(row: Row) -> str:
    if row.met is None:
        return "n/a" if row.target else ""
    return "**yes**" if row.met else "no"


def table(rows: Iterable[Row], notes: list[str]) -> list[str]:
    """Markdown table rows; notes are numbered into ``notes``."""
    lines = [
        "| Scenario | Unit | rctl | podman | host dir | rctl/podman | Target | Met | Rounds |",
        "|---|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for row in rows:
        mark = ""
        if row.note:
            notes.append(row.note)
            mark = f" [{len(notes)}]"
        ratio = f"{row.ratio:.2f}{TIMES}" if row.ratio is not None else DASH
        lines.append(
            f"| {row.name}{mark} | {row.unit} | {with_spread(row.rctl, row.rctl_spread)} | "
            f"{with_spread(row.podman, row.podman_spread)} | "
            f"{with_spread(row.baseline, row.baseline_spread) if row.group == 'storage' else ''} | "
            f"{ratio} | {target_text(row.target)} | {verdict(row)} | {row.rounds} |"
        )
    return lines


def chart(group: str, rows: list[Row], out: Path) -> bool:
    """One bar chart per group: a panel per row, bars for rctl, podman (and host)."""
    rows = [r for r in rows if r.rctl is not None or r.podman is not None or r.baseline is not None]
    if not rows:
        return False
    columns = min(3, len(rows))
    lines = math.ceil(len(rows) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.4 * lines), squeeze=False)
    for ax in axes.flat[len(rows) :]:
        ax.set_visible(False)
    for ax, row in zip(axes.flat, rows, strict=False):
        bars = [("rctl", row.rctl, row.rctl_spread), ("podman", row.podman, row.podman_spread)]
        if row.rctl is None and row.podman is None and not row.rounds:
            pass  # not run at all: two empty bars say so
        elif row.rctl is None and row.podman is None:
            bars = []  # a baseline row: the host alone
        if row.group == "storage":
            bars.append(("host", row.baseline, row.baseline_spread))
        labels = [name for name, _, _ in bars]
        values = [value or 0.0 for _, value, _ in bars]
        errors = [(spread or 0.0) / 2 for _, _, spread in bars]
        ax.bar(labels, values, yerr=errors, capsize=4, color=[COLORS[name] for name in labels])
        for index, (_, value, _) in enumerate(bars):
            ax.text(
                index, 0, " n/a" if value is None else "", rotation=90, va="bottom", ha="center"
            )
        title = row.name
        if row.ratio is not None:
            title += f"\nrctl/podman {row.ratio:.2f}{TIMES}"
            if row.target:
                title += f" (target {target_text(row.target)})"
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(row.unit)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        GROUPS.get(group, group) + "\nbars: median; whiskers: spread (max - min)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def commit() -> str:
    """The checkout the run was made from: ``$BENCH_COMMIT`` (make-bench notes it before
    the run), else what git says now (read-only git commands)."""
    if noted := os.environ.get("BENCH_COMMIT"):
        return noted
    try:
        head = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        # The run's own outputs don't count: they are rewritten before this is asked.
        outputs = [f":!bench/{name}" for name in ("results.json", "RESULTS.md", "charts",
                                                   "environment.json", "out")]  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(HERE.parent), "status", "--porcelain", "--",
                                ".", *outputs],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes" if dirty else "")


def render(rows: list[Row], env: dict[str, Any]) -> str:
    """RESULTS.md."""
    charts = HERE / "charts"
    charts.mkdir(exist_ok=True)
    for stale in charts.glob("*.png"):
        stale.unlink()
    notes: list[str] = []
    dates = sorted({row.date for row in rows})
    command = env.get("command", "python bench/bench.py")
    out = [
        "# Benchmarks: rctl against podman",
        "",
        f"Measured {dates[0] if dates else '?'}"
        + (f" to {dates[-1]}" if len(dates) > 1 else "")
        + f" in the **{env.get('environment', {}).get('tier', '?')}** tier of the test host, "
        f"from commit {env.get('commit', '?')}, in {env.get('seconds', '?')} s. "
        "Only ratios measured in the same run are comparable: the machines are noisy and the "
        "two tiers differ 15-40 times in speed.",
        "",
        "Reproduce (as root, from the repository; boots the nspawn tier, at most 30 minutes):",
        "",
        "```sh",
        "make bench",
        "# the same by hand, or a subset (any bench.py flags):",
        f"tests/host/testhost run -- {command} > bench/out/raw.json",
        ".venv/bin/python bench/report.py bench/out/raw.json",
        'make bench BENCH_ARGS="--only run-rm,pull-big --rounds 3"',
        "```",
        "",
        "## Targets",
        "",
        "| Scenario | Target | rctl/podman (or rctl) | Met |",
        "|---|---|---:|---|",
    ]
    for row in rows:
        if row.target:
            value = fmt(row.rctl, row.unit) if row.target.startswith("rctl") else (
                f"{row.ratio:.2f}{TIMES}" if row.ratio is not None else DASH)  # fmt: skip
            out.append(f"| {row.name} | {target_text(row.target)} | {value} | {verdict(row)} |")
    out += ["", "## Results", "",
            "Median ± half the spread (max - min) over the rounds. Ratio = rctl / podman: "
            "below 1 is better for time and memory, above 1 for throughput.", ""]  # fmt: skip
    for group, title in GROUPS.items():
        members = [row for row in rows if row.group == group]
        if not members:
            continue
        out += [f"### {title}", ""]
        out += table(members, notes)
        if chart(group, members, charts / f"{group}.png"):
            out += ["", f"![{group}](charts/{group}.png)"]
        out.append("")
    if notes:
        out += ["### Notes", ""]
        out += [f"{index}. {note}" for index, note in enumerate(notes, 1)]
        out.append("")
    out += ["## Method", "", METHOD, "", "## Environment", ""]
    out += [f"- {key}: {value}" for key, value in env.get("environment", {}).items()]
    out += ["", "Written by `bench/report.py` from `bench/results.json` and "
            "`bench/environment.json`; edit those programs, not this file.", ""]  # fmt: skip
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("raw", nargs="?", type=Path, help="bench.py's output to take in first")
    parser.add_argument(
        "--merge", action="store_true",
        help="keep results.json's other rows (each row says when it was measured)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    results, environment = HERE / "results.json", HERE / "environment.json"
    if args.raw:
        try:
            raw = json.loads(args.raw.read_text())
        except (OSError, ValueError) as exc:
            print(f"report: {args.raw} holds no bench output ({exc})", file=sys.stderr)
            return 1
        rows_in = raw.pop("results")
        if args.merge and results.exists():
            fresh = {row["name"] for row in rows_in}
            kept = [row for row in json.loads(results.read_text()) if row["name"] not in fresh]
            rows_in = kept + rows_in
        results.write_text(json.dumps(rows_in, indent=2, ensure_ascii=False) + "\n")
        raw["commit"] = commit()
        environment.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    rows = load_rows(results)
    env = json.loads(environment.read_text()) if environment.exists() else {}
    (HERE / "RESULTS.md").write_text(render(rows, env))
    print(
        f"report: wrote {results.name}, RESULTS.md and charts for {len(rows)} rows", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
