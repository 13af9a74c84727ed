"""The ``--rm`` container unit's first ``ExecStopPost=``: remove its anonymous volumes.

``python -I -m rootless.volumes.cleanup CONTAINER_DIR`` runs before
:mod:`rootless.containers.exited` removes the container (docker's ``run --rm`` removes the
anonymous volumes with the container), so it works for detached runs and when the CLI
was killed. A volume another container also mounts (``--volumes-from``) is kept.
Files in a volume may belong to mapped IDs: the removal runs in the user namespace.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rctlbase.errors import run_main
from rootless.containers import layout
from rootless.containers.plan import LaunchPlan
from uidmap.unshare import run_in_userns


def _mounts(directory: Path) -> list[dict[str, Any]]:
    try:
        record = json.loads(Path(layout.record_file(directory)).read_text())
    except (OSError, json.JSONDecodeError):
        return []
    return list(record.get("mounts", ()))


def doomed_volumes(directory: Path) -> list[str]:
    """Directories of the anonymous volumes of the container in ``directory`` that no
    other container mounts (empty unless the container is ``--rm``)."""
    try:
        record = json.loads(Path(layout.record_file(directory)).read_text())
    except (OSError, json.JSONDecodeError):
        return []
    if not record.get("auto_remove"):
        return []
    used = {
        m.get("name")
        for other in directory.parent.iterdir()
        if other != directory
        for m in _mounts(other)
    }
    return [
        str(Path(m["source"]).parent)
        for m in record.get("mounts", ())
        if m.get("anonymous") and m.get("name") and m["name"] not in used
    ]


def main() -> int:
    # Exit 1 on a failure of its own, as an uncaught exception did; else rm's status.
    return run_main(lambda: remove_volumes(Path(sys.argv[1])), error_code=1)


def remove_volumes(directory: Path) -> int:
    """Remove the doomed volumes of the container in ``directory``; rm's exit status."""
    doomed = doomed_volumes(directory)
    if doomed:
        plan = LaunchPlan.from_json(Path(layout.launch_file(directory)).read_text()).userns
        return run_in_userns(["rm", "-rf", "--", *doomed], plan).exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
