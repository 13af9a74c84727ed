"""Port throughput: iperf3 from the host to a server in a container, through a published
port, once per user-mode network driver (slirp4netns, pasta).

The test images hold no iperf3, and ``-v`` is not something every rctl has, so the host's
own ``/usr/bin/iperf3`` and the libraries ``ldd`` lists (the dynamic loader included) are
copied into ``/opt/iperf`` of a running ``test/busybox`` container with ``exec -i ...
busybox tar -x``; the container's command waits for them and then runs the server through
that loader (``ld.so --library-path /opt/iperf iperf3 -s``). Both tools get the very same
files the same way. The client on the host runs ``iperf3 -c 127.0.0.1 -p PORT -t 3 -O 1``
(the first second omitted) and reports the receiver's bit rate.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from functools import partial
from pathlib import Path

from kit import (
    REG,
    Result,
    Sample,
    Samples,
    Step,
    StepFailed,
    Tool,
    measure,
    run_cmd,
    scenario_tools,
    summarize,
)

GROUP = "network"
IPERF = "/usr/bin/iperf3"
SERVER_PORT = 5201
WAIT_AND_SERVE = (
    "while [ ! -e /opt/iperf/ready ]; do sleep 0.1; done; "
    "exec /opt/iperf/ld.so --library-path /opt/iperf /opt/iperf/iperf3 -s"
)


def program_files(program: str) -> dict[str, Path]:
    """A host program and what it loads, by the name each gets in the container's /opt
    directory (the loader is ld.so)."""
    files = {Path(program).name: Path(program)}
    for line in run_cmd(["ldd", program]).splitlines():
        words = line.split()
        if "=>" in words and len(words) >= 3 and words[2].startswith("/"):
            files[words[0]] = Path(words[2]).resolve()
        elif words and words[0].startswith("/") and "ld-linux" in words[0]:
            files["ld.so"] = Path(words[0]).resolve()
    if "ld.so" not in files:
        raise StepFailed(f"ldd {program} names no dynamic loader")
    return files


def program_tarball(program: str, directory: str) -> bytes:
    """A tar of opt/DIRECTORY/* (``program_files``) with ``ready`` last, for ``busybox tar
    -x -C /``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, path in program_files(program).items():
            info = tar.gettarinfo(str(path), arcname=f"opt/{directory}/{name}")
            info.uid = info.gid = 0
            info.mode = 0o755
            with path.open("rb") as fh:
                tar.addfile(info, fh)
        tar.addfile(tarfile.TarInfo(f"opt/{directory}/ready"), io.BytesIO(b""))
    return buf.getvalue()


def client(port: int, seconds: int = 3, omit: int = 1) -> Sample:
    """One iperf3 run host -> container; the receiver's rate in Gbit/s."""
    out = run_cmd(
        [IPERF, "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-O", str(omit), "-J"],
        timeout=seconds + 30,
    )
    try:
        report = json.loads(out)
    except ValueError as exc:
        raise StepFailed(f"iperf3 printed no JSON: {out[-200:]!r}") from exc
    if "error" in report:
        raise StepFailed(f"iperf3: {report['error']}")
    try:
        return {"rate": report["end"]["sum_received"]["bits_per_second"] / 1e9}
    except KeyError as exc:
        raise StepFailed(f"iperf3 reported no received sum: {out[-200:]!r}") from exc


def start_server(tool: Tool, driver: str, port: int, tarball: bytes) -> None:
    """A busybox container serving iperf3 on ``port`` of the host, through ``driver``."""
    cid = tool.run(
        "run", "-d", "--network", driver, "-p", f"{port}:{SERVER_PORT}",
        f"{REG}/test/busybox", "sh", "-c", WAIT_AND_SERVE,
    ).split()[-1]  # fmt: skip
    tool.run("exec", "-i", cid, "busybox", "tar", "-x", "-C", "/", stdin=tarball)
    deadline = time.monotonic() + 20
    while True:  # the published port accepts connections before the server listens
        try:
            client(port, seconds=1, omit=0)
            return
        except StepFailed:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def port_throughput(driver: str, rounds: int, work: Path, base_port: int) -> list[Result]:
    """iperf3 host -> container through ``-p`` with ``--network DRIVER``, for both tools."""
    tarball = program_tarball(IPERF, "iperf")
    with scenario_tools(work, f"iperf-{driver}") as tools:
        steps: dict[str, Step] = {}
        failed: dict[str, str] = {}
        for index, (name, tool) in enumerate(tools.items()):
            port = base_port + index
            try:
                tool.pull("test/busybox")
                start_server(tool, driver, port, tarball)
            except StepFailed as exc:
                failed[name] = str(exc)
                if "network not found" in str(exc) and name == "podman":
                    failed[name] += f" (podman has no {driver} network mode before 4.4)"
                continue
            steps[name] = Step(partial(client, port))
        samples: Samples = measure(rounds, steps)
        samples.failed.update(failed)
    return [
        summarize(
            f"iperf3 host → container, -p, {driver}", GROUP, "Gbit/s", samples, "rate",
            target="ratio >= 0.95", better="higher",
            note="iperf3 -t 3 -O 1, server copied into test/busybox with its libraries"
            + ("; both forward published ports through a proxy of their own, not libslirp's "
               "forwarding: podman its rootlessport (port_handler=rootlesskit), rctl its "
               "relay (port_handler=rctl), each the default"
               if driver == "slirp4netns" else ""),
        )
    ]  # fmt: skip
