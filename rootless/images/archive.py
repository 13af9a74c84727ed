"""Image archives: ``save`` in docker-archive and oci-archive formats (``load`` reads them
back: :mod:`rootless.images.archiveload`), ``import`` of a root filesystem tarball, and
``push`` to a registry.

- oci-archive: a tar of an OCI image layout (``oci-layout``, ``index.json``, ``blobs/``)
  holding the blobs exactly as stored (compressed layers, original manifests), one index
  entry per name with the ``org.opencontainers.image.ref.name`` annotation.
- docker-archive: docker's ``docker save`` format: ``manifest.json`` (Config, RepoTags,
  Layers), the config as ``HEX.json`` and each layer uncompressed as ``HEX/layer.tar``.

A root filesystem given to ``import`` is read with :mod:`tarfile` only to check that it is
a tar; it becomes the image's one layer as it is (unpacked like any layer).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast

import zstandard

from rctlbase.errors import ExternalError, UsageError
from rootless.images.manifest import (
    Compression,
    ImageManifest,
    layer_compression,
    parse_image_config,
    parse_manifest,
)
from rootless.images.store import (
    ImageRecord,
    LayerRecord,
    Store,
    chain_ids,
    digest_hex,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
CHUNK = 1 << 20


class ArchiveError(ExternalError):
    """An archive rctl can't read: not a tar, unknown format, a blob that doesn't verify."""


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """An image found in an archive, its blobs already in the store."""

    manifest: bytes
    manifest_media_type: str
    names: tuple[str, ...]


class Reader(Protocol):
    """Anything with ``read(size)``: files, decompressors."""

    def read(self, size: int = -1, /) -> bytes: ...


def decompressed(fh: IO[bytes], compression: Compression) -> Reader:
    """A reader of the uncompressed tar inside a layer blob."""
    if compression is Compression.GZIP:
        return gzip.GzipFile(fileobj=fh, mode="rb")
    if compression is Compression.ZSTD:
        return zstandard.ZstdDecompressor().stream_reader(fh)
    return fh


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def add_file(tar: tarfile.TarFile, name: str, path: Path, size: int | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size if size is None else size
    info.mode = 0o644
    with open(path, "rb") as fh:
        tar.addfile(info, fh)


# -- save -------------------------------------------------------------------------------------


def save(
    store: Store, images: Sequence[tuple[ImageRecord, tuple[str, ...]]], output: IO[bytes], fmt: str
) -> None:
    """Write ``images`` (each with the names to save it under) as one archive."""
    with tarfile.open(fileobj=output, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if fmt == "oci-archive":
            save_oci(store, images, tar)
        elif fmt == "docker-archive":
            save_docker(store, images, tar)
        else:
            raise UsageError(
                f"unknown archive format {fmt!r}", hint="use docker-archive or oci-archive"
            )


def save_oci(
    store: Store, images: Sequence[tuple[ImageRecord, tuple[str, ...]]], tar: tarfile.TarFile
) -> None:
    written: set[str] = set()
    manifests: list[dict[str, Any]] = []

    def blob(digest: str) -> None:
        if digest not in written:
            written.add(digest)
            add_file(tar, f"blobs/sha256/{digest_hex(digest)}", store.blob_path(digest))

    for image, names in images:
        data = store.read_blob(image.manifest_digest)
        for digest in [image.id, *(layer.digest for layer in image.layers), image.manifest_digest]:
            blob(digest)
        for name in names or ("",):
            entry: dict[str, Any] = {
                "mediaType": image.manifest_media_type,
                "digest": image.manifest_digest,
                "size": len(data),
            }
            if name:
                entry["annotations"] = {
                    REF_NAME: name.rpartition(":")[2],
                    "io.containerd.image.name": name,
                }
            manifests.append(entry)
    add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    add_bytes(tar, "index.json", json.dumps(index).encode())


def save_docker(
    store: Store, images: Sequence[tuple[ImageRecord, tuple[str, ...]]], tar: tarfile.TarFile
) -> None:
    entries = []
    written: set[str] = set()
    for image, names in images:
        config_name = f"{digest_hex(image.id)}.json"
        if config_name not in written:
            written.add(config_name)
            add_file(tar, config_name, store.blob_path(image.id))
        layer_names = []
        for layer in image.layers:
            name = f"{digest_hex(layer.diff_id)}/layer.tar"
            layer_names.append(name)
            if name in written:
                continue
            written.add(name)
            with tempfile.TemporaryFile() as tmp:
                with open(store.blob_path(layer.digest), "rb") as fh:
                    shutil.copyfileobj(
                        decompressed(fh, layer_compression(layer.media_type)), tmp, CHUNK
                    )
                size = tmp.tell()
                tmp.seek(0)
                info = tarfile.TarInfo(name)
                info.size = size
                info.mode = 0o644
                tar.addfile(info, tmp)
        entries.append({"Config": config_name, "RepoTags": list(names), "Layers": layer_names})
    add_bytes(tar, "manifest.json", json.dumps(entries).encode())


def image_record(store: Store, manifest_data: bytes, media_type: str) -> ImageRecord:
    """The store record of an image whose blobs are all in the store."""
    manifest = parse_manifest(manifest_data, media_type)
    assert isinstance(manifest, ImageManifest)
    config = parse_image_config(store.read_blob(manifest.config.digest))
    chains = chain_ids(config.diff_ids)
    layers = tuple(
        LayerRecord(d.digest, diff, chain, d.size, d.media_type)
        for d, diff, chain in zip(manifest.layers, config.diff_ids, chains, strict=True)
    )
    return ImageRecord(
        id=config.digest,
        manifest_digest="sha256:" + hashlib.sha256(manifest_data).hexdigest(),
        manifest_media_type=media_type,
        layers=layers,
        created=config.created or "",
        architecture=config.architecture,
        os=config.os,
    )


# -- import -----------------------------------------------------------------------------------


def parse_change(change: str, config: dict[str, Any]) -> None:  # noqa: PLR0912 - a branch per keyword
    """Apply one Dockerfile-style ``--change`` (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE,
    LABEL, VOLUME, STOPSIGNAL) to an image config's ``config`` section."""
    keyword, _, value = change.strip().partition(" ")
    keyword, value = keyword.upper(), value.strip()
    if not value:
        raise UsageError(
            f"--change {change!r}: missing value", hint='e.g. --change "CMD [\\"sh\\"]"'
        )

    def exec_form() -> list[str]:
        if value.startswith("["):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"--change {change!r}: bad JSON list", hint='use CMD ["prog", "arg"]'
                ) from exc
            if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
                raise UsageError(
                    f"--change {change!r}: expected a list of strings",
                    hint='the JSON form is a list of strings, e.g. CMD ["sh", "-c", "date"]',
                )
            return parsed
        return ["/bin/sh", "-c", value]

    if keyword == "CMD":
        config["Cmd"] = exec_form()
    elif keyword == "ENTRYPOINT":
        config["Entrypoint"] = exec_form()
    elif keyword == "ENV":
        key, sep, val = value.partition("=")
        if not sep:
            key, _, val = value.partition(" ")
        config["Env"] = [e for e in config.get("Env", []) if not e.startswith(f"{key}=")] + [
            f"{key}={val.strip()}"
        ]
    elif keyword == "WORKDIR":
        config["WorkingDir"] = value
    elif keyword == "USER":
        config["User"] = value
    elif keyword == "EXPOSE":
        for port in value.split():
            config.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
    elif keyword == "LABEL":
        key, _, val = value.partition("=")
        config.setdefault("Labels", {})[key] = val.strip('"')
    elif keyword == "VOLUME":
        for vol in exec_form() if value.startswith("[") else value.split():
            config.setdefault("Volumes", {})[vol] = {}
    elif keyword == "STOPSIGNAL":
        config["StopSignal"] = value
    else:
        raise UsageError(
            f"--change {change!r}: {keyword} is not supported",
            hint="use CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME or STOPSIGNAL",
        )


def import_rootfs(
    store: Store,
    source: IO[bytes],
    changes: Sequence[str],
    architecture: str,
    created: str,
    message: str = "",
) -> tuple[bytes, str]:
    """Make a one-layer image from a root filesystem tarball (plain, gzip or zstd)."""
    store.ensure()
    fd, tmp_name = tempfile.mkstemp(dir=store.partial, prefix=".import-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = hashlib.sha256()
            head = source.read(4)
            whole = cast(IO[bytes], io.BufferedReader(_Prefixed(head, source)))
            rest: Reader
            if head[:2] == b"\x1f\x8b":
                rest = gzip.GzipFile(fileobj=whole, mode="rb")
            elif head == b"\x28\xb5\x2f\xfd":
                rest = zstandard.ZstdDecompressor().stream_reader(whole)
            else:
                rest = whole
            try:
                while chunk := rest.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            except (EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError) as exc:
                raise ArchiveError(
                    f"the compressed tarball is damaged: {exc}",
                    hint="give a plain, gzip or zstd root filesystem tarball",
                ) from exc
        diff_id = "sha256:" + digest.hexdigest()
        size = tmp.stat().st_size
        with open(tmp, "rb") as check:
            try:
                with tarfile.open(fileobj=check, mode="r|") as tar:
                    next(iter(tar), None)
            except tarfile.TarError as exc:
                raise ArchiveError(
                    f"not a tar archive: {exc}", hint="give a root filesystem tarball"
                ) from exc
        if not store.has_blob(diff_id):
            store.commit_blob(diff_id, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    container_config: dict[str, Any] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    }
    for change in changes:
        parse_change(change, container_config)
    config = {
        "created": created,
        "architecture": architecture,
        "os": "linux",
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "rctl import", "comment": message}],
    }
    config_data = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    config_digest = store.write_blob(config_data)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_data)},
        "layers": [{"mediaType": OCI_LAYER_TAR, "digest": diff_id, "size": size}],
    }
    data = json.dumps(manifest, separators=(",", ":")).encode()
    store.write_blob(data)
    return data, OCI_MANIFEST


class _Prefixed(io.RawIOBase):
    """A stream with bytes already read put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# -- push -------------------------------------------------------------------------------------


def push(
    store: Store,
    image: ImageRecord,
    client: Any,
    repository: str,
    reference: str,
    progress: Callable[[str, str], None],
) -> str:
    """Upload the image's missing blobs, then its manifest; returns the manifest digest."""
    for digest in [*(layer.digest for layer in image.layers), image.id]:
        if client.blob_exists(repository, digest):
            progress("exists", digest)
            continue
        path = store.blob_path(digest)
        with open(path, "rb") as fh:
            client.upload_blob(repository, digest, path.stat().st_size, fh)
        progress("pushed", digest)
    data = store.read_blob(image.manifest_digest)
    result: str = client.put_manifest(repository, reference, data, image.manifest_media_type)
    return result
