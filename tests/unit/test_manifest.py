"""Manifest, index and image config parsing; platform selection."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest

from rctlbase.errors import ExternalError, NotFoundError, UsageError
from rootless.images import manifest as m
from rootless.images.manifest import (
    Compression,
    ImageIndex,
    ImageManifest,
    InvalidManifestError,
    Platform,
    check_config,
    host_platform,
    layer_compression,
    parse_image_config,
    parse_manifest,
    parse_platform,
    select_platform,
)


def dg(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def manifest_doc(
    media_type: str | None = m.MT_OCI_MANIFEST,
    layer_type: str = "application/vnd.oci.image.layer.v1.tar+gzip",
    config_type: str = m.MT_OCI_CONFIG,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "config": {"mediaType": config_type, "digest": dg(1), "size": 100},
        "layers": [
            {"mediaType": layer_type, "digest": dg(2), "size": 1000},
            {"mediaType": layer_type, "digest": dg(3), "size": 2000, "annotations": {"a": "b"}},
        ],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    if media_type is not None:
        doc["mediaType"] = media_type
    return doc


def entry(n: int, arch: str, variant: str | None = None, os_name: str = "linux") -> dict[str, Any]:
    platform = {"os": os_name, "architecture": arch}
    if variant:
        platform["variant"] = variant
    return {"mediaType": m.MT_OCI_MANIFEST, "digest": dg(n), "size": 500, "platform": platform}


def index_doc(*entries: dict[str, Any], media_type: str | None = m.MT_OCI_INDEX) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2, "manifests": list(entries)}
    if media_type is not None:
        doc["mediaType"] = media_type
    return doc


def raw(doc: object) -> bytes:
    return json.dumps(doc).encode()


# ---- manifests ----------------------------------------------------------------------------


@pytest.mark.parametrize("media_type", [m.MT_OCI_MANIFEST, m.MT_DOCKER_MANIFEST])
def test_parse_image_manifest(media_type: str) -> None:
    config_type = m.MT_OCI_CONFIG if "oci" in media_type else m.MT_DOCKER_CONFIG
    layer_type = (
        "application/vnd.oci.image.layer.v1.tar+gzip"
        if "oci" in media_type
        else "application/vnd.docker.image.rootfs.diff.tar.gzip"
    )
    doc = manifest_doc(media_type, layer_type, config_type)
    parsed = parse_manifest(raw(doc), media_type)
    assert isinstance(parsed, ImageManifest)
    assert parsed.media_type == media_type
    assert parsed.config.digest == dg(1) and parsed.config.media_type == config_type
    assert [layer.digest for layer in parsed.layers] == [dg(2), dg(3)]
    assert [layer.size for layer in parsed.layers] == [1000, 2000]
    assert parsed.layers[1].annotations == {"a": "b"}
    assert parsed.annotations["org.opencontainers.image.created"] == "2024-01-01T00:00:00Z"


@pytest.mark.parametrize("media_type", [m.MT_OCI_INDEX, m.MT_DOCKER_LIST])
def test_parse_index(media_type: str) -> None:
    doc = index_doc(entry(10, "amd64"), entry(11, "arm64", "v8"), media_type=media_type)
    parsed = parse_manifest(raw(doc), media_type)
    assert isinstance(parsed, ImageIndex)
    assert parsed.media_type == media_type
    assert [d.digest for d in parsed.manifests] == [dg(10), dg(11)]
    assert parsed.manifests[1].platform == Platform("linux", "arm64", "v8")


def test_content_type_parameters_and_case_are_ignored() -> None:
    parsed = parse_manifest(raw(manifest_doc()), m.MT_OCI_MANIFEST.upper() + "; charset=utf-8")
    assert isinstance(parsed, ImageManifest)


@pytest.mark.parametrize("content_type", [None, "", "application/json", "application/octet-stream"])
def test_generic_content_type_trusts_the_body(content_type: str | None) -> None:
    parsed = parse_manifest(raw(manifest_doc(m.MT_DOCKER_MANIFEST)), content_type)
    assert parsed.media_type == m.MT_DOCKER_MANIFEST


def test_oci_body_without_media_type_takes_the_content_type() -> None:
    parsed = parse_manifest(raw(index_doc(entry(1, "amd64"), media_type=None)), m.MT_DOCKER_LIST)
    assert isinstance(parsed, ImageIndex) and parsed.media_type == m.MT_DOCKER_LIST


def test_oci_body_without_any_media_type_is_read_by_shape() -> None:
    assert isinstance(parse_manifest(raw(manifest_doc(None))), ImageManifest)
    parsed = parse_manifest(raw(index_doc(entry(1, "amd64"), media_type=None)))
    assert isinstance(parsed, ImageIndex) and parsed.media_type == m.MT_OCI_INDEX


@pytest.mark.parametrize(
    ("extra", "media_type"),
    [
        ({"manifests": []}, m.MT_OCI_MANIFEST),
        ({"manifests": [entry(1, "amd64")]}, m.MT_OCI_INDEX),
        ({"manifests": []}, None),
    ],
)
def test_ambiguous_documents_are_refused(extra: dict[str, Any], media_type: str | None) -> None:
    doc = {**manifest_doc(media_type), **extra}
    with pytest.raises(InvalidManifestError) as info:
        parse_manifest(raw(doc), media_type)
    assert "ambiguous" in info.value.message
    assert info.value.hint is not None and "CVE-2021-41190" in info.value.hint


def test_index_with_only_config_is_ambiguous_too() -> None:
    doc = index_doc(entry(1, "amd64"))
    doc["config"] = {"mediaType": m.MT_OCI_CONFIG, "digest": dg(1), "size": 1}
    with pytest.raises(InvalidManifestError, match="ambiguous"):
        parse_manifest(raw(doc), m.MT_OCI_INDEX)


@pytest.mark.parametrize(
    ("body", "header"),
    [
        (m.MT_OCI_MANIFEST, m.MT_DOCKER_MANIFEST),
        (m.MT_DOCKER_MANIFEST, m.MT_OCI_MANIFEST),
        (m.MT_OCI_MANIFEST, m.MT_OCI_INDEX),
    ],
)
def test_body_media_type_contradicting_content_type_is_refused(body: str, header: str) -> None:
    with pytest.raises(InvalidManifestError) as info:
        parse_manifest(raw(manifest_doc(body)), header)
    assert body in info.value.message and header in info.value.message
    assert info.value.hint


def test_shape_contradicting_the_media_type_is_refused() -> None:
    doc = index_doc(entry(1, "amd64"), media_type=None)
    with pytest.raises(InvalidManifestError, match="contradict"):
        parse_manifest(raw(doc), m.MT_OCI_MANIFEST)
    with pytest.raises(InvalidManifestError, match="contradict"):
        parse_manifest(raw(manifest_doc(None)), m.MT_OCI_INDEX)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (raw({"schemaVersion": 1, "name": "x", "fsLayers": []}), None),
        (raw({"schemaVersion": 1}), "application/json"),
        (b"not even json", "application/vnd.docker.distribution.manifest.v1+prettyjws"),
        (raw(manifest_doc()), "application/vnd.docker.distribution.manifest.v1+json"),
        (
            raw({"schemaVersion": 2, "mediaType": m.MT_DOCKER_SCHEMA1[0]}),
            None,
        ),
    ],
)
def test_schema1_is_refused_with_a_repush_hint(data: bytes, content_type: str | None) -> None:
    with pytest.raises(InvalidManifestError) as info:
        parse_manifest(data, content_type)
    assert "schema 1" in info.value.message and "not supported" in info.value.message
    assert info.value.hint is not None and "re-push" in info.value.hint


def test_unknown_layer_type_lists_supported_ones() -> None:
    doc = manifest_doc(layer_type="application/vnd.example.layer.squashfs")
    with pytest.raises(InvalidManifestError) as info:
        parse_manifest(raw(doc), m.MT_OCI_MANIFEST)
    assert "application/vnd.example.layer.squashfs" in info.value.message
    assert info.value.hint is not None
    for supported in (
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    ):
        assert supported in info.value.hint


def test_artifacts_are_not_images() -> None:
    doc = manifest_doc(config_type="application/vnd.cncf.helm.config.v1+json")
    with pytest.raises(InvalidManifestError, match="not a container image"):
        parse_manifest(raw(doc), m.MT_OCI_MANIFEST)


def bad_digest(doc: dict[str, Any]) -> None:
    doc["layers"][0]["digest"] = "sha256:" + "A" * 64


def short_digest(doc: dict[str, Any]) -> None:
    doc["config"]["digest"] = "sha256:abc"


def negative_size(doc: dict[str, Any]) -> None:
    doc["layers"][1]["size"] = -1


def bool_size(doc: dict[str, Any]) -> None:
    doc["layers"][1]["size"] = True


def string_size(doc: dict[str, Any]) -> None:
    doc["layers"][1]["size"] = "10"


def no_config(doc: dict[str, Any]) -> None:
    del doc["config"]


def layers_not_list(doc: dict[str, Any]) -> None:
    doc["layers"] = {"a": 1}


def no_size(doc: dict[str, Any]) -> None:
    del doc["layers"][0]["size"]


def bad_annotations(doc: dict[str, Any]) -> None:
    doc["annotations"] = {"a": 1}


def schema3(doc: dict[str, Any]) -> None:
    doc["schemaVersion"] = 3


@pytest.mark.parametrize(
    "spoil",
    [
        bad_digest,
        short_digest,
        negative_size,
        bool_size,
        string_size,
        no_config,
        layers_not_list,
        no_size,
        bad_annotations,
        schema3,
    ],
)
def test_malformed_manifests_are_refused(spoil: Any) -> None:
    doc = manifest_doc()
    spoil(doc)
    with pytest.raises(InvalidManifestError) as info:
        parse_manifest(raw(doc), m.MT_OCI_MANIFEST)
    assert info.value.hint
    assert isinstance(info.value, ExternalError)


@pytest.mark.parametrize("data", [b"{", b"[]", b"\xff\xfe", b"null", b'"x"'])
def test_non_json_or_non_object_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidManifestError):
        parse_manifest(data, m.MT_OCI_MANIFEST)


def test_oversized_manifest_is_refused() -> None:
    with pytest.raises(InvalidManifestError, match="bytes"):
        parse_manifest(b" " * (m.MAX_MANIFEST_SIZE + 1), m.MT_OCI_MANIFEST)


def test_docker_list_entries_need_a_platform() -> None:
    item = entry(1, "amd64")
    del item["platform"]
    with pytest.raises(InvalidManifestError, match="no platform"):
        parse_manifest(raw(index_doc(item, media_type=m.MT_DOCKER_LIST)), m.MT_DOCKER_LIST)
    parsed = parse_manifest(raw(index_doc(item)), m.MT_OCI_INDEX)  # optional in OCI
    assert isinstance(parsed, ImageIndex) and parsed.manifests[0].platform is None


@pytest.mark.parametrize(
    ("media_type", "compression"),
    [
        ("application/vnd.oci.image.layer.v1.tar", Compression.NONE),
        ("application/vnd.oci.image.layer.v1.tar+gzip", Compression.GZIP),
        ("application/vnd.oci.image.layer.v1.tar+zstd", Compression.ZSTD),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar", Compression.NONE),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression.GZIP),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Compression.ZSTD),
        ("application/vnd.docker.image.rootfs.diff.tar", Compression.NONE),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", Compression.GZIP),
        ("application/vnd.docker.image.rootfs.diff.tar.zstd", Compression.ZSTD),
        ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression.GZIP),
    ],
)
def test_layer_compression(media_type: str, compression: Compression) -> None:
    assert layer_compression(media_type) is compression


def test_layer_compression_refuses_unknown_types() -> None:
    with pytest.raises(InvalidManifestError, match="unsupported layer media type"):
        layer_compression("application/vnd.oci.image.layer.v1.tar+bzip2")


def test_foreign_layers_keep_their_urls() -> None:
    doc = manifest_doc(layer_type="application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
    doc["layers"][0]["urls"] = ["https://example.com/layer"]
    parsed = parse_manifest(raw(doc), m.MT_OCI_MANIFEST)
    assert isinstance(parsed, ImageManifest)
    assert parsed.layers[0].urls == ("https://example.com/layer",)


# ---- platforms ----------------------------------------------------------------------------


def index_of(*entries: dict[str, Any]) -> ImageIndex:
    parsed = parse_manifest(raw(index_doc(*entries)), m.MT_OCI_INDEX)
    assert isinstance(parsed, ImageIndex)
    return parsed


MULTI = (
    entry(1, "amd64"),
    entry(2, "arm", "v6"),
    entry(3, "arm", "v7"),
    entry(4, "arm64", "v8"),
    entry(5, "ppc64le"),
    entry(6, "unknown", os_name="unknown"),  # an attestation manifest (buildkit)
)


@pytest.mark.parametrize(
    ("wanted", "digest"),
    [
        ("linux/amd64", dg(1)),
        ("linux/arm64", dg(4)),  # arm64 without a variant means v8
        ("linux/arm64/v8", dg(4)),
        ("linux/aarch64", dg(4)),
        ("linux/arm/v7", dg(3)),
        ("linux/arm", dg(3)),  # arm without a variant means v7
        ("linux/arm/v6", dg(2)),
        ("linux/ppc64le", dg(5)),
    ],
)
def test_select_platform(wanted: str, digest: str) -> None:
    assert select_platform(index_of(*MULTI), parse_platform(wanted)).digest == digest


def test_arm64_entry_without_variant_serves_v8() -> None:
    index = index_of(entry(1, "amd64"), entry(2, "arm64"))
    assert select_platform(index, Platform("linux", "arm64", "v8")).digest == dg(2)
    assert select_platform(index, Platform("linux", "arm64")).digest == dg(2)


def test_arm64_v9_entry_does_not_serve_v8() -> None:
    with pytest.raises(NotFoundError):
        select_platform(index_of(entry(1, "arm64", "v9")), Platform("linux", "arm64", "v8"))


def test_newer_arm_runs_older_variant_nearest_first() -> None:
    index = index_of(entry(1, "arm", "v5"), entry(2, "arm", "v6"))
    assert select_platform(index, Platform("linux", "arm", "v7")).digest == dg(2)
    with pytest.raises(NotFoundError):
        select_platform(index_of(entry(1, "arm", "v7")), Platform("linux", "arm", "v6"))


def test_amd64_ignores_variant_but_prefers_an_exact_one() -> None:
    index = index_of(entry(1, "amd64", "v3"), entry(2, "amd64"))
    assert select_platform(index, Platform("linux", "amd64")).digest == dg(2)
    assert select_platform(index, Platform("linux", "amd64", "v3")).digest == dg(1)
    assert select_platform(index_of(entry(7, "amd64", "v2")), host_amd64()).digest == dg(7)


def host_amd64() -> Platform:
    return Platform("linux", "amd64")


def test_first_of_equal_entries_wins() -> None:
    index = index_of(entry(1, "amd64"), entry(2, "amd64"))
    assert select_platform(index, Platform("linux", "amd64")).digest == dg(1)


def test_os_must_match() -> None:
    with pytest.raises(NotFoundError):
        select_platform(index_of(entry(1, "amd64", os_name="windows")), host_amd64())


def test_no_match_lists_available_platforms() -> None:
    with pytest.raises(NotFoundError) as info:
        select_platform(index_of(*MULTI), Platform("linux", "s390x"))
    message = info.value.message
    assert "linux/s390x" in message
    for shown in ("linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64/v8", "linux/ppc64le"):
        assert shown in message
    assert "unknown" not in message
    assert info.value.hint is not None and "--platform" in info.value.hint


def test_entries_that_are_not_manifests_are_skipped() -> None:
    nested = entry(1, "amd64")
    nested["mediaType"] = m.MT_OCI_INDEX
    index = index_of(nested, entry(2, "amd64"))
    assert select_platform(index, host_amd64()).digest == dg(2)


@pytest.mark.parametrize(
    ("text", "platform"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        ("linux/arm64", Platform("linux", "arm64", "v8")),
        ("Linux/AArch64", Platform("linux", "arm64", "v8")),
        ("linux/arm/7", Platform("linux", "arm", "v7")),
        ("linux/armhf", Platform("linux", "arm", "v7")),
        ("linux/armel", Platform("linux", "arm", "v6")),
        ("linux/i386", Platform("linux", "386")),
        ("linux/amd64/v1", Platform("linux", "amd64")),
        ("linux/amd64/v3", Platform("linux", "amd64", "v3")),
    ],
)
def test_parse_platform(text: str, platform: Platform) -> None:
    assert parse_platform(text) == platform


@pytest.mark.parametrize("text", ["", "linux", "linux/", "/amd64", "linux/arm64/v8/x", "a//b"])
def test_parse_platform_refuses(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_platform(text)
    assert info.value.hint is not None and "linux/arm64/v8" in info.value.hint


def test_platform_str() -> None:
    assert str(Platform("linux", "arm64", "v8")) == "linux/arm64/v8"
    assert str(Platform("linux", "amd64")) == "linux/amd64"


@pytest.mark.parametrize(
    ("machine", "platform"),
    [
        ("x86_64", Platform("linux", "amd64")),
        ("aarch64", Platform("linux", "arm64", "v8")),
        ("armv7l", Platform("linux", "arm", "v7")),
        ("armv6l", Platform("linux", "arm", "v6")),
        ("s390x", Platform("linux", "s390x")),
        ("riscv64", Platform("linux", "riscv64")),
    ],
)
def test_host_platform(monkeypatch: pytest.MonkeyPatch, machine: str, platform: Platform) -> None:
    fake = os.uname_result(("Linux", "host", "6.1", "#1", machine))
    monkeypatch.setattr(os, "uname", lambda: fake)
    assert host_platform() == platform


# ---- image config -------------------------------------------------------------------------

CONFIG = {
    "created": "2024-01-01T00:00:00Z",
    "author": "someone",
    "architecture": "arm64",
    "variant": "v8",
    "os": "linux",
    "config": {
        "Env": ["PATH=/usr/bin:/bin", "A=b"],
        "Cmd": ["httpd", "-f"],
        "Entrypoint": ["/entry.sh"],
        "WorkingDir": "/srv",
        "User": "1000:1000",
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}},
        "Labels": {"org.example": "yes"},
        "StopSignal": "SIGQUIT",
        "Healthcheck": {
            "Test": ["CMD-SHELL", "true"],
            "Interval": 30_000_000_000,
            "Timeout": 5_000_000_000,
            "Retries": 3,
        },
    },
    "rootfs": {"type": "layers", "diff_ids": [dg(20), dg(21)]},
    "history": [
        {"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs /"},
        {"created_by": "ENV A=b", "empty_layer": True, "comment": "buildkit"},
        {"created_by": "COPY x /", "author": "me"},
    ],
}


def test_parse_image_config() -> None:
    data = raw(CONFIG)
    config = parse_image_config(data)
    assert config.platform == Platform("linux", "arm64", "v8")
    assert config.created == "2024-01-01T00:00:00Z" and config.author == "someone"
    c = config.config
    assert c.env == ("PATH=/usr/bin:/bin", "A=b")
    assert c.cmd == ("httpd", "-f") and c.entrypoint == ("/entry.sh",)
    assert c.working_dir == "/srv" and c.user == "1000:1000"
    assert c.exposed_ports == ("53/udp", "80/tcp")
    assert c.volumes == ("/data",)
    assert c.labels == {"org.example": "yes"}
    assert c.stop_signal == "SIGQUIT"
    assert c.healthcheck is not None
    assert c.healthcheck.test == ("CMD-SHELL", "true")
    assert (c.healthcheck.interval, c.healthcheck.timeout, c.healthcheck.retries) == (
        30_000_000_000,
        5_000_000_000,
        3,
    )
    assert config.diff_ids == (dg(20), dg(21))
    assert [h.empty_layer for h in config.history] == [False, True, False]
    assert config.history[1].comment == "buildkit" and config.history[2].author == "me"
    assert config.raw == data
    assert config.digest == "sha256:" + hashlib.sha256(data).hexdigest()


def test_minimal_config_has_empty_defaults() -> None:
    config = parse_image_config(raw({"os": "linux", "architecture": "amd64", "rootfs": {}}))
    assert config.config.cmd is None and config.config.entrypoint is None
    assert config.config.env == () and config.config.healthcheck is None
    assert config.diff_ids == () and config.history == ()
    assert config.variant is None


def test_null_versus_empty_cmd() -> None:
    explicit = parse_image_config(raw({"config": {"Cmd": [], "Entrypoint": None}}))
    assert explicit.config.cmd == () and explicit.config.entrypoint is None


@pytest.mark.parametrize(
    "doc",
    [
        {"config": {"Env": "PATH=/bin"}},
        {"config": {"Cmd": [1]}},
        {"config": {"Labels": {"a": 1}}},
        {"rootfs": {"diff_ids": ["sha256:zz"]}},
        {"history": ["x"]},
        {"config": {"Healthcheck": {"Interval": "30s"}}},
        {"os": 1},
    ],
)
def test_bad_configs_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(InvalidManifestError):
        parse_image_config(raw(doc))


def test_check_config_counts_layers() -> None:
    parsed = parse_manifest(raw(manifest_doc()), m.MT_OCI_MANIFEST)
    assert isinstance(parsed, ImageManifest)
    check_config(parsed, parse_image_config(raw(CONFIG)))  # 2 layers, 2 diff_ids
    one = {**CONFIG, "rootfs": {"type": "layers", "diff_ids": [dg(20)]}}
    with pytest.raises(InvalidManifestError, match="2 layers"):
        check_config(parsed, parse_image_config(raw(one)))
