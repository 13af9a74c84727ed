"""``RUN --mount=…`` and ``--secret``: what a build step mounts, as ``rctl run`` mounts
(BuildKit's reference, "RUN --mount"); pure.

- ``type=cache,target=DIR[,id=ID]``: a directory of the user's, kept across builds under
  the store (``build-cache-mounts/``, by ID, else by target), bind-mounted read-write;
- ``type=tmpfs,target=DIR[,size=BYTES]``;
- ``type=bind,target=DIR[,source=PATH]``: a path of the build context, read-only (BuildKit
  discards writes; a bind can't, so it is read-only), never outside the context;
- ``type=secret,id=ID[,target=PATH][,required]``: the file ``--secret id=ID,src=FILE``
  names, read-only at ``/run/secrets/ID`` by default. A secret's content is never copied:
  not into a layer, the cache key (its ID is), history or output.

The mount points the runtime had to create are left out of the step's layer.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from rctlbase.errors import UsageError
from rootless.build.sources import check_source

_HINT = "e.g. --mount=type=cache,target=/root/.cache"


@dataclass(frozen=True, slots=True)
class StepMounts:
    """What a RUN step mounts: ``rctl run`` --mount values, tmpfs, and what the cache
    key and the layer's filter need."""

    mounts: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    key: str = ""


def parse_secrets(values: tuple[str, ...]) -> dict[str, Path]:
    """``--secret id=ID,src=FILE`` (also ``source=``; ``type=file``) by ID."""
    found: dict[str, Path] = {}
    for value in values:
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        secret_id, src = fields.get("id", ""), fields.get("src") or fields.get("source")
        if not secret_id or not src or fields.get("type", "file") != "file":
            raise UsageError(
                f"--secret {value!r}: expected id=ID,src=FILE", hint="--secret id=token,src=./t"
            )
        if not Path(src).is_file():
            raise UsageError(f"--secret {value!r}: {src} is not a file", hint="check the path")
        found[secret_id] = Path(src).absolute()
    return found


def plan_mounts(
    values: list[str], context: Path, cache_root: Path, secrets: dict[str, Path], workdir: str
) -> StepMounts:
    """The mounts of one RUN's ``--mount`` values."""
    mounts: list[str] = []
    tmpfs: list[str] = []
    targets: list[str] = []
    key: list[str] = []
    for value in values:
        fields: dict[str, str] = {}
        for part in value.split(","):
            name, sep, val = part.partition("=")
            fields[name.strip()] = val.strip() if sep else "true"
        kind = fields.pop("type", "bind")
        target = fields.get("target") or fields.get("dst") or fields.get("destination") or ""
        if kind == "secret":
            secret_id = fields.get("id") or posixpath.basename(target)
            target = target or f"/run/secrets/{secret_id}"
            secret = secrets.get(secret_id)
            if secret is None:
                if fields.get("required") == "true":
                    raise UsageError(
                        f"RUN --mount: secret {secret_id!r} is required but not given",
                        hint=f"pass it: rctl build --secret id={secret_id},src=FILE",
                    )
                continue
            mounts.append(f"type=bind,src={secret},dst={_absolute(target, workdir)},readonly")
        elif not target:
            raise UsageError(f"RUN --mount={value}: no target", hint=_HINT)
        elif kind == "cache":
            name = fields.get("id") or _absolute(target, workdir)
            directory = cache_root / hashlib.sha256(name.encode()).hexdigest()[:32]
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            mounts.append(f"type=bind,src={directory},dst={_absolute(target, workdir)}")
        elif kind == "tmpfs":
            size = fields.get("size")
            tmpfs.append(_absolute(target, workdir) + (f":rw,size={size}" if size else ":rw"))
        elif kind == "bind":
            if "from" in fields:
                raise UsageError(
                    f"RUN --mount={value}: from= is not supported by rctl yet",
                    hint="copy the files from that stage with a COPY instruction instead",
                )
            source = check_source(fields.get("source") or fields.get("src") or ".")
            path = _inside(context, source)
            mounts.append(f"type=bind,src={path},dst={_absolute(target, workdir)},readonly")
        else:
            raise UsageError(
                f"RUN --mount={value}: unknown type {kind!r}",
                hint="use cache, tmpfs, bind or secret",
            )
        targets.append(_absolute(target, workdir))
        key.append(f"{kind}:{_absolute(target, workdir)}:{fields.get('id', '')}")
    return StepMounts(tuple(mounts), tuple(tmpfs), tuple(targets), ";".join(key))


def _absolute(target: str, workdir: str) -> str:
    return posixpath.normpath(posixpath.join(workdir or "/", target))


def _inside(context: Path, source: str) -> Path:
    """``source`` in the context, links resolved, still in the context."""
    root = context.resolve()
    path = (root / source).resolve()
    if path != root and root not in path.parents:
        raise UsageError(
            f"RUN --mount source {source!r} leads outside the build context",
            hint="bind only paths inside the context",
        )
    if not os.path.exists(path):
        raise UsageError(f"RUN --mount source {source!r} does not exist", hint="check the path")
    return path
