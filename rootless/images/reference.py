"""Image references: ``[registry[:port]/]repository[:tag][@digest]``, parsed like docker does.

The grammar is distribution's (github.com/distribution/reference, ``reference.go``)::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]     host: a DNS name, an IPv4 address or "[" IPv6 "]"
    path-component := [a-z0-9]+ (([._]|__|-+) [a-z0-9]+)*
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex   (sha256: 64 lowercase hex digits, sha512: 128...)

Normalisation follows docker's ``ParseNormalizedNamed``: the first path component is a
registry when it contains ``.`` or ``:``, is ``localhost`` or has upper-case letters;
otherwise the name is a *short name* and docker puts it on ``docker.io``, where a single
component gets ``library/`` (``busybox`` -> ``docker.io/library/busybox:latest``).
``index.docker.io`` is spelt ``docker.io``. A reference with neither tag nor digest gets
``latest``.

:func:`candidates` resolves short names through a list of unqualified-search registries
instead, like podman's ``registries.conf`` (``unqualified-search-registries``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rctlbase.errors import UsageError

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
DOCKER_API_HOST = "registry-1.docker.io"  # where docker.io's registry API answers
NAME_MAX = 255  # NameTotalLengthMax of distribution/reference

_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*", re.ASCII)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?",
    re.ASCII,
)
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*", re.ASCII)
_HEX = re.compile(r"[a-f0-9]+", re.ASCII)
_IMAGE_ID = re.compile(r"[a-f0-9]{64}", re.ASCII)
# Lengths of the algorithms go-digest (and so every registry) accepts.
DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

_REFERENCE_HINT = "use [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST], e.g. docker.io/library/busybox:1.36"


def digest_problem(digest: str) -> str | None:
    """Why ``digest`` is not a valid ``algorithm:hex`` content digest, or None when it is.

    Only the algorithms registries use are accepted (sha256, sha384, sha512), with their
    exact length in lowercase hex, like go-digest's ``Digest.Validate``.
    """
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not _ALGORITHM.fullmatch(algorithm):
        return f"'{digest}' is not ALGORITHM:HEX"
    if algorithm not in DIGEST_LENGTHS:
        return f"unsupported digest algorithm '{algorithm}' (use sha256, sha384 or sha512)"
    if not _HEX.fullmatch(encoded) or len(encoded) != DIGEST_LENGTHS[algorithm]:
        return (
            f"a {algorithm} digest is {DIGEST_LENGTHS[algorithm]} lowercase hex digits, "
            f"got '{encoded}'"
        )
    return None


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A normalised image reference.

    ``registry`` is a host[:port] (``docker.io``, ``127.0.0.1:5000``), ``repository`` the
    path inside it (``library/busybox``). At least one of ``tag`` and ``digest`` is set;
    when both are, the digest is what gets pulled (docker does the same).
    """

    registry: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full reference: ``docker.io/library/busybox:latest``, ``...@sha256:...``."""
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def repository_name(self) -> str:
        """Registry and repository without tag or digest: ``docker.io/library/busybox``."""
        return f"{self.registry}/{self.repository}"

    @property
    def repository_path(self) -> str:
        """The repository as the registry API spells it: ``/v2/<repository_path>/...``."""
        return self.repository

    @property
    def api_reference(self) -> str:
        """What goes in ``/v2/<repository_path>/manifests/<api_reference>``: digest or tag."""
        if self.digest is not None:
            return self.digest
        return self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """Host[:port] serving the registry API (docker.io's is registry-1.docker.io)."""
        return DOCKER_API_HOST if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def familiar_name(self) -> str:
        """The name as docker shows it: ``busybox:latest``, ``quay.io/a/b:1``."""
        text = self.name
        prefix = f"{DEFAULT_REGISTRY}/"
        if text.startswith(prefix):
            text = text.removeprefix(prefix)
            library = "library/"
            if text.startswith(library) and "/" not in self.repository.removeprefix(library):
                text = text.removeprefix(library)
        return text

    def with_digest(self, digest: str) -> ImageReference:
        """The same reference pinned to ``digest`` (a manifest digest), keeping the tag."""
        problem = digest_problem(digest)
        if problem is not None:
            raise UsageError(f"invalid digest: {problem}", hint=_REFERENCE_HINT)
        return dataclasses.replace(self, digest=digest)

    def __str__(self) -> str:
        return self.name


def is_short_name(text: str) -> bool:
    """Whether ``text`` names no registry (``busybox``, ``library/busybox:1``, ``a/b``).

    Docker's rule: the part before the first ``/`` is a registry only when it contains
    ``.`` or ``:``, is ``localhost``, or has upper-case letters.
    """
    name = text.partition("@")[0]
    first, slash, _ = name.partition("/")
    if not slash:
        return True
    return not ("." in first or ":" in first or first == "localhost" or first != first.lower())


def parse_reference(text: str) -> ImageReference:
    """Parse and normalise an image reference like docker does; short names go to docker.io.

    Raises UsageError naming the bad part (registry, repository component, tag, digest).
    Use :func:`candidates` to resolve short names through configured search registries.
    """
    registry, path, tag, digest = _split(text)
    if registry is None:
        registry = DEFAULT_REGISTRY
    return _build(text, registry, path, tag, digest)


def candidates(
    text: str, search_registries: Sequence[str] = (DEFAULT_REGISTRY,)
) -> list[ImageReference]:
    """The references to try for ``text``, in order.

    A fully qualified reference gives itself. A short name gives one reference per
    unqualified-search registry (podman's ``unqualified-search-registries``); on docker.io
    a single-component name gets ``library/``.
    """
    registry, path, tag, digest = _split(text)
    if registry is not None:
        return [_build(text, registry, path, tag, digest)]
    if not search_registries:
        raise UsageError(
            f"'{text}' is a short name and no unqualified-search registries are configured",
            hint="use a fully qualified name (docker.io/library/busybox), or set "
            'search = ["docker.io"] under [registries] in ~/.config/rctl/rctl.toml',
        )
    found: list[ImageReference] = []
    for search in search_registries:
        if not _DOMAIN.fullmatch(search):
            raise UsageError(
                f"invalid unqualified-search registry '{search}'",
                hint="registries are HOST[:PORT], e.g. docker.io or quay.io; fix rctl.toml",
            )
        ref = _build(text, search, path, tag, digest)
        if ref not in found:
            found.append(ref)
    return found


def _split(text: str) -> tuple[str | None, str, str | None, str | None]:
    """(registry or None for a short name, path, tag, digest), each part validated."""
    if not text:
        raise UsageError("invalid image reference: empty name", hint=_REFERENCE_HINT)
    name, at, digest = text.partition("@")
    if at:
        problem = digest_problem(digest)
        if problem is not None:
            raise UsageError(f"invalid image reference '{text}': {problem}", hint=_REFERENCE_HINT)
    tag: str | None = None
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise UsageError(
                f"invalid image reference '{text}': bad tag '{tag}'",
                hint="a tag is up to 128 letters, digits, '_', '.' and '-', not starting "
                "with '.' or '-'",
            )
    registry: str | None = None
    if not is_short_name(name):
        registry, _, name = name.partition("/")
        if not _DOMAIN.fullmatch(registry):
            raise UsageError(
                f"invalid image reference '{text}': bad registry '{registry}'",
                hint="a registry is HOST[:PORT] (a DNS name, IPv4 address or [IPv6])",
            )
    elif _IMAGE_ID.fullmatch(name):
        raise UsageError(
            f"invalid repository name '{name}': it looks like an image ID",
            hint="64 hex digits name an image ID; pull by name, or use the ID with "
            "commands that take an image",
        )
    for component in name.split("/"):
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if _PATH_COMPONENT.fullmatch(component.lower()):
            raise UsageError(
                f"invalid image reference '{text}': repository name '{name}' must be lowercase",
                hint=f"write it as '{name.lower()}'",
            )
        raise UsageError(
            f"invalid image reference '{text}': bad repository component '{component}'",
            hint="repository components are lowercase letters and digits, separated by "
            "'.', '_', '__' or dashes, between '/'",
        )
    return registry, name, tag, (digest if at else None)


def _build(
    text: str, registry: str, path: str, tag: str | None, digest: str | None
) -> ImageReference:
    """The normalised reference: docker.io spelling, library/ prefix, default tag."""
    if registry == "index.docker.io":
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    if len(registry) + 1 + len(path) > NAME_MAX:
        raise UsageError(
            f"invalid image reference '{text}': name longer than {NAME_MAX} characters",
            hint="shorten the repository name",
        )
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageReference(registry=registry, repository=path, tag=tag, digest=digest)
