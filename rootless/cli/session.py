"""The one :class:`~rootless.engine.Engine` of a CLI invocation, shared by its commands.

A module of its own so that a command module gets it without importing another command
module (``rctl run`` would pay for the image commands' imports).
"""

from __future__ import annotations

import click

from rootless.engine import Engine


def engine(ctx: click.Context) -> Engine:
    """The session's engine, made on first use."""
    obj: dict[str, object] = ctx.ensure_object(dict)
    if "engine" not in obj:
        obj["engine"] = Engine()
    result = obj["engine"]
    assert isinstance(result, Engine)
    return result
