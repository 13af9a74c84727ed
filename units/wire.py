"""dbus-fast's D-Bus wire format, imported without dbus-fast's package ``__init__``.

rctl takes from dbus-fast only what turns messages into bytes and back (``Message`` and
its marshaller, ``Unmarshaller``, ``Variant``, ``unpack_variants``, the constants and
error classes); the blocking transport is :mod:`units.connection`. But ``import
dbus_fast.message`` first executes ``dbus_fast/__init__.py``, which imports the asyncio
and GLib message buses, introspection (``xml.etree``), services, ``asyncio``, ``ssl`` and
``logging``: about 45 ms of wall time in the test host, out of about 285 ms for a whole
``rctl run --rm busybox true``, paid by every rctl command that touches a unit.

So, when nothing imported ``dbus_fast`` yet, this module registers the package in
``sys.modules`` without executing its ``__init__`` (``importlib.util.module_from_spec``:
the module has ``__path__``, so its submodules import normally). The placeholder gets a
module-level ``__getattr__`` (PEP 562): the first access to a name it lacks (``from
dbus_fast import AuthError``, ``dbus_fast.Message``, a submodule's ``from . import x``)
removes that hook, executes the real ``__init__`` into the same module object and returns
the name, so code that uses dbus-fast the ordinary way (tests, other tools) still works.
Measured in the test host (wall time of ``python3 -c 'import units.manager'``, median of
21 runs): 72 ms with dbus-fast's asyncio bus, 44 ms with this and :mod:`units.connection`;
none of asyncio, ssl, logging or xml.etree is imported any more.

The submodules used here are partly private (``dbus_fast._private.unmarshaller``,
``Message._marshall``), hence the upper bound on dbus-fast in pyproject.toml.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import Any

PACKAGE = "dbus_fast"


def register_lazy_package(name: str = PACKAGE) -> None:
    """Put ``name`` in ``sys.modules`` with its ``__init__`` deferred to first attribute use.

    Does nothing when ``name`` is imported already (or can't be found: the ordinary
    import then reports it).
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)
    lock = threading.Lock()

    def load_init(attr: str) -> Any:
        # Importing a submodule's "from . import x" also asks the package (hasattr):
        # that, too, runs the real __init__, as a plain "import dbus_fast" would have.
        with lock:
            if package.__dict__.get("__getattr__") is load_init:
                del package.__dict__["__getattr__"]
                loader.exec_module(package)
        if attr in package.__dict__:
            return package.__dict__[attr]
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    package.__dict__["__getattr__"] = load_init
    sys.modules[name] = package


register_lazy_package()

# The imports below must follow the registration above (E402 on purpose), and the errors
# module must come first: dbus-fast's modules import each other in a cycle (errors ->
# message -> marshaller -> errors) that only works entered by errors, whose classes exist
# before it imports message. The compiled wheels hide this, the pure-Python sources (the
# Debian package vendors those) do not.
from dbus_fast.errors import AuthError, InvalidAddressError  # noqa: E402

# isort: split
from dbus_fast._private.unmarshaller import Unmarshaller  # noqa: E402
from dbus_fast.constants import MessageFlag, MessageType  # noqa: E402
from dbus_fast.message import Message  # noqa: E402
from dbus_fast.signature import Variant  # noqa: E402
from dbus_fast.unpack import unpack_variants  # noqa: E402

__all__ = [
    "AuthError",
    "InvalidAddressError",
    "Message",
    "MessageFlag",
    "MessageType",
    "Unmarshaller",
    "Variant",
    "register_lazy_package",
    "unpack_variants",
]
