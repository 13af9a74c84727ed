"""Work on volume data that only uid 0 of the user's namespace can do.

``python -I -m rootless.volumes.userjob JSON`` runs inside the user namespace (the engine's
:meth:`~rootless.engine.Engine.run_volume_jobs`), where the container's IDs are the
namespace's: uid 33 in a container is uid 33 here (subuid base + 32 on the host). Jobs:

- ``chown``: ``:U``, give a source to the container's user, recursively, links not followed;
- ``copyup``: docker's copy-up, the image's files at a path into an *empty* volume (the
  layers are merged top first: overlay whiteouts hide lower entries, opaque directories
  stop the descent), keeping owners, modes and times (not xattrs or hard links). Links
  on the way to the path are followed in the image's root; links below it are copied as
  links, and only regular files (by lstat) are read. For a
  ``--userns keep-id`` container, whose user namespace is nested in this one, the owners
  are moved through its maps (``uid_map``/``gid_map``: nested ID, ID here, count), so
  that the image's root files are root's in the container, not the user's;
- ``remove``: delete a volume's directory, whose files may belong to mapped IDs.

A failure is reported like every rctl error (``Error:`` and ``Hint:`` lines on stderr) and
exits 1.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rctlbase.errors import ExternalError, HostError, RctlError, run_main
from rctlbase.errors import report as report_error
from rctlbase.run import run_program
from rootless.containers.lookup import Layers, is_opaque, is_whiteout

# Run by hand, outside the namespace: the files it would make would have the wrong owners.
OUTSIDE = "the engine runs it through uidmap.enter; 'rctl unshare' opens that namespace"

IDTriples = tuple[tuple[int, int, int], ...]  # (ID inside, ID here, count)


@dataclass(frozen=True, slots=True)
class VolumeJob:
    """One job: ``op`` is chown (``path`` to ``uid:gid``), copyup (``path`` of the image,
    from ``layers`` top first, into ``dest``; owners through ``uid_map``/``gid_map`` when
    given) or remove (``path``)."""

    op: str
    path: str
    uid: int = 0
    gid: int = 0
    layers: tuple[str, ...] = ()
    dest: str = ""
    uid_map: IDTriples = ()
    gid_map: IDTriples = ()


def map_id(triples: IDTriples, inside: int) -> int:
    """The ID here that a nested namespace's ``inside`` is (unchanged without maps or
    when the maps don't cover it: it then shows as the overflow ID there)."""
    for start, here, count in triples:
        if start <= inside < start + count:
            return here + inside - start
    return inside


def encode_jobs(jobs: Sequence[VolumeJob]) -> str:
    """The jobs as the JSON argument of this module."""
    return json.dumps([asdict(job) for job in jobs])


def chown_job(path: str, uid: int, gid: int) -> dict[str, Any]:
    """``:U``: ``chown -R`` without following links (``-P`` is chown -R's default)."""
    run_program(["chown", "-R", "-h", f"{uid}:{gid}", path])
    return {"chowned": path}


def _lower_dirs(sources: list[str], name: str) -> list[str]:
    """The directories ``name`` is in the merged view: from the top one down to a whiteout,
    a non-directory or an opaque directory."""
    found: list[str] = []
    for source in sources:
        path = os.path.join(source, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            break
        found.append(path)
        if is_opaque(Path(path)):
            break
    return found


def _copy_meta(st: os.stat_result, target: Path, maps: tuple[IDTriples, IDTriples]) -> None:
    uid, gid = map_id(maps[0], st.st_uid), map_id(maps[1], st.st_gid)
    os.chown(target, uid, gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _merge(sources: list[str], dest: Path, maps: tuple[IDTriples, IDTriples]) -> int:
    """Copy the merged view of ``sources`` (top first) into the directory ``dest``."""
    seen: set[str] = set()
    copied = 0
    for index, source in enumerate(sources):
        for entry in sorted(os.scandir(source), key=lambda e: e.name):
            if entry.name in seen:
                continue
            seen.add(entry.name)
            st = entry.stat(follow_symlinks=False)
            target = dest / entry.name
            if is_whiteout(st):
                continue
            if stat.S_ISDIR(st.st_mode):
                target.mkdir()
                below = (
                    []
                    if is_opaque(Path(entry.path))
                    else _lower_dirs(sources[index + 1 :], entry.name)
                )
                copied += _merge([entry.path, *below], target, maps)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry.path), target)
            elif stat.S_ISREG(st.st_mode):
                shutil.copyfile(entry.path, target, follow_symlinks=False)
            else:
                continue  # devices, fifos, sockets: not data a volume needs
            _copy_meta(st, target, maps)
            copied += 1
    return copied


def copyup_job(
    layers: list[str], path: str, dest: str, maps: tuple[IDTriples, IDTriples] = ((), ())
) -> dict[str, Any]:
    """Fill the empty volume ``dest`` from ``path`` in the image (``layers``: diffs, top first).

    Nothing happens when the volume has files or the image has no directory there. The
    owners go through ``maps`` (uid, gid triples) when the container's namespace is nested.
    """
    target = Path(dest)
    if any(target.iterdir()):
        return {"copied": 0, "dest": dest, "skipped": "not empty"}
    sources = [layer.rstrip("/") for layer in layers]
    # The volume is mounted where the path leads in the container's root (its links
    # followed there, as crun does): the same place in the image, links resolved in the
    # image's root, never on the host. From there on, nothing is followed.
    found = Layers([Path(s) for s in sources]).resolve(PurePosixPath("/", path))
    if found is None or not stat.S_ISDIR(found[0].st_mode):
        return {"copied": 0, "dest": dest, "skipped": "not in the image"}
    for part in found[1].parts[1:]:
        sources = _lower_dirs(sources, part)
        if not sources:
            return {"copied": 0, "dest": dest, "skipped": "not in the image"}
    copied = _merge(sources, target, maps)
    # The volume's root takes the directory's owner.
    _copy_meta(os.lstat(sources[0]), target, maps)
    return {"copied": copied, "dest": dest}


def remove_job(path: str) -> dict[str, Any]:
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        raise RctlError(f"could not remove {path}", hint="see what holds it: lsof +D PATH")
    return {"removed": path}


def run_job(job: VolumeJob) -> dict[str, Any]:
    """Do one job (its ``op`` picks which)."""
    if job.op == "chown":
        return chown_job(job.path, job.uid, job.gid)
    if job.op == "copyup":
        return copyup_job(list(job.layers), job.path, job.dest, (job.uid_map, job.gid_map))
    if job.op == "remove":
        return remove_job(job.path)
    raise ValueError(f"unknown volume job {job.op!r}")


def main(argv: list[str]) -> int:
    """Entry point inside the user namespace: ``argv[0]`` is the JSON list of jobs."""
    if os.environ.get("RCTL_USERNS") != "1":
        report_error(HostError("userjob: must run inside rctl's user namespace", hint=OUTSIDE))
        return 125
    return run_main(lambda: run_jobs(argv[0]), error_code=1)


def run_jobs(text: str) -> int:
    """Run the JSON list of jobs ``text``, one report line each on stdout."""
    for raw in json.loads(text):
        triples = {key: tuple(tuple(t) for t in raw.get(key, ())) for key in ("uid_map", "gid_map")}
        job = VolumeJob(**{**raw, "layers": tuple(raw.get("layers", ())), **triples})
        try:
            report = run_job(job)
        except (RctlError, OSError) as exc:
            said = exc.message if isinstance(exc, RctlError) else str(exc)
            hint = exc.hint if isinstance(exc, RctlError) else None
            raise ExternalError(
                f"volume {job.op} of {job.path} failed: {said}",
                hint=hint or "check the volume's directory and the space left on its filesystem",
            ) from exc
        print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
