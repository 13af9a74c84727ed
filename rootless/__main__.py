"""``python -m rootless`` runs the rctl CLI."""

from rootless.cli import entry

entry()
