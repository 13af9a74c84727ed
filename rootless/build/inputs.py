"""Where a build's inputs are: the Dockerfile (``-f``, or the context's Containerfile or
Dockerfile) and its ignore file, read bounded; and whether an image has a directory."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from rctlbase.errors import UsageError


def read_dockerfile_text(path: Path) -> str:
    """The Dockerfile's text, bounded."""
    from rootless.build.dockerfile import MAX_DOCKERFILE  # noqa: PLC0415

    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_DOCKERFILE + 1)
    except OSError as exc:
        raise UsageError(
            f"cannot read {path}: {exc.strerror}", hint="give the Dockerfile with -f FILE"
        ) from exc
    return data.decode("utf-8", "replace")


def find_dockerfile(context: Path, given: str | None) -> Path:
    """``-f FILE`` (relative to the working directory), else the context's Containerfile
    or Dockerfile."""
    if given:
        return Path(given)
    for name in ("Containerfile", "Dockerfile"):
        if (context / name).is_file():
            return context / name
    raise UsageError(f"no Containerfile or Dockerfile in {context}", hint="give one with -f FILE")


def ignore_file(context: Path, dockerfile: Path) -> Path | None:
    """``FILE.dockerignore`` next to the Dockerfile, else the context's ``.dockerignore``."""
    for candidate in (
        dockerfile.with_name(dockerfile.name + ".dockerignore"),
        context / ".containerignore",
        context / ".dockerignore",
    ):
        if candidate.is_file():
            return candidate
    return None


def image_has_dir(diffs: list[Path], path: str) -> bool:
    """Whether the image whose layer directories (top first) are ``diffs`` has a directory
    at ``path`` (links followed inside the image, :class:`rootless.containers.lookup.Layers`)."""
    import stat  # noqa: PLC0415

    from rootless.containers.lookup import Layers  # noqa: PLC0415

    try:
        found = Layers(diffs).resolve(PurePosixPath(path))
    except OSError:
        return False
    return found is not None and stat.S_ISDIR(found[0].st_mode)
