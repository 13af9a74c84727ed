"""``/commit``'s query as commit options and ``changes``' kinds as docker's numbers."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from rctlbase.errors import UsageError
from rootless.api.http import Reply, Request
from rootless.api.layers import changes, commit
from rootless.models import CommitOptions, ContainerChange


class Image:
    id = "sha256:" + "e" * 64


class FakeEngine:
    def __init__(self) -> None:
        self.committed: list[CommitOptions] = []

    def diff(self, ref: str) -> list[ContainerChange]:
        return [
            ContainerChange("A", "/a"),
            ContainerChange("C", "/etc"),
            ContainerChange("D", "/d"),
        ]

    def commit(self, options: CommitOptions) -> Image:
        self.committed.append(options)
        return Image()


class FakeApi:
    def __init__(self) -> None:
        self.eng = FakeEngine()

    def engine(self) -> FakeEngine:
        return self.eng


def test_changes_kinds_are_dockers_numbers() -> None:
    reply = changes(cast(Any, FakeApi()), Request("GET", "/", params={"id": "c"}))
    assert isinstance(reply, Reply)
    assert json.loads(reply.body) == [
        {"Path": "/a", "Kind": 1}, {"Path": "/etc", "Kind": 0}, {"Path": "/d", "Kind": 2},
    ]  # fmt: skip


def test_commit_query_becomes_options() -> None:
    api = FakeApi()
    query = {
        "container": ("web",),
        "repo": ("mine/img",),
        "tag": ("2",),
        "comment": ("kept",),
        "author": ("me",),
        "pause": ("0",),
        "changes": ("ENV A=1", 'CMD ["sh"]\nEXPOSE 80\n'),
    }
    reply = commit(cast(Any, api), Request("POST", "/commit", query))
    assert isinstance(reply, Reply) and reply.status == 201
    assert json.loads(reply.body) == {"Id": Image.id}
    assert api.eng.committed == [
        CommitOptions(
            "web", "mine/img:2", ("ENV A=1", 'CMD ["sh"]', "EXPOSE 80"), "kept", "me", False
        )
    ]


def test_commit_without_repo_names_nothing_and_pauses() -> None:
    api = FakeApi()
    commit(cast(Any, api), Request("POST", "/commit", {"container": ("web",)}))
    assert api.eng.committed == [CommitOptions("web")]
    with pytest.raises(UsageError):
        commit(cast(Any, api), Request("POST", "/commit"))
