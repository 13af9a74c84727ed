"""A build step's layer unpacked into the store without a user-namespace process of its own.

Storing a layer means hashing its tar and unpacking it into ``layers/FORMAT/CHAIN/diff``;
a process in the user namespace costs a Python start and the ID mapping, more than a small
layer's unpack. So a step's layer is unpacked in a process it needs anyway:

- RUN and ``COPY --from``: the job that writes the tar in the user namespace (a
  :class:`~rootless.images.layerjob.DiffJob` or ``ExportJob``) is followed, in the same
  process, by an :class:`~rootless.images.layerjob.UnpackJob` of that tar into a
  ``.tmp-staged-*`` directory of the store (:func:`stage_job`), which reports the diff ID it
  read;
- COPY and ADD from the context, whose entries are the user's own (owner 0:0 in the image,
  the user's ID on the host) and not vfs: unpacked here, by the building process
  (:func:`unpack_here`).

:func:`adopt` renames the staged tree into place once the engine has hashed the tar itself
and found the digest the unpack reported: the tree is then exactly the stored blob. A tree
that doesn't match, or that a concurrent pull's sweep of ``.tmp-*`` directories removed,
is not used: the store unpacks the blob as for any image (the slow path, still correct). A
tree left behind by a kill is such a ``.tmp-*`` directory, removed by the next unpack.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rctlbase.errors import RctlError
from rootless.images.archive import OCI_LAYER_TAR
from rootless.images.layerjob import UnpackJob
from rootless.images.store import ImageRecord, Store, chain_ids

STAGED_PREFIX = ".tmp-staged-"  # a .tmp-* directory: stale ones are swept like any unpack
MAX_REPORT = 4096


@dataclass(frozen=True, slots=True)
class StagedLayer:
    """A tree unpacked from a step's tar, and the diff ID its unpack read (None: unknown)."""

    tree: Path  # the layer directory to rename into place (its ``diff`` holds the files)
    diff_id: str | None


def stage_job(store: Store, tar: Path, parent: ImageRecord, report: Path) -> UnpackJob:
    """The job that unpacks ``tar`` (written by the job before it) over ``parent`` into a
    new staged directory, writing what it read to ``report``."""
    store.ensure()
    tree = Path(tempfile.mkdtemp(dir=store.layers, prefix=STAGED_PREFIX))
    vfs = store.layers.name == "vfs"
    below = store.layer_dir(parent.layers[-1].chain_id) / "diff" if parent.layers else None
    return UnpackJob(
        blob=str(tar),
        media_type=OCI_LAYER_TAR,
        dest=str(tree / "diff"),
        diff_id="",
        whiteout_format="vfs" if vfs else "overlay",
        parent=str(below) if vfs and below else None,
        report=str(report),
    )


def staged(job: UnpackJob) -> StagedLayer:
    """What ``job`` left (after it ran, or failed)."""
    diff_id = None
    try:
        with open(job.report, "rb") as fh:
            data = json.loads(fh.read(MAX_REPORT))
        if isinstance(data, dict) and isinstance(data.get("diff_id"), str):
            diff_id = data["diff_id"]
    except (OSError, ValueError):
        pass
    return StagedLayer(Path(job.dest).parent, diff_id)


def unpack_here(store: Store, tar: Path, digest: str, parent: ImageRecord | None) -> None:
    """Unpack a layer of the user's own files in this process (the fast path of COPY);
    nothing when it can't (other owners, vfs, whiteouts, xattrs that need the namespace):
    the store's unpack does it then."""
    from rootless.images.unpack import unpack_layer  # noqa: PLC0415 - builds only

    if store.layers.name == "vfs":
        return
    chain = chain_ids([*(layer.diff_id for layer in (parent.layers if parent else ())), digest])[-1]
    if store.has_layer(chain):
        return
    tree = store.layer_tmp_dir(chain)
    try:
        (tree / "diff").mkdir()
        with open(tar, "rb") as fh:
            unpack_layer(fh, tree / "diff", expected_diff_id=digest, as_caller=True)
    except (RctlError, OSError):
        shutil.rmtree(tree, ignore_errors=True)
        return
    store.commit_layer(chain, tree)


def adopt(
    store: Store, staged: StagedLayer | None, digest: str, parent: ImageRecord | None
) -> None:
    """Rename the staged tree into place as the layer of ``digest`` over ``parent``, if it
    is that layer's (its unpack read ``digest``) and the layer isn't stored yet. Call with
    the store locked."""
    if staged is None or not staged.tree.is_dir():
        return
    chain = chain_ids([*(layer.diff_id for layer in (parent.layers if parent else ())), digest])[-1]
    if staged.diff_id != digest or store.has_layer(chain):
        return  # left as a .tmp-* directory: the next unpack's sweep removes it
    os.replace(staged.tree, store.layer_dir(chain))
