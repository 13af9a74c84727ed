"""Credential files (containers auth.json, docker config.json) and auth challenges."""

from __future__ import annotations

import base64
import json
import logging
import stat
from pathlib import Path

import pytest

from rctlbase.errors import ExternalError, HostError
from rootless.images.auth import (
    Challenge,
    Credentials,
    RegistryAuth,
    auth_file_paths,
    lookup,
    normalize_registry,
    parse_challenge,
    remove_credentials,
    store_credentials,
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A home and runtime dir of our own: the real ones are never read."""
    (tmp_path / "run").mkdir()
    return {"HOME": str(tmp_path / "home"), "XDG_RUNTIME_DIR": str(tmp_path / "run")}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_store_then_lookup(env: dict[str, str]) -> None:
    path = store_credentials("quay.io", "alice", "pa:ss", env=env)
    assert path == Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    assert json.loads(path.read_text()) == {"auths": {"quay.io": {"auth": b64("alice:pa:ss")}}}
    found = lookup("quay.io", env=env)
    assert found == Credentials("alice", "pa:ss", path)
    assert lookup("docker.io", env=env) is None


def test_store_makes_owner_only_file_and_directory(env: dict[str, str]) -> None:
    path = store_credentials("quay.io", "alice", "secret", env=env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["auth.json"]  # no temp left


def test_store_keeps_other_entries_and_keys(env: dict[str, str]) -> None:
    path = Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    write_json(
        path,
        {
            "auths": {"ghcr.io": {"auth": b64("x:y")}, "https://quay.io": {"auth": b64("old:old")}},
            "credHelpers": {"gcr.io": "gcloud"},
        },
    )
    store_credentials("quay.io", "alice", "new", env=env)
    data = json.loads(path.read_text())
    assert data["auths"] == {"ghcr.io": {"auth": b64("x:y")}, "quay.io": {"auth": b64("alice:new")}}
    assert data["credHelpers"] == {"gcr.io": "gcloud"}


def test_remove_credentials(env: dict[str, str]) -> None:
    store_credentials("quay.io", "alice", "secret", env=env)
    store_credentials("ghcr.io", "bob", "secret", env=env)
    assert remove_credentials("quay.io", env=env)
    assert not remove_credentials("quay.io", env=env)
    assert lookup("quay.io", env=env) is None
    assert lookup("ghcr.io", env=env) is not None


def test_remove_without_a_file(env: dict[str, str]) -> None:
    assert not remove_credentials("quay.io", env=env)


def test_registry_auth_file_is_the_only_one_used(env: dict[str, str], tmp_path: Path) -> None:
    store_credentials("quay.io", "runtime", "pw", env=env)
    custom = tmp_path / "custom.json"
    env["REGISTRY_AUTH_FILE"] = str(custom)
    assert auth_file_paths(env) == [custom]
    assert lookup("quay.io", env=env) is None
    assert store_credentials("quay.io", "custom", "pw", env=env) == custom
    found = lookup("quay.io", env=env)
    assert found is not None
    assert found.username == "custom"


def test_read_order_runtime_then_config_then_docker(env: dict[str, str]) -> None:
    home = Path(env["HOME"])
    docker = home / ".docker" / "config.json"
    config = home / ".config" / "containers" / "auth.json"
    write_json(docker, {"auths": {"quay.io": {"auth": b64("docker:pw")}}})
    assert getattr(lookup("quay.io", env=env), "username", None) == "docker"
    write_json(config, {"auths": {"quay.io": {"auth": b64("config:pw")}}})
    assert getattr(lookup("quay.io", env=env), "username", None) == "config"
    store_credentials("quay.io", "runtime", "pw", env=env)
    assert getattr(lookup("quay.io", env=env), "username", None) == "runtime"


def test_docker_hub_legacy_key(env: dict[str, str]) -> None:
    docker = Path(env["HOME"]) / ".docker" / "config.json"
    write_json(docker, {"auths": {"https://index.docker.io/v1/": {"auth": b64("hubuser:pw")}}})
    found = lookup("docker.io", env=env)
    assert found == Credentials("hubuser", "pw", docker)


def test_docker_config_env_variable(env: dict[str, str], tmp_path: Path) -> None:
    write_json(tmp_path / "dc" / "config.json", {"auths": {"ghcr.io": {"auth": b64("u:p")}}})
    env["DOCKER_CONFIG"] = str(tmp_path / "dc")
    assert lookup("ghcr.io", env=env) == Credentials("u", "p", tmp_path / "dc" / "config.json")


def test_credential_helpers_are_skipped(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    docker = Path(env["HOME"]) / ".docker" / "config.json"
    write_json(docker, {"auths": {"docker.io": {}}, "credsStore": "desktop"})
    with caplog.at_level(logging.DEBUG, logger="rctl.images.auth"):
        assert lookup("docker.io", env=env) is None
    assert "credential helpers are not run" in caplog.text


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe{}", b"[" * 100_000])
def test_corrupt_file_names_itself(env: dict[str, str], content: bytes) -> None:
    path = Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(HostError, match=str(path)) as info:
        lookup("quay.io", env=env)
    assert info.value.hint == f"fix or remove {path}"


def test_bad_base64_asks_for_a_new_login(env: dict[str, str]) -> None:
    path = Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    write_json(path, {"auths": {"quay.io": {"auth": "!!!"}}})
    with pytest.raises(HostError) as info:
        lookup("quay.io", env=env)
    assert info.value.hint == "log in again: rctl login quay.io"


def test_no_runtime_dir_to_write_to(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="XDG_RUNTIME_DIR"):
        store_credentials("quay.io", "a", "b", env={"HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("http://localhost:5000", "localhost:5000"),
        ("Quay.IO", "quay.io"),
        ("quay.io/team", "quay.io/team"),
        ("127.0.0.1:5000/", "127.0.0.1:5000"),
    ],
)
def test_normalize_registry(key: str, registry: str) -> None:
    assert normalize_registry(key) == registry


def test_password_never_prints() -> None:
    creds = Credentials("alice", "hunter2")
    assert "hunter2" not in repr(creds)
    assert creds.basic_authorization() == "Basic " + b64("alice:hunter2")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/alpine:pull,push"',
            Challenge(
                "bearer",
                "https://auth.docker.io/token",
                "registry.docker.io",
                "repository:library/alpine:pull,push",
            ),
        ),
        ('Basic realm="Registry Realm"', Challenge("basic", "Registry Realm")),
        ("Basic", Challenge("basic")),
        ('bearer realm=https://r/t, service = "s\\"q"', Challenge("bearer", "https://r/t", 's"q')),
        ('Bearer realm="https://a/t", Basic realm="x"', Challenge("bearer", "https://a/t")),
        ("", None),
    ],
)
def test_parse_challenge(header: str, expected: Challenge | None) -> None:
    assert parse_challenge(header) == expected


def test_token_request_carries_both_scopes_and_credentials() -> None:
    auth = RegistryAuth("quay.io", Credentials("alice", "pw"), insecure=False)
    challenge = Challenge(
        "bearer", "https://auth.quay.io/token?x=1", "quay.io", "repository:a:pull"
    )
    url, headers = auth.token_request(challenge, "repository:a:pull,push")
    assert url == (
        "https://auth.quay.io/token?x=1&service=quay.io"
        "&scope=repository%3Aa%3Apull&scope=repository%3Aa%3Apull%2Cpush"
    )
    assert headers["Authorization"] == "Basic " + b64("alice:pw")


def test_http_token_realm_only_for_insecure_registries() -> None:
    challenge = Challenge("bearer", "http://auth.example/token")
    with pytest.raises(ExternalError, match="unusable token server"):
        RegistryAuth("example.com", None, insecure=False).token_request(challenge, "")
    url, headers = RegistryAuth("localhost:5000", None, insecure=True).token_request(challenge, "")
    assert url == "http://auth.example/token"
    assert "Authorization" not in headers


def test_tokens_are_cached_per_scope_until_they_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("rootless.images.auth.time.monotonic", lambda: now[0])
    auth = RegistryAuth("quay.io", None, insecure=False)
    auth.store_token("repository:a:pull", b'{"access_token": "t1", "expires_in": 300}', "s")
    auth.store_token("repository:b:pull", b'{"token": "t2"}', "s")  # 60 s by default
    assert auth.authorization("repository:a:pull") == "Bearer t1"
    assert auth.authorization("repository:b:pull") == "Bearer t2"
    assert auth.authorization("repository:c:pull") is None
    now[0] += 56  # within 5 s of the end counts as expired
    assert auth.authorization("repository:a:pull") == "Bearer t1"
    assert auth.authorization("repository:b:pull") is None
    with pytest.raises(ExternalError, match="sent no token"):
        auth.store_token("repository:c:pull", b"{}", "s")


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"token": "t", "expires_in": 1' + b"0" * 400 + b"}", b'"t"', b"\xff"],
)
def test_an_unreadable_token_answer_is_one_error(body: bytes) -> None:
    auth = RegistryAuth("quay.io", None, insecure=False)
    with pytest.raises(ExternalError, match="unreadable answer"):
        auth.store_token("repository:a:pull", body, "s")
