"""Image reports: ``docker image inspect``'s document, ``GET /images/json``'s entry and
``docker history``'s row (Engine API v1.44: ``ImageInspect``, ``ImageSummary``,
``HistoryResponseItem``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rootless.timestamps import ZERO_TIME, parse_rfc3339


@dataclass(frozen=True, slots=True)
class ImageHealthcheck:
    """The image's HEALTHCHECK, durations in nanoseconds."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def to_docker(self) -> dict[str, Any]:
        return {
            "Test": list(self.test),
            "Interval": self.interval,
            "Timeout": self.timeout,
            "StartPeriod": self.start_period,
            "StartInterval": self.start_interval,
            "Retries": self.retries,
        }


@dataclass(frozen=True, slots=True)
class ImageConfigReport:
    """``Config``: the image's defaults for its containers."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    healthcheck: ImageHealthcheck | None = None

    def to_docker(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Hostname": "",
            "Domainname": "",
            "User": self.user,
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
        }
        if self.exposed_ports:
            out["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        out |= {
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "Env": list(self.env),
            "Cmd": None if self.cmd is None else list(self.cmd),
        }
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_docker()
        out |= {
            "Image": "",
            "Volumes": {path: {} for path in self.volumes} or None,
            "WorkingDir": self.working_dir,
            "Entrypoint": None if self.entrypoint is None else list(self.entrypoint),
            "OnBuild": None,
            "Labels": dict(self.labels) or None,
        }
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        return out


@dataclass(frozen=True, slots=True)
class LayerReport:
    """A layer as rctl keeps it (``Rctl.Layers``): its blob and its unpacked content."""

    digest: str
    diff_id: str
    size: int
    media_type: str

    def to_docker(self) -> dict[str, Any]:
        return {
            "Digest": self.digest,
            "DiffID": self.diff_id,
            "Size": self.size,
            "MediaType": self.media_type,
        }


@dataclass(frozen=True, slots=True)
class ImageInspect:
    """``docker image inspect``; rctl's manifest and layers under ``Rctl``."""

    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    created: str  # RFC 3339 as the image says it (normalised), "" when it doesn't
    architecture: str
    os: str
    size: int
    config: ImageConfigReport
    diff_ids: tuple[str, ...]
    driver: str
    variant: str = ""
    author: str = ""
    comment: str = ""
    manifest_digest: str = ""
    manifest_media_type: str = ""
    layers: tuple[LayerReport, ...] = ()

    def to_docker(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": self.id,
            "RepoTags": list(self.repo_tags),
            "RepoDigests": list(self.repo_digests),
            "Parent": "",
            "Comment": self.comment,
            "Created": self.created or ZERO_TIME,
            "DockerVersion": "",
            "Author": self.author,
            "Config": self.config.to_docker(),
            "Architecture": self.architecture,
        }
        if self.variant:
            out["Variant"] = self.variant
        return out | {
            "Os": self.os,
            "Size": self.size,
            "GraphDriver": {"Data": None, "Name": self.driver},
            "RootFS": {"Type": "layers", "Layers": list(self.diff_ids)},
            "Metadata": {"LastTagTime": ZERO_TIME},
            "Rctl": {
                "Manifest": {"Digest": self.manifest_digest, "MediaType": self.manifest_media_type},
                "Layers": [layer.to_docker() for layer in self.layers],
            },
        }


@dataclass(frozen=True, slots=True)
class ImageListRow:
    """One image of ``GET /images/json`` (the CLI's ``images`` shows a row per tag)."""

    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    created: str  # RFC 3339
    size: int
    labels: Mapping[str, str] = field(default_factory=dict)
    containers: int = -1  # -1: not counted, as docker says unless asked

    def to_docker(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "ParentId": "",
            "RepoTags": list(self.repo_tags),
            "RepoDigests": list(self.repo_digests),
            "Created": int(parse_rfc3339(self.created) or 0),
            "Size": self.size,
            "SharedSize": -1,
            "Labels": dict(self.labels),
            "Containers": self.containers,
        }


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One step of ``docker history`` (``GET /images/{name}/history``): ``id`` is the
    image's for its last step, ``<missing>`` for the others, as docker shows them."""

    id: str
    created: str
    created_by: str
    size: int
    comment: str
    tags: tuple[str, ...] = ()

    def to_docker(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Created": int(parse_rfc3339(self.created) or 0),
            "CreatedBy": self.created_by,
            "Tags": list(self.tags) or None,
            "Size": self.size,
            "Comment": self.comment,
        }
