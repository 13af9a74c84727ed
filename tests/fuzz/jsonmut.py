"""Mutations of valid JSON documents (the corpus files), for fuzzing parsers of JSON that
others wrote: registries, image configs, archives. A mutation replaces a value at a random
path with any JSON value, deletes a key, or duplicates a list item; a few in a row."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=20),
    st.sampled_from(["sha256:" + "a" * 64, "sha256:", "linux", "amd64", "arm", "v8", "v²",
                     "application/vnd.oci.image.manifest.v1+json", "../x", "/", "\n", "1e400"]),
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


TOML_SCALARS = st.one_of(
    st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False), st.text(max_size=20),
    st.sampled_from(["busybox", "8080:80", "/data:/data:ro", "10s", "1m", "on-failure:3",
                     "SIGTERM", "1000:1000", "ALL", "10.0.0.0/24", "always", "\n", "%", "$"]),
)  # fmt: skip
TOML = st.recursive(
    TOML_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, doc: Any, max_steps: int = 3) -> bytes:
    """``doc`` changed in 1..max_steps places, as JSON bytes."""
    return json.dumps(draw(changed(doc, JSON, max_steps))).encode()


@st.composite
def changed(draw: st.DrawFn, doc: Any, values: st.SearchStrategy[Any], max_steps: int = 3) -> Any:
    """``doc`` with 1..max_steps values replaced by ``values``, deleted or duplicated."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, max_steps))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(values)
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        else:
            parent[path[-1]] = draw(values)
    return doc
