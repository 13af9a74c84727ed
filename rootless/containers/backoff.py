"""The growing delay before a container is restarted by its policy (docker's restart backoff).

systemd restarts a unit ``RestartSec=`` after it stopped, always the same delay, and Debian
12's systemd (252) has no ``RestartSteps=``: a container that crashes at once would be
relaunched ten times a second for ever. Docker doubles the delay from 100 ms before each
restart, up to a minute, and starts again from 100 ms once a run lasted 10 s (moby's
restartmanager). rctl does the same with two small steps and a file,
``restart.json`` in the container's directory:

- the stop hook (:mod:`rootless.containers.exited`, after every run) computes the delay
  before the next start, :func:`next_delay`, from the previous one and how long this run
  lasted (the time since the previous stop, less the delay waited before this start);
- the launcher, as it starts, waits that delay (less the unit's own ``RestartSec=``) when the
  start is an automatic restart: when ``exit.json`` is still there, since every start by a
  user removes it first (``rctl start``/``restart``, and ``run-unit`` of a generated unit
  when the unit's ``NRestarts`` says the manager did not restart it). A start by a user
  forgets the delay, as in docker.

The unit is "activating" while the launcher waits: ``rctl stop`` (SIGTERM) ends the wait
and the unit, and nothing restarts it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable

from rootless.containers import layout

RESTART_FILE = "restart.json"
FIRST_DELAY = 0.1  # seconds, docker's first delay and rctl's RestartSec=
MAX_DELAY = 60.0
RESET_AFTER = 10.0  # a run this long starts the delays over


def next_delay(previous: dict[str, float] | None, now: float) -> float:
    """The delay before the next start, given the previous stop's record (or None)."""
    if previous is None:
        return FIRST_DELAY
    ran = now - previous["ended"] - previous["delay"]
    if ran >= RESET_AFTER:
        return FIRST_DELAY
    return min(MAX_DELAY, max(FIRST_DELAY, previous["delay"] * 2))


def _read(directory: str) -> dict[str, float] | None:
    try:
        with open(os.path.join(directory, RESTART_FILE)) as file:
            data = json.load(file)
        return {"delay": float(data["delay"]), "ended": float(data["ended"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_stop(directory: str, now: float | None = None) -> float:
    """The stop hook's part: write the delay before the next start; return it."""
    now = time.time() if now is None else now
    delay = next_delay(_read(directory), now)
    tmp = os.path.join(directory, RESTART_FILE + ".tmp")
    with open(tmp, "w") as file:
        json.dump({"delay": delay, "ended": now}, file)
    os.replace(tmp, os.path.join(directory, RESTART_FILE))
    return delay


def wait_before_start(directory: str, sleep: Callable[[float], None] = time.sleep) -> float:
    """The launcher's part: after an automatic restart, wait what the stop hook said (less
    the ``RestartSec=`` the manager waited already); after a user's start, forget the
    delays. Returns the seconds waited."""
    if not os.path.exists(layout.exit_file(directory)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, RESTART_FILE))
        return 0.0
    previous = _read(directory)
    wait = 0.0 if previous is None else max(0.0, previous["delay"] - FIRST_DELAY)
    if wait > 0:
        sleep(wait)
    return wait
