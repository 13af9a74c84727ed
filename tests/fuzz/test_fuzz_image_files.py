"""Fuzzing of what rctl reads from an image besides its config's JSON: ExposedPorts keys
(``run -P``) and the text of /etc/passwd and /etc/group (``--user NAME``). Hostile input:
accepted or refused with an RctlError, never a traceback."""

from __future__ import annotations

import pytest
from fuzzkit import accepted_or_refused
from hypothesis import given
from hypothesis import strategies as st

from rootless.containers.ports import parse_exposed
from rootless.containers.spec import parse_user, resolve_user

FIELDS = st.sampled_from(
    ["root", "x", "0", "1000", "²", "", "-1", "/", "/bin/sh", "a,b", "4294967296"]
)
LINES = st.lists(FIELDS, min_size=3, max_size=8).map(":".join)
FILE = st.lists(LINES, max_size=6).map("\n".join)
USERS = st.sampled_from(["root", "0", "1000", "1000:1000", "root:root", "x:0", "0:x"])


@pytest.mark.parametrize(
    ("passwd", "group"),
    [
        ("root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\nwheel:x:²:root\n"),
        ("root:x:²:0:root:/root:/bin/sh\n", "root:x:0:\n"),
    ],
)
def test_image_files_corpus(passwd: str, group: str) -> None:
    accepted_or_refused(resolve_user, parse_user("root"), passwd, group)


def test_exposed_corpus() -> None:
    assert parse_exposed(["80/tcp", "²/tcp", "1-²", "53/udp", "x/sctp"]) == [
        ("tcp", 80),
        ("udp", 53),
    ]


@given(USERS, FILE, FILE)
def test_fuzz_passwd_group(user: str, passwd: str, group: str) -> None:
    accepted_or_refused(resolve_user, parse_user(user), passwd, group)


@given(st.lists(st.text(alphabet="0123456789²-/tcpudsx", max_size=12), max_size=5))
def test_fuzz_exposed(keys: list[str]) -> None:
    for protocol, port in parse_exposed(keys):
        assert protocol in ("tcp", "udp") and isinstance(port, int)
