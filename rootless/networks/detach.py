"""``python -m rootless.networks.detach CONTAINER_DIR``: a bridged container's unit's
``ExecStopPost=`` (after every stop, kill -9 included): release its leases, rewrite its
peers' hosts files, and stop the rootless namespace when it was the last container there.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rctlbase.errors import RctlError
from rootless.containers.netattach import detach_network
from rootless.containers.plan import LaunchPlan


def main() -> int:
    directory = Path(sys.argv[1])
    try:
        detach_network(LaunchPlan.from_json((directory / "bundle" / "launch.json").read_text()))
    except (RctlError, OSError) as exc:
        print(f"rctl: network detach: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
