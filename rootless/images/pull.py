"""Pulling an image: resolve the name, fetch manifest and config, download the missing layer
blobs in parallel, unpack them inside the user namespace, record the image.

The store lock is held for the whole pull, so concurrent pulls queue rather than race; reads
(``rctl images``) never need it. A blob download is resumed from ``blobs/partial`` when an
earlier pull was interrupted, and nothing is recorded until every layer is complete.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rctlbase.errors import NotFoundError
from rootless.config import Settings
from rootless.images.auth import lookup
from rootless.images.layerjob import Jobs, RemoveJob, UnpackJob
from rootless.images.manifest import (
    Descriptor,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    Platform,
    check_config,
    parse_image_config,
    parse_manifest,
    select_platform,
)
from rootless.images.reference import ImageReference, candidates, is_short_name
from rootless.images.registry import DigestMismatchError, RegistryClient
from rootless.images.store import ImageRecord, LayerRecord, Store, chain_ids
from rootless.models import PullEvent

log = logging.getLogger("rctl.pull")
PARALLEL_DOWNLOADS = 4


@dataclass(frozen=True, slots=True)
class PullRequest:
    """What to pull and how."""

    name: str
    platform: Platform
    tls_verify: bool | None = None


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

    def client(self, ref: ImageReference, tls_verify: bool | None) -> RegistryClient:
        return RegistryClient(
            ref.registry,
            credentials=lookup(ref.registry),
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
        with self.client(ref, request.tls_verify) as client:
            reference = ref.digest or ref.tag or "latest"
            response = client.get_manifest(ref.repository, reference)
            doc = parse_manifest(response.data, response.media_type)
            if isinstance(doc, ImageIndex):
                chosen = select_platform(doc, request.platform)
                response = client.get_manifest(ref.repository, chosen.digest)
                doc = parse_manifest(response.data, response.media_type)
            if not isinstance(doc, ImageManifest):
                raise NotFoundError(f"{ref.name}: an index points to another index")
            self.events(PullEvent("resolved", digest=response.digest, text=ref.name))
            config = self.fetch_config(client, ref, doc.config)
            check_config(doc, config)
            with self.store.locked():
                layers = self.fetch_layers(client, ref, doc, config)
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
        if self.store.has_blob(desc.digest):
            return parse_image_config(self.store.read_blob(desc.digest))
        buf = io.BytesIO()
        client.fetch_blob(ref.repository, desc.digest, desc.size, buf)
        data = buf.getvalue()
        self.store.ensure()
        self.store.write_blob(data)
        return parse_image_config(data)

    def fetch_layers(
        self, client: RegistryClient, ref: ImageReference, doc: ImageManifest, config: ImageConfig
    ) -> tuple[LayerRecord, ...]:
        """Make every layer of ``doc`` present in the store; return their records."""
        chains = chain_ids(config.diff_ids)
        layers = tuple(
            LayerRecord(desc.digest, diff, chain, desc.size, desc.media_type)
            for desc, diff, chain in zip(doc.layers, config.diff_ids, chains, strict=True)
        )
        missing = [layer for layer in layers if not self.store.has_layer(layer.chain_id)]
        for layer in layers:
            if layer not in missing:
                self.events(PullEvent("exists", digest=layer.digest, total=layer.size))
        downloads = [layer for layer in missing if not self.store.has_blob(layer.digest)]
        with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
            for _ in pool.map(lambda layer: self.download(client, ref, layer), downloads):
                pass
        unpack_missing(self.store, layers, self.run_jobs, self.whiteout_format, self.events)
        return layers

    def download(self, client: RegistryClient, ref: ImageReference, layer: LayerRecord) -> None:
        partial = self.store.partial_path(layer.digest)
        offset = partial.stat().st_size if partial.exists() else 0
        if offset >= layer.size:
            offset = 0
        self.events(PullEvent("start", digest=layer.digest, done=offset, total=layer.size))

        def progress(done: int) -> None:
            self.events(PullEvent("progress", digest=layer.digest, done=done, total=layer.size))

        # a+b: the client re-reads the prefix to hash it before resuming with Range.
        with open(partial, "a+b" if offset else "wb") as fh:
            if not offset:
                fh.truncate(0)
            try:
                client.fetch_blob(
                    ref.repository, layer.digest, layer.size, fh, offset=offset, progress=progress
                )
            except DigestMismatchError:
                partial.unlink(missing_ok=True)  # wrong bytes: never resume from them
                raise
        self.store.commit_blob(layer.digest, partial)
        self.events(PullEvent("done", digest=layer.digest, done=layer.size, total=layer.size))


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
