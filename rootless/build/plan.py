"""Which stages a build needs, and the cache key of a step; pure.

A build runs the target stage (``--target``, else the last) and the stages it needs: the
one its FROM names, and those ``COPY --from`` or ``RUN --mount=from=`` read, by name or
index, transitively. Others are skipped, as BuildKit does.

A step's cache key is docker's: the parent image, the instruction as expanded, the build
arguments in effect (they are RUN's environment) and, for COPY/ADD, the checksum of what
is copied (:func:`rootless.build.sources.checksum`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from rctlbase.errors import UsageError
from rootless.build.dockerfile import Dockerfile, Stage
from rootless.build.shellwords import expand_word


def stage_by_ref(dockerfile: Dockerfile, ref: str, before: int) -> Stage | None:
    """The stage ``ref`` names (its name, or its index) among those before index ``before``."""
    for stage in dockerfile.stages[:before]:
        if stage.name == ref.lower() or (ref.isdigit() and int(ref) == stage.index):
            return stage
    return None


def stage_refs(dockerfile: Dockerfile, stage: Stage, meta: Mapping[str, str]) -> list[Stage]:
    """The earlier stages ``stage`` reads from."""
    refs = [expand_word(stage.base, meta, dockerfile.escape)]
    for instruction in stage.instructions:
        if instruction.keyword in ("COPY", "ADD") and instruction.flag("from"):
            refs.append(str(instruction.flag("from")))
        for mount in instruction.flag_values("mount"):
            for field in mount.split(","):
                key, _, value = field.partition("=")
                if key.strip() == "from":
                    refs.append(value.strip())
    found = []
    for ref in refs:
        other = stage_by_ref(dockerfile, ref, stage.index)
        if other is not None:
            found.append(other)
    return found


def plan_stages(dockerfile: Dockerfile, target: str | None, meta: Mapping[str, str]) -> list[Stage]:
    """The stages to build, in file order, ending with the target."""
    if target:
        chosen = [s for s in dockerfile.stages if s.name == target.lower()]
        if not chosen:
            names = ", ".join(s.name for s in dockerfile.stages if s.name) or "none"
            raise UsageError(
                f"no build stage named {target!r}", hint=f"the stages are named: {names}"
            )
        last = chosen[0]
    else:
        last = dockerfile.stages[-1]
    needed = {last.index}
    todo = [last]
    while todo:
        for other in stage_refs(dockerfile, todo.pop(), meta):
            if other.index not in needed:
                needed.add(other.index)
                todo.append(other)
    return [s for s in dockerfile.stages if s.index in needed]


def cache_key(parent: str, text: str, args: Mapping[str, str], content: str = "") -> str:
    """The cache key of a step over the image ``parent``."""
    doc = json.dumps([parent, text, sorted(args.items()), content], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()
