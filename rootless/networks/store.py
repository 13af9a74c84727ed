"""Network records: ``$XDG_DATA_HOME/rctl/networks/NAME.json``, one per network.

Every change to networks or leases happens under one lock (``networks/.lock``, flock):
creating a network checks names and subnets of every other record under it, so two
``network create`` can't both take a name or a subnet.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from netns.ipam import Subnet
from rctlbase.errors import ConflictError, NotFoundError, UsageError

NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
DEFAULT_NETWORK = "rctl"  # what --network bridge means, podman's "podman" network
BRIDGE_PREFIX = "rctl"


@dataclass(frozen=True, slots=True)
class NetworkRecord:
    """A bridge network as created."""

    name: str
    id: str
    subnet: str
    gateway: str
    bridge: str
    internal: bool = False
    driver: str = "bridge"
    labels: dict[str, str] = field(default_factory=dict)
    created: float = 0.0

    @property
    def ipam(self) -> Subnet:
        return Subnet(IPv4Network(self.subnet), IPv4Address(self.gateway))


def check_network_name(name: str) -> str:
    if not NAME.fullmatch(name) or len(name) > 64:
        raise UsageError(
            f"invalid network name {name!r}",
            hint="use letters, digits, '_', '.', '-', starting with a letter or digit",
        )
    if name in ("none", "host", "bridge", "pasta", "slirp4netns", "container", "private"):
        raise UsageError(f"network name {name!r} is reserved", hint="choose another name")
    return name


def new_network_id() -> str:
    return secrets.token_hex(32)


def now() -> float:
    return time.time()


class NetworkStore:
    """Records under ``root`` (``$XDG_DATA_HOME/rctl/networks``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the networks' lock (records and leases) for the block."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def all(self) -> list[NetworkRecord]:
        records: list[NetworkRecord] = []
        if not self.root.is_dir():
            return records
        for path in sorted(self.root.glob("*.json")):
            if path.name == "leases.json":
                continue
            try:
                records.append(NetworkRecord(**json.loads(path.read_text())))
            except (OSError, json.JSONDecodeError, TypeError):
                continue
        return records

    def get(self, ref: str) -> NetworkRecord:
        """A network by name, full ID or unique ID prefix."""
        records = self.all()
        for record in records:
            if ref in (record.name, record.id):
                return record
        matches = [r for r in records if len(ref) >= 3 and r.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NotFoundError(f"no such network: {ref}", hint="list networks with 'rctl network ls'")

    def save(self, record: NetworkRecord) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".net-")
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(record), fh, indent=1)
        os.replace(tmp, self.path(record.name))

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def check_free(self, name: str) -> None:
        if self.path(name).exists():
            raise ConflictError(
                f"network {name} already exists", hint="choose another name or rm it first"
            )


def next_bridge_name(taken: set[str]) -> str:
    """``rctl0``, ``rctl1``...: the first bridge name no network uses."""
    index = 0
    while f"{BRIDGE_PREFIX}{index}" in taken:
        index += 1
    return f"{BRIDGE_PREFIX}{index}"
