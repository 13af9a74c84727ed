"""``rctl secret``'s use cases, and what ``rctl run --secret`` gives a container.

A container that uses secrets gets, in its own directory (0700), ``secrets.json`` (the
names it uses: what makes ``secret rm`` refuse) and ``secrets/N``, a copy of each mounted
value with the mode (and owner) asked for, bind-mounted read-only. A variable's value goes
only into the bundle's ``config.json``: the record, the inspect document and a commit are
built from the options, which carry names only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.containers.spec import BindMount
from rootless.reports.secrets import SecretReport
from rootless.secrets.parse import (
    MAX_SECRET_BYTES,
    SecretKind,
    SecretRequest,
    check_secret_name,
    parse_secret,
)
from rootless.secrets.store import SecretRecord, SecretStore
from rootless.volumes.userjob import VolumeJob

USES_FILE = "secrets.json"
FILES_DIR = "secrets"
_MAX_USES = 64 << 10


@dataclass(frozen=True, slots=True)
class ContainerSecrets:
    """What a container gets: read-only files and ``KEY=VALUE`` variables."""

    mounts: tuple[BindMount, ...] = ()
    env: tuple[str, ...] = ()


def _report(record: SecretRecord) -> SecretReport:
    return SecretReport(record.id, record.name, record.created, dict(record.labels), record.size)


class SecretService:
    """One user's secrets, in ``data/secrets``; containers live in ``data/containers``."""

    def __init__(self, data: Path, run_jobs: Callable[[Sequence[VolumeJob]], None]) -> None:
        self.store = SecretStore(data / "secrets")
        self.containers = data / "containers"
        self.run_jobs = run_jobs

    def create(
        self,
        name: str,
        value: bytes,
        labels: dict[str, str] | None = None,
        *,
        replace: bool = False,
    ) -> SecretReport:
        """``rctl secret create``: store ``value`` under ``name``."""
        if replace and self.users(name):
            raise ConflictError(
                f"secret {name} is in use by a container", hint="remove the container first"
            )
        return _report(self.store.create(name, value, dict(labels or {}), replace=replace))

    def create_from(
        self,
        name: str,
        source: str,
        stdin: BinaryIO,
        labels: dict[str, str] | None = None,
        *,
        replace: bool = False,
    ) -> SecretReport:
        """``rctl secret create NAME FILE|-``: the value read from a file or ``stdin``,
        no more than the limit (and one byte to tell it was over)."""
        check_secret_name(name)
        try:
            if source == "-":
                value = stdin.read(MAX_SECRET_BYTES + 1)
            else:
                with open(source, "rb") as fh:
                    value = fh.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise UsageError(
                f"cannot read {source}: {exc.strerror}", hint="give a readable file, or - for stdin"
            ) from None
        return self.create(name, value, labels, replace=replace)

    def reports(self, filters: Sequence[str] = ()) -> list[SecretReport]:
        """``rctl secret ls``: every secret (``name=``, ``label=KEY[=VALUE]`` filters)."""
        out = []
        for record in self.store.all():
            if all(_matches(record, f) for f in filters):
                out.append(_report(record))
        return out

    def inspect(self, ref: str) -> SecretReport:
        """``rctl secret inspect``: metadata, never the value."""
        return _report(self.store.get(ref))

    def exists(self, ref: str) -> bool:
        """``rctl secret exists``."""
        try:
            self.store.get(ref)
        except NotFoundError:
            return False
        return True

    def users(self, name: str) -> list[str]:
        """IDs of the containers that use secret ``name``."""
        if not self.containers.is_dir():
            return []
        out = []
        for directory in sorted(self.containers.iterdir()):
            try:
                with (directory / USES_FILE).open("rb") as fh:
                    names = json.loads(fh.read(_MAX_USES))
            except (OSError, ValueError):
                continue
            if isinstance(names, list) and name in names:
                out.append(directory.name)
        return out

    def remove(self, refs: Sequence[str]) -> list[str]:
        """``rctl secret rm``: refused for a secret a container uses, as podman does."""
        records = [self.store.get(ref) for ref in refs]
        for record in records:
            users = self.users(record.name)
            if users:
                raise ConflictError(
                    f"secret {record.name} is in use by container {users[0][:12]}",
                    hint="remove the containers that use it first",
                )
        for record in records:
            self.store.forget(record.name)
        return [record.name for record in records]

    def plan_uses(self, values: Sequence[str]) -> tuple[SecretRequest, ...]:
        """``--secret`` values, parsed, each secret checked to exist (before a container
        does)."""
        requests = tuple(parse_secret(value) for value in values)
        targets = [r.target for r in requests]
        for request in requests:
            self.store.get(request.name)
            if targets.count(request.target) > 1:
                raise UsageError(
                    f"--secret: two secrets have the target {request.target}",
                    hint="give each a target of its own",
                )
        return requests

    def provide(self, requests: Sequence[SecretRequest], directory: Path) -> ContainerSecrets:
        """Write a new container's secret files into its ``directory``; what to mount and
        set. The files are the container's: removed with its directory."""
        if not requests:
            return ContainerSecrets()
        uses = json.dumps(sorted({r.name for r in requests})).encode()
        (directory / USES_FILE).write_bytes(uses)
        files = directory / FILES_DIR
        files.mkdir(mode=0o700)
        mounts: list[BindMount] = []
        env: list[str] = []
        chowns: list[VolumeJob] = []
        for index, request in enumerate(requests):
            value = self.store.value(request.name)
            if request.kind is SecretKind.ENV:
                env.append(f"{request.target}={_text(request.name, value)}")
                continue
            path = files / str(index)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(value)
                os.fchmod(fh.fileno(), request.mode)
            if request.uid or request.gid:
                chowns.append(VolumeJob("chown", str(path), request.uid, request.gid))
            mounts.append(BindMount(str(path), request.target, read_only=True))
        self.run_jobs(chowns)
        return ContainerSecrets(tuple(mounts), tuple(env))


def _text(name: str, value: bytes) -> str:
    try:
        text = value.decode()
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise UsageError(
            f"secret {name} is not text without NUL bytes; it can't be a variable",
            hint="give it as a file (type=mount)",
        )
    return text


def _matches(record: SecretRecord, spec: str) -> bool:
    key, _, value = spec.partition("=")
    if key == "name":
        return value in record.name
    if key == "id":
        return record.id.startswith(value)
    if key == "label":
        label, sep, wanted = value.partition("=")
        return label in record.labels and (not sep or record.labels[label] == wanted)
    raise UsageError(f"invalid filter {spec!r}", hint="use name=, id= or label=KEY[=VALUE]")
