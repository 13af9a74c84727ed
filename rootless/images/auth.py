"""Registry credentials (containers ``auth.json``) and registry authentication challenges.

Credentials live in the format of containers-auth.json(5), shared with podman, skopeo and
buildah::

    {"auths": {"quay.io": {"auth": "<base64 of user:password>"}}}

Files are read in podman's order (containers/image ``pkg/docker/config``):

1. ``$REGISTRY_AUTH_FILE`` when set, and then *only* that file (it is podman's ``--authfile``);
2. ``$XDG_RUNTIME_DIR/containers/auth.json`` (where ``rctl login`` writes);
3. ``$XDG_CONFIG_HOME/containers/auth.json`` (default ``~/.config``);
4. docker's ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``), read only.
   Its ``credsStore``/``credHelpers`` (external credential programs) are not run: they are
   logged at debug level and skipped.

Keys are registry host names; docker's file may spell Docker Hub as
``https://index.docker.io/v1/``, which :func:`normalize_registry` turns into ``docker.io``.
Writes are atomic (a temp file in the same directory, then rename) with mode 0600 in a
directory of mode 0700: the file holds passwords in clear base64.

The second half is what the registry client needs to authenticate: parsing
``WWW-Authenticate`` challenges (RFC 7235 §4.1) and :class:`RegistryAuth`, the state of one
registry's authentication (Basic, or Docker's token auth: ``Bearer realm=...,service=...,
scope=...`` answered by a token from the realm, cached per scope until it expires). The
HTTP requests themselves stay in :mod:`rootless.images.registry`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from rctlbase.errors import ExternalError, HostError

log = logging.getLogger("rctl.images.auth")


class AuthenticationError(ExternalError):
    """The registry wants credentials we don't have, or refused the ones we sent."""


_AUTH_SERVER_HINT = "the token server misbehaves: try later, or run with --debug to see its answer"
DOCKER_HUB = "docker.io"
# Host names that mean Docker Hub in credential files and image references.
DOCKER_HUB_ALIASES = frozenset(
    {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password (or token) for one registry; the password never prints."""

    username: str
    password: str = field(repr=False)
    source: Path | None = None  # the file they came from, for error messages

    def basic_authorization(self) -> str:
        """The value of an ``Authorization: Basic`` header (RFC 7617)."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def normalize_registry(key: str) -> str:
    """The registry host a credential-file key or a user's argument names.

    Docker's legacy keys are URLs (``https://index.docker.io/v1/``): the scheme and path go.
    A key without a scheme keeps its path, since podman allows ``registry/namespace`` keys.
    """
    name = key.strip().rstrip("/")
    if "://" in name:
        name = name.split("://", 1)[1].split("/", 1)[0]
    host, sep, rest = name.partition("/")
    host = host.lower()
    if host in DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    return host + sep + rest


def _home(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def auth_file_paths(env: Mapping[str, str] | None = None) -> list[Path]:
    """The credential files :func:`lookup` reads, in order (see the module docstring)."""
    env = os.environ if env is None else env
    if env.get("REGISTRY_AUTH_FILE"):
        return [Path(env["REGISTRY_AUTH_FILE"])]
    paths = []
    if env.get("XDG_RUNTIME_DIR"):
        paths.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else None
    paths.append((config_home or _home(env) / ".config") / "containers" / "auth.json")
    docker_dir = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else None
    paths.append((docker_dir or _home(env) / ".docker") / "config.json")
    return paths


def auth_file_for_writing(env: Mapping[str, str] | None = None) -> Path:
    """Where ``rctl login`` stores credentials: ``$REGISTRY_AUTH_FILE`` or the runtime dir."""
    env = os.environ if env is None else env
    if env.get("REGISTRY_AUTH_FILE"):
        return Path(env["REGISTRY_AUTH_FILE"])
    if not env.get("XDG_RUNTIME_DIR"):
        raise HostError(
            "XDG_RUNTIME_DIR is not set, so there is no place for auth.json",
            hint="log in through a systemd user session, or set REGISTRY_AUTH_FILE",
        )
    return Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"


def _load(path: Path) -> dict[str, Any] | None:
    """A credential file's JSON object, or None when the file does not exist."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HostError(
            f"cannot read {path}: {exc.strerror}", hint="check the file's permissions"
        ) from exc
    try:
        data = json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, absurd nesting
        raise HostError(f"{path} is not valid JSON: {exc}", hint=f"fix or remove {path}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
        raise HostError(
            f'{path} is not a credential file (no "auths" object)', hint=f"fix or remove {path}"
        )
    return data


def _decode(path: Path, key: str, entry: object) -> Credentials | None:
    """The credentials of one ``auths`` entry; None when it holds none (a helper's stub)."""
    if not isinstance(entry, dict):
        return None
    auth = entry.get("auth")
    if not auth:
        if entry.get("identitytoken"):
            log.debug("%s: identity token for %s ignored (not supported)", path, key)
        return None
    try:
        user, sep, password = base64.b64decode(str(auth), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise HostError(
            f"{path}: the credentials of {key} are not base64 of user:password",
            hint=f"log in again: rctl login {normalize_registry(key)}",
        ) from exc
    if not sep:
        raise HostError(
            f"{path}: the credentials of {key} have no ':' between user and password",
            hint=f"log in again: rctl login {normalize_registry(key)}",
        )
    return Credentials(user, password, path)


def lookup(registry: str, *, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The stored credentials for ``registry`` (a host[:port]), or None for anonymous access."""
    wanted = normalize_registry(registry)
    for path in auth_file_paths(env):
        data = _load(path)
        if data is None:
            continue
        helpers = data.get("credHelpers")
        if data.get("credsStore") or (isinstance(helpers, dict) and wanted in helpers):
            log.debug("%s: credential helpers are not run; only its auths are read", path)
        auths: dict[str, Any] = data.get("auths", {})
        # An exact key wins over a legacy URL key that normalises to the same registry.
        keys = sorted(auths, key=lambda k: k != wanted)
        for key in keys:
            if normalize_registry(key) == wanted:
                found = _decode(path, key, auths[key])
                if found is not None:
                    return found
    return None


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON: mode 0600, parent created with mode 0700."""
    parent = path.parent
    try:
        if not parent.is_dir():
            parent.mkdir(mode=0o700, parents=True)
            parent.chmod(0o700)  # mkdir's mode is filtered by the umask
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise HostError(
            f"cannot write credentials to {path}: {exc.strerror}",
            hint=f"check the permissions of {parent}",
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp makes it 0600
            json.dump(data, out, indent="\t")
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise HostError(
            f"cannot write credentials to {path}: {exc.strerror}",
            hint=f"check the permissions of {parent}",
        ) from exc


def store_credentials(
    registry: str, username: str, password: str, *, env: Mapping[str, str] | None = None
) -> Path:
    """Save credentials for ``registry`` (what ``rctl login`` does); return the file written.

    Other registries' entries and unknown keys of the file are kept.
    """
    path = auth_file_for_writing(env)
    name = normalize_registry(registry)
    data = _load(path) or {}
    auths: dict[str, Any] = data.setdefault("auths", {})
    for key in [k for k in auths if normalize_registry(k) == name]:
        del auths[key]
    auths[name] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode("ascii")}
    _write_atomic(path, data)
    return path


def remove_credentials(registry: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Forget ``registry``'s credentials (``rctl logout``); False when none were stored.

    Only the file :func:`store_credentials` writes changes; docker's file is never modified.
    """
    path = auth_file_for_writing(env)
    data = _load(path)
    if data is None:
        return False
    auths: dict[str, Any] = data.get("auths", {})
    name = normalize_registry(registry)
    keys = [k for k in auths if normalize_registry(k) == name]
    if not keys:
        return False
    for key in keys:
        del auths[key]
    _write_atomic(path, data)
    return True


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme in lower case, and the token-auth params."""

    scheme: str
    realm: str = ""
    service: str = ""
    scope: str = ""


# auth-param = token "=" ( token / quoted-string ), RFC 7235 §2.1; scope values hold commas.
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` value, or None if there is none.

    ``Bearer realm="https://auth.docker.io/token",service="registry.docker.io",
    scope="repository:library/alpine:pull"`` gives a ``bearer`` challenge with those fields.
    """
    match = re.match(r"\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)", header)
    if not match:
        return None
    params: dict[str, str] = {}
    pos = match.end()
    while pos < len(header):
        param = _PARAM.match(header, pos)
        if not param or param.end() == pos:
            break  # a second challenge or junk: the first one is enough for us
        value = param.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.setdefault(param.group(1).lower(), value)
        pos = param.end()
    return Challenge(
        scheme=match.group(1).lower(),
        realm=params.get("realm", ""),
        service=params.get("service", ""),
        scope=params.get("scope", ""),
    )


class RegistryAuth:
    """How one registry client authenticates: Basic once asked for, or bearer tokens by scope.

    Thread-safe. Scopes are the token-auth ones, ``repository:NAME:pull[,push]``.
    """

    def __init__(self, registry: str, credentials: Credentials | None, *, insecure: bool) -> None:
        self.registry = registry
        self.credentials = credentials
        self.insecure = insecure  # an http token realm is acceptable only then
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, monotonic expiry)
        self._basic = False

    def authorization(self, scope: str) -> str | None:
        """The ``Authorization`` header for a request needing ``scope``, if we have one."""
        with self._lock:
            token = self._tokens.get(scope)
            if token and token[1] > time.monotonic():
                return f"Bearer {token[0]}"
        if self._basic and self.credentials:
            return self.credentials.basic_authorization()
        return None

    def can_answer(self, challenge: Challenge) -> bool:
        """Whether retrying after this 401 challenge can change the answer."""
        if challenge.scheme == "basic":
            return self.credentials is not None and not self._basic
        return challenge.scheme == "bearer" and bool(challenge.realm)

    def answer_basic(self) -> None:
        """Send Basic credentials from now on (the registry asked for them)."""
        self._basic = True

    def token_request(self, challenge: Challenge, scope: str) -> tuple[str, dict[str, str]]:
        """The URL and headers that ask a bearer challenge's realm for a token."""
        realm = urlsplit(challenge.realm)
        if realm.scheme != "https" and not (realm.scheme == "http" and self.insecure):
            raise ExternalError(
                f"{self.registry} named an unusable token server {challenge.realm!r}",
                hint="token servers must use https unless the registry is insecure",
            )
        query = [("service", challenge.service)] if challenge.service else []
        # The challenge's scope and the one we'll need next (push after a HEAD asked only
        # pull), like containers/image; none at all for a login check on /v2/.
        query += [("scope", s) for s in dict.fromkeys((challenge.scope, scope)) if s]
        url = challenge.realm
        if query:
            url += ("&" if realm.query else "?") + urlencode(query)
        headers = {"Accept": "application/json"}
        if self.credentials:
            headers["Authorization"] = self.credentials.basic_authorization()
        return url, headers

    def store_token(self, scope: str, body: bytes, server: str) -> None:
        """Cache the token of a token server's JSON answer for ``scope``."""
        try:
            answer = json.loads(body)
            token = str(answer.get("token") or answer.get("access_token") or "")
            expires = float(answer.get("expires_in") or 60)  # the spec's default
        except (ValueError, AttributeError, TypeError, OverflowError, RecursionError) as exc:
            raise ExternalError(
                f"token server {server} sent an unreadable answer",
                hint=_AUTH_SERVER_HINT,
            ) from exc
        if not token:
            raise ExternalError(
                f"token server {server} sent no token for {self.registry}",
                hint=_AUTH_SERVER_HINT,
            )
        with self._lock:
            self._tokens[scope] = (token, time.monotonic() + max(expires - 5, 1))

    def error(self, name: str, reason: str) -> AuthenticationError:
        """Access refused: missing credentials, wrong ones, or a user without rights."""
        hint = f"log in with: rctl login {self.registry}"
        if self.credentials is None:
            return AuthenticationError(f"authentication required for {name}: {reason}", hint=hint)
        user, source = self.credentials.username, self.credentials.source
        origin = f" (credentials from {source})" if source else ""
        return AuthenticationError(
            f"access to {name} denied for user {user}{origin}: {reason}", hint=hint
        )
