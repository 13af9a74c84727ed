"""``rctl load``: the images of a docker-archive or an oci-archive, checked whole before
anything of them enters the store.

The archive's members are staged by name in a temporary directory under ``blobs/partial``
(archives list their index after or before the blobs); names are only ever looked up, never
used as paths. Then every document is parsed with the pull's parsers, every blob verified
against its digest and size, every image name parsed; only then are the blobs committed.
Anything wrong is one :class:`~rootless.images.archive.ArchiveError` (or a manifest error)
and the store is as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rctlbase.errors import UsageError
from rctlbase.syscalls import syscall_error
from rootless.images.archive import (
    CHUNK,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_TAR,
    OCI_MANIFEST,
    REF_NAME,
    ArchiveError,
    LoadedImage,
)
from rootless.images.manifest import (
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
    ImageIndex,
    ImageManifest,
    check_config,
    parse_image_config,
    parse_manifest,
)
from rootless.images.reference import parse_reference
from rootless.images.store import Store, digest_hex, sha256_file

_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)
MAX_LINKS = 8  # hops through an archive's links before giving up (a loop)


class _Staged:
    """An archive's regular files copied under ``root``, and its links, by member name.

    Names are looked up, never used as paths: absolute names and ``..`` are refused, links
    are followed within the archive's names only (docker-archives link repeated layers).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, Path] = {}
        self.links: dict[str, str] = {}

    def add(self, info: tarfile.TarInfo, fh: IO[bytes] | None) -> None:
        name = member_name(info.name, "archive member")
        if info.issym():
            # Relative to the link's directory; member_name checks it when followed.
            self.links[name] = posixpath.normpath(
                posixpath.join(posixpath.dirname(name), info.linkname)
            )
        elif info.islnk():
            self.links[name] = info.linkname
        elif fh is not None:
            path = self.root / f"m{len(self.files)}"
            try:
                with open(path, "wb") as out:
                    shutil.copyfileobj(fh, out, CHUNK)
            except OSError as exc:
                raise syscall_error(exc, f"copy archive member {info.name!r}") from exc
            self.files[name] = path

    def path(self, name: object, what: str) -> Path:
        """The staged file of member ``name``, through links."""
        key = member_name(name, what)
        for _ in range(MAX_LINKS):
            if key in self.files:
                return self.files[key]
            if key not in self.links:
                raise ArchiveError(
                    f"{what} {name!r} is missing from the archive", hint=_CORRUPT_HINT
                )
            key = member_name(self.links[key], f"link to {what}")
        raise ArchiveError(f"{what} {name!r}: too many links", hint=_CORRUPT_HINT)

    def read(self, name: object, what: str, limit: int) -> bytes:
        """A small member's bytes (an index, a manifest, a config)."""
        path = self.path(name, what)
        size = path.stat().st_size
        if size > limit:
            raise ArchiveError(
                f"{what} {name!r} is {size} bytes, more than {limit}", hint=_CORRUPT_HINT
            )
        return path.read_bytes()


_CORRUPT_HINT = "the archive is damaged or was not made by 'rctl save' or 'docker save'"


def member_name(name: object, what: str) -> str:
    """``name`` as a key: no leading ``./``, no empty or ``.`` parts; ArchiveError for
    anything but a relative path below the archive's root."""
    if not isinstance(name, str) or not name:
        raise ArchiveError(f"{what} {name!r} is not a file name", hint=_CORRUPT_HINT)
    parts = [part for part in name.split("/") if part not in ("", ".")]
    why = None
    if "\0" in name:
        why = "contains a NUL byte"
    elif name.startswith("/"):
        why = "is an absolute path"
    elif ".." in parts:
        why = "has a '..' component"
    elif not parts:
        why = "names the archive's root"
    if why is not None:
        raise ArchiveError(f"{what} {name!r} {why}", hint=_CORRUPT_HINT)
    return "/".join(parts)


def stage(source: IO[bytes], root: Path) -> _Staged:
    """Copy the members of a (possibly compressed) tar stream under ``root``."""
    staged = _Staged(root)
    try:
        with tarfile.open(fileobj=source, mode="r|*") as tar:
            for info in tar:
                staged.add(info, tar.extractfile(info) if info.isfile() else None)
    except _READ_ERRORS as exc:
        raise ArchiveError(
            f"not a readable tar archive: {exc}",
            hint="give a file made by 'rctl save' or 'docker save'",
        ) from exc
    return staged


@dataclass
class _Plan:
    """What a checked archive adds to the store: verified blobs and the images."""

    blobs: dict[str, Path] = field(default_factory=dict)  # digest -> staged file
    documents: list[bytes] = field(default_factory=list)  # manifests and configs
    images: list[LoadedImage] = field(default_factory=list)


def load(store: Store, source: IO[bytes]) -> list[LoadedImage]:
    """Copy an archive's blobs into the store and return the images it holds.

    Files are staged by name in a temporary directory (archives list their index after or
    before the blobs); the whole archive is then checked (documents parsed, every blob
    verified against its digest, names parsed) before anything is committed, so a bad
    archive leaves the store as it was.
    """
    store.ensure()
    with tempfile.TemporaryDirectory(dir=store.partial) as tmpdir:
        staged = stage(source, Path(tmpdir))
        if "index.json" in staged.files:
            plan = plan_oci(store, staged)
        elif "manifest.json" in staged.files:
            plan = plan_docker(staged)
        else:
            raise ArchiveError(
                "archive has neither index.json nor manifest.json",
                hint="use docker-archive or oci-archive",
            )
        for digest, path in plan.blobs.items():
            if not store.has_blob(digest):
                store.commit_blob(digest, path)
        for data in plan.documents:
            store.write_blob(data)
    return plan.images


def verified(path: Path, digest: str, what: str, size: int | None = None) -> Path:
    """``path``, whose content must have ``digest`` (and ``size``)."""
    if size is not None and path.stat().st_size != size:
        raise ArchiveError(
            f"{what} {digest} in the archive is {path.stat().st_size} bytes, not {size}",
            hint=_CORRUPT_HINT,
        )
    actual = sha256_file(path)
    if actual != digest:
        raise ArchiveError(
            f"{what} {digest} in the archive has digest {actual}", hint=_CORRUPT_HINT
        )
    return path


def checked_names(names: Sequence[str], where: str) -> tuple[str, ...]:
    for name in names:
        try:
            parse_reference(name)
        except UsageError as exc:
            raise ArchiveError(
                f"{where}: image name {name!r} is invalid: {exc.message}", hint=_CORRUPT_HINT
            ) from exc
    return tuple(names)


def plan_oci(store: Store, staged: _Staged) -> _Plan:
    index = parse_manifest(staged.read("index.json", "index", MAX_MANIFEST_SIZE), OCI_INDEX)
    if not isinstance(index, ImageIndex):
        raise ArchiveError("index.json is not an image index", hint=_CORRUPT_HINT)
    plan = _Plan()

    def blob_name(digest: str) -> str:
        return f"blobs/sha256/{digest_hex(digest)}"

    for desc in index.manifests:
        data = staged.read(blob_name(desc.digest), "manifest", MAX_MANIFEST_SIZE)
        if len(data) != desc.size or "sha256:" + hashlib.sha256(data).hexdigest() != desc.digest:
            raise ArchiveError(
                f"manifest {desc.digest} in the archive does not match its digest",
                hint=_CORRUPT_HINT,
            )
        manifest = parse_manifest(data, desc.media_type)
        if not isinstance(manifest, ImageManifest):
            raise ArchiveError(
                "nested indexes in archives are not supported", hint="save a single-platform image"
            )
        config_data = staged.read(blob_name(manifest.config.digest), "config", MAX_CONFIG_SIZE)
        if "sha256:" + hashlib.sha256(config_data).hexdigest() != manifest.config.digest:
            raise ArchiveError(
                f"config {manifest.config.digest} in the archive does not match its digest",
                hint=_CORRUPT_HINT,
            )
        check_config(manifest, parse_image_config(config_data))
        for layer in manifest.layers:
            if not store.has_blob(layer.digest):
                path = staged.path(blob_name(layer.digest), "layer")
                plan.blobs[layer.digest] = verified(path, layer.digest, "layer", layer.size)
        plan.documents += [config_data, data]
        name = desc.annotations.get("io.containerd.image.name") or desc.annotations.get(
            REF_NAME, ""
        )
        names = checked_names([name] if name and "/" in name else [], "index.json")
        plan.images.append(LoadedImage(data, desc.media_type, names))
    return plan


def plan_docker(staged: _Staged) -> _Plan:
    text = staged.read("manifest.json", "manifest", MAX_MANIFEST_SIZE)
    try:
        entries = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ArchiveError(f"manifest.json is not valid JSON: {exc}", hint=_CORRUPT_HINT) from exc
    if not isinstance(entries, list):
        raise ArchiveError("manifest.json is not a list of images", hint=_CORRUPT_HINT)
    plan = _Plan()
    for i, entry in enumerate(entries):
        where = f"manifest.json entry {i}"
        if not isinstance(entry, dict):
            raise ArchiveError(f"{where} is not an object", hint=_CORRUPT_HINT)
        layer_names, tags = entry.get("Layers"), entry.get("RepoTags") or []
        if (
            not isinstance(layer_names, list)
            or not isinstance(tags, list)
            or not all(isinstance(item, str) for item in [*layer_names, *tags])
        ):
            raise ArchiveError(
                f"{where}: 'Layers' and 'RepoTags' must be lists of strings", hint=_CORRUPT_HINT
            )
        if "Config" not in entry:
            raise ArchiveError(f"{where} names no 'Config'", hint=_CORRUPT_HINT)
        config_data = staged.read(entry["Config"], "config", MAX_CONFIG_SIZE)
        config = parse_image_config(config_data)
        if len(layer_names) != len(config.diff_ids):
            raise ArchiveError(
                f"{where} lists {len(layer_names)} layers but its config {len(config.diff_ids)}",
                hint=_CORRUPT_HINT,
            )
        layers = []
        for layer_name, diff_id in zip(layer_names, config.diff_ids, strict=True):
            # Uncompressed in the archive: the blob digest is its diff ID.
            path = verified(staged.path(layer_name, "layer"), diff_id, "layer")
            plan.blobs[diff_id] = path
            layers.append(
                {"mediaType": OCI_LAYER_TAR, "digest": diff_id, "size": path.stat().st_size}
            )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": len(config_data)},
            "layers": layers,
        }
        data = json.dumps(manifest, separators=(",", ":")).encode()
        plan.documents += [config_data, data]
        plan.images.append(LoadedImage(data, OCI_MANIFEST, checked_names(tags, where)))
    return plan
