"""Pulls against the in-process fake registry (fakeregistry.py): images built in memory,
layer jobs run in the test process (the unit suite runs as root, as uid 0 in the user
namespace would), and a child process for what must be measured alone (peak RSS).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fakeregistry import FakeRegistry

from rootless.config import Settings
from rootless.images.layerjob import Jobs, run_job
from rootless.images.manifest import Platform
from rootless.images.pull import Puller, PullRequest
from rootless.images.store import ImageRecord, Store
from rootless.models import PullEvent

OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
PLATFORM = Platform("linux", "amd64")


@dataclass(frozen=True)
class Layer:
    """A layer blob as served, and the digest of its uncompressed tar."""

    blob: bytes
    diff_id: str
    media_type: str = OCI_GZIP


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_704_067_200
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_layer(files: dict[str, bytes]) -> Layer:
    plain = tar_of(files)
    return Layer(gzip.compress(plain, 1, mtime=0), sha256(plain))


def add_image(reg: FakeRegistry, repo: str, layers: list[Layer], tag: str = "latest") -> str:
    """Serve an image of ``layers`` (bottom first) as ``repo:tag``; its ID."""
    config = json.dumps(
        {
            "architecture": PLATFORM.architecture,
            "os": PLATFORM.os,
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        }
    ).encode()
    config_digest = reg.add_blob(config)
    descriptors = []
    for layer in layers:
        descriptors.append(
            {
                "mediaType": layer.media_type,
                "digest": reg.add_blob(layer.blob),
                "size": len(layer.blob),
            }
        )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config),
        },
        "layers": descriptors,
    }
    reg.add_manifest(repo, tag, json.dumps(manifest).encode())
    return config_digest


def run_jobs_here(jobs: Jobs) -> None:
    for job in jobs:
        run_job(job)


def puller(
    store: Store,
    events: Callable[[PullEvent], None] = lambda _e: None,
    run_jobs: Callable[[Jobs], None] = run_jobs_here,
) -> Puller:
    return Puller(store, Settings(), run_jobs, events, "overlay")


def pull(store: Store, name: str, **kw: object) -> ImageRecord:
    return puller(store, **kw).pull(PullRequest(name, PLATFORM))  # type: ignore[arg-type]


def peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM, of its own memory map only (getrusage's ru_maxrss
    keeps the forking parent's across execve: pytest's, hundreds of MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


def main(argv: list[str]) -> int:
    """``python pullkit.py STORE NAME``: pull, then print the image ID and the peak RSS."""
    record = pull(Store(Path(argv[0])), argv[1])
    print(json.dumps({"id": record.id, "maxrss_kib": peak_rss_kib()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
