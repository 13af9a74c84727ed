"""The image name a container records: the user's own reference, not another name of the image."""

from __future__ import annotations

from rootless.containers.create import shown_image_name

NAMES = ("127.0.0.1:5000/test/busybox:latest", "127.0.0.1:5000/vmservers/app:latest")


def test_the_requested_name_wins_over_the_first_name_of_the_image() -> None:
    # auto-update followed test/busybox for a container made from vmservers/app
    assert (
        shown_image_name("127.0.0.1:5000/vmservers/app", NAMES, "sha256:x", ("docker.io",))
        == NAMES[1]
    )


def test_short_names_go_through_the_search_registries() -> None:
    assert shown_image_name("vmservers/app", NAMES, "x", ("127.0.0.1:5000",)) == NAMES[1]


def test_without_a_match_the_first_name_or_the_id() -> None:
    assert shown_image_name("sha256:abc", NAMES, "x", ("docker.io",)) == NAMES[0]
    assert shown_image_name("Bad Name!", (), "sha256:abc", ("docker.io",)) == "sha256:abc"
