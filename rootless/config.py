"""Where rctl keeps things and the user's settings (``~/.config/rctl/rctl.toml``).

Layout: images, layers, containers and volumes under ``$XDG_DATA_HOME/rctl`` (default
``~/.local/share/rctl``), runtime state under ``$XDG_RUNTIME_DIR/rctl`` (``/tmp/rctl-UID``
without one), settings in ``$XDG_CONFIG_HOME/rctl/rctl.toml``.

Every directory rctl makes is created owner-only (0700) in one step, and every directory
that is rctl's own (the data and runtime directories, the ``/tmp`` fallback, each directory
created on the way) must be the user's and writable by nobody else: another user who could
write there could swap a socket, a launch plan or a layer. The sticky, world-writable ``/tmp``
above the fallback is fine (another user can neither rename nor remove what is in it).

``rctl.toml`` is checked whole: unknown tables and keys and values of the wrong type are
errors naming the file, the table and the key.
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rctlbase.errors import HostError, UsageError
from rootless.containers.runtime import DEFAULT_RUNTIME, parse_runtime
from rootless.storage.drivers import parse_driver

DEFAULT_SEARCH_REGISTRIES = ("docker.io",)


@dataclass(frozen=True, slots=True)
class Paths:
    """The directories of one user's rctl.

    ``runtime_top`` is the highest runtime directory that is rctl's own, when it is above
    ``runtime`` (``/tmp/rctl-UID`` without ``XDG_RUNTIME_DIR``); it is checked like the rest.
    """

    data: Path
    runtime: Path
    config: Path
    runtime_top: Path | None = None

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] | None = None) -> Paths:
        """Resolve the XDG directories the way the XDG Base Directory spec says."""
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or Path.home())
        data = Path(env.get("XDG_DATA_HOME") or home / ".local/share") / "rctl"
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "rctl"
        if env.get("XDG_RUNTIME_DIR"):
            return cls(data=data, runtime=Path(env["XDG_RUNTIME_DIR"]) / "rctl", config=config)
        fallback = Path(f"/tmp/rctl-{os.getuid()}")
        return cls(data=data, runtime=fallback / "rctl", config=config, runtime_top=fallback)

    def ensure_data(self) -> Path:
        """The data directory, created owner-only and checked (see the module docstring)."""
        return ensure_private_dir(self.data)

    def ensure_runtime(self) -> Path:
        """The runtime directory, created owner-only and checked (see the module docstring)."""
        hint = None
        if self.runtime_top is not None:
            hint = "XDG_RUNTIME_DIR is not set (a login session sets it): set it, or remove "
            hint += f"{self.runtime_top} if another user made it"
        return ensure_private_dir(self.runtime, self.runtime_top, hint=hint)


def ensure_private_dir(
    path: Path, top: Path | None = None, *, hint: str | None = None, uid: int | None = None
) -> Path:
    """Create ``path`` and its missing parents owner-only; check that ``path``, every
    directory between ``top`` (default: ``path``) and it, and every directory created here
    are the user's and writable by nobody else (HostError otherwise, with ``hint``)."""
    uid = os.getuid() if uid is None else uid
    top = path if top is None else top
    if not path.is_relative_to(top):
        raise ValueError(f"{path} is not below {top}")
    missing = set()
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.add(probe)
        probe = probe.parent
    for directory in reversed([path, *path.parents]):
        if directory in missing:
            # The mode is given to mkdir itself: there is no moment when another user could
            # open a wider directory (the umask can only narrow it). One made meanwhile by
            # another rctl is checked below like any other.
            try:
                os.mkdir(directory, 0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                raise HostError(f"cannot create {directory}: {exc.strerror}", hint=hint) from exc
        elif not directory.is_relative_to(top):
            continue  # above what is rctl's: the user's home, /run/user/UID, /tmp
        _check_private(directory, uid, hint)
    return path


def _check_private(path: Path, uid: int, hint: str | None) -> None:
    """``path`` is a directory of ``uid``'s that nobody else can write; read bits of
    others are taken away (the directory is rctl's own)."""
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode) and info.st_uid == uid:
            info = os.stat(path)  # the user's own link: what it points to must pass too
    except OSError as exc:
        raise HostError(f"cannot use {path}: {exc.strerror}", hint=hint) from exc
    fix = hint or f"remove {path} or make it yours and private (chmod 700 {path})"
    if stat.S_ISLNK(info.st_mode):
        raise HostError(f"{path} is a symbolic link of uid {info.st_uid}, not yours", hint=fix)
    if not stat.S_ISDIR(info.st_mode):
        raise HostError(f"{path} is not a directory", hint=fix)
    if info.st_uid != uid:
        raise HostError(f"{path} belongs to uid {info.st_uid}, not to you (uid {uid})", hint=fix)
    if info.st_mode & 0o022:
        raise HostError(
            f"{path} can be written by other users (mode {stat.S_IMODE(info.st_mode):o})",
            hint=hint or f"chmod 700 {path}",
        )
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


# ---- rctl.toml -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """``rctl.toml``; every key optional."""

    search_registries: tuple[str, ...] = DEFAULT_SEARCH_REGISTRIES
    insecure_registries: tuple[str, ...] = ()
    storage_driver: str | None = None
    runtime: str = DEFAULT_RUNTIME  # [engine] runtime: crun or runc
    network: str | None = None
    host_loopback: bool = False  # [network] host_loopback: host.containers.internal
    extra: dict[str, Any] = field(default_factory=dict)


def load_settings(paths: Paths) -> Settings:
    """Read ``rctl.toml``; a missing file means defaults, a malformed one is a UsageError
    naming the table and key."""
    path = paths.config / "rctl.toml"
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}", hint="fix or remove the file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}", hint="fix the TOML syntax") from exc
    values: dict[str, Any] = {}
    for table, body in raw.items():
        keys = _SCHEMA.get(table)
        if keys is None:
            raise UsageError(
                f"{path}: unknown table [{table}]", hint=_choices("known tables", _SCHEMA, table)
            )
        if not isinstance(body, dict):
            raise UsageError(
                f"{path}: {table} must be a table", hint=f"write it as [{table}] with keys below"
            )
        for key, value in body.items():
            setting = keys.get(key)
            if setting is None:
                raise UsageError(
                    f"{path}: [{table}] unknown key {key!r}",
                    hint=_choices(f"keys of [{table}]", keys, key),
                )
            field_name, parse = setting
            values[field_name] = parse(f"{path}: [{table}] {key}", value)
    return Settings(**values)


def _choices(what: str, known: dict[str, Any], given: str) -> str:
    close = difflib.get_close_matches(given, list(known), n=1)
    return (f"did you mean {close[0]!r}? " if close else "") + f"{what}: {', '.join(known)}"


def _registries(where: str, value: object) -> tuple[str, ...]:
    example = '["docker.io", "quay.io"]'
    if not isinstance(value, list):
        raise UsageError(f"{where} must be a list of registries", hint=f"for example {example}")
    for item in value:
        if (
            not isinstance(item, str)
            or not item
            or "/" in item
            or any(c.isspace() or not c.isprintable() for c in item)
        ):
            raise UsageError(
                f"{where}: {item!r} is not a registry (HOST[:PORT])",
                hint=f"for example {example}",
            )
    return tuple(value)


def _string(where: str, value: object, example: str) -> str:
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where} must be a non-empty string", hint=f"for example {example}")
    return value


def _driver(where: str, value: object) -> str:
    name = _string(where, value, '"overlay"')
    try:
        parse_driver(name)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc.message}", hint=exc.hint) from None
    return name


def _runtime(where: str, value: object) -> str:
    return parse_runtime(_string(where, value, '"crun"'), where)


def _network(where: str, value: object) -> str:
    # The mode itself is checked where it is used (rctl run), which names rctl.toml.
    return _string(where, value, '"slirp4netns"')


def _bool(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{where} must be true or false", hint="for example host_loopback = true")
    return value


_Parse = Callable[[str, object], Any]
# table -> key -> (Settings field, parser)
_SCHEMA: dict[str, dict[str, tuple[str, _Parse]]] = {
    "registries": {
        "search": ("search_registries", _registries),
        "insecure": ("insecure_registries", _registries),
    },
    "storage": {"driver": ("storage_driver", _driver)},
    "engine": {"runtime": ("runtime", _runtime)},
    "network": {"default": ("network", _network), "host_loopback": ("host_loopback", _bool)},
}
