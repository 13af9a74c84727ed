"""The build use cases the engine offers: ``rctl diff``, ``rctl commit``, ``rctl build``
and ``rctl builder prune``, over the image store and the container service.

:class:`BuildService` gives the builder (:mod:`rootless.build.builder`) its
:class:`~rootless.build.builder.BuildHost`: images made from a config and a layer tar, RUN
steps as containers of :class:`~rootless.containers.service.ContainerService` (labelled with
their build's PID and boot, so that a later build removes those of a build killed with -9),
layers read back with the diff job, ``COPY --from`` with the export job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rctlbase.errors import ConflictError, NotFoundError, RctlError, UsageError
from rctlbase.timeline import mark
from rootless.build.builder import BuildHost, ExportRequest
from rootless.build.staging import StagedLayer
from rootless.config import Paths
from rootless.containers.service import ContainerService
from rootless.images.layerjob import Jobs
from rootless.images.manifest import host_platform, parse_platform
from rootless.images.reference import parse_reference
from rootless.images.store import ImageRecord, Store
from rootless.models import BuildOptions, CommitOptions, ContainerChange, RunOptions


class BuildService:
    """Images from containers and Dockerfiles."""

    def __init__(
        self,
        store: Store,
        paths: Paths,
        containers: ContainerService,
        run_layer_jobs: Callable[[Jobs], None],
        store_loaded: Callable[[bytes, str, tuple[str, ...]], ImageRecord],
    ) -> None:
        self.store = store
        self.paths = paths
        self.containers = containers
        self.run_layer_jobs = run_layer_jobs
        self._store_loaded = store_loaded

    def diff(self, ref: str) -> list[ContainerChange]:
        """``rctl diff``: what the container changed over its image (A, C, D)."""
        from rootless.build.commit import layer_source, read_changes, scratch_dir  # noqa: PLC0415

        record = self.containers.store.get(ref)
        image = self.store.load_images().get(record.image_id)
        if image is None:
            raise NotFoundError(
                f"the image of container {record.name} is gone",
                hint="remove the container (rctl rm) and run it again",
            )
        source = layer_source(self.containers.store.load_launch(record.id), image, self.store)
        with scratch_dir(self.paths.ensure_runtime()) as scratch:
            changes = read_changes(source, scratch, self.run_layer_jobs, None)
        return [ContainerChange(kind.value, path) for kind, path in changes]

    def commit(self, options: CommitOptions) -> ImageRecord:
        """``rctl commit``: a new image of the container's image plus its r/w layer."""
        from rootless.build import commit as steps  # noqa: PLC0415 - start-up time

        record = self.containers.store.get(options.container)
        name = parse_reference(options.name).name if options.name else None
        paused = False
        if options.pause:
            try:
                self.containers.pause(record.id)
                paused = True
            except ConflictError:
                pass  # not running: nothing changes it meanwhile
        try:
            with self.store.locked():
                image = self.store.load_images().get(record.image_id)
                if image is None:
                    raise NotFoundError(
                        f"the image of container {record.name} is gone",
                        hint="remove the container (rctl rm) and run it again",
                    )
                source = steps.layer_source(
                    self.containers.store.load_launch(record.id), image, self.store
                )
                tar = steps.layer_tmp(self.store)
                try:
                    with steps.scratch_dir(self.paths.ensure_runtime()) as scratch:
                        steps.read_changes(source, scratch, self.run_layer_jobs, tar)
                    digest, size = steps.store_layer(self.store, tar)
                finally:
                    tar.unlink(missing_ok=True)
        finally:
            if paused:
                with contextlib.suppress(ConflictError):
                    self.containers.unpause(record.id)
        with self.store.locked():
            parent = json.loads(self.store.read_blob(image.id))
            config = steps.plan_commit_config(
                parent,
                diff_id=digest,
                changes=options.changes,
                created=_now_text(),
                created_by=steps.created_by(record),
                message=options.message,
                author=options.author,
            )
            manifest = steps.write_image(self.store, config, image.layers, (digest, size))
            return self._store_loaded(manifest, steps.MANIFEST_TYPE, (name,) if name else ())

    def build(
        self,
        options: BuildOptions,
        say: Callable[[str], None],
        stdio: tuple[int, int, int],
    ) -> ImageRecord:
        """``rctl build``: the image of a Dockerfile in a context directory; ``say`` gets
        the step lines, ``stdio`` is what RUN steps read and write."""
        from rootless.build.builder import Builder  # noqa: PLC0415 - start-up time
        from rootless.build.dockerfile import parse_dockerfile  # noqa: PLC0415
        from rootless.build.ignore import parse_ignore  # noqa: PLC0415
        from rootless.build.inputs import (  # noqa: PLC0415
            find_dockerfile,
            ignore_file,
            read_dockerfile_text,
        )

        if options.platform:
            check_platform(options.platform)
        context = Path(options.context)
        if not context.is_dir():
            raise UsageError(
                f"build context {options.context!r} is not a directory",
                hint="give the directory holding the files the Dockerfile copies",
            )
        path = find_dockerfile(context, options.dockerfile)
        parsed = parse_dockerfile(read_dockerfile_text(path), path.name)
        ignore = ignore_file(context, path)
        rules = parse_ignore(read_dockerfile_text(ignore), ignore.name) if ignore else None
        names = [parse_reference(tag).name for tag in options.tags]
        for arg in options.build_args:
            if "=" not in arg:
                raise UsageError(f"--build-arg {arg!r}: no value", hint="--build-arg NAME=VALUE")
        self._remove_orphan_steps()
        builder = Builder(self._build_host(stdio), options, parsed, context,
                          rules or parse_ignore(""), say)  # fmt: skip
        image = builder.build()
        with self.store.locked():
            for name in names:
                image = self.store.add_image(image, name, None)
        return image

    def ensure_built(
        self, options: BuildOptions, say: Callable[[str], None], stdio: tuple[int, int, int]
    ) -> ImageRecord | None:
        """Build ``options`` (one tag) unless its image exists with the same context digest
        (:data:`CONTEXT_LABEL`, over the context's files as COPY sees them, the Dockerfile,
        the arguments and the target); the new image, or None when it was up to date."""
        digest = self.context_digest(options)
        (name,) = options.tags
        try:
            current = self.containers.resolve_image(name, "never")
        except NotFoundError:
            current = None
        if current is not None:
            config = json.loads(self.store.read_blob(current.id)).get("config") or {}
            if (config.get("Labels") or {}).get(CONTEXT_LABEL) == digest:
                return None
        labels = (*options.labels, f"{CONTEXT_LABEL}={digest}")
        return self.build(dataclasses.replace(options, labels=labels), say, stdio)

    def context_digest(self, options: BuildOptions) -> str:
        """What decides whether a definition's image is rebuilt (see :meth:`ensure_built`)."""
        import hashlib  # noqa: PLC0415

        from rootless.build import sources  # noqa: PLC0415
        from rootless.build.ignore import parse_ignore  # noqa: PLC0415
        from rootless.build.inputs import (  # noqa: PLC0415
            find_dockerfile,
            ignore_file,
            read_dockerfile_text,
        )

        context = Path(options.context)
        path = find_dockerfile(context, options.dockerfile)
        ignore = ignore_file(context, path)
        rules = parse_ignore(read_dockerfile_text(ignore), ignore.name) if ignore else None
        entries = sources.plan_copy(
            context, ["."], "/", "/", rules or parse_ignore(""), chmod=None,
            is_dir=lambda _path: True,
        )  # fmt: skip
        digest = hashlib.sha256(sources.checksum(entries, sources.Owner()).encode())
        for part in (read_dockerfile_text(path), *options.build_args, options.target or ""):
            digest.update(b"\0" + part.encode())
        return "sha256:" + digest.hexdigest()

    def _remove_orphan_steps(self) -> None:
        """Remove the step containers of builds whose process is gone (killed with -9: it
        could not remove them itself)."""
        boot = _boot_id()
        for record in self.containers.store.all():
            owner = record.labels.get(BUILD_LABEL)
            if owner is None:
                continue
            pid, _, owner_boot = owner.partition(":")
            if owner_boot == boot and pid.isdigit() and Path(f"/proc/{pid}").exists():
                continue  # a build running now
            with contextlib.suppress(RctlError):
                self.containers.remove(record.id, force=True, volumes=True)

    def prune(self) -> int:
        """``rctl builder prune``: forget the build cache (its images become dangling)."""
        from rootless.build.cache import BuildCache  # noqa: PLC0415

        return BuildCache(self.paths.data / "build-cache.json", self.store.locked).clear()

    def _build_host(self, stdio: tuple[int, int, int]) -> BuildHost:
        from rootless.build import commit as steps  # noqa: PLC0415
        from rootless.build.builder import BuildHost  # noqa: PLC0415
        from rootless.build.cache import BuildCache  # noqa: PLC0415
        from rootless.build.inputs import image_has_dir  # noqa: PLC0415

        def make_image(
            parent: ImageRecord | None, doc: dict[str, Any], tar: Path | None,
            staged: StagedLayer | None,
        ) -> ImageRecord:  # fmt: skip
            from rootless.build import staging  # noqa: PLC0415

            with self.store.locked():
                layer = steps.store_layer(self.store, tar) if tar is not None else None
                if layer is not None:
                    if staged is not None:
                        staging.adopt(self.store, staged, layer[0], parent)
                    else:
                        blob = self.store.blob_path(layer[0])
                        staging.unpack_here(self.store, blob, layer[0], parent)
                    mark("build layer unpacked")
                    rootfs = doc.setdefault("rootfs", {"type": "layers"})
                    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), layer[0]]
                base = parent.layers if parent else ()
                manifest = steps.write_image(self.store, doc, base, layer)
                mark("build image written")
                made = self._store_loaded(manifest, steps.MANIFEST_TYPE, ())
                mark("build image stored")
                return made

        def run_step(options: RunOptions) -> tuple[str, int]:
            mine = f"{BUILD_LABEL}={os.getpid()}:{_boot_id()}"
            options = dataclasses.replace(options, labels=(*options.labels, mine))
            record = self.containers.create(options)
            try:
                self.containers.start(record.id, stdio=stdio)
                code = self.containers.wait(record.id)
            except BaseException:
                with contextlib.suppress(RctlError):
                    self.containers.remove(record.id, force=True, volumes=True)
                raise
            return record.id, code

        def remove_container(container: str) -> None:
            with contextlib.suppress(NotFoundError):
                self.containers.remove(container, force=True, volumes=True)

        return BuildHost(
            export=self._export,
            cache_mounts=self.paths.data / "build-cache-mounts",
            resolve_image=self.containers.resolve_image,
            image_config=lambda image: json.loads(self.store.read_blob(image.id)),
            make_image=make_image,
            run_step=run_step,
            commit_layer=self._commit_layer,
            remove_container=remove_container,
            has_dir=lambda image, path: image_has_dir(self.containers.ctx.image_diffs(image), path),
            layer_tmp=lambda: steps.layer_tmp(self.store),
            cache=BuildCache(self.paths.data / "build-cache.json", self.store.locked),
            exists=lambda image_id: self.store.load_images().get(image_id),
            architecture=host_platform().architecture,
            user_files=self.containers.ctx.image_user_files,
            digests_file=self.paths.data / "build-digests.json",
        )

    def _commit_layer(self, container: str, tar: Path, skip: tuple[str, ...]) -> StagedLayer:
        """A RUN step's layer tar, and its tree unpacked by the same job."""
        from rootless.build import commit as steps  # noqa: PLC0415
        from rootless.build import staging  # noqa: PLC0415

        record = self.containers.store.get(container)
        image = self.store.load_images()[record.image_id]
        source = steps.layer_source(self.containers.store.load_launch(record.id), image, self.store)
        # Locked: a concurrent unpack's sweep of .tmp-* directories would take the staged
        # tree from under the job.
        with steps.scratch_dir(self.paths.ensure_runtime()) as scratch, self.store.locked():
            unpack = staging.stage_job(self.store, tar, image, scratch / "staged.json")
            try:
                steps.read_changes(
                    source, scratch, lambda jobs: self.run_layer_jobs([*jobs, unpack]), tar, skip
                )
            finally:
                done = staging.staged(unpack)
        return done

    def _export(
        self, image: ImageRecord, request: ExportRequest, tar: Path, parent: ImageRecord
    ) -> StagedLayer:
        """COPY --from's layer tar, and its tree unpacked by the same job."""
        from rootless.build import commit as steps  # noqa: PLC0415
        from rootless.build import staging  # noqa: PLC0415
        from rootless.images.layerjob import ExportJob  # noqa: PLC0415

        lowers = tuple(str(d) for d in self.containers.ctx.image_diffs(image))
        with steps.scratch_dir(self.paths.ensure_runtime()) as scratch, self.store.locked():
            mountpoint = scratch / "root"
            mountpoint.mkdir()
            unpack = staging.stage_job(self.store, tar, parent, scratch / "staged.json")
            try:
                self.run_layer_jobs(
                    [
                        ExportJob(
                            lowers=lowers,
                            mountpoint=str(mountpoint), sources=request.paths,
                            dest=request.dest, workdir=request.workdir, chmod=request.chmod,
                            uid=request.owner.uid, gid=request.owner.gid,
                            dest_is_dir=request.dest_is_dir, output=str(tar),
                            checksum=str(scratch / "checksum.json"),
                        ),
                        unpack,
                    ]
                )  # fmt: skip
            finally:
                mountpoint.rmdir()
                done = staging.staged(unpack)
        return done


def check_platform(text: str) -> None:
    """``--platform``: the host's own, or refused in one line (rctl runs no emulator)."""
    wanted, host = parse_platform(text), host_platform()
    same_variant = wanted.variant in (None, host.variant) or host.architecture == "amd64"
    if (wanted.os, wanted.architecture) != (host.os, host.architecture) or not same_variant:
        raise UsageError(
            f"--platform {text}: rctl builds only for this host's platform, {host}",
            hint=f"leave --platform out (or give {host}); build on a {wanted} machine instead",
        )


BUILD_LABEL = "io.rctl.build.step"  # on a build step's container: PID:BOOT of its build
CONTEXT_LABEL = "io.rctl.build.context"  # a definition's built image: its context digest


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _now_text() -> str:
    import datetime  # noqa: PLC0415

    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
