"""Where rctl keeps things and the user's settings (``~/.config/rctl/rctl.toml``).

Layout (DESIGN.md): images, layers, containers and volumes under ``$XDG_DATA_HOME/rctl``
(default ``~/.local/share/rctl``), runtime state under ``$XDG_RUNTIME_DIR/rctl``, settings in
``$XDG_CONFIG_HOME/rctl/rctl.toml``. Every directory rctl creates is owner-only (0700).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rctlbase.errors import UsageError
from rootless.containers.runtime import DEFAULT_RUNTIME, parse_runtime

DEFAULT_SEARCH_REGISTRIES = ("docker.io",)


@dataclass(frozen=True, slots=True)
class Paths:
    """The directories of one user's rctl."""

    data: Path
    runtime: Path
    config: Path

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] | None = None) -> Paths:
        """Resolve the XDG directories the way the XDG Base Directory spec says."""
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or Path.home())
        data = Path(env.get("XDG_DATA_HOME") or home / ".local/share") / "rctl"
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "rctl"
        runtime_base = env.get("XDG_RUNTIME_DIR") or f"/tmp/rctl-{os.getuid()}"
        return cls(data=data, runtime=Path(runtime_base) / "rctl", config=config)


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
    """Read ``rctl.toml``; a missing file means defaults, a malformed one is a UsageError."""
    path = paths.config / "rctl.toml"
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return Settings()
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}", hint="fix the TOML syntax") from exc
    known = {"registries", "storage", "engine", "network"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(
            f"{path}: unknown table {unknown[0]!r}",
            hint=f"known tables: {', '.join(sorted(known))}",
        )
    registries = raw.get("registries", {})
    return Settings(
        search_registries=tuple(registries.get("search", DEFAULT_SEARCH_REGISTRIES)),
        insecure_registries=tuple(registries.get("insecure", ())),
        storage_driver=raw.get("storage", {}).get("driver"),
        runtime=parse_runtime(
            str(raw.get("engine", {}).get("runtime", DEFAULT_RUNTIME)), f"{path}: [engine] runtime"
        ),
        network=raw.get("network", {}).get("default"),
        host_loopback=_network_bool(raw.get("network", {}), "host_loopback", path),
    )


def _network_bool(table: dict[str, Any], key: str, path: Path) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise UsageError(f"{path}: [network] {key} must be true or false", hint=f"{key} = true")
    return value


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) owner-only; tighten it if it exists with wider modes."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path
