"""Layer work that must happen inside the user namespace: unpacking and removing layers,
reading a container's r/w layer back (``rctl diff``, ``rctl commit``).

Files in layer directories belong to mapped IDs (uid N in an image is subuid base + N - 1 on
the host), so only a process inside the user's namespace, where it is uid 0, can create them
with the right owners or delete them. The engine writes a job list and runs
``python -m rootless.images.layerjob JOBFILE`` there (through ``uidmap``); this module reads
the jobs, does them in order and prints one JSON line per finished job on stdout.

A job that fails leaves its temporary directory behind, which the store ignores and the next
pull removes; the exit status is 1 and the error is reported like every rctl error
(``Error:`` and ``Hint:`` lines on stderr).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from rctlbase.errors import HostError, run_main
from rctlbase.errors import report as report_error
from rctlbase.run import run_program
from rctlbase.timeline import mark

# Run by hand, outside the namespace: the files it would make would have the wrong owners.
OUTSIDE = "the engine runs it through uidmap.enter; 'rctl unshare' opens that namespace"


@dataclass(frozen=True, slots=True)
class UnpackJob:
    """Unpack ``blob`` (a compressed layer) into ``dest`` (an empty directory)."""

    blob: str
    media_type: str
    dest: str
    diff_id: str
    whiteout_format: str  # "overlay" or "vfs"
    parent: str | None = None  # vfs: the parent layer's diff, copied first
    report: str = ""  # where the diff ID read goes, as JSON (``diff_id`` "": not checked)


@dataclass(frozen=True, slots=True)
class RemoveJob:
    """Remove a directory tree whose files belong to mapped IDs."""

    path: str


@dataclass(frozen=True, slots=True)
class CopyJob:
    """Copy a layer's tree into a container's root (vfs), keeping owners, modes and links."""

    source: str
    dest: str


@dataclass(frozen=True, slots=True)
class DiffJob:
    """A container's r/w layer: its changes as JSON into ``changes``, and with ``output``
    its layer tar there (:mod:`rootless.build.layerdiff`). ``vfs``: ``upper`` is a full
    copy of ``lowers[0]`` (if any) rather than an overlay upper directory over ``lowers``."""

    upper: str
    lowers: tuple[str, ...]
    vfs: bool
    changes: str
    output: str = ""
    skip: tuple[str, ...] = ()  # new paths left out: a build step's mount points


@dataclass(frozen=True, slots=True)
class ExportJob:
    """``COPY --from``: ``sources`` of the tree of ``lowers`` (top first, mounted on
    ``mountpoint`` when several) as a layer tar in ``output``, its checksum in ``checksum``
    (:mod:`rootless.build.export`)."""

    lowers: tuple[str, ...]
    mountpoint: str
    sources: tuple[str, ...]
    dest: str
    workdir: str
    chmod: int | None
    uid: int
    gid: int
    dest_is_dir: bool
    output: str
    checksum: str


Job = UnpackJob | RemoveJob | CopyJob | DiffJob | ExportJob
Jobs = list[Job]
JOB_TYPES: dict[str, type[Job]] = {
    cls.__name__: cls for cls in (UnpackJob, RemoveJob, CopyJob, DiffJob, ExportJob)
}


def encode_jobs(jobs: list[Job]) -> str:
    """The job file's JSON."""
    return json.dumps([{"op": type(job).__name__, **asdict(job)} for job in jobs])


def decode_jobs(text: str) -> list[Job]:
    """Parse a job file written by :func:`encode_jobs`."""
    jobs: list[Job] = []
    for raw in json.loads(text):
        jobs.append(JOB_TYPES[raw.pop("op")](**raw))
    return jobs


def run_unpack(job: UnpackJob) -> dict[str, object]:
    """Unpack one layer; returns what the engine records about it."""
    from rootless.images.gunzip import ThreadedGunzip  # noqa: PLC0415
    from rootless.images.manifest import Compression, layer_compression  # noqa: PLC0415
    from rootless.images.unpack import WhiteoutFormat, unpack_layer  # noqa: PLC0415

    dest = Path(job.dest)
    if job.parent:
        # vfs: a layer is a full copy of its parent with its own changes applied. cp -a keeps
        # owners, modes, hard links, device nodes and xattrs (shutil.copytree keeps none).
        run_program(["cp", "-a", "--reflink=auto", job.parent, str(dest)])
    else:
        dest.mkdir(exist_ok=True)
    compression = layer_compression(job.media_type)
    with open(job.blob, "rb") as fh:
        if compression is Compression.GZIP:
            # Inflate on a second core while this one parses and writes.
            with ThreadedGunzip(fh) as plain:
                result = unpack_layer(
                    plain,
                    dest,
                    whiteouts=WhiteoutFormat(job.whiteout_format),
                    expected_diff_id=job.diff_id or None,
                )
        else:
            result = unpack_layer(
                fh,
                dest,
                compression=compression,
                whiteouts=WhiteoutFormat(job.whiteout_format),
                expected_diff_id=job.diff_id or None,
            )
    if job.report:
        fd = os.open(job.report, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"diff_id": result.diff_id}, fh)
    return {"dest": job.dest, "entries": result.entries, "warnings": list(result.warnings)}


def run_diff(job: DiffJob) -> dict[str, object]:
    """List (and archive) a container's changes; the files are the user's, made owner-only."""
    from rootless.build.layerdiff import overlay_changes, vfs_changes  # noqa: PLC0415

    lowers = [Path(lower) for lower in job.lowers]
    with contextlib.ExitStack() as stack:
        out = None
        if job.output:
            fd = os.open(job.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            out = stack.enter_context(os.fdopen(fd, "wb"))
        if job.vfs:
            base = lowers[0] if lowers else None
            changes = vfs_changes(Path(job.upper), base, out, frozenset(job.skip))
        else:
            changes = overlay_changes(Path(job.upper), lowers, out, frozenset(job.skip))
    fd = os.open(job.changes, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump([[change.kind.value, change.path] for change in changes], fh)
    return {"changes": len(changes)}


def run_job(job: Job) -> dict[str, object]:
    """Do one job; what it did, for the job's line on stdout."""
    if isinstance(job, DiffJob):
        return run_diff(job)
    if isinstance(job, ExportJob):
        from rootless.build.export import run_export  # noqa: PLC0415

        return run_export(job)
    if isinstance(job, UnpackJob):
        return run_unpack(job)
    if isinstance(job, CopyJob):
        run_program(["cp", "-a", "--reflink=auto", f"{job.source}/.", job.dest])
        return {"copied": job.dest}
    shutil.rmtree(job.path, ignore_errors=True)
    return {"removed": job.path}


def main(argv: list[str]) -> int:
    """Entry point inside the user namespace."""
    if os.environ.get("RCTL_USERNS") != "1":
        report_error(HostError("layerjob: must run inside rctl's user namespace", hint=OUTSIDE))
        return 125
    return run_main(lambda: run_jobs(Path(argv[0])), error_code=1)


def run_jobs(path: Path) -> int:
    """Run the jobs of the file ``path``, one report line each on stdout."""
    for job in decode_jobs(path.read_text()):
        mark(f"layer job {type(job).__name__}")
        print(json.dumps(run_job(job)), flush=True)
    mark("layer jobs done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
