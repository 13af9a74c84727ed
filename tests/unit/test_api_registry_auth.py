"""``X-Registry-Auth``: docker's base64url auth config, per request, to pull and push."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, cast

import pytest

from rctlbase.errors import UsageError
from rootless.api.http import Request, Stream
from rootless.api.images import create, registry_auth
from rootless.models import PullEvent, PullOptions, RegistryAuth


def header(value: object, urlsafe: bool = True, pad: bool = True) -> dict[str, str]:
    raw = json.dumps(value).encode()
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return {"x-registry-auth": text if pad else text.rstrip("=")}


@pytest.mark.parametrize("urlsafe", [True, False])
@pytest.mark.parametrize("pad", [True, False])
def test_credentials_are_read(urlsafe: bool, pad: bool) -> None:
    # "?>?" encodes differently in base64url and plain base64 ("Pz4_" / "Pz4/").
    given = {"username": "me", "password": "s3cret?>?", "serveraddress": "r.example"}
    found = registry_auth(Request("POST", "/", headers=header(given, urlsafe, pad)))
    assert found == RegistryAuth("me", "s3cret?>?")
    assert "s3cret" not in repr(found)


def test_the_combined_auth_field_is_read() -> None:
    combined = base64.b64encode(b"me:pa:ss").decode()
    found = registry_auth(Request("POST", "/", headers=header({"auth": combined})))
    assert found == RegistryAuth("me", "pa:ss")


@pytest.mark.parametrize("value", [{}, {"username": ""}, {"identitytoken": "t"}])
def test_no_credentials_is_anonymous(value: object) -> None:
    assert registry_auth(Request("POST", "/", headers=header(value))) is None
    assert registry_auth(Request("POST", "/")) is None


@pytest.mark.parametrize(
    "raw",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(json.dumps({"username": "me", "password": 5}).encode()).decode(),
        base64.b64encode(json.dumps({"auth": "%%%"}).encode()).decode(),
    ],
)
def test_malformed_header_is_the_clients_error(raw: str) -> None:
    with pytest.raises(UsageError) as caught:
        registry_auth(Request("POST", "/", headers={"x-registry-auth": raw}))
    assert caught.value.http_status == 400


class FakeEngine:
    def __init__(self) -> None:
        self.pulled: list[PullOptions] = []

    def pull(self, options: PullOptions, events: Callable[[PullEvent], None]) -> Any:
        self.pulled.append(options)
        raise UsageError("stop here")


class FakeApi:
    def __init__(self) -> None:
        self.eng = FakeEngine()

    def engine(self) -> FakeEngine:
        return self.eng


def test_pull_passes_the_credentials_on() -> None:
    api = FakeApi()
    given = header({"username": "me", "password": "pw"})
    reply = create(cast(Any, api), Request("POST", "/", {"fromImage": ("x",)}, headers=given))
    assert isinstance(reply, Stream)
    assert "stop here" in b"".join(reply.chunks).decode()
    assert api.eng.pulled[0].auth == RegistryAuth("me", "pw")
    with pytest.raises(UsageError):
        create(cast(Any, api), Request("POST", "/", {"fromImage": ("x",)},
                                       headers={"x-registry-auth": "%%"}))  # fmt: skip
