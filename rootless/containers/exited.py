"""The container unit's ``ExecStopPost=``: record how the container ended; for ``--rm``,
remove it. Runs after every stop, even when the CLI that started it was killed.

systemd passes ``SERVICE_RESULT``, ``EXIT_CODE`` (exited, killed, dumped) and
``EXIT_STATUS`` (the status or the signal name) to ``ExecStopPost=`` (systemd.exec(5),
"Environment variables in spawned processes").
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from rootless.containers.plan import LaunchPlan
from uidmap.unshare import run_in_userns


def exit_code(code: str, status: str) -> int:
    """docker's exit code: the status, or 128 + N for a death by signal N."""
    if code == "exited":
        return int(status) if status.isdigit() else 125
    if code in ("killed", "dumped"):
        try:
            return 128 + int(
                signal.Signals[f"SIG{status}" if not status.startswith("SIG") else status]
            )
        except KeyError:
            return 128 + int(status) if status.isdigit() else 137
    return 125  # the container never ran (launcher failure)


def main() -> int:
    bundle = Path(sys.argv[1])
    directory = bundle.parent
    record = json.loads((directory / "container.json").read_text())
    result = {
        "result": os.environ.get("SERVICE_RESULT", ""),
        "code": os.environ.get("EXIT_CODE", ""),
        "status": os.environ.get("EXIT_STATUS", ""),
        "exit_code": exit_code(os.environ.get("EXIT_CODE", ""), os.environ.get("EXIT_STATUS", "")),
        "finished": time.time(),
    }
    tmp = directory / "exit.json.tmp"
    tmp.write_text(json.dumps(result))
    tmp.replace(directory / "exit.json")
    if record.get("auto_remove"):
        plan = LaunchPlan.from_json((bundle / "launch.json").read_text()).userns
        run_in_userns(["rm", "-rf", str(directory)], plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
