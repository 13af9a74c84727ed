"""Pod records: what ``rctl pod create`` decided, kept under ``$XDG_DATA_HOME/rctl/pods``.

::

    pods/ID/pod.json       the record (name, labels, published ports, network, shared namespaces)
    pods/.lock             serialises creations and removals (names are unique)

The pod's live state is its unit's, ``rctl-pod-ID.service`` (or the unit generated from a
definition, ``unit_name``); the holder's runtime state (its pid) is under
``$XDG_RUNTIME_DIR/rctl/pods/ID``. Members are found by their records' ``pod`` field, never
listed here: a container removed on its own leaves nothing stale behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netns.ports import PublishedPort
from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.containers.record import find_by_ref

# Container names' rule, bounded: a name reaches file contents and labels, never a path
# or a unit name (those use the ID).
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
FULL_ID = re.compile(r"[0-9a-f]{64}")
SHARES = ("net", "ipc", "uts")  # what a pod's members can share (net always)
UNIT_PREFIX = "rctl-pod-"


def pod_unit(pod_id: str) -> str:
    """The transient unit of pod ``pod_id``."""
    return f"{UNIT_PREFIX}{pod_id}.service"


def check_pod_name(name: str) -> str:
    """``name`` if it is a valid pod name, else UsageError."""
    if not NAME.fullmatch(name):
        raise UsageError(
            f"invalid pod name {name!r}",
            hint="use up to 128 letters, digits, '_', '.', '-', starting with a letter or digit",
        )
    return name


def parse_share(value: str) -> tuple[str, ...]:
    """``--share net,ipc,uts``: the namespaces the members share (``net`` always)."""
    wanted = [part.strip() for part in value.split(",") if part.strip()]
    for part in wanted:
        if part not in SHARES:
            raise UsageError(
                f"--share: {part!r} can't be shared", hint="share any of net, ipc, uts"
            )
    return tuple(kind for kind in SHARES if kind == "net" or kind in wanted)


@dataclass(frozen=True, slots=True)
class PodRecord:
    """A pod as created; its live state comes from its unit."""

    id: str
    name: str
    created: float
    labels: dict[str, str] = field(default_factory=dict)
    ports: tuple[PublishedPort, ...] = ()
    network: str = "slirp4netns"  # the pod's network helper: slirp4netns | pasta | none
    share: tuple[str, ...] = ("net", "ipc", "uts")
    hostname: str = ""
    infra: bool = True  # False: a group of units only, no shared namespaces
    unit_name: str = ""  # a generated unit's name when a definition's unit runs the pod

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def unit(self) -> str:
        return self.unit_name or pod_unit(self.id)

    @property
    def shared(self) -> tuple[str, ...]:
        """The namespaces members join (none without an infra holder)."""
        return self.share if self.infra else ()

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["ports"] = [p.to_json() for p in self.ports]
        raw["share"] = list(self.share)
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PodRecord:
        raw = dict(raw)
        raw["ports"] = tuple(PublishedPort.from_json(p) for p in raw.get("ports", ()))
        raw["share"] = tuple(raw.get("share", ()))
        raw["labels"] = dict(raw.get("labels", {}))
        return cls(**raw)


class PodStore:
    """Records under ``root`` (``$XDG_DATA_HOME/rctl/pods``), holders' state under ``state``
    (``$XDG_RUNTIME_DIR/rctl/pods``)."""

    def __init__(self, root: Path, state: Path) -> None:
        self.root = root
        self.state_root = state

    def dir(self, pod_id: str) -> Path:
        return self.root / pod_id

    def state(self, pod_id: str) -> Path:
        """The holder's runtime directory (holder.json, its PID file, the helper's socket)."""
        return self.state_root / pod_id[:16]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The store's lock: a name is checked free and claimed under it."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def all(self) -> list[PodRecord]:
        if not self.root.is_dir():
            return []
        records = [r for p in self.root.iterdir() if (r := self._load(p)) is not None]
        return sorted(records, key=lambda r: r.created, reverse=True)

    @staticmethod
    def _load(path: Path) -> PodRecord | None:
        if path.name.startswith(".") or not FULL_ID.fullmatch(path.name):
            return None
        try:
            return PodRecord.from_json(json.loads((path / "pod.json").read_text()))
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            return None

    def save(self, record: PodRecord) -> None:
        """Write the record atomically (its directory is made if needed)."""
        path = self.dir(record.id)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".pod-")
        with os.fdopen(fd, "w") as fh:
            json.dump(record.to_json(), fh, indent=1)
        os.replace(tmp, path / "pod.json")

    def find(self, ref: str) -> PodRecord | None:
        """A pod by full ID, name or unique ID prefix; None if there is none."""
        try:
            return self.get(ref)
        except NotFoundError:
            return None

    def get(self, ref: str) -> PodRecord:
        """A pod by full ID, name or unique ID prefix."""
        if FULL_ID.fullmatch(ref) and (found := self._load(self.dir(ref))) is not None:
            return found
        return find_by_ref(self.all(), ref, "pod", "list pods with 'rctl pod ps'")

    def check_free(self, name: str) -> None:
        if any(r.name == name for r in self.all()):
            raise ConflictError(
                f'the pod name "{name}" is already in use',
                hint="remove that pod (rctl pod rm) or choose another name",
            )

    def remove(self, pod_id: str) -> None:
        """Delete the record and the holder's state (the unit is stopped already)."""
        shutil.rmtree(self.state(pod_id), ignore_errors=True)
        shutil.rmtree(self.dir(pod_id), ignore_errors=True)
