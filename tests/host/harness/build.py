"""``testhost build``: the Debian bookworm tree both tiers boot, cached by recipe key.

The tree is made in ``CACHE/tree-KEY.tmp`` and renamed to ``CACHE/tree-KEY`` only when every
step succeeded, so a failed or interrupted build never leaves a usable-looking cache entry.
Trees of other keys are deleted when a new one is built (a tree is ~1.5 GB).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.common import (
    CACHE,
    COMPLETE,
    PROJECT,
    RECIPE,
    HarnessError,
    locked,
    recipe_key,
    say,
    sh,
)

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
NSPAWN_ENV = {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}


def tree_path() -> Path:
    """Where the tree of the current recipe lives once built."""
    return CACHE / f"tree-{recipe_key()}"


def is_built() -> bool:
    """Whether the current recipe's tree is complete in the cache."""
    return (tree_path() / COMPLETE).exists()


def host_mirror() -> str:
    """The Debian mirror the host's own apt uses (deb822 or one-line sources)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line:
                urls = [w for w in words[1:] if "://" in w]
                if urls:
                    return urls[0]
    return DEFAULT_MIRROR


def packages() -> list[str]:
    """The package list of the recipe, comments dropped."""
    lines = (RECIPE / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def debootstrap(target: Path, include: list[str]) -> None:
    """A minbase bookworm tree at ``target``; .debs are kept in a cache shared by builds."""
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    sh(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(include)}",
            f"--cache-dir={debs}",
            SUITE,
            target,
            host_mirror(),
        ],
        capture=True,
    )


def in_tree(tree: Path, argv: list[str]) -> None:
    """Run a command inside the (not booted) tree, without network."""
    sh(
        [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--private-network",
            "--pipe",
            f"--directory={tree}",
            "--",
            *argv,
        ],
        env=NSPAWN_ENV,
    )


def build() -> Path:
    """Build the tree for the current recipe unless the cache has it; return its path."""
    CACHE.mkdir(parents=True, exist_ok=True)
    os.chmod(CACHE, 0o700)
    with locked("build"):
        tree = tree_path()
        if (tree / COMPLETE).exists():
            say(f"tree {tree.name} is cached")
            return tree
        for stale in CACHE.glob("tree-*"):
            say(f"removing stale {stale.name}")
            shutil.rmtree(stale, ignore_errors=True)
        tmp = tree.with_name(tree.name + ".tmp")
        try:
            _build_into(tmp)
            (tmp / COMPLETE).write_text(tree.name + "\n")
            tmp.rename(tree)
        except BaseException:
            say(f"build failed: removing {tmp}")
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        say(f"tree {tree.name} built")
        return tree


def _build_into(tmp: Path) -> None:
    say(f"debootstrap {SUITE} into {tmp} (a few minutes)")
    debootstrap(tmp, packages())

    root = tmp / "root"
    key = root / "harness-key"
    sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rctl-testhost", "-f", key])
    shutil.copy(key.with_suffix(".pub"), root / "harness.pub")

    say("downloading the guest's Python wheels")
    pip = PROJECT / ".venv" / "bin" / "pip"
    if not pip.exists():
        raise HarnessError("no .venv: run tests/host/setup-host first")
    wheels = root / "wheels"
    requirements = RECIPE / "requirements.txt"
    sh(
        [pip, "download", "-q", "--only-binary=:all:", "-d", wheels, "-r", requirements],
        capture=True,
    )
    shutil.copytree(RECIPE, root / "recipe", ignore=shutil.ignore_patterns("__pycache__"))

    say("configuring the tree")
    in_tree(tmp, ["/bin/sh", "/root/recipe/configure.sh"])

    say("debootstrap the test/debian image's rootfs")
    rootfs = tmp / "var/tmp/debian-rootfs"
    debootstrap(rootfs, ["python3"])

    say("writing the test images and seeding the registry")
    in_tree(
        tmp,
        [
            "python3",
            "/root/recipe/images.py",
            "--out",
            "/var/tmp/oci",
            "--busybox",
            "/bin/busybox",
            "--debian-rootfs",
            "/var/tmp/debian-rootfs",
        ],
    )
    in_tree(tmp, ["/bin/sh", "/root/recipe/seed.sh", "/var/tmp/oci"])

    for scratch in ("var/tmp/oci", "var/tmp/debian-rootfs", "root/wheels", "root/recipe"):
        shutil.rmtree(tmp / scratch)
