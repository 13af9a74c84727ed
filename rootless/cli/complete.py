"""Shell completion: ``rctl completion bash|zsh|fish`` and the names arguments complete to.

The scripts are click's own (``click.shell_completion``): the shell calls ``rctl`` again
with ``_RCTL_COMPLETE`` set, and click answers from the commands' parameters. Arguments
that name something in the store (a container, an image, a volume, a network) get a
parameter type whose completions come from :func:`rootless.engine.complete_names`, which
reads the store's records and nothing else: a TAB never starts a unit or takes a lock.

Which arguments those are is said here, per command module and parameter name, rather
than on each command, so that every command loaded by ``LazyGroup`` gets the same
treatment (:func:`attach_completion`).
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem, get_completion_class

from rootless.engine import complete_names
from rootless.models import NameKind

# The environment variable click's scripts set when they ask rctl for completions.
COMPLETE_VAR = "_RCTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

# module of rootless.cli -> parameter name -> what its value names.
COMPLETED: dict[str, dict[str, NameKind]] = {
    "containers": {
        "container": NameKind.CONTAINER,
        "containers": NameKind.CONTAINER,
        "names": NameKind.CONTAINER,
        "image": NameKind.IMAGE,
        "network": NameKind.NETWORK,
        "volumes_from": NameKind.CONTAINER,
    },
    "ports": {"container": NameKind.CONTAINER},
    "images": {"names": NameKind.IMAGE, "source": NameKind.IMAGE, "name": NameKind.IMAGE},
    "volumes": {"names": NameKind.VOLUME},
    "networks": {
        "networks": NameKind.NETWORK,
        "network": NameKind.NETWORK,
        "container": NameKind.CONTAINER,
    },
    "definitions": {"container": NameKind.CONTAINER},
}


class StoreName(click.types.StringParamType):
    """A string that names something of ``kind`` in the store; completes to those names."""

    def __init__(self, kind: NameKind) -> None:
        self.kind = kind

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        return [CompletionItem(name) for name in complete_names(self.kind, incomplete)]


def attach_completion(module: str, command: click.Command) -> None:
    """Give ``command``'s name-taking string parameters their store completions."""
    for param in command.params:
        kind = COMPLETED.get(module, {}).get(param.name or "")
        if kind is not None and type(param.type) is click.types.StringParamType:
            param.type = StoreName(kind)


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  rctl completion bash > ~/.local/share/bash-completion/completions/rctl
    zsh:   rctl completion zsh > "${fpath[1]}/_rctl"
    fish:  rctl completion fish > ~/.config/fish/completions/rctl.fish
    """
    root = ctx.find_root()
    if not isinstance(root.command, click.Command):  # pragma: no cover - click's own
        raise TypeError("no root command")
    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - the Choice above lists click's shells
        raise click.BadParameter(shell)
    click.echo(cls(root.command, {}, "rctl", COMPLETE_VAR).source(), nl=False)
