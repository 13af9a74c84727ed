"""Kubernetes YAML read as hostile input, pure.

PyYAML's safe loader builds only plain values (no tags that make objects). Around it: the
text is refused above :data:`MAX_YAML_BYTES`; a document is composed into nodes first and
refused when it nests deeper than :data:`MAX_DEPTH`, uses more than :data:`MAX_ALIASES`
aliases, or would stand for more than :data:`MAX_NODES` nodes once every alias is expanded
(an alias of an alias lets a few hundred bytes stand for billions of nodes, the "billion
laughs"). The expanded size is counted over the node graph, each node once, so the count
itself stays as cheap as the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from rctlbase.errors import UsageError

MAX_YAML_BYTES = 1 << 20
# A large manifest (a chart's worth of Deployments) has some tens of thousands of nodes.
MAX_NODES = 200_000
MAX_ALIASES = 100
MAX_DEPTH = 64
HINT = "give Kubernetes Pods, Deployments, ConfigMaps, Secrets or PersistentVolumeClaims"


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, counting aliases and depth while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise UsageError(f"the YAML uses more than {MAX_ALIASES} aliases", hint=HINT)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise UsageError(f"the YAML nests deeper than {MAX_DEPTH} levels", hint=HINT)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def expanded_size(root: Node) -> int:
    """How many nodes ``root`` stands for with its aliases expanded (each node's size
    computed once, children first, without recursion)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in sizes:
            continue
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        if ready or not children:
            sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in children), MAX_NODES + 1)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def load_documents(text: str) -> list[Mapping[str, Any]]:
    """The YAML stream's documents (mappings), checked as the module docstring says."""
    if len(text.encode()) > MAX_YAML_BYTES:
        raise UsageError(f"the YAML is larger than {MAX_YAML_BYTES} bytes", hint=HINT)
    loader = _BoundedLoader(text)
    documents: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if expanded_size(node) > MAX_NODES:
                raise UsageError(
                    f"the YAML stands for more than {MAX_NODES} values once its aliases are "
                    "expanded",
                    hint=HINT,
                )
            documents.append(loader.construct_document(node))
    except yaml.YAMLError as exc:
        raise UsageError(f"invalid YAML: {' '.join(str(exc).split())}", hint=HINT) from None
    except RecursionError:
        raise UsageError(f"the YAML nests deeper than {MAX_DEPTH} levels", hint=HINT) from None
    finally:
        loader.dispose()
    documents = [d for d in documents if d is not None]
    if not all(isinstance(d, Mapping) for d in documents):
        raise UsageError("a YAML document is not a mapping", hint=HINT)
    return documents
