"""Image use cases: list, inspect, history, tag, remove, prune, disk usage.

Pulling lives in :mod:`rootless.images.pull`, archives in :mod:`rootless.images.archive`;
this module is the bookkeeping over the store. Layer directories that no image uses any
more are removed inside the user namespace (their files belong to mapped IDs).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace

from rctlbase.errors import ConflictError, UsageError
from rootless.eventlog import record_event
from rootless.filters import (
    IMAGE_KEYS,
    IMAGE_PRUNE_KEYS,
    FilterSet,
    ImageFacts,
    image_matcher,
    parse_bool,
    parse_filters,
    prune_matcher,
)
from rootless.images.layerjob import Jobs, RemoveJob
from rootless.images.manifest import parse_image_config
from rootless.images.reference import candidates, parse_reference
from rootless.images.store import ImageRecord, Store, find_image, untag
from rootless.models import ImageSummary, RemovedImage
from rootless.reports.images import (
    HistoryRow,
    ImageConfigReport,
    ImageHealthcheck,
    ImageInspect,
    ImageListRow,
    LayerReport,
)
from rootless.timestamps import normalize_rfc3339, parse_rfc3339


def split_name(name: str) -> tuple[str, str]:
    """``registry/repo:tag`` → (``registry/repo``, ``tag``)."""
    repo, _, tag = name.rpartition(":")
    if "/" in tag or not repo:
        return name, "<none>"
    return repo, tag


class ImageService:
    """Read and change image records; ``run_jobs`` runs layer jobs in the user namespace."""

    def __init__(
        self,
        store: Store,
        search_registries: tuple[str, ...],
        run_jobs: Callable[[Jobs], None],
        images_in_use: Callable[[], set[str]] = set,
    ) -> None:
        self.store = store
        self.search = search_registries
        self.run_jobs = run_jobs
        self.images_in_use = images_in_use

    def get(self, name: str) -> ImageRecord:
        """An image by ID, ID prefix, full name or short name."""
        return find_image(self.store.load_images(), name, self.candidate_names(name))

    def summaries(
        self, *, all_images: bool = False, filters: Sequence[str] = ()
    ) -> list[ImageSummary]:
        """Rows of ``rctl images``: one per name, one for an untagged (dangling) image,
        with docker's ``--filter``s (:mod:`rootless.filters`).

        ``all_images`` is accepted for docker's ``-a``; rctl keeps no intermediate images,
        so it lists the same rows.
        """
        rows: list[ImageSummary] = []
        images = sorted(self.store.load_images().values(), key=lambda i: i.pulled, reverse=True)
        parsed = parse_filters(filters, IMAGE_KEYS)
        keep = self._matcher(parsed) if parsed else None
        for image in images:
            is_dangling = not image.names
            digest = image.repo_digests[0].rpartition("@")[2] if image.repo_digests else ""
            for name in image.names or ("<none>:<none>",):
                if keep is not None and not keep(
                    self._facts(image, name, labels="label" in parsed)
                ):
                    continue
                repo, tag = split_name(name) if name != "<none>:<none>" else ("<none>", "<none>")
                rows.append(
                    ImageSummary(
                        id=image.id,
                        short_id=image.short_id,
                        repository=repo,
                        tag=tag,
                        digest=digest,
                        created=image.created,
                        size=image.size,
                        names=image.names,
                        dangling=is_dangling,
                    )
                )
        return rows

    def inspect(self, name: str) -> ImageInspect:
        """``image inspect``: docker's document of the image."""
        image = self.get(name)
        config = parse_image_config(self.store.read_blob(image.id))
        c = config.config
        check = c.healthcheck
        return ImageInspect(
            id=image.id,
            repo_tags=image.names,
            repo_digests=image.repo_digests,
            created=normalize_rfc3339(image.created),
            architecture=config.architecture,
            variant=config.variant or "",
            os=config.os,
            author=config.author,
            comment=config.history[-1].comment if config.history else "",
            size=image.size,
            config=ImageConfigReport(
                env=c.env,
                cmd=c.cmd,
                entrypoint=c.entrypoint,
                working_dir=c.working_dir,
                user=c.user,
                exposed_ports=c.exposed_ports,
                volumes=c.volumes,
                labels=dict(c.labels),
                stop_signal=c.stop_signal or "",
                healthcheck=None if check is None else ImageHealthcheck(**asdict(check)),
            ),
            diff_ids=config.diff_ids,
            driver=self.store.layers.name,
            manifest_digest=image.manifest_digest,
            manifest_media_type=image.manifest_media_type,
            layers=tuple(
                LayerReport(layer.digest, layer.diff_id, layer.size, layer.media_type)
                for layer in image.layers
            ),
        )

    def list_rows(self) -> list[ImageListRow]:
        """``GET /images/json``: one entry per image, newest first."""
        images = sorted(self.store.load_images().values(), key=lambda i: i.pulled, reverse=True)
        in_use = self.images_in_use()
        rows = []
        for image in images:
            labels = parse_image_config(self.store.read_blob(image.id)).config.labels
            rows.append(
                ImageListRow(
                    id=image.id,
                    repo_tags=image.names,
                    repo_digests=image.repo_digests,
                    created=image.created,
                    size=image.size,
                    labels=dict(labels),
                    containers=int(image.id in in_use),
                )
            )
        return rows

    def history(self, name: str) -> list[HistoryRow]:
        """The image's build steps, newest first, with each layer's size."""
        image = self.get(name)
        config = parse_image_config(self.store.read_blob(image.id))
        sizes = iter(layer.size for layer in image.layers)
        rows = []
        for step in config.history:
            size = 0 if step.empty_layer else next(sizes, 0)
            rows.append(
                HistoryRow("<missing>", step.created or "", step.created_by, size, step.comment)
            )
        if rows:
            rows[-1] = replace(rows[-1], id=image.short_id, tags=image.names)
        return list(reversed(rows))

    def tag(self, source: str, target: str) -> str:
        """Give image ``source`` the name ``target``; returns the full name."""
        image = self.get(source)
        ref = parse_reference(target)
        if ref.digest:
            raise ConflictError(f"can't tag with a digest: {target}", hint="use NAME[:TAG]")
        with self.store.locked():
            self.store.add_image(image, ref.name, None)
        self.event("tag", image.id, ref.name)
        return ref.name

    def event(self, action: str, image_id: str, name: str) -> None:
        """Log an image event (:mod:`rootless.eventlog`)."""
        record_event(str(self.store.root), "image", action, image_id, {"name": name})

    def remove(self, names: list[str], *, force: bool = False) -> RemovedImage:
        """``rmi``: untag names; delete images left without names (or given by ID)."""
        untagged: list[str] = []
        deleted: list[str] = []
        with self.store.locked():
            images = self.store.load_images()
            named = {n: image.id for image in images.values() for n in image.names}
            in_use = self.images_in_use()
            for name in names:
                image = find_image(images, name, self.candidate_names(name))
                full = next(
                    (n for n in [name, *self.candidate_names(name)] if n in image.names), None
                )
                by_name = full is not None and len(image.names) > 1 and not force
                if by_name and full is not None:
                    images[image.id] = untag(image, full)
                    untagged.append(full)
                    continue
                if image.id in in_use:
                    if not force:
                        raise ConflictError(
                            f"image {image.short_id} is used by a container",
                            hint="remove the container first, or use rmi -f to untag it",
                        )
                    # docker: -f untags an image a container uses; its layers stay.
                    untagged += image.names
                    images[image.id] = replace(image, names=())
                    continue
                untagged += image.names
                del images[image.id]
                deleted.append(image.id)
            self.store.save_images(images)
            self.collect_garbage(images)
        for name in untagged:
            self.event("untag", named.get(name, ""), name)
        for image_id in deleted:
            self.event("delete", image_id, "")
        return RemovedImage(tuple(untagged), tuple(deleted))

    def prune(self, *, all_images: bool = False, filters: Sequence[str] = ()) -> list[str]:
        """Remove dangling images (with ``all_images``, every image no container uses);
        ``filters``: docker's until=, label=, label!= (and dangling=false for ``-a``)."""
        parsed = parse_filters(filters, IMAGE_PRUNE_KEYS)
        if parse_bool(parsed, "dangling") is False:
            all_images = True  # docker: --filter dangling=false is -a
        keep = prune_matcher(parsed)
        labels = "label" in parsed or "label!" in parsed
        with self.store.locked():
            images = self.store.load_images()
            in_use = self.images_in_use()
            doomed = [
                image.id for image in images.values()
                if image.id not in in_use and (all_images or not image.names)
                and (not parsed or keep(*self._prune_facts(image, labels)))
            ]  # fmt: skip
            for image_id in doomed:
                del images[image_id]
            self.store.save_images(images)
            self.collect_garbage(images)
        for image_id in doomed:
            self.event("delete", image_id, "")
        return doomed

    def _matcher(self, filters: FilterSet) -> Callable[[ImageFacts], bool]:
        def created_of(ref: str) -> float:
            return parse_rfc3339(self.get(ref).created) or 0.0

        now = datetime.datetime.now(datetime.UTC)
        return image_matcher(filters, created_of=created_of, now=now)

    def _prune_facts(self, image: ImageRecord, labels: bool) -> tuple[float, dict[str, str]]:
        facts = self._facts(image, "", labels=labels)
        return facts.created, dict(facts.labels)

    def _facts(self, image: ImageRecord, name: str, *, labels: bool) -> ImageFacts:
        """What ``--filter`` looks at in the row of ``image`` named ``name`` (its config's
        labels read only when ``labels``: a label filter was given)."""
        familiar = repository = ""
        if name and name != "<none>:<none>":
            ref = parse_reference(name)
            familiar = ref.familiar_name
            repository = familiar.rpartition("@")[0] if ref.digest else familiar
            repository = repository.rpartition(":")[0] if ref.tag else repository
        config = parse_image_config(self.store.read_blob(image.id)) if labels else None
        return ImageFacts(
            id=image.id,
            created=parse_rfc3339(image.created) or 0.0,
            labels=dict(config.config.labels) if config else {},
            dangling=not image.names,
            familiar=familiar,
            repository=repository,
        )

    def collect_garbage(self, images: dict[str, ImageRecord]) -> None:
        """Delete layer directories and blobs that no remaining image references."""
        chains = {layer.chain_id for image in images.values() for layer in image.layers}
        blobs = {layer.digest for image in images.values() for layer in image.layers}
        blobs |= {image.id for image in images.values()}
        blobs |= {image.manifest_digest for image in images.values()}
        jobs: Jobs = []
        if self.store.layers.is_dir():
            for path in self.store.layers.iterdir():
                if path.name.startswith(".tmp-") or f"sha256:{path.name}" not in chains:
                    jobs.append(RemoveJob(str(path)))
        if jobs:
            self.run_jobs(jobs)
        if self.store.blobs.is_dir():
            for blob in self.store.blobs.iterdir():
                if f"sha256:{blob.name}" not in blobs:
                    blob.unlink(missing_ok=True)

    def candidate_names(self, name: str) -> list[str]:
        """The full names a (short) reference may stand for; none for an ID."""
        try:
            return [ref.name for ref in candidates(name, self.search)]
        except UsageError:  # not a reference: it may still be an ID prefix
            return []
