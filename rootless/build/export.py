"""``COPY --from``: files of another stage's (or image's) tree as a layer tar, made inside
the user namespace where the image's files are readable with their owners.

The image's layers are mounted read-only as overlayfs merges them (or, for one layer or a
vfs tree, used as they are), and the sources are taken from there with the same rules as
from a build context (:mod:`rootless.build.sources`): nothing is reached through a link,
links are copied as links, new files belong to 0:0 unless ``--chown``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rctlbase import syscalls
from rctlbase.errors import HostError
from rootless.build import sources
from rootless.build.ignore import IgnoreRules

if TYPE_CHECKING:
    from rootless.images.layerjob import ExportJob

MS_RDONLY = 1


def run_export(job: ExportJob) -> dict[str, object]:
    """Write the layer of ``job`` and its checksum (JSON) to the job's files."""
    root = Path(job.lowers[0]) if len(job.lowers) == 1 else Path(job.mountpoint)
    if len(job.lowers) > 1:
        options = "lowerdir=" + ":".join(job.lowers) + ",userxattr"
        try:
            syscalls.mount("overlay", job.mountpoint, "overlay", MS_RDONLY, options)
        except OSError as exc:
            raise HostError(
                f"cannot mount the source image's layers: {exc.strerror}",
                hint="copying from another stage needs overlayfs in a user namespace (Linux 5.11 "
                "or newer)",
            ) from exc
    owner = sources.Owner(job.uid, job.gid)
    fd = os.open(job.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        entries = sources.plan_copy(
            root, list(job.sources), job.dest, job.workdir, IgnoreRules(), chmod=job.chmod,
            is_dir=lambda _path: job.dest_is_dir, owner=owner, out=out,
        )  # fmt: skip
    fd = os.open(job.checksum, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(sources.checksum(entries, owner), fh)
    return {"entries": len(entries)}
