"""Pulling an image: resolve the name, fetch manifest and config, download the missing layer
blobs in parallel, unpack them inside the user namespace, record the image.

Downloads run without the store's lock, so a slow registry holds up no other command: each
blob goes to ``blobs/partial`` (locked against a concurrent download of the same blob, and
resumed there when an earlier pull was interrupted), then, verified, to ``blobs/verified``.
The lock is taken only to commit: move the verified blobs into the store, unpack the layers,
record the image. Reads (``rctl images``) never need it, and nothing is recorded until every
layer is complete.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rctlbase.errors import NotFoundError
from rootless.config import Settings
from rootless.images.auth import Credentials, lookup
from rootless.images.layerjob import Jobs, RemoveJob, UnpackJob
from rootless.images.manifest import (
    MAX_CONFIG_SIZE,
    Descriptor,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    InvalidManifestError,
    Platform,
    check_config,
    parse_image_config,
    parse_manifest,
    select_platform,
)
from rootless.images.reference import ImageReference, candidates, is_short_name
from rootless.images.registry import DigestMismatchError, RegistryClient
from rootless.images.store import ImageRecord, LayerRecord, Store, chain_ids, sha256_file
from rootless.models import PullEvent

log = logging.getLogger("rctl.pull")
PARALLEL_DOWNLOADS = 4


@dataclass(frozen=True, slots=True)
class PullRequest:
    """What to pull and how."""

    name: str
    platform: Platform
    tls_verify: bool | None = None
    credentials: Credentials | None = None  # else those stored for the registry


class Puller:
    """Pulls images into ``store``; ``run_jobs`` runs layer jobs in the user namespace."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        run_jobs: Callable[[Jobs], None],
        events: Callable[[PullEvent], None],
        whiteout_format: str,
    ) -> None:
        self.store = store
        self.settings = settings
        self.run_jobs = run_jobs
        self.events = events
        self.whiteout_format = whiteout_format

    def client(
        self, ref: ImageReference, tls_verify: bool | None, given: Credentials | None = None
    ) -> RegistryClient:
        return RegistryClient(
            ref.registry,
            credentials=given or lookup(ref.registry),
            tls_verify=tls_verify,
            insecure_registries=self.settings.insecure_registries,
        )

    def pull(self, request: PullRequest) -> ImageRecord:
        """Pull ``request.name``; short names try each search registry in turn."""
        refs = candidates(request.name, self.settings.search_registries)
        misses: list[NotFoundError] = []
        for ref in refs:
            try:
                return self.pull_reference(ref, request)
            except NotFoundError as exc:
                if not is_short_name(request.name) or len(refs) == 1:
                    raise
                misses.append(exc)
        tried = ", ".join(ref.name for ref in refs)
        raise NotFoundError(
            f"image not found: {request.name} (tried {tried})",
            hint="check the name and tag, or use a fully qualified name",
        ) from (misses[-1] if misses else None)

    def pull_reference(self, ref: ImageReference, request: PullRequest) -> ImageRecord:
        """Pull one fully qualified reference."""
        with self.client(ref, request.tls_verify, request.credentials) as client:
            reference = ref.digest or ref.tag or "latest"
            response = client.get_manifest(ref.repository, reference)
            doc = parse_manifest(response.data, response.media_type)
            if isinstance(doc, ImageIndex):
                chosen = select_platform(doc, request.platform)
                response = client.get_manifest(ref.repository, chosen.digest)
                doc = parse_manifest(response.data, response.media_type)
            if not isinstance(doc, ImageManifest):
                raise NotFoundError(
                    f"{ref.name}: an index points to another index",
                    hint="pull the image by the digest of one platform's manifest instead",
                )
            self.events(PullEvent("resolved", digest=response.digest, text=ref.name))
            config = self.fetch_config(client, ref, doc.config)
            check_config(doc, config)
            chains = chain_ids(config.diff_ids)
            layers = tuple(
                LayerRecord(desc.digest, diff, chain, desc.size, desc.media_type)
                for desc, diff, chain in zip(doc.layers, config.diff_ids, chains, strict=True)
            )
            fresh = self.download_layers(client, ref, layers)
            with self.store.locked():
                self.commit_layers(client, ref, layers, fresh)
                unpack_missing(self.store, layers, self.run_jobs, self.whiteout_format, self.events)
                self.store.write_blob(config.raw)
                self.store.write_blob(response.data)
                record = ImageRecord(
                    id=config.digest,
                    manifest_digest=response.digest,
                    manifest_media_type=response.media_type,
                    layers=layers,
                    created=config.created or "",
                    architecture=config.architecture,
                    os=config.os,
                )
                name = ref.name if ref.tag else None
                repo_digest = f"{ref.registry}/{ref.repository}@{response.digest}"
                stored = self.store.add_image(record, name, repo_digest)
        self.events(PullEvent("stored", digest=stored.id, text=ref.name))
        return stored

    def fetch_config(
        self, client: RegistryClient, ref: ImageReference, desc: Descriptor
    ) -> ImageConfig:
        """The image config, from the store or the registry; stored later, under the lock."""
        try:
            return parse_image_config(self.store.read_blob(desc.digest))
        except NotFoundError:
            pass
        if desc.size > MAX_CONFIG_SIZE:
            raise InvalidManifestError(
                f"image config {desc.digest} is {desc.size} bytes, more than {MAX_CONFIG_SIZE}",
                hint="the registry sent a document rctl can't use; check the image reference",
            )
        buf = io.BytesIO()
        client.fetch_blob(ref.repository, desc.digest, desc.size, buf)
        return parse_image_config(buf.getvalue())

    def download_layers(
        self, client: RegistryClient, ref: ImageReference, layers: tuple[LayerRecord, ...]
    ) -> set[str]:
        """Download, without the store's lock, the blobs of missing layers that the store
        lacks, each once (an image may list a blob twice); the digests downloaded."""
        self.store.ensure()
        wanted: dict[str, LayerRecord] = {}
        for layer in layers:
            if self.store.has_layer(layer.chain_id):
                self.events(PullEvent("exists", digest=layer.digest, total=layer.size))
            elif not self.store.has_blob(layer.digest):
                wanted.setdefault(layer.digest, layer)
        with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
            done = list(pool.map(lambda layer: self.download(client, ref, layer), wanted.values()))
        return {digest for digest, downloaded in zip(wanted, done, strict=True) if downloaded}

    def commit_layers(
        self,
        client: RegistryClient,
        ref: ImageReference,
        layers: tuple[LayerRecord, ...],
        fresh: set[str],
    ) -> None:
        """Under the lock: make the blob of every layer still missing present and sound.

        A verified download is moved into the blob store. A blob that another command
        removed meanwhile, or one this pull did not just download that fails its digest
        (layer blobs are not fsynced: a crash can tear one), is downloaded (again) here.
        """
        wanted = {
            layer.digest: layer for layer in layers if not self.store.has_layer(layer.chain_id)
        }
        for digest, layer in wanted.items():
            if not self.sound_blob(digest, fresh):
                log.debug("%s: missing or torn, downloading it (again)", digest)
                self.download(client, ref, layer)
            verified = self.store.verified_path(digest)
            if verified.is_file():
                self.store.commit_blob(digest, verified)

    def sound_blob(self, digest: str, fresh: set[str]) -> bool:
        """Whether a verified download or a stored blob of ``digest`` is there and whole;
        a torn one is deleted."""
        for path in (self.store.verified_path(digest), self.store.blob_path(digest)):
            if path.is_file():
                if digest in fresh or sha256_file(path) == digest:
                    return True
                path.unlink()
        return False

    def download(self, client: RegistryClient, ref: ImageReference, layer: LayerRecord) -> bool:
        """Download one blob to its verified path; False if another pull already did."""
        with self.store.claim_partial(layer.digest) as (partial, fh):
            # In the order a download moves (verified, then the blob store): another pull
            # may commit it between the two looks, never back.
            if self.store.verified_path(layer.digest).exists() or self.store.has_blob(layer.digest):
                partial.unlink()
                return False
            offset = os.fstat(fh.fileno()).st_size
            if offset >= layer.size:
                offset = 0
                fh.truncate(0)
            self.events(PullEvent("start", digest=layer.digest, done=offset, total=layer.size))

            def progress(done: int) -> None:
                self.events(PullEvent("progress", digest=layer.digest, done=done, total=layer.size))

            try:
                # The client re-reads the prefix to hash it before resuming with Range.
                client.fetch_blob(
                    ref.repository, layer.digest, layer.size, fh, offset=offset, progress=progress
                )
            except DigestMismatchError:
                partial.unlink(missing_ok=True)  # wrong bytes: never resume from them
                raise
            fh.flush()
            os.replace(partial, self.store.verified_path(layer.digest))
        self.events(PullEvent("done", digest=layer.digest, done=layer.size, total=layer.size))
        return True


def unpack_missing(
    store: Store,
    layers: tuple[LayerRecord, ...],
    run_jobs: Callable[[Jobs], None],
    whiteout_format: str,
    events: Callable[[PullEvent], None],
) -> None:
    """Unpack the layers whose directories are missing, bottom-up, in one user-namespace
    process; stale unpacks of interrupted pulls are removed in the same process."""
    jobs: Jobs = [RemoveJob(str(stale)) for stale in store.stale_layer_dirs()]
    tmp_dirs: dict[str, Path] = {}
    previous: Path | None = None
    for layer in layers:
        if store.has_layer(layer.chain_id):
            previous = store.layer_dir(layer.chain_id) / "diff"
            continue
        if layer.chain_id in tmp_dirs:  # the same layer twice in one image
            continue
        tmp = store.layer_tmp_dir(layer.chain_id)
        tmp_dirs[layer.chain_id] = tmp
        parent = previous if whiteout_format == "vfs" else None
        jobs.append(
            UnpackJob(
                blob=str(store.blob_path(layer.digest)),
                media_type=layer.media_type,
                dest=str(tmp / "diff"),
                diff_id=layer.diff_id,
                whiteout_format=whiteout_format,
                parent=str(parent) if parent else None,
            )
        )
        previous = tmp / "diff"
        events(PullEvent("unpacking", digest=layer.digest, total=layer.size))
    if not tmp_dirs:
        return
    run_jobs(jobs)
    for chain_id, tmp in tmp_dirs.items():
        store.commit_layer(chain_id, tmp)
