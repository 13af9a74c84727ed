"""Build scenarios: ``build`` of the same 10-step, two-stage Dockerfile on ``test/debian``
with a 5,000-file context, by rctl and by podman, each with a store of its own.

- cold: the base image pulled (untimed), no build cache;
- cached: the same build again, every step from the cache;
- one file changed: one copied file edited (untimed) before each build, so the steps from
  the COPY of that file on run again.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from kit import REG, Result, Step, Tool, measure, scenario_tools, summarize, timed

GROUP = "build"
FILES = 5000
DOCKERFILE = f"""\
FROM {REG}/test/debian AS build
RUN echo building > /built
COPY files /src/files
RUN ls /src/files | wc -l > /count
FROM {REG}/test/debian
ENV MODE=bench
WORKDIR /app
COPY --from=build /count /app/count
COPY files/f1.txt /app/
RUN cat /app/count
CMD ["cat", "/app/count"]
"""


def make_context(work: Path) -> Path:
    """The context: the Dockerfile and FILES small files."""
    context = work / "build-context"
    (context / "files").mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(DOCKERFILE)
    for index in range(FILES):
        (context / "files" / f"f{index}.txt").write_text(f"file {index}\n")
    return context


def build_argv(tool: Tool, context: Path) -> tuple[str, ...]:
    extra = ("--tls-verify=false",) if tool.name == "podman" else ()
    return ("build", *extra, "-q", "-t", "localhost/bench-build", str(context))


def fresh(tool: Tool) -> None:
    tool.reset()
    tool.pull("test/debian")


def build_cold(rounds: int, work: Path) -> list[Result]:
    """A build into a store holding only the base image."""
    context = make_context(work)
    with scenario_tools(work, "build-cold") as tools:
        steps = {
            name: Step(
                timed(partial(tool.run, *build_argv(tool, context))), setup=partial(fresh, tool)
            )
            for name, tool in tools.items()
        }
        samples = measure(rounds, steps)
    return [summarize("cold build, 10 steps, 5000-file context", GROUP, "s", samples,
                      target="ratio <= 0.8")]  # fmt: skip


def build_cached(rounds: int, work: Path) -> list[Result]:
    """The same build again: every step cached (the warm-up round fills the cache)."""
    context = make_context(work)
    with scenario_tools(work, "build-cached") as tools:
        for tool in tools.values():
            tool.pull("test/debian")
        steps = {
            name: Step(timed(partial(tool.run, *build_argv(tool, context))))
            for name, tool in tools.items()
        }
        samples = measure(rounds, steps)
    return [summarize("cached rebuild", GROUP, "s", samples, target="ratio <= 0.5")]


def build_one_file(rounds: int, work: Path) -> list[Result]:
    """A rebuild after one copied file changed."""
    context = make_context(work)
    changed = context / "files" / "f1.txt"
    counter = iter(range(1_000_000))

    def edit() -> None:
        changed.write_text(f"edit {next(counter)}\n")

    with scenario_tools(work, "build-onefile") as tools:
        for tool in tools.values():
            tool.pull("test/debian")
        steps = {
            name: Step(timed(partial(tool.run, *build_argv(tool, context))), setup=edit)
            for name, tool in tools.items()
        }
        samples = measure(rounds, steps)
    return [summarize("rebuild after one copied file changed", GROUP, "s", samples,
                      target="ratio <= 0.8")]  # fmt: skip
