"""Write rctl's test container images as OCI image layouts, one directory per image.

The test host's registry is seeded from these layouts (``seed.sh`` pushes them with
``skopeo copy oci:OUT/NAME:latest docker://127.0.0.1:5000/test/NAME:latest``); rctl's
registry pulls and layer unpacking are then tested against them:

- ``busybox``: one layer, a static busybox with applet symlinks and minimal /etc.
- ``layered``: busybox plus three layers exercising whiteouts, an opaque directory, hard
  links, symlinks, set-uid and ownership; ``EXPECTED_LAYERED`` is the merged /data tree.
- ``httpd``: busybox plus a page, served by ``busybox httpd`` on port 80.
- ``debian``: one layer holding a debootstrap minbase tree (thousands of files).
- ``big``: busybox plus a layer of 200 MiB of incompressible data, for large-blob pulls.
- ``multiarch``: an image index with linux/amd64 and linux/arm64/v8 images.

It is standard library only on purpose: it runs at build time inside a minimal Debian
chroot with nothing but python3, and no container tool writes the layouts, so the fixtures
are exactly what this file says, byte for byte. Output is reproducible (apart from `big`'s
random data): fixed timestamps, sorted entries, numeric owners, gzip headers without names
or times.
"""

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

# The merged /data tree of `layered`: path -> (type, mode, uid, gid, content or target).
# Types: "file" (content), "dir", "symlink" (target), "hardlink" (the path it shares an
# inode with; mode and owner are that inode's). Symlink modes are 0o777 as tar stores them.
EXPECTED_LAYERED: dict[str, tuple[str, int, int, int, str]] = {
    "/data": ("dir", 0o755, 0, 0, ""),
    "/data/changed.txt": ("file", 0o644, 0, 0, "v3\n"),
    "/data/hard-a": ("file", 0o644, 0, 0, "hardlink\n"),
    "/data/hard-b": ("hardlink", 0o644, 0, 0, "/data/hard-a"),
    "/data/keep.txt": ("file", 0o644, 0, 0, "keep\n"),
    "/data/layer4.txt": ("file", 0o644, 0, 0, "4\n"),
    "/data/link-abs": ("symlink", 0o777, 0, 0, "/data/keep.txt"),
    "/data/link-rel": ("symlink", 0o777, 0, 0, "keep.txt"),
    "/data/owned-1000": ("file", 0o640, 1000, 1000, "owned by 1000\n"),
    "/data/owned-65534": ("file", 0o600, 65534, 65534, "owned by nobody\n"),
    "/data/private": ("dir", 0o700, 1000, 1000, ""),
    "/data/replaced": ("dir", 0o755, 0, 0, ""),
    "/data/replaced/new": ("file", 0o644, 0, 0, "new\n"),
    "/data/setuid-bin": ("file", 0o4755, 0, 0, "#!/bin/sh\necho suid\n"),
}

CREATED = "2024-01-01T00:00:00Z"
MTIME = 1704067200  # CREATED as a Unix time
CHUNK = 1 << 20
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
# fmt: off
APPLETS = (
    "sh", "ls", "cat", "echo", "true", "false", "sleep", "id", "httpd", "wget", "nc", "ps",
    "mkdir", "rm", "cp", "mv", "env", "stat", "ln", "chmod", "chown", "touch", "head", "tail",
    "grep", "sed", "hostname", "mount", "umount", "ip", "ping", "kill", "top", "vi", "dd",
    "sync", "date", "uname", "whoami", "seq", "wc", "sort", "tr", "cut", "yes", "printf",
    "test", "[",
)
BUSYBOX_DIRS = ("/bin", "/dev", "/etc", "/home", "/proc", "/root", "/sbin", "/sys", "/usr",
                "/usr/bin", "/var")
# fmt: on
BIG_SIZE = 200 * CHUNK
SKIP_CONTENTS = ("dev", "proc", "run", "sys")  # top-level directories kept empty in `debian`

Json = dict[str, Any]
Kind = Literal["file", "dir", "symlink", "hardlink"]
TAR_TYPES: dict[Kind, bytes] = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
}


@dataclass(frozen=True)
class RandomBytes:
    """File content of `size` bytes from os.urandom, generated while the layer is written."""

    size: int


Content = bytes | Path | RandomBytes  # literal bytes, a host file streamed in, or random


@dataclass(frozen=True)
class Entry:
    """One tar member; `path` is absolute inside the image, `target` is a link's target."""

    path: str
    kind: Kind = "file"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    content: Content = b""
    target: str = ""


@dataclass(frozen=True)
class Layer:
    descriptor: Json  # of the gzip blob
    diff_id: str  # sha256 of the uncompressed tar
    created_by: str


def reg(path: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, "file", mode, uid, gid, data)


def dirent(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, "dir", mode, uid, gid)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, "symlink", 0o777, target=target)


class RandomStream(io.BytesIO):
    """A read-only stream of `size` random bytes; tarfile reads it CHUNK bytes at a time."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._left = size

    def read(self, size: int | None = -1, /) -> bytes:
        n = self._left if size is None or size < 0 else min(size, self._left)
        self._left -= n
        return os.urandom(n)


class HashingWriter:
    """Writes through to a file while counting and hashing the bytes."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def dump(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


@contextlib.contextmanager
def opened(content: Content) -> Iterator[tuple[int, IO[bytes]]]:
    """A file entry's size and a stream of its bytes."""
    if isinstance(content, Path):
        with content.open("rb") as f:
            yield os.fstat(f.fileno()).st_size, f
    elif isinstance(content, RandomBytes):
        yield content.size, RandomStream(content.size)
    else:
        yield len(content), io.BytesIO(content)


def add_entries(tar: tarfile.TarFile, entries: Iterable[Entry]) -> None:
    """Append entries in the given order with fixed mtime, numeric owners and no names."""
    written: set[str] = set()
    for e in entries:
        info = tarfile.TarInfo(e.path.lstrip("/"))
        info.type = TAR_TYPES[e.kind]
        info.mode, info.uid, info.gid = e.mode, e.uid, e.gid
        info.uname = info.gname = ""
        info.mtime = MTIME
        if e.kind == "hardlink":
            if e.target not in written:
                raise ValueError(f"hard link {e.path} precedes its target {e.target}")
            info.linkname = e.target.lstrip("/")
        elif e.kind == "symlink":
            info.linkname = e.target
        if e.kind == "file":
            with opened(e.content) as (size, stream):
                info.size = size
                tar.addfile(info, stream)
        else:
            tar.addfile(info)
        written.add(e.path)


class Layout:
    """An OCI image layout directory being written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        if root.exists():
            shutil.rmtree(root)
        self.blobs.mkdir(parents=True)
        (root / "oci-layout").write_bytes(dump({"imageLayoutVersion": "1.0.0"}))

    def put_blob(self, media_type: str, produce: Callable[[HashingWriter], object]) -> Json:
        """Stream a blob into place through `produce`; return its descriptor."""
        fd, tmp = tempfile.mkstemp(dir=self.blobs, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as raw:
                sink = HashingWriter(raw)
                produce(sink)
            os.chmod(tmp, 0o644)
            digest = sink.sha.hexdigest()
            os.replace(tmp, self.blobs / digest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": sink.size}

    def put_json(self, media_type: str, obj: Json) -> Json:
        data = dump(obj)
        return self.put_blob(media_type, lambda sink: sink.write(data))

    def add_layer(self, entries: Iterable[Entry], created_by: str, level: int = 6) -> Layer:
        """Write entries as a tar to a temp file, then gzip it into a blob, hashing both."""
        plain = hashlib.sha256()
        with tempfile.TemporaryFile(dir=self.blobs) as tmp:
            with tarfile.TarFile(
                fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK
            ) as tar:
                add_entries(tar, entries)
            tmp.seek(0)

            def compress(sink: HashingWriter) -> None:
                with gzip.GzipFile(
                    filename="", mode="wb", compresslevel=level, fileobj=sink, mtime=0
                ) as gz:
                    while chunk := tmp.read(CHUNK):
                        plain.update(chunk)
                        gz.write(chunk)

            descriptor = self.put_blob(MT_LAYER, compress)
        return Layer(descriptor, f"sha256:{plain.hexdigest()}", created_by)

    def put_image(
        self, layers: list[Layer], config: Json, arch: str = "amd64", variant: str = ""
    ) -> Json:
        """Write an image's config and manifest; return the manifest's descriptor."""
        platform = {"os": "linux", "architecture": arch} | ({"variant": variant} if variant else {})
        image = platform | {
            "created": CREATED,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created": CREATED, "created_by": layer.created_by} for layer in layers],
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": self.put_json(MT_CONFIG, image),
            "layers": [layer.descriptor for layer in layers],
        }
        return self.put_json(MT_MANIFEST, manifest) | {"platform": platform}

    def put_index(self, manifests: list[Json]) -> Json:
        return self.put_json(
            MT_INDEX, {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
        )

    def tag_latest(self, descriptor: Json) -> None:
        """Write index.json naming `descriptor` "latest"."""
        tagged = descriptor | {"annotations": {REF_NAME: "latest"}}
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [tagged]}
        (self.root / "index.json").write_bytes(dump(index))


def busybox_layer(out: Layout, binary: Path) -> Layer:
    entries = [
        *(dirent(d) for d in BUSYBOX_DIRS),
        dirent("/tmp", 0o1777),
        Entry("/bin/busybox", mode=0o755, content=binary),
        *(symlink(f"/bin/{applet}", "busybox") for applet in APPLETS),
        reg(
            "/etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        reg("/etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
    ]
    return out.add_layer(
        sorted(entries, key=lambda e: e.path),
        "busybox /bin/busybox, applet links in /bin, /etc/passwd, /etc/group",
    )


def sh_config(**extra: Any) -> Json:
    return {"Cmd": ["sh"], "Env": [PATH_ENV]} | extra


def layered_layers() -> dict[str, list[Entry]]:
    """Layers 2-4 of `layered` (layer 1 is busybox's) by their history text."""
    return {
        "/data: files, hard link, symlinks, set-uid, owners": [
            dirent("/data"),
            reg("/data/keep.txt", b"keep\n"),
            reg("/data/delete-me.txt", b"gone\n"),
            reg("/data/changed.txt", b"v1\n"),
            dirent("/data/replaced"),
            reg("/data/replaced/old1", b"old1\n"),
            reg("/data/replaced/old2", b"old2\n"),
            reg("/data/hard-a", b"hardlink\n"),
            Entry("/data/hard-b", "hardlink", target="/data/hard-a"),
            symlink("/data/link-rel", "keep.txt"),
            symlink("/data/link-abs", "/data/keep.txt"),
            reg("/data/setuid-bin", b"#!/bin/sh\necho suid\n", 0o4755),
            reg("/data/owned-1000", b"owned by 1000\n", 0o640, 1000, 1000),
            reg("/data/owned-65534", b"owned by nobody\n", 0o600, 65534, 65534),
            dirent("/data/private", 0o700, 1000, 1000),
        ],
        "whiteout delete-me.txt, opaque /data/replaced, changed.txt v2": [
            dirent("/data"),
            reg(f"/data/{WHITEOUT}delete-me.txt"),
            dirent("/data/replaced"),
            reg(f"/data/replaced/{OPAQUE}"),
            reg("/data/replaced/new", b"new\n"),
            reg("/data/changed.txt", b"v2\n"),
        ],
        "changed.txt v3, layer4.txt, /etc/motd": [
            dirent("/data"),
            reg("/data/changed.txt", b"v3\n"),
            reg("/data/layer4.txt", b"4\n"),
            dirent("/etc"),
            reg("/etc/motd", b"layered\n"),
        ],
    }


def merge_data(layers: list[list[Entry]]) -> dict[str, tuple[str, int, int, int, str]]:
    """The /data tree that applying `layers` in order gives, as in EXPECTED_LAYERED."""
    tree: dict[str, tuple[str, int, int, int, str]] = {}
    for entries in layers:
        for e in entries:  # whiteouts hide lower layers only, so apply them first
            parent, _, base = e.path.rpartition("/")
            if base.startswith(WHITEOUT):
                gone = parent if base == OPAQUE else f"{parent}/{base[len(WHITEOUT) :]}"
                tree = {
                    p: v
                    for p, v in tree.items()
                    if not p.startswith(f"{gone}/") and (base == OPAQUE or p != gone)
                }
        for e in entries:
            base = e.path.rpartition("/")[2]
            if e.path.startswith("/data") and not base.startswith(WHITEOUT):
                value = e.content.decode() if isinstance(e.content, bytes) else ""
                tree[e.path] = (e.kind, e.mode, e.uid, e.gid, e.target or value)
    return tree


def walk_rootfs(root: Path) -> Iterator[Entry]:
    """Entries for a directory tree, sorted per directory, symlinks not followed.

    Hard links point at the first path seen for the inode; sockets, devices and fifos
    are skipped, as are the contents (not the directories) of /dev /proc /run /sys.
    """
    first: dict[tuple[int, int], str] = {}

    def visit(host_dir: str, image_dir: str) -> Iterator[Entry]:
        with os.scandir(host_dir) as it:
            children = sorted(it, key=lambda d: d.name)
        for child in children:
            st = child.stat(follow_symlinks=False)
            path = f"{image_dir}/{child.name}"
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                yield dirent(path, mode, st.st_uid, st.st_gid)
                if not (image_dir == "" and child.name in SKIP_CONTENTS):
                    yield from visit(child.path, path)
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(child.path)
                yield Entry(path, "symlink", mode, st.st_uid, st.st_gid, target=target)
            elif stat.S_ISREG(st.st_mode):
                inode = (st.st_dev, st.st_ino)
                if inode in first:
                    yield Entry(path, "hardlink", mode, st.st_uid, st.st_gid, target=first[inode])
                    continue
                if st.st_nlink > 1:
                    first[inode] = path
                yield Entry(path, "file", mode, st.st_uid, st.st_gid, Path(child.path))

    yield from visit(str(root), "")


Built = tuple[Json, list[Layer]]  # the descriptor index.json tags, and all layers written


def build_busybox(out: Layout, args: argparse.Namespace) -> Built:
    layers = [busybox_layer(out, args.busybox)]
    return out.put_image(layers, sh_config()), layers


def build_layered(out: Layout, args: argparse.Namespace) -> Built:
    spec = layered_layers()
    merged = merge_data(list(spec.values()))
    if merged != EXPECTED_LAYERED:
        raise ValueError(f"layered: layers merge to {merged}, not EXPECTED_LAYERED")
    layers = [busybox_layer(out, args.busybox)]
    layers += [
        out.add_layer(sorted(entries, key=lambda e: e.path), created_by)
        for created_by, entries in spec.items()
    ]
    return out.put_image(layers, sh_config(Labels={"rctl.test": "layered"})), layers


def build_httpd(out: Layout, args: argparse.Namespace) -> Built:
    page = [dirent("/www"), reg("/www/index.html", b"<h1>rctl test httpd</h1>\n")]
    layers = [busybox_layer(out, args.busybox), out.add_layer(page, "/www/index.html")]
    config = sh_config(
        Cmd=["httpd", "-f", "-v", "-p", "80", "-h", "/www"], ExposedPorts={"80/tcp": {}}
    )
    return out.put_image(layers, config), layers


def build_debian(out: Layout, args: argparse.Namespace) -> Built:
    rootfs: Path = args.debian_rootfs
    layers = [out.add_layer(walk_rootfs(rootfs), f"debootstrap minbase tree from {rootfs}")]
    return out.put_image(layers, {"Cmd": ["/bin/bash"], "Env": [PATH_ENV]}), layers


def build_big(out: Layout, args: argparse.Namespace) -> Built:
    big = [dirent("/big"), Entry("/big/random.bin", content=RandomBytes(BIG_SIZE))]
    layers = [
        busybox_layer(out, args.busybox),
        out.add_layer(big, f"/big/random.bin: {BIG_SIZE} random bytes", level=1),
    ]
    return out.put_image(layers, sh_config()), layers


def build_multiarch(out: Layout, args: argparse.Namespace) -> Built:
    manifests: list[Json] = []
    layers: list[Layer] = []
    for arch, variant in (("amd64", ""), ("arm64", "v8")):
        marker = [reg("/arch", f"{arch}\n".encode())]
        image = [busybox_layer(out, args.busybox), out.add_layer(marker, f"/arch: {arch}")]
        manifests.append(out.put_image(image, sh_config(), arch, variant))
        layers += image
    return out.put_index(manifests), layers


IMAGES: dict[str, Callable[[Layout, argparse.Namespace], Built]] = {
    "busybox": build_busybox,
    "layered": build_layered,
    "httpd": build_httpd,
    "debian": build_debian,
    "big": build_big,
    "multiarch": build_multiarch,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="one OCI layout per image here")
    parser.add_argument("--busybox", type=Path, required=True, help="static busybox binary")
    parser.add_argument("--debian-rootfs", type=Path, help="tree for the debian image")
    parser.add_argument("--only", nargs="+", action="extend", choices=IMAGES, metavar="NAME")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    names: list[str] = args.only or list(IMAGES)
    try:
        if not args.busybox.is_file():
            raise ValueError(f"--busybox {args.busybox} is not a file")
        rootfs = args.debian_rootfs
        if "debian" in names and not (rootfs and rootfs.is_dir()):
            raise ValueError(f"the debian image needs --debian-rootfs DIR (got {rootfs})")
        for name in names:
            out = Layout(args.out / name)
            descriptor, layers = IMAGES[name](out, args)
            out.tag_latest(descriptor)
            size = sum(layer.descriptor["size"] for layer in layers)
            print(f"{name} {descriptor['digest']} layers={len(layers)} bytes={size}", flush=True)
    except (OSError, ValueError, tarfile.TarError) as e:
        print(f"images.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
