"""The content-addressed image store under ``$XDG_DATA_HOME/rctl``.

::

    store.lock                 flock: serialises rctl processes that change the store
    blobs/sha256/HEX           verified blobs: manifests, configs, compressed layers
    blobs/partial/HEX          downloads in progress (resumed by the next pull), each flocked
                               by the pull writing it
    blobs/verified/HEX         complete downloads whose digest was checked, not yet committed
    layers/FORMAT/CHAIN/diff   a layer unpacked once, keyed by its chain ID, shared by every
                               image and container above it; owners are mapped IDs
    layers/FORMAT/.tmp-CHAIN-* an unpack in progress: never looked at, removed on next use
    images.json                image records and tags, rewritten atomically

A download or unpack in progress is never visible as complete: blobs are renamed into place
after their digest is checked, layer directories after the unpack succeeded, and
``images.json`` is replaced with ``rename(2)`` after an fsync. Layer directories hold files
owned by subordinate IDs, so creating and deleting them happens inside the user namespace
(see the engine); the store itself only decides names and bookkeeping.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from rctlbase.errors import ConflictError, HostError, NotFoundError, UsageError
from rootless.config import ensure_private_dir


class CorruptStoreError(HostError):
    """A file of the store does not hold what rctl writes there."""


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """Chain IDs (OCI image-spec, config.md "Layer ChainID").

    ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
    """
    import hashlib  # noqa: PLC0415 - pulls only: every `rctl run` imports this module

    chains: list[str] = []
    for diff_id in diff_ids:
        if chains:
            text = f"{chains[-1]} {diff_id}".encode()
            chains.append("sha256:" + hashlib.sha256(text).hexdigest())
        else:
            chains.append(diff_id)
    return chains


def sha256_file(path: Path) -> str:
    """The ``sha256:HEX`` digest of a file's content."""
    import hashlib  # noqa: PLC0415 - see chain_ids

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def digest_hex(digest: str) -> str:
    """``sha256:HEX`` → ``HEX``, refusing other algorithms and malformed values."""
    algorithm, _, hexpart = digest.partition(":")
    if (
        algorithm != "sha256"
        or len(hexpart) != 64
        or not all(c in "0123456789abcdef" for c in hexpart)
    ):
        raise UsageError(
            f"unsupported or malformed digest: {digest!r}",
            hint="rctl stores content by sha256 digests (sha256:<64 hex>) only",
        )
    return hexpart


@dataclass(frozen=True, slots=True)
class LayerRecord:
    """One layer of an image: its compressed blob and its unpacked directory."""

    digest: str  # of the compressed blob, as in the manifest
    diff_id: str  # of the uncompressed tar
    chain_id: str
    size: int  # compressed size
    media_type: str


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """An image in the store. Its ID is the digest of its config, as in docker and podman."""

    id: str
    manifest_digest: str
    manifest_media_type: str
    layers: tuple[LayerRecord, ...]
    names: tuple[str, ...] = ()  # full references with tags, e.g. docker.io/library/busybox:latest
    repo_digests: tuple[str, ...] = ()  # NAME@sha256:... of the manifest it was pulled by
    created: str = ""
    architecture: str = ""
    os: str = ""
    pulled: float = field(default_factory=time.time)

    @property
    def short_id(self) -> str:
        return digest_hex(self.id)[:12]

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> ImageRecord:
        """A record as :meth:`to_json` wrote it; ValueError naming what is wrong if not."""
        fields = _checked(data, _IMAGE_FIELDS, "an image")
        raw_layers = fields.pop("layers")
        layers = tuple(
            LayerRecord(**_checked(layer, _LAYER_FIELDS, "a layer")) for layer in raw_layers
        )
        for key in ("names", "repo_digests"):
            values = fields.get(key, [])
            if not all(isinstance(value, str) for value in values):
                raise ValueError(f"an image's {key!r} are not all strings")
            fields[key] = tuple(values)
        return cls(layers=layers, **fields)


# What images.json holds: (type, required) per field; digests are checked besides.
_LAYER_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "digest": (str, True),
    "diff_id": (str, True),
    "chain_id": (str, True),
    "size": (int, True),
    "media_type": (str, True),
}
_IMAGE_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "id": (str, True),
    "manifest_digest": (str, True),
    "manifest_media_type": (str, True),
    "layers": (list, True),
    "names": (list, False),
    "repo_digests": (list, False),
    "created": (str, False),
    "architecture": (str, False),
    "os": (str, False),
    "pulled": ((int, float), False),
}
_DIGEST_FIELDS = ("id", "manifest_digest", "digest", "diff_id", "chain_id")


def _checked(
    data: object, spec: dict[str, tuple[type | tuple[type, ...], bool]], what: str
) -> dict[str, Any]:
    """The fields of ``data`` that ``spec`` knows, each of its type; ValueError if not."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} is not an object")
    fields: dict[str, Any] = {}
    for key, (kind, required) in spec.items():
        if key not in data:
            if required:
                raise ValueError(f"{what} lacks {key!r}")
            continue
        value = data[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{what}'s {key!r} is not of type {getattr(kind, '__name__', kind)}")
        if key in _DIGEST_FIELDS:
            try:
                digest_hex(str(value))
            except UsageError as exc:
                raise ValueError(f"{what}'s {key!r}: {exc.message}") from exc
        fields[key] = value
    return fields


class Store:
    """One user's store. Methods that change it expect the caller to hold :meth:`locked`."""

    def __init__(self, root: Path, layer_format: str = "overlay") -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.partial = root / "blobs" / "partial"
        self.verified = root / "blobs" / "verified"
        # overlay and fuse-overlayfs share one format (whiteouts as 0:0 devices); vfs layers
        # are full copies of their parents, so each format has its own tree.
        self.layers = root / "layers" / layer_format
        self.index = root / "images.json"

    def ensure(self) -> None:
        """Create the directories, owner-only."""
        for path in (self.root, self.blobs.parent, self.blobs, self.partial, self.verified,
                     self.layers.parent, self.layers):  # fmt: skip
            ensure_private_dir(path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock over the store for changes (blocking; rctl processes queue up)."""
        self.ensure()
        fd = os.open(self.root / "store.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- blobs ---------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest_hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def partial_path(self, digest: str) -> Path:
        """Where a download of ``digest`` accumulates; the caller verifies, then commits it."""
        return self.partial / digest_hex(digest)

    @contextlib.contextmanager
    def claim_partial(self, digest: str) -> Iterator[tuple[Path, BinaryIO]]:
        """The download file of ``digest``, opened and flocked: one writer at a time, be it
        another thread or another rctl (which renames or deletes the file before letting
        go of it, so the file locked must still be the one at the path)."""
        path = self.partial_path(digest)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fh = os.fdopen(fd, "r+b")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    current = os.stat(path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    current = False
                if current:
                    yield path, fh
                    return
            finally:
                fh.close()

    def verified_path(self, digest: str) -> Path:
        """Where a download of ``digest`` waits, verified, to be committed under the lock."""
        return self.verified / digest_hex(digest)

    def commit_blob(self, digest: str, source: Path, *, durable: bool = False) -> Path:
        """Move a verified file into the blob store (atomic).

        ``durable`` fsyncs it first. Layer blobs skip that (a 100 MB fsync costs a second):
        after a crash a torn one fails its digest check when a pull needs it unpacked (a
        blob the pull did not download itself is hashed again), or the registry's when
        pushed, and is fetched again; manifests and configs, which say what an image is,
        are made durable.
        """
        target = self.blob_path(digest)
        if durable:
            with open(source, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(source, 0o600)
        os.replace(source, target)
        return target

    def write_blob(self, data: bytes) -> str:
        """Store small content (manifests, configs) and return its digest."""
        import hashlib  # noqa: PLC0415 - see chain_ids

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(digest):
            fd, tmp = tempfile.mkstemp(dir=self.partial, prefix=".w-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.commit_blob(digest, Path(tmp), durable=True)
        return digest

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"blob {digest} is missing from the store",
                hint="pull the image again (rctl pull NAME)",
            ) from exc

    # -- layers --------------------------------------------------------------------------

    def layer_dir(self, chain_id: str) -> Path:
        return self.layers / digest_hex(chain_id)

    def has_layer(self, chain_id: str) -> bool:
        return (self.layer_dir(chain_id) / "diff").is_dir()

    def layer_tmp_dir(self, chain_id: str) -> Path:
        """A fresh owner-only directory to unpack ``chain_id`` into; renamed when complete."""
        return Path(tempfile.mkdtemp(dir=self.layers, prefix=f".tmp-{digest_hex(chain_id)}-"))

    def commit_layer(self, chain_id: str, tmp: Path) -> None:
        os.replace(tmp, self.layer_dir(chain_id))

    def stale_layer_dirs(self) -> list[Path]:
        """Unpacks that never finished (their process died)."""
        return sorted(self.layers.glob(".tmp-*"))

    # -- images --------------------------------------------------------------------------

    def load_images(self) -> dict[str, ImageRecord]:
        """All image records by ID."""
        try:
            text = self.index.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            raw = json.loads(text)
            images = raw.get("images", []) if isinstance(raw, dict) else None
            if not isinstance(images, list):
                raise ValueError("it holds no list of images")
            records = [ImageRecord.from_json(data) for data in images]
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise CorruptStoreError(
                f"the image index {self.index} is corrupt: {exc}",
                hint="restore it from a backup, or move it aside and pull the images again "
                "(the layers on disk are reused)",
            ) from exc
        return {record.id: record for record in records}

    def save_images(self, images: dict[str, ImageRecord]) -> None:
        """Replace images.json atomically (write, fsync, rename)."""
        self.ensure()
        payload = {"version": 1, "images": [image.to_json() for image in images.values()]}
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".images-")
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.index)

    def add_image(
        self, image: ImageRecord, name: str | None, repo_digest: str | None
    ) -> ImageRecord:
        """Record ``image``, moving ``name`` to it from any other image (which may dangle)."""
        images = self.load_images()
        if name:
            images = {i: untag(img, name) for i, img in images.items()}
        current = images.get(image.id, image)
        names = tuple(dict.fromkeys([*current.names, *([name] if name else [])]))
        digests = tuple(
            dict.fromkeys([*current.repo_digests, *([repo_digest] if repo_digest else [])])
        )
        images[image.id] = replace(current, names=names, repo_digests=digests)
        self.save_images(images)
        return images[image.id]


def untag(image: ImageRecord, name: str) -> ImageRecord:
    """``image`` without the tag ``name``."""
    return replace(image, names=tuple(n for n in image.names if n != name))


def find_image(
    images: dict[str, ImageRecord], wanted: str, candidates: Iterable[str]
) -> ImageRecord:
    """An image by ID (full or prefix ≥ 3 hex), by full name, or by one of ``candidates``
    (the names a short reference resolves to)."""
    key = wanted.removeprefix("sha256:")
    by_id = (
        [img for img in images.values() if digest_hex(img.id).startswith(key)]
        if len(key) >= 3 and all(c in "0123456789abcdef" for c in key)
        else []
    )
    if len(by_id) == 1:
        return by_id[0]
    if len(by_id) > 1:
        raise ConflictError(
            f"image ID {wanted!r} is ambiguous", hint="use more characters of the ID"
        )
    names = [wanted, *candidates]
    for name in names:
        for img in images.values():
            if name in img.names or any(d == name for d in img.repo_digests):
                return img
    raise NotFoundError(
        f"image not known: {wanted}",
        hint="list images with 'rctl images' or pull it: rctl pull NAME",
    )
