"""What newuidmap and newgidmap need to work, checked on the installed binaries.

A user may map IDs other than its own only through a helper holding CAP_SETUID (CAP_SETGID)
in the parent namespace: newuidmap/newgidmap setuid root, or with file capabilities
(Fedora ships ``cap_setuid=ep``). Both are ignored on a ``nosuid`` mount (mount(2)). When a
mapping fails, this is checked before the kernel gets the blame (podman ``tryMappingTool``).
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

# capability.h: bit numbers and the layout of the security.capability xattr.
CAP_SETGID = 6
CAP_SETUID = 7
VFS_CAP_REVISION_MASK = 0xFF000000
VFS_CAP_REVISION_1 = 0x01000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001

# The capability each helper needs, by name as setcap(8) spells it.
TOOL_CAPS: dict[str, tuple[str, int]] = {
    "newuidmap": ("cap_setuid", CAP_SETUID),
    "newgidmap": ("cap_setgid", CAP_SETGID),
}


@dataclass(frozen=True, slots=True)
class MapTool:
    """The state of one helper binary; ``path`` is None when it is not on PATH."""

    name: str
    path: Path | None
    setuid_root: bool = False
    file_caps: bool = False
    nosuid_mount: bool = False
    owner_uid: int = 0

    @property
    def privileged(self) -> bool:
        """Whether running it grants the capability it needs."""
        return (self.setuid_root or self.file_caps) and not self.nosuid_mount

    def privilege_fix(self) -> str:
        """The command that makes the binary privileged (as the uidmap package installs it)."""
        cap_name, _ = TOOL_CAPS.get(self.name, ("cap_setuid", CAP_SETUID))
        chown = "" if self.owner_uid == 0 else f"sudo chown root:root {self.path} && "
        return f"{chown}sudo chmod u+s {self.path} (or: sudo setcap {cap_name}+ep {self.path})"

    def unprivileged(self) -> tuple[str, str] | None:
        """(why, fix) when the binary is installed but cannot map subordinate IDs."""
        if self.path is None or self.privileged:
            return None
        if self.nosuid_mount:
            return (
                "it is on a nosuid mount, which ignores setuid and file capabilities",
                f"remount the filesystem of {self.path} without nosuid",
            )
        return "it is neither setuid root nor has file capabilities", self.privilege_fix()


def parse_file_caps(data: bytes) -> tuple[int, bool]:
    """(permitted capability mask, effective flag) of a ``security.capability`` value.

    Layout: ``struct vfs_cap_data`` / ``vfs_ns_cap_data`` (little-endian): magic_etc, then
    (permitted, inheritable) pairs of 32-bit words, one pair in revision 1, two after.
    """
    if len(data) < 12:
        return 0, False
    magic, low = struct.unpack_from("<II", data)
    permitted = low
    if magic & VFS_CAP_REVISION_MASK != VFS_CAP_REVISION_1 and len(data) >= 20:
        (high,) = struct.unpack_from("<I", data, 12)
        permitted |= high << 32
    return permitted, bool(magic & VFS_CAP_FLAGS_EFFECTIVE)


def has_file_cap(path: Path, capability: int) -> bool:
    """Whether ``path`` carries ``capability`` as a permitted and effective file capability."""
    try:
        data = os.getxattr(path, "security.capability")
    except OSError:  # ENODATA: no capabilities; ENOTSUP: the filesystem has no xattrs
        return False
    permitted, effective = parse_file_caps(data)
    return effective and bool(permitted & (1 << capability))


def inspect_map_tool(name: str, path: Path | None = None) -> MapTool:
    """Find ``name`` on PATH (unless ``path`` is given) and read its mode, xattr and mount."""
    if path is None:
        found = shutil.which(name)
        if found is None:
            return MapTool(name, None)
        path = Path(found)
    try:
        st = path.stat()
        nosuid = bool(os.statvfs(path).f_flag & os.ST_NOSUID)
    except OSError:
        return MapTool(name, None)
    _, capability = TOOL_CAPS.get(name, ("cap_setuid", CAP_SETUID))
    return MapTool(
        name,
        path,
        setuid_root=bool(st.st_mode & stat.S_ISUID) and st.st_uid == 0,
        file_caps=has_file_cap(path, capability),
        nosuid_mount=nosuid,
        owner_uid=st.st_uid,
    )
