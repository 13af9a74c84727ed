"""ConfigMaps, Secrets and PersistentVolumeClaims for ``rctl kube play``, and the names
every kind must have, pure.

Names are checked against Kubernetes' own rules (RFC 1123, as the API server does) before
they reach a unit, a path or a label. Each key of a ConfigMap or Secret becomes one rctl
secret named ``NAME.KEY`` (a file or a variable for containers; rctl secrets hold one
value), labelled with where it came from, so ``kube play --down`` removes just those.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rctlbase.errors import UsageError
from rootless.kube.yamlload import HINT
from rootless.secrets.parse import MAX_SECRET_BYTES, check_secret_name

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
KIND_LABEL = "io.rctl.kube.kind"
NAME_LABEL = "io.rctl.kube.name"
KEY_LABEL = "io.rctl.kube.key"


def bad(message: str) -> UsageError:
    return UsageError(message, hint=HINT)


def check_label_name(name: object, what: str) -> str:
    """A DNS-1123 label (Pods, Deployments, containers, volumes of a pod)."""
    if not isinstance(name, str) or not _DNS_LABEL.fullmatch(name):
        raise bad(f"{what} {name!r} is not a DNS-1123 label (a-z, 0-9, '-', at most 63)")
    return name


def check_subdomain(name: object, what: str) -> str:
    """A DNS-1123 subdomain (ConfigMaps, Secrets, claims)."""
    if not isinstance(name, str) or not _DNS_SUBDOMAIN.fullmatch(name):
        raise bad(f"{what} {name!r} is not a DNS-1123 subdomain (a-z, 0-9, '-', '.')")
    return name


@dataclass(frozen=True, slots=True)
class KubeData:
    """A ConfigMap's or Secret's values by key."""

    kind: str  # ConfigMap | Secret
    name: str
    values: Mapping[str, bytes]

    def secret_name(self, key: str) -> str:
        """The rctl secret that holds ``key``."""
        return f"{self.name}.{key}"

    def labels(self, key: str) -> tuple[tuple[str, str], ...]:
        return ((KIND_LABEL, self.kind), (NAME_LABEL, self.name), (KEY_LABEL, key))


def _values(raw: object, where: str, *, encoded: bool) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise bad(f"{where} is not a mapping")
    out: dict[str, bytes] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _DATA_KEY.fullmatch(key):
            raise bad(f"{where}: key {key!r} is not a valid key (a-z, A-Z, 0-9, '-', '_', '.')")
        if not isinstance(value, str):
            raise bad(f"{where}.{key} is not a string")
        if encoded:
            try:
                out[key] = base64.b64decode(value, validate=True)
            except binascii.Error:
                raise bad(f"{where}.{key} is not base64") from None
        else:
            out[key] = value.encode()
        if len(out[key]) > MAX_SECRET_BYTES:
            raise bad(f"{where}.{key} is larger than {MAX_SECRET_BYTES} bytes")
    return out


def plan_data(document: Mapping[str, Any], kind: str, name: str) -> KubeData:
    """A ConfigMap (``data``, ``binaryData``) or Secret (``data`` base64, ``stringData``)."""
    where = f"{kind} {name}"
    if kind == "ConfigMap":
        values = _values(document.get("data"), f"{where}: data", encoded=False)
        binary = _values(document.get("binaryData"), f"{where}: binaryData", encoded=True)
    else:
        values = _values(document.get("data"), f"{where}: data", encoded=True)
        # stringData wins over data for the same key, as the API server merges them.
        binary = _values(document.get("stringData"), f"{where}: stringData", encoded=False)
    values.update(binary)
    data = KubeData(kind, name, values)
    for key in values:
        try:
            check_secret_name(data.secret_name(key))
        except UsageError:
            raise bad(
                f"{where}: {data.secret_name(key)!r} is too long or not a valid rctl secret "
                "name (at most 64 characters)"
            ) from None
    return data
