"""``rctl secret`` and ``run --secret`` in the test host, as uid 1000: a container reads
its secret from a file and from a variable; the value is in no inspect document, no commit,
no record, no journal entry; a secret in use can't be removed."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, run

R = "127.0.0.1:5000/test"
VALUE = "s3cr3t-Value-7f2a9c"


@pytest.fixture(autouse=True)
def remove_containers(rctl: Rctl) -> Iterator[None]:
    yield
    rctl("rm", "-f", "sec", "sec2", check=False)
    rctl("rmi", "-f", "secret-commit", check=False)


def test_secret_commands(rctl: Rctl, tmp_path: Path) -> None:
    source = tmp_path / "pw"
    source.write_text(VALUE)
    secret_id = rctl("secret", "create", "--label", "app=db", "pw", str(source)).stdout.strip()
    rctl("secret", "create", "fromstdin", "-", input_data=b"other")
    assert rctl("secret", "exists", "pw").returncode == 0
    assert rctl("secret", "exists", "nope", check=False).returncode == 1
    listed = rctl("secret", "ls", "--format", "{{.Name}} {{.ID}}").stdout.split("\n")
    assert f"pw {secret_id}" in listed
    assert set(rctl("secret", "ls", "-q").stdout.split()) == {
        secret_id,
        rctl("secret", "inspect", "--format", "{{.ID}}", "fromstdin").stdout.strip(),
    }
    (document,) = json.loads(rctl("secret", "inspect", "pw").stdout)
    assert document["Spec"] == {"Name": "pw", "Labels": {"app": "db"}}
    assert VALUE not in json.dumps(document)
    again = rctl("secret", "create", "pw", str(source), check=False)
    assert again.returncode == 125 and "already exists" in again.stderr
    store = rctl.data / "secrets"
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert stat.S_IMODE((store / "pw" / "value").stat().st_mode) == 0o600
    big = tmp_path / "big"
    big.write_bytes(b"x" * (500 * 1024 + 1))
    refused = rctl("secret", "create", "big", str(big), check=False)
    assert refused.returncode == 125 and len(refused.stderr.splitlines()) == 2
    assert rctl("secret", "rm", "pw", "fromstdin").stdout.split() == ["pw", "fromstdin"]
    assert rctl("secret", "ls", "-q").stdout == ""


def test_container_reads_its_secret_and_nothing_else_keeps_it(rctl: Rctl, tmp_path: Path) -> None:
    rctl("secret", "create", "pw", "-", input_data=VALUE.encode())
    rctl(
        "run", "-d", "--name", "sec", "--secret", "pw",
        "--secret", "pw,target=/etc/app/pw,mode=0400,uid=1000",
        "--secret", "pw,type=env,target=DB_PASSWORD", f"{R}/busybox", "sleep", "infinity",
    )  # fmt: skip
    assert rctl("exec", "sec", "cat", "/run/secrets/pw").stdout == VALUE
    # The variable is the main process's: exec's argv would show it (crun exec --env).
    environ = rctl("exec", "sec", "cat", "/proc/1/environ").stdout.split("\0")
    assert f"DB_PASSWORD={VALUE}" in environ
    assert rctl("exec", "sec", "sh", "-c", "echo -n $DB_PASSWORD").stdout == ""
    listing = rctl("exec", "sec", "ls", "-ln", "/etc/app/pw").stdout.split()
    assert listing[0] == "-r--------" and listing[2] == "1000"
    written = rctl("exec", "sec", "sh", "-c", "echo x > /run/secrets/pw", check=False)
    assert written.returncode != 0  # read-only

    inspected = rctl("inspect", "sec").stdout
    assert VALUE not in inspected
    record = (rctl.data / "containers").glob("*/container.json")
    assert all(VALUE not in path.read_text() for path in record)

    rctl("commit", "sec", "secret-commit")
    archive = tmp_path / "image.tar"
    rctl("save", "-o", str(archive), "secret-commit")
    assert VALUE.encode() not in archive.read_bytes()
    assert VALUE not in rctl("image", "inspect", "secret-commit").stdout

    journal = run("journalctl", "--user", "-o", "verbose", "-n", "3000", check=False)
    assert journal.returncode == 0, journal.stderr
    assert VALUE not in journal.stdout

    in_use = rctl("secret", "rm", "pw", check=False)
    assert in_use.returncode == 125 and "in use" in in_use.stderr
    assert rctl("secret", "exists", "pw").returncode == 0
    rctl("rm", "-f", "sec")
    rctl("secret", "rm", "pw")


def test_bad_secret_makes_no_container(rctl: Rctl) -> None:
    for flag, said in (("nope", "no such secret"), ("pw,type=bogus", "type=")):
        rctl("secret", "create", "pw", "-", input_data=b"v", check=False)
        proc = rctl("run", "-d", "--name", "sec2", "--secret", flag, f"{R}/busybox", check=False)
        assert proc.returncode == 125 and said in proc.stderr, proc.stderr
        assert rctl("ps", "-aq").stdout == ""
