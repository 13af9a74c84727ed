"""Fuzzing of the values of run/create/pull/... flags: each parser accepts a string or
refuses it with one line (an RctlError), never a traceback.

Inputs are drawn two ways: any text, and concatenations of the tokens of each flag's own
grammar (so that most inputs get past the first check). The seeds of corpus/NAME.txt are
replayed first, every run.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from functools import partial

import pytest
from fuzzkit import accepted_or_refused, corpus_lines
from hypothesis import given
from hypothesis import strategies as st

from netns import ipam
from rootless import filters
from rootless.containers import copy, health, netmode, ports, spec, timefmt
from rootless.images import archive, manifest, reference
from rootless.networks import service as networks
from rootless.volumes import parse as volumes
from rootless.volumes import service as volumes_service

NUMBERS = ["0", "1", "80", "65535", "65536", "-1", "1.5", "007", "99999999999999999999", "²"]
SEP = [":", "/", ",", "=", "-", ".", " ", "@", "[", "]", "\x00", "\n", "..", "%"]

# name → (parser, tokens of its grammar)
NOW = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)
PARSERS: dict[str, tuple[Callable[[str], object], list[str]]] = {
    "publish": (ports.parse_publish, ["127.0.0.1", "[::1]", "::", "tcp", "udp", "sctp", "8080"]),
    "volume": (
        volumes.parse_volume,
        [
            "/data",
            "./rel",
            "vol",
            "ro",
            "rw",
            "z",
            "Z",
            "U",
            "nocopy",
            "rprivate",
            "O",
            "idmap",
            "~",
        ],
    ),
    "mount": (
        volumes.parse_mount,
        [
            "type=bind",
            "type=volume",
            "type=tmpfs",
            "type=image",
            "source=",
            "src=",
            "target=",
            "dst=",
            "/data",
            "readonly",
            "ro=",
            "true",
            "false",
            "tmpfs-size=",
            "tmpfs-mode=",
            "bind-propagation=",
            "volume-opt=",
            "consistency=",
        ],
    ),
    "volumes-from": (volumes.parse_volumes_from, ["web", "ro", "rw", "z"]),
    "tmpfs": (
        spec.parse_tmpfs,
        [
            "/run",
            "/",
            "rw",
            "ro",
            "size=",
            "mode=",
            "uid=",
            "gid=",
            "nr_inodes=",
            "64m",
            "1777",
            "noexec",
            "exec",
            "k",
            "%",
        ],
    ),
    "memory": (spec.parse_memory, ["b", "k", "m", "g", "t", "p", "kb", "mib", "i", "e", "inf"]),
    "memory-swap": (spec.parse_memory_swap, ["b", "k", "m", "g", "-1", "inf"]),
    "cpus": (spec.parse_cpus, ["0.5", "inf", "nan", "1e9", "e"]),
    "pids-limit": (spec.parse_pids_limit, ["max", "-1", "0"]),
    "restart": (spec.parse_restart, ["no", "always", "on-failure", "unless-stopped"]),
    "signal": (partial(spec.parse_signal), ["SIG", "TERM", "KILL", "RTMIN", "RTMAX", "+", "64"]),
    "user": (spec.parse_user, ["root", "nobody", "1000", "4294967296"]),
    "label": (spec.parse_label, ["a", "com.example", "="]),
    "cap-add": (spec.parse_capability, ["CAP_", "NET_ADMIN", "ALL", "sys_admin"]),
    "entrypoint": (spec.parse_entrypoint, ['["sh"]', "[", '"', "sh -c", "'"]),
    "userns": (spec.parse_userns, ["keep-id", "host", "auto", "uid=", "gid=", "nomap", "private"]),
    "add-host": (spec.parse_add_host, ["host", "host-gateway", "10.0.0.1", "::1", "[::1]"]),
    "dns": (spec.parse_dns, ["8.8.8.8", "::1", "fe80::1%eth0", "256.1.1.1"]),
    "health-duration": (health.parse_duration, ["h", "m", "s", "ms", "us", "1.5", ".5"]),
    "since": (
        partial(timefmt.parse_time, flag="--since"),
        ["2024-01-31T10:00:00", "Z", "+00:00", "T", "h", "m", "s", "1e400", "nan"],
    ),
    "network": (
        netmode.parse_network,
        [
            "none",
            "host",
            "bridge",
            "slirp4netns",
            "pasta",
            "container",
            "ns",
            "port_handler=",
            "rctl",
            "allow_host_loopback=",
            "mtu=",
            "cidr=",
            "10.0.2.0/24",
            "enable_ipv6=",
            "outbound_addr=",
        ],
    ),
    "dns-search": (netmode.parse_dns_search, ["example.com", "."]),
    "dns-option": (netmode.parse_dns_option, ["ndots:", "timeout:", "rotate"]),
    "image-reference": (
        reference.parse_reference,
        [
            "docker.io",
            "localhost",
            "library",
            "busybox",
            "latest",
            "sha256",
            "a" * 64,
            "A",
            "_",
            "__",
            "5000",
        ],
    ),
    "image-candidates": (reference.candidates, ["docker.io", "busybox", "latest", "sha256:"]),
    "platform": (manifest.parse_platform, ["linux", "amd64", "arm64", "arm", "v8", "v7"]),
    "cp-path": (copy.parse_copy_path, ["web", "/etc/hosts", "./x"]),
    "import-change": (
        lambda text: archive.parse_change(text, {}),
        [
            "CMD",
            "ENTRYPOINT",
            "ENV",
            "WORKDIR",
            "USER",
            "EXPOSE",
            "LABEL",
            "VOLUME",
            "STOPSIGNAL",
            '["sh"]',
            "a=b",
            "80/tcp",
            "/data",
        ],
    ),
    "subnet": (ipam.parse_subnet, ["10.0.0.0", "/24", "/33", "/0", "::1/64", "256"]),
    "link": (networks.parse_link, ["web", "db", "alias"]),
    "network-filter": (
        lambda text: filters.network_matcher(
            filters.parse_filters([text], filters.NETWORK_KEYS), now=NOW
        ),
        ["name", "id", "label", "driver", "type", "=", "bridge", "custom", "builtin"],
    ),
    "volume-filter": (
        lambda text: filters.volume_matcher(filters.parse_filters([text], filters.VOLUME_KEYS)),
        ["name", "label", "dangling", "=", "true", "false"],
    ),
    "prune-filter": (
        lambda text: filters.prune_matcher(
            filters.parse_filters([text], filters.CONTAINER_PRUNE_KEYS), NOW
        ),
        ["until", "label", "label!", "=", "24h", "1h30m", "2026-12-07T16:04:22Z", "1e400"],
    ),
    "volume-opt": (
        lambda text: volumes_service.parse_volume_options([text]),
        ["o", "uid", "gid", "=", "type", "device", "tmpfs"],
    ),
}


def grammar(tokens: list[str]) -> st.SearchStrategy[str]:
    words = st.sampled_from(tokens + NUMBERS + SEP)
    return st.lists(words, max_size=12).map("".join)


def inputs(name: str) -> st.SearchStrategy[str]:
    return st.one_of(grammar(PARSERS[name][1]), st.text(max_size=60))


def _cases() -> list[tuple[str, str]]:
    return [(name, line) for name in PARSERS for line in corpus_lines(f"flags/{name}")]


@pytest.mark.parametrize(("name", "value"), _cases())
def test_corpus(name: str, value: str) -> None:
    accepted_or_refused(PARSERS[name][0], value)


def _property(name: str) -> Callable[[], None]:
    @given(value=inputs(name))
    def check(value: str) -> None:
        accepted_or_refused(PARSERS[name][0], value)

    return check


for _name in PARSERS:
    globals()[f"test_fuzz_{_name.replace('-', '_')}"] = _property(_name)


def test_kill_refuses_a_signal_int_cannot_read(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``rctl kill -s ²``: a bad-flag error (exit 125), not a ValueError traceback."""
    from rootless.cli import main  # noqa: PLC0415 - registers every command

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["kill", "--signal", "²", "nosuch"]) == 125


def test_errors_print_as_one_line_whatever_they_quote(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """A quoted newline or escape sequence is shown escaped: no forged line, no terminal
    control (as a registry's media type or an image's name could carry)."""
    from rootless.cli import main  # noqa: PLC0415 - registers every command

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["pull", "busybox:\n\x1b[2JError: forged"]) == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "\x1b" not in err, err
    assert err.startswith("Error: ") and "\\n\\x1b[2JError: forged" in err
