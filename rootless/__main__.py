"""``python -m rootless`` runs the rctl CLI."""

import sys

from rootless.cli import main

sys.exit(main())
