"""Container records: what ``rctl create`` decided, kept under ``$XDG_DATA_HOME/rctl``.

::

    containers/ID/container.json   the record (name, image, command, options, unit)
    containers/ID/upper, work      the container's r/w layer (overlay drivers)
    containers/ID/rootfs           its copied root (vfs)
    containers/ID/merged           where the root is mounted inside the container's namespace
    containers/ID/etc/             generated hosts, hostname, resolv.conf
    containers/ID/spec.json, exit.json, bundle/   (rootless.containers.layout)

:class:`ContainerStore` owns each container's directory: no other module of the engine
spells its files' names (the helpers systemd runs find them through
:mod:`rootless.containers.layout`).

Names are unique per user: a record is created under the store lock after checking every
other record's name. A removal first renames the container's directory out of the store
(``containers/.removing-ID``, :meth:`ContainerStore.take_out`): the container vanishes at
once and whole, and of concurrent removals exactly one deletes it. A container's state
(running, exited, exit code) is not stored here: systemd knows it, through the container's
unit ``rctl-ID.service``.
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from netns.ports import PublishedPort
from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.containers import layout
from rootless.containers.exited import REMOVING, take_out_dir
from rootless.containers.plan import LaunchPlan
from rootless.volumes.model import MountPoint

NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
FULL_ID = re.compile(r"[0-9a-f]{64}")
ADJECTIVES = (
    "agile", "bold", "brave", "bright", "calm", "clever", "cool", "crisp", "eager", "fair",
    "fond", "gentle", "glad", "happy", "jolly", "keen", "kind", "lively", "lucid", "merry",
    "modest", "neat", "nifty", "noble", "patient", "polite", "proud", "quick", "quiet", "rapid",
    "sharp", "shy", "smart", "steady", "sunny", "swift", "tender", "tidy", "vivid", "witty",
)  # fmt: skip
NOUNS = (
    "agnesi", "allen", "babbage", "backus", "bell", "borg", "cerf", "curie", "darwin", "dijkstra",
    "engelbart", "euler", "fermat", "feynman", "franklin", "gauss", "goldberg", "hamilton",
    "hopper", "johnson", "kahn", "knuth", "lamport", "liskov", "lovelace", "mccarthy", "meitner",
    "noether", "pascal", "perlman", "ritchie", "shannon", "sinoussi", "thompson", "torvalds",
    "turing", "volta", "wilson", "wozniak", "yalow",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ContainerRecord:
    """A container as created; its live state comes from its unit."""

    id: str
    name: str
    image_id: str
    image_name: str
    command: tuple[str, ...]
    created: float
    driver: str
    auto_remove: bool = False
    detach: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    ports: tuple[PublishedPort, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)  # docker-style, for inspect
    log_tag: str = ""  # the journal's SYSLOG_IDENTIFIER when it differs from name (renamed)
    mounts: tuple[MountPoint, ...] = ()  # binds and volumes (-v, --mount, image VOLUMEs)
    unit_name: str = ""  # a generated unit's name (rctl-NAME.service) when one runs it
    pod: str = ""  # the ID of the pod it is a member of (rootless.pods)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def unit(self) -> str:
        """The systemd unit that runs the container: its transient ``rctl-ID.service``, or
        the unit generated from its definition (``rctl generate systemd``)."""
        return self.unit_name or f"rctl-{self.id}.service"


# Names need no secrecy, only spread: the system's random source, not a seeded one.
_RANDOM = random.SystemRandom()


def new_id() -> str:
    # os.urandom, as secrets.token_hex does, without importing secrets (hmac, hashlib):
    # every `rctl run` pays for its imports.
    return os.urandom(32).hex()


def random_name(taken: set[str]) -> str:
    """A docker-like ``adjective_name`` not used yet."""
    while True:
        name = f"{_RANDOM.choice(ADJECTIVES)}_{_RANDOM.choice(NOUNS)}"
        if name not in taken:
            return name
        name += f"{_RANDOM.randrange(100)}"
        if name not in taken:
            return name


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise UsageError(
            f"invalid container name {name!r}",
            hint="use letters, digits, '_', '.', '-', starting with a letter or digit",
        )
    return name


class ContainerStore:
    """Records under ``root`` (``$XDG_DATA_HOME/rctl/containers``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def dir(self, container_id: str) -> Path:
        """The container's directory (its r/w layer, etc/, bundle and records)."""
        return self.root / container_id

    def has_networks(self, container_id: str) -> bool:
        """Whether the container was given bridge networks (or links): a listing needs the
        network code only for those."""
        return os.path.exists(layout.networks_file(self.dir(container_id)))

    def bundle(self, container_id: str) -> Path:
        """The container's OCI bundle (crun's ``config.json``, the launch plan)."""
        return Path(layout.bundle_dir(self.dir(container_id)))

    def launch_file(self, container_id: str) -> Path:
        """Where the container's :class:`LaunchPlan` is (the unit's launcher reads it)."""
        return Path(layout.launch_file(self.dir(container_id)))

    def oci_config_file(self, container_id: str) -> Path:
        """crun's ``config.json`` of the container."""
        return Path(layout.oci_config_file(self.dir(container_id)))

    def pid_file(self, container_id: str) -> Path:
        """Where crun writes the PID of the container's first process."""
        return Path(layout.pid_file(self.dir(container_id)))

    def load_launch(self, container_id: str) -> LaunchPlan:
        """The container's launch plan."""
        return LaunchPlan.from_json(self.launch_file(container_id).read_text())

    def save_launch(self, container_id: str, plan: LaunchPlan) -> None:
        """Write the container's launch plan (its bundle directory exists)."""
        self.launch_file(container_id).write_text(plan.to_json())

    def save_unit_inputs(self, container_id: str, inputs: dict[str, Any]) -> None:
        """What the unit needs on every (re)start, independent of the image; replaced in
        one rename (create writes it last: its presence says the container is complete)."""
        target = layout.unit_inputs_file(self.dir(container_id))
        tmp = f"{target}.tmp"
        Path(tmp).write_text(json.dumps(inputs))
        os.replace(tmp, target)

    def load_unit_inputs(self, container_id: str) -> dict[str, Any]:
        """What :meth:`save_unit_inputs` wrote."""
        raw: dict[str, Any] = json.loads(
            Path(layout.unit_inputs_file(self.dir(container_id))).read_text()
        )
        return raw

    def exit_record(self, container_id: str) -> tuple[int, float] | None:
        """The exit code and time of the container's last run, read from one open file
        (the container may be removed meanwhile); None if it never ended."""
        try:
            with open(layout.exit_file(self.dir(container_id)), "rb") as file:
                raw = json.loads(file.read())
                finished = os.fstat(file.fileno()).st_mtime
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            return None
        return int(raw["exit_code"]), finished

    def finished_at(self, container_id: str) -> float:
        """When the stop hook recorded the last run's end; 0 when it never did."""
        try:
            raw = json.loads(Path(layout.exit_file(self.dir(container_id))).read_text())
            return float(raw["finished"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            return 0.0

    def forget_exit(self, container_id: str) -> None:
        """Remove the last run's exit record: the container starts again (for the
        launcher, a start by a user, which forgets the restart delays)."""
        Path(layout.exit_file(self.dir(container_id))).unlink(missing_ok=True)

    def all(self) -> list[ContainerRecord]:
        records: list[ContainerRecord] = []
        if not self.root.is_dir():
            return records
        for path in self.root.iterdir():
            if path.name.startswith("."):
                continue  # being removed (take_out)
            record = self._load(path)
            if record is not None:
                records.append(record)
        return sorted(records, key=lambda r: r.created, reverse=True)

    @staticmethod
    def _load(path: Path) -> ContainerRecord | None:
        """The record in directory ``path``; None while it is being created or removed."""
        try:
            raw = json.loads(Path(layout.record_file(path)).read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            return None
        raw["command"] = tuple(raw["command"])
        raw["ports"] = tuple(PublishedPort.from_json(p) for p in raw.get("ports", ()))
        raw["mounts"] = tuple(MountPoint.from_json(m) for m in raw.get("mounts", ()))
        return ContainerRecord(**raw)

    def save(self, record: ContainerRecord) -> None:
        """Write the record atomically (the directory must exist)."""
        path = self.dir(record.id)
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".container-")
        with os.fdopen(fd, "w") as fh:
            raw = asdict(record)
            raw["ports"] = [p.to_json() for p in record.ports]
            json.dump(raw, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, layout.record_file(path))

    def get(self, ref: str) -> ContainerRecord:
        """A container by full ID, name or unique ID prefix."""
        if FULL_ID.fullmatch(ref):  # the engine's own calls: one file, not every record
            found = self._load(self.dir(ref))
            if found is not None:
                return found
        return find_by_ref(self.all(), ref, "container", "list containers with 'rctl ps -a'")

    def take_out(self, container_id: str) -> Path | None:
        """Move the container's directory out of the store, for deletion; the path it has
        now, or None when another removal (``rm``, ``--rm``'s stop hook) took it first."""
        doomed = take_out_dir(str(self.dir(container_id)))
        return None if doomed is None else Path(doomed)

    def leftovers(self, older_than: float) -> list[Path]:
        """Directories taken out more than ``older_than`` seconds ago whose deletion was
        interrupted (the remover was killed): nothing else will delete them."""
        if not self.root.is_dir():
            return []
        limit = time.time() - older_than
        found = []
        for path in self.root.iterdir():
            try:
                # A rename changes the moved directory's ctime: the moment it was taken out.
                if path.name.startswith(REMOVING) and path.lstat().st_ctime < limit:
                    found.append(path)
            except FileNotFoundError:
                continue
        return found

    def check_free(self, name: str) -> None:
        for record in self.all():
            if record.name == name:
                raise ConflictError(
                    f'the container name "{name}" is already in use by {record.short_id}',
                    hint=f"remove it (rctl rm -f {name}) or choose another --name",
                )


class Referenced(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=Referenced)


def find_by_ref(records: list[R], ref: str, kind: str, list_hint: str) -> R:
    """The record ``ref`` names: its ID or name, else a unique ID prefix of 3 or more
    characters, as docker resolves references."""
    for record in records:
        if ref in (record.id, record.name):
            return record
    matches = [r for r in records if r.id.startswith(ref)] if len(ref) >= 3 else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConflictError(f"{kind} ID prefix {ref!r} is ambiguous", hint="use more characters")
    raise NotFoundError(f"no such {kind}: {ref}", hint=list_hint)


def now() -> float:
    return time.time()
