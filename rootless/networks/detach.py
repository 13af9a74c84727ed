"""``python -m rootless.networks.detach CONTAINER_DIR``: a bridged container's unit's
``ExecStopPost=`` (after every stop, kill -9 included): release its leases, rewrite its
peers' hosts files, and stop the rootless namespace when it was the last container there.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rctlbase.errors import HostError, run_main
from rootless.containers import layout
from rootless.containers.netattach import detach_network
from rootless.containers.plan import LaunchPlan


def main() -> int:
    def body() -> int:
        directory = Path(sys.argv[1])
        try:
            text = Path(layout.launch_file(directory)).read_text()
            detach_network(LaunchPlan.from_json(text))
        except OSError as exc:
            raise HostError(
                f"network detach: {exc}", hint="the container's directory may be gone already"
            ) from exc
        return 0

    return run_main(body, error_code=1)


if __name__ == "__main__":
    sys.exit(main())
