"""``rctl commit`` and ``rctl diff``: a container's r/w layer read back as changes or as
one more layer over its image.

The layer is read inside the user namespace by a layer job
(:class:`rootless.images.layerjob.DiffJob`, :mod:`rootless.build.layerdiff`); the tar it
writes is hashed here, stored as an uncompressed OCI layer blob under that digest, and
unpacked again from the blob (which checks the digest once more) like a pulled layer. The
new config is the image's with the layer appended, its history extended and the ``--change``
instructions applied (:func:`plan_commit_config`, pure).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rctlbase.errors import ExternalError, UsageError
from rootless.build.layerdiff import ChangeKind
from rootless.containers.plan import LaunchPlan
from rootless.containers.record import ContainerRecord
from rootless.images.archive import OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST
from rootless.images.layerjob import DiffJob, Jobs
from rootless.images.manifest import parse_image_config
from rootless.images.store import ImageRecord, LayerRecord, Store, sha256_file

MANIFEST_TYPE = OCI_MANIFEST
# What the runtime mounts over every container (rctl's generated files, the kernel's
# filesystems): when the image lacks them, their mount points are made in the r/w layer,
# and are not the container's changes (docker keeps them in an "init" layer it never commits).
RUNTIME_MOUNT_POINTS = (
    "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc", "/sys", "/dev",
    "/run/.containerenv", "/.dockerenv",
)  # fmt: skip
MAX_CHANGES_FILE = 256 << 20  # the job's JSON list of changes: bounds what is read back


@dataclass(frozen=True, slots=True)
class LayerSource:
    """Where a container's r/w layer is and what it lies over."""

    upper: Path
    lowers: tuple[Path, ...]  # top first (vfs: the tree the root was copied from, if any)
    vfs: bool


def layer_source(plan: LaunchPlan, image: ImageRecord, store: Store) -> LayerSource:
    """The r/w layer of the container launched by ``plan``."""
    rootfs = plan.rootfs
    upper = Path(str(rootfs["upper"]))
    if rootfs["driver"] == "vfs":
        top = (store.layer_dir(image.layers[-1].chain_id) / "diff",) if image.layers else ()
        return LayerSource(upper, top, vfs=True)
    root = Path(str(rootfs["layers_root"]))
    return LayerSource(upper, tuple(root / str(lower) for lower in rootfs["lowers"]), vfs=False)


def read_changes(
    source: LayerSource,
    scratch: Path,
    run_jobs: Callable[[Jobs], None],
    output: Path | None,
    skip: tuple[str, ...] = (),
) -> list[tuple[ChangeKind, str]]:
    """Run the diff job (with ``output``, it writes the layer tar there); new paths of
    ``skip`` and :data:`RUNTIME_MOUNT_POINTS` are left out."""
    changes_file = scratch / "changes.json"
    run_jobs(
        [
            DiffJob(
                upper=str(source.upper),
                lowers=tuple(str(lower) for lower in source.lowers),
                vfs=source.vfs,
                changes=str(changes_file),
                output=str(output) if output else "",
                skip=(*RUNTIME_MOUNT_POINTS, *skip),
            )
        ]
    )
    with open(changes_file, "rb") as fh:
        data = fh.read(MAX_CHANGES_FILE + 1)
    if len(data) > MAX_CHANGES_FILE:
        raise ExternalError(
            "the container's changes are too many to list",
            hint="commit the container instead, or export it (rctl export)",
        )
    return [(ChangeKind(kind), str(path)) for kind, path in json.loads(data)]


@contextlib.contextmanager
def scratch_dir(parent: Path) -> Iterator[Path]:
    """An owner-only directory for the job's outputs, removed afterwards."""
    path = Path(tempfile.mkdtemp(dir=parent, prefix=".diff-"))
    try:
        yield path
    finally:
        for child in path.iterdir():
            child.unlink(missing_ok=True)
        path.rmdir()


COMMIT_CHANGES = frozenset(
    {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "WORKDIR", "VOLUME", "STOPSIGNAL",
     "HEALTHCHECK", "ONBUILD", "SHELL"}
)  # fmt: skip


def apply_change(change: str, section: dict[str, Any]) -> None:
    """One ``-c`` instruction, read as a Dockerfile's, applied to the config section."""
    from rootless.build.dockerfile import parse_dockerfile  # noqa: PLC0415
    from rootless.build.instructions import StageVars, apply_config  # noqa: PLC0415

    parsed = parse_dockerfile(f"FROM scratch\n{change}\n", "--change")
    instructions = parsed.stages[0].instructions
    if len(instructions) != 1 or instructions[0].keyword not in COMMIT_CHANGES:
        raise UsageError(
            f"--change {change!r}: not one of {', '.join(sorted(COMMIT_CHANGES))}",
            hint='e.g. --change "CMD [\\"sh\\"]"',
        )
    apply_config(instructions[0], section, StageVars(), "\\")


def plan_commit_config(
    parent: dict[str, Any],
    *,
    diff_id: str,
    changes: Sequence[str],
    created: str,
    created_by: str,
    message: str = "",
    author: str = "",
) -> dict[str, Any]:
    """The config of the image committed over ``parent`` (a parsed config blob): the new
    layer's ``diff_id`` appended, a history entry for it, the ``--change``s applied."""
    config: dict[str, Any] = json.loads(json.dumps(parent))  # a deep copy: parent stays
    section = config.get("config")
    if not isinstance(section, dict):
        section = config["config"] = {}
    for change in changes:
        apply_change(change, section)
    config["created"] = created
    if author:
        config["author"] = author
    else:
        config.pop("author", None)
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), diff_id]
    entry: dict[str, Any] = {"created": created, "created_by": created_by}
    if author:
        entry["author"] = author
    if message:
        entry["comment"] = message
    config["history"] = [*config.get("history", []), entry]
    return config


def write_image(
    store: Store,
    config: dict[str, Any],
    base: tuple[LayerRecord, ...],
    layer: tuple[str, int] | None,
) -> bytes:
    """Store the config and an OCI manifest of the ``base`` layers plus ``layer`` (digest,
    size) if any; the manifest's bytes (the caller records the image)."""
    config_data = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    parse_image_config(config_data)  # what rctl writes, rctl must read back
    config_digest = store.write_blob(config_data)
    layers = [
        {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
        for layer in base
    ]
    if layer is not None:
        layers.append({"mediaType": OCI_LAYER_TAR, "digest": layer[0], "size": layer[1]})
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_data)},
        "layers": layers,
    }
    data = json.dumps(manifest, separators=(",", ":")).encode()
    store.write_blob(data)
    return data


def store_layer(store: Store, tar: Path) -> tuple[str, int]:
    """Move the layer tar into the blob store under its digest; (digest, size)."""
    digest = sha256_file(tar)
    size = tar.stat().st_size
    if store.has_blob(digest):
        tar.unlink()
    else:
        store.commit_blob(digest, tar)
    return digest, size


def created_by(record: ContainerRecord) -> str:
    """The history's ``created_by`` of a commit: the container's command, as docker."""
    return " ".join(record.command) or "rctl commit"


def layer_tmp(store: Store) -> Path:
    """A fresh file under the store's partial blobs for the layer tar."""
    store.ensure()
    fd, name = tempfile.mkstemp(dir=store.partial, prefix=".commit-")
    os.close(fd)
    return Path(name)
