"""The names of the files in a container's directory ``containers/ID/``, in one place.

:class:`rootless.containers.record.ContainerStore` owns the directory for the engine and
reads and writes these files through its methods. The programs systemd runs for a
container (the launcher, the stop hooks, the volume cleanup, the network detach) find them
with the functions here: this module imports only ``os``, because those programs run on
every start or stop and pay for each import.

::

    container.json     the record (ContainerRecord)
    spec.json          what the unit needs on every start: restart, stop timeout and
                       signal, limits
    exit.json          how the last run ended (the stop hook's)
    bundle/            config.json (crun's), launch.json (LaunchPlan), pid (crun's)
    networks.json      its bridge networks and links, if any (rootless.networks.attach)
"""

from __future__ import annotations

import os

RECORD = "container.json"
UNIT_INPUTS = "spec.json"
EXIT = "exit.json"
BUNDLE = "bundle"
LAUNCH = "launch.json"
OCI_CONFIG = "config.json"
PID = "pid"
NETWORKS = "networks.json"


def record_file(directory: str | os.PathLike[str]) -> str:
    """The container's record."""
    return os.path.join(directory, RECORD)


def unit_inputs_file(directory: str | os.PathLike[str]) -> str:
    """What the container's unit is made from on every start."""
    return os.path.join(directory, UNIT_INPUTS)


def exit_file(directory: str | os.PathLike[str]) -> str:
    """How the container's last run ended; absent while it never did."""
    return os.path.join(directory, EXIT)


def bundle_dir(directory: str | os.PathLike[str]) -> str:
    """The OCI bundle crun runs."""
    return os.path.join(directory, BUNDLE)


def launch_file(directory: str | os.PathLike[str]) -> str:
    """The launcher's plan (:class:`rootless.containers.plan.LaunchPlan`)."""
    return os.path.join(directory, BUNDLE, LAUNCH)


def oci_config_file(directory: str | os.PathLike[str]) -> str:
    """crun's ``config.json``."""
    return os.path.join(directory, BUNDLE, OCI_CONFIG)


def pid_file(directory: str | os.PathLike[str]) -> str:
    """Where crun writes the container's first process's PID."""
    return os.path.join(directory, BUNDLE, PID)


def networks_file(directory: str | os.PathLike[str]) -> str:
    """The container's bridge networks and links; absent for a container without any."""
    return os.path.join(directory, NETWORKS)
