"""Image manifests, indexes and configs: parsed into frozen models, checked on the way in.

Supported documents (OCI image-spec v1.1, Docker image manifest v2 schema 2):

- manifests: ``application/vnd.oci.image.manifest.v1+json`` and
  ``application/vnd.docker.distribution.manifest.v2+json``;
- indexes: ``application/vnd.oci.image.index.v1+json`` and
  ``application/vnd.docker.distribution.manifest.list.v2+json``.

Refused, with a hint: schema 1 manifests (deprecated since 2017, pulls removed from docker),
documents with both ``manifests`` and ``config``/``layers`` (an ambiguous document can be
read as an index by one tool and as a manifest by another: CVE-2021-41190,
GHSA-5j5w-g665-5m35), a body ``mediaType`` contradicting the Content-Type, layer media types
rctl can't unpack, and malformed JSON or digests.

:func:`select_platform` picks an index entry for a platform with containerd's rules
(``platforms.Only``): os and architecture must match; arm64 without a variant is v8, arm
without one is v7, a newer arm variant runs older ones; amd64 variants are ignored.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rctlbase.errors import ExternalError, NotFoundError, UsageError
from rootless.images.reference import digest_problem

MAX_MANIFEST_SIZE = 4 << 20  # what registries (distribution, containerd) accept
MAX_CONFIG_SIZE = 4 << 20  # containers/image's limit on config bodies (iolimits)

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)
INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)
CONFIG_TYPES = (MT_OCI_CONFIG, MT_DOCKER_CONFIG)
# Content-Types that say nothing about the document: trust its body then.
_GENERIC_TYPES = ("", "application/json", "application/octet-stream", "text/plain")


class Compression(enum.StrEnum):
    """How a layer blob is compressed."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
_OCI_FOREIGN = "application/vnd.oci.image.layer.nondistributable.v1.tar"
_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
_DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar"
# Every layer media type rctl unpacks, and its compression.
LAYER_TYPES: Mapping[str, Compression] = {
    f"{base}{suffix}": compression
    for base in (_OCI_LAYER, _OCI_FOREIGN, _DOCKER_LAYER, _DOCKER_FOREIGN)
    for suffix, compression in (
        ("", Compression.NONE),
        ("+gzip" if base.startswith("application/vnd.oci") else ".gzip", Compression.GZIP),
        ("+zstd" if base.startswith("application/vnd.oci") else ".zstd", Compression.ZSTD),
    )
}


class InvalidManifestError(ExternalError):
    """A registry sent a manifest, index or config rctl can't or won't use."""


@dataclass(frozen=True, slots=True)
class Platform:
    """An os/architecture[/variant] pair, as in ``--platform linux/arm64/v8``."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A pointer to a blob: its media type, digest and size (OCI image-spec descriptor.md)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """One image: its config blob and its layers, bottom first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageIndex:
    """A list of manifests, one per platform (OCI index, Docker manifest list)."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Healthcheck:
    """The image's HEALTHCHECK; durations in nanoseconds as the config stores them."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """The ``config`` section of an image config: defaults for containers of the image.

    ``cmd`` and ``entrypoint`` are None when the image does not set them (which differs from
    an empty list when an image overrides its parent's).
    """

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str | None = None
    healthcheck: Healthcheck | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One step of how the image was built; ``empty_layer`` steps made no layer."""

    created: str | None = None
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """An image config (OCI image-spec config.md), with the exact bytes it was parsed from.

    ``raw`` is what the store keeps and hashes: re-serialising would change the digest.
    """

    os: str
    architecture: str
    variant: str | None
    os_version: str | None
    created: str | None
    author: str
    config: ContainerConfig
    diff_ids: tuple[str, ...]
    history: tuple[HistoryEntry, ...]
    raw: bytes = field(repr=False)

    @property
    def platform(self) -> Platform:
        """The platform the image was built for."""
        return Platform(self.os, self.architecture, self.variant, self.os_version)

    @property
    def digest(self) -> str:
        """The config's digest: the image ID."""
        import hashlib  # noqa: PLC0415 - pulls only: every `rctl run` imports this module

        return f"sha256:{hashlib.sha256(self.raw).hexdigest()}"


def layer_compression(media_type: str) -> Compression:
    """The compression of a layer media type; InvalidManifestError for one rctl can't unpack."""
    try:
        return LAYER_TYPES[media_type]
    except KeyError:
        raise InvalidManifestError(
            f"unsupported layer media type '{media_type}'",
            hint="rctl unpacks docker and OCI tar layers (plain, +gzip, +zstd, and their "
            f"non-distributable variants): {', '.join(LAYER_TYPES)}",
        ) from None


def parse_manifest(data: bytes, content_type: str | None = None) -> ImageManifest | ImageIndex:
    """Parse a manifest or index fetched with ``Content-Type: content_type``.

    Raises InvalidManifestError (with a hint) for schema 1, ambiguous documents, a body
    ``mediaType`` that contradicts the Content-Type, unknown layer types, bad JSON/digests.
    """
    if len(data) > MAX_MANIFEST_SIZE:
        raise _invalid(f"manifest is {len(data)} bytes, more than {MAX_MANIFEST_SIZE}")
    header = (content_type or "").partition(";")[0].strip().lower()
    if header in MT_DOCKER_SCHEMA1:
        raise _schema1()
    doc = _load_json(data, "manifest")
    if doc.get("schemaVersion") == 1:
        raise _schema1()
    if doc.get("schemaVersion") != 2:
        raise _invalid(f"unsupported manifest schemaVersion {doc.get('schemaVersion')!r}")
    if "manifests" in doc and ("layers" in doc or "config" in doc):
        raise InvalidManifestError(
            "ambiguous manifest: it has both 'manifests' and 'config'/'layers'",
            hint="such documents read differently in different tools (CVE-2021-41190); "
            "ask the image's publisher to push a valid manifest or index",
        )
    media_type = _media_type(doc, header)
    if media_type in INDEX_TYPES:
        entries = _list(doc, "manifests", "index")
        return ImageIndex(
            media_type=media_type,
            manifests=tuple(
                _descriptor(item, f"index entry {i}", need_platform=media_type == MT_DOCKER_LIST)
                for i, item in enumerate(entries)
            ),
            annotations=_str_map(doc, "annotations", "index"),
        )
    if media_type not in MANIFEST_TYPES:
        raise _invalid(f"unsupported manifest media type '{media_type}'")
    if "config" not in doc:
        raise _invalid("manifest has no 'config'")
    config = _descriptor(doc["config"], "config descriptor")
    if config.media_type not in CONFIG_TYPES:
        raise InvalidManifestError(
            f"not a container image: its config is '{config.media_type}'",
            hint="this is an OCI artifact (a chart, a signature...), not something rctl can run",
        )
    layers = tuple(
        _descriptor(item, f"layer {i}") for i, item in enumerate(_list(doc, "layers", "manifest"))
    )
    for layer in layers:
        layer_compression(layer.media_type)
    return ImageManifest(
        media_type=media_type,
        config=config,
        layers=layers,
        annotations=_str_map(doc, "annotations", "manifest"),
    )


def _media_type(doc: Mapping[str, Any], header: str) -> str:
    """The document's media type: its body's, which must agree with the Content-Type."""
    body = _opt_str(doc, "mediaType", "manifest")
    if body is not None and header not in _GENERIC_TYPES and body != header:
        raise InvalidManifestError(
            f"manifest says it is '{body}' but the registry sent it as '{header}'",
            hint="the registry or the pushed document is inconsistent; refusing it (an "
            "attacker could make tools disagree about what it is)",
        )
    media_type = body or (header if header not in _GENERIC_TYPES else None)
    if media_type is None:  # OCI documents may omit mediaType: look at their shape
        media_type = MT_OCI_INDEX if "manifests" in doc else MT_OCI_MANIFEST
    if media_type in MT_DOCKER_SCHEMA1:
        raise _schema1()
    if (media_type in INDEX_TYPES) != ("manifests" in doc):
        raise _invalid(f"the document's fields contradict its media type '{media_type}'")
    return media_type


def parse_image_config(data: bytes) -> ImageConfig:
    """Parse an image config blob (docker's container.image.v1 or OCI's image.config.v1)."""
    if len(data) > MAX_CONFIG_SIZE:
        raise _invalid(f"image config is {len(data)} bytes, more than {MAX_CONFIG_SIZE}")
    doc = _load_json(data, "image config")
    section = _dict(doc, "config", "image config")
    rootfs = _dict(doc, "rootfs", "image config")
    diff_ids = _str_tuple(rootfs, "diff_ids", "image config rootfs")
    for diff_id in diff_ids:
        _check_digest(diff_id, "image config rootfs diff_ids")
    health = _dict(section, "Healthcheck", "image config") if "Healthcheck" in section else None
    history = []
    for i, item in enumerate(_list(doc, "history", "image config")):
        where = f"image config history {i}"
        if not isinstance(item, dict):
            raise _invalid(f"{where} is not an object")
        history.append(
            HistoryEntry(
                created=_opt_str(item, "created", where),
                created_by=_opt_str(item, "created_by", where) or "",
                author=_opt_str(item, "author", where) or "",
                comment=_opt_str(item, "comment", where) or "",
                empty_layer=item.get("empty_layer") is True,
            )
        )
    return ImageConfig(
        os=_opt_str(doc, "os", "image config") or "",
        architecture=_opt_str(doc, "architecture", "image config") or "",
        variant=_opt_str(doc, "variant", "image config") or None,
        os_version=_opt_str(doc, "os.version", "image config") or None,
        created=_opt_str(doc, "created", "image config"),
        author=_opt_str(doc, "author", "image config") or "",
        config=ContainerConfig(
            env=_str_tuple(section, "Env", "image config"),
            cmd=(
                _str_tuple(section, "Cmd", "image config")
                if section.get("Cmd") is not None
                else None
            ),
            entrypoint=(
                _str_tuple(section, "Entrypoint", "image config")
                if section.get("Entrypoint") is not None
                else None
            ),
            working_dir=_opt_str(section, "WorkingDir", "image config") or "",
            user=_opt_str(section, "User", "image config") or "",
            exposed_ports=tuple(sorted(_dict(section, "ExposedPorts", "image config"))),
            volumes=tuple(sorted(_dict(section, "Volumes", "image config"))),
            labels=_str_map(section, "Labels", "image config"),
            stop_signal=_opt_str(section, "StopSignal", "image config") or None,
            healthcheck=None if health is None else _healthcheck(health),
        ),
        diff_ids=diff_ids,
        history=tuple(history),
        raw=data,
    )


def check_config(manifest: ImageManifest, config: ImageConfig) -> None:
    """Refuse a config whose layer list does not match its manifest's."""
    if len(config.diff_ids) != len(manifest.layers):
        raise _invalid(
            f"the manifest has {len(manifest.layers)} layers but its config lists "
            f"{len(config.diff_ids)} diff_ids"
        )


# ---- platforms ----------------------------------------------------------------------------

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "i686": "386",
    "armhf": "arm",
    "armel": "arm",
}
_ARM_MACHINES = {"armv5tel": "v5", "armv6l": "v6", "armv7l": "v7", "armv8l": "v8"}


def normalize_platform(platform: Platform) -> Platform:
    """containerd's ``platforms.Normalize``: arch aliases, and arm/arm64 default variants."""
    os_name = platform.os.lower()
    arch = platform.architecture.lower()
    variant = (platform.variant or "").lower() or None
    if arch == "armhf":
        variant = "v7"
    elif arch == "armel":
        variant = "v6"
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch == "arm64":
        variant = "v8" if variant in (None, "8", "v8.0") else variant
    elif arch == "arm":
        variant = "v7" if variant is None else variant
    elif arch == "amd64" and variant == "v1":
        variant = None
    if variant is not None and variant[0].isdigit():
        variant = f"v{variant}"
    return Platform(os_name, arch, variant, platform.os_version)


def host_platform() -> Platform:
    """The platform of this machine, from uname(2)."""
    uname = os.uname()
    machine = uname.machine.lower()
    variant = _ARM_MACHINES.get(machine)
    arch = "arm" if variant is not None else machine
    return normalize_platform(Platform(uname.sysname.lower(), arch, variant))


def parse_platform(text: str) -> Platform:
    """Parse ``--platform`` text: ``os/arch[/variant]`` (``linux/arm64/v8``), normalised."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(
            f"invalid platform '{text}'",
            hint="use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8",
        )
    return normalize_platform(Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None))


def _variant_rank(available: str | None, wanted: str | None, arch: str) -> int | None:
    """How well an ``available`` variant serves ``wanted`` (0 best), None if it can't."""
    if available == wanted:
        return 0
    if arch == "amd64":  # amd64 variants (v2, v3) are ignored, exact ones preferred
        return 1
    if arch in ("arm", "arm64") and available and wanted:
        have, want = available.removeprefix("v"), wanted.removeprefix("v")
        # isascii: str.isdigit() also accepts digits such as '²' that int() refuses.
        if (
            have.isascii()
            and want.isascii()
            and have.isdigit()
            and want.isdigit()
            and int(have) < int(want)
        ):
            return int(want) - int(have)  # newer arm runs older variants, nearest first
    return None


def platform_matches(have: Platform, wanted: Platform) -> bool:
    """Whether an image built for ``have`` is what ``--platform wanted`` asks for."""
    have, want = normalize_platform(have), normalize_platform(wanted)
    return (
        have.os == want.os
        and have.architecture == want.architecture
        and _variant_rank(have.variant, want.variant, want.architecture) is not None
    )


def select_platform(index: ImageIndex, wanted: Platform) -> Descriptor:
    """The index entry to pull for ``wanted``: best variant match, index order on ties.

    Raises NotFoundError listing the index's platforms when none fits.
    """
    want = normalize_platform(wanted)
    best: tuple[int, int, Descriptor] | None = None
    for position, entry in enumerate(index.manifests):
        if entry.platform is None or entry.media_type not in MANIFEST_TYPES:
            continue
        have = normalize_platform(entry.platform)
        if have.os != want.os or have.architecture != want.architecture:
            continue
        rank = _variant_rank(have.variant, want.variant, want.architecture)
        if rank is not None and (best is None or (rank, position) < best[:2]):
            best = (rank, position, entry)
    if best is not None:
        return best[2]
    available = sorted(
        {
            str(normalize_platform(e.platform))
            for e in index.manifests
            if e.platform is not None and e.platform.os != "unknown"
        }
    )
    raise NotFoundError(
        f"no image for {want} in the index (it has {', '.join(available) or 'no platforms'})",
        hint="pick one of those with --platform OS/ARCH[/VARIANT]",
    )


# ---- JSON helpers: every access is typed and names what is wrong -------------------------


def _invalid(message: str) -> InvalidManifestError:
    return InvalidManifestError(
        message, hint="the registry sent a document rctl can't use; check the image reference"
    )


def _schema1() -> InvalidManifestError:
    return InvalidManifestError(
        "image manifest schema 1 is not supported",
        hint="it was deprecated in 2017; re-push the image with a current docker, podman "
        "or skopeo (schema 2 or OCI)",
    )


def _load_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        # ValueError: bad JSON or UTF-8, and integers longer than Python converts;
        # RecursionError: nesting deeper than the parser's stack.
        raise _invalid(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise _invalid(f"{what} is not a JSON object")
    return doc


def _check_digest(value: str, where: str) -> None:
    problem = digest_problem(value)
    if problem is not None:
        raise _invalid(f"bad digest in {where}: {problem}")


def _opt_str(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"{where}: '{key}' is not a string")
    return value


def _dict(doc: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"{where}: '{key}' is not an object")
    return value


def _list(doc: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(f"{where}: '{key}' is not a list")
    return value


def _str_tuple(doc: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _list(doc, key, where)
    if not all(isinstance(item, str) for item in items):
        raise _invalid(f"{where}: '{key}' is not a list of strings")
    return tuple(items)


def _str_map(doc: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    items = _dict(doc, key, where)
    if not all(isinstance(v, str) for v in items.values()):
        raise _invalid(f"{where}: '{key}' is not a string map")
    return dict(items)


def _int(doc: Mapping[str, Any], key: str, where: str) -> int:
    value = doc.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(f"{where}: '{key}' is not an integer")
    return value


def _descriptor(item: object, where: str, *, need_platform: bool = False) -> Descriptor:
    if not isinstance(item, dict):
        raise _invalid(f"{where} is not an object")
    media_type = _opt_str(item, "mediaType", where)
    digest = _opt_str(item, "digest", where)
    if not media_type or not digest or "size" not in item:
        raise _invalid(f"{where} lacks mediaType, digest or size")
    _check_digest(digest, where)
    size = _int(item, "size", where)
    if size < 0:
        raise _invalid(f"{where}: negative size {size}")
    platform = None
    if "platform" in item:
        spec = _dict(item, "platform", where)
        os_name, arch = _opt_str(spec, "os", where), _opt_str(spec, "architecture", where)
        if not os_name or not arch:
            raise _invalid(f"{where}: platform lacks os or architecture")
        platform = Platform(
            os_name,
            arch,
            _opt_str(spec, "variant", where) or None,
            _opt_str(spec, "os.version", where) or None,
        )
    elif need_platform:
        raise _invalid(f"{where} has no platform")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        platform=platform,
        annotations=_str_map(item, "annotations", where),
        urls=_str_tuple(item, "urls", where),
    )


def _healthcheck(doc: Mapping[str, Any]) -> Healthcheck:
    where = "image config Healthcheck"
    return Healthcheck(
        test=_str_tuple(doc, "Test", where),
        interval=_int(doc, "Interval", where),
        timeout=_int(doc, "Timeout", where),
        start_period=_int(doc, "StartPeriod", where),
        start_interval=_int(doc, "StartInterval", where),
        retries=_int(doc, "Retries", where),
    )
