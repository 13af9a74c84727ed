"""``rctl images --filter`` and ``image prune --filter`` over a real store (docker's keys,
labels read from the image configs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rctlbase.errors import UsageError
from rootless.images.layerjob import Jobs
from rootless.images.service import ImageService
from rootless.images.store import ImageRecord, Store


def add(store: Store, name: str | None, created: str, labels: dict[str, str]) -> str:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {"Labels": labels, "Cmd": [name or "x"]},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    image_id = store.write_blob(json.dumps(config).encode())
    record = ImageRecord(id=image_id, manifest_digest=image_id, manifest_media_type="m",
                         layers=(), created=created)  # fmt: skip
    store.add_image(record, name, None)
    return image_id


@pytest.fixture
def service(tmp_path: Path) -> ImageService:
    store = Store(tmp_path / "rctl")
    store.ensure()
    add(store, "docker.io/library/busybox:latest", "2024-01-01T00:00:00Z", {"org": "x"})
    add(store, "quay.io/team/app:v1", "2025-01-01T00:00:00.500000000Z", {})
    add(store, None, "2026-01-01T00:00:00Z", {"org": "y"})
    jobs: list[Jobs] = []
    return ImageService(store, ("docker.io",), jobs.append)


def names(service: ImageService, *filters: str) -> list[str]:
    rows = service.summaries(filters=filters)
    return sorted(f"{r.repository}:{r.tag}" for r in rows)


def test_images_filters(service: ImageService) -> None:
    everything = ["<none>:<none>", "docker.io/library/busybox:latest", "quay.io/team/app:v1"]
    assert names(service) == everything
    assert names(service, "dangling=true") == ["<none>:<none>"]
    assert names(service, "reference=busybox") == ["docker.io/library/busybox:latest"]
    assert names(service, "reference=*/*/app:*") == ["quay.io/team/app:v1"]
    assert names(service, "label=org") == ["<none>:<none>", "docker.io/library/busybox:latest"]
    assert names(service, "label=org=x", "dangling=false") == ["docker.io/library/busybox:latest"]
    assert names(service, "before=quay.io/team/app:v1") == ["docker.io/library/busybox:latest"]
    assert names(service, "since=busybox") == ["<none>:<none>", "quay.io/team/app:v1"]
    assert names(service, "until=2025-06-01T00:00:00Z") == everything[1:]
    with pytest.raises(UsageError, match="invalid filter 'colour'"):
        names(service, "colour=red")


def test_image_prune_filters(service: ImageService) -> None:
    with pytest.raises(UsageError, match="invalid filter 'reference'"):
        service.prune(filters=["reference=x"])
    assert service.prune(filters=["label!=org"]) == []  # the only dangling one has org
    assert service.prune(filters=["until=2025-06-01T00:00:00Z"]) == []  # made after
    # dangling=false is -a: every unused image, here the ones without the label
    assert len(service.prune(filters=["dangling=false", "label!=org"])) == 1
    assert names(service) == ["<none>:<none>", "docker.io/library/busybox:latest"]
    assert len(service.prune(filters=["label=org=y"])) == 1
    assert names(service) == ["docker.io/library/busybox:latest"]


def test_image_inspect_created_is_go_s_rfc3339(service: ImageService) -> None:
    assert service.inspect("quay.io/team/app:v1").to_docker()["Created"] == "2025-01-01T00:00:00.5Z"
