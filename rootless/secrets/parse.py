"""``rctl run --secret NAME[,target=…,type=mount|env,uid=,gid=,mode=]`` and secret names,
read into typed values (pure)."""

from __future__ import annotations

import enum
import posixpath
import re
from dataclasses import dataclass

from rctlbase.errors import UsageError

# docker's limit for a secret's value (swarmkit's MaxSecretSize).
MAX_SECRET_BYTES = 500 * 1024
# docker's name rule (swarmkit's validateSecretSpec), which keeps names usable as file
# names under /run/secrets and in labels.
_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?$")
SECRETS_DIR = "/run/secrets"
_FLAG = "--secret"
_HINT = "use --secret NAME[,target=PATH,type=mount|env,uid=N,gid=N,mode=0400]"
# Environment variable names as POSIX shells accept them.
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretKind(enum.StrEnum):
    MOUNT = "mount"
    ENV = "env"


@dataclass(frozen=True, slots=True)
class SecretRequest:
    """One ``--secret``: a file at ``target`` (absolute) or the variable ``target``."""

    name: str
    kind: SecretKind
    target: str
    uid: int = 0
    gid: int = 0
    mode: int = 0o444


def check_secret_name(name: str) -> str:
    """``name`` if it is a valid secret name (UsageError otherwise)."""
    if not _NAME.match(name):
        raise UsageError(
            f"invalid secret name {name!r}",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting and ending with a "
            "letter or digit",
        )
    return name


def _number(key: str, value: str, limit: int, base: int = 10) -> int:
    try:
        number = int(value, base)
    except ValueError:
        raise UsageError(f"{_FLAG}: {key}={value!r} is not a number", hint=_HINT) from None
    if not 0 <= number <= limit:
        raise UsageError(f"{_FLAG}: {key}={value!r} is out of range", hint=_HINT)
    return number


def parse_secret(value: str) -> SecretRequest:
    """One ``--secret`` value; a mount's relative target lies under /run/secrets."""
    name, *pairs = value.split(",")
    if name.startswith("source=") or name.startswith("src="):
        name = name.partition("=")[2]
    check_secret_name(name)
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, val = pair.partition("=")
        if not sep or key not in {"target", "type", "uid", "gid", "mode"}:
            raise UsageError(f"{_FLAG}: unknown option {pair!r}", hint=_HINT)
        fields[key] = val
    try:
        kind = SecretKind(fields.get("type", "mount"))
    except ValueError:
        raise UsageError(
            f"{_FLAG}: type={fields['type']!r} is not mount or env", hint=_HINT
        ) from None
    target = fields.get("target", "")
    if kind is SecretKind.ENV:
        target = target or name
        if not _ENV_NAME.match(target):
            raise UsageError(f"{_FLAG}: {target!r} is not a variable name", hint=_HINT)
        if {"uid", "gid", "mode"} & fields.keys():
            raise UsageError(f"{_FLAG}: uid, gid and mode are for type=mount", hint=_HINT)
        return SecretRequest(name, kind, target)
    target = posixpath.normpath(posixpath.join(SECRETS_DIR, target or name))
    if target in ("/", SECRETS_DIR) or "\0" in target:
        raise UsageError(f"{_FLAG}: target {target!r} is not a file path", hint=_HINT)
    return SecretRequest(
        name,
        kind,
        target,
        uid=_number("uid", fields.get("uid", "0"), (1 << 32) - 2),
        gid=_number("gid", fields.get("gid", "0"), (1 << 32) - 2),
        mode=_number("mode", fields.get("mode", "0444"), 0o777, base=8),
    )
