"""Container events written from inside the container's unit: ``start`` by the launcher
(so starts by the restart policy and by a definition's unit are logged too) and ``die``/
``destroy`` by the stop hook. Both run on every start or stop, so this module imports only
the event log (:mod:`rootless.eventlog`) and the directory's layout.
"""

from __future__ import annotations

import json
import os

from rootless.containers import layout
from rootless.eventlog import record_event


def log_container_event(
    directory: str, record: dict[str, object], action: str, **extra: str
) -> None:
    """Log an event of the container whose directory and record (``container.json``'s
    content) are given, with the attributes the container service gives: its labels,
    image and name. The store's root is two levels above the directory."""
    labels = record.get("labels")
    attributes = {**(labels if isinstance(labels, dict) else {}), **extra}
    attributes.update(image=str(record.get("image_name", "")), name=str(record.get("name", "")))
    data_root = os.path.dirname(os.path.dirname(os.path.normpath(directory)))
    record_event(data_root, "container", action, str(record.get("id", "")), attributes)


def log_started(directory: str) -> None:
    """``start``, from the launcher once the container exists, before it runs (the stop
    hook's ``die`` can't come first). A record that can't be read loses the event."""
    try:
        with open(layout.record_file(directory)) as file:
            record = json.load(file)
    except (OSError, ValueError):
        return
    if isinstance(record, dict):
        log_container_event(directory, record, "start")
