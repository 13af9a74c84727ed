"""The one error format and boundary of every entry point (:mod:`rctlbase.errors`), and
the exit codes each ``main()`` keeps: the units that run them read those."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rctlbase.errors import (
    CommandFailed,
    CommandNotRunnable,
    ConflictError,
    ExternalError,
    HostError,
    NotFoundError,
    RctlError,
    UsageError,
    format_error,
    reported_message,
    run_main,
)


def test_an_error_is_one_line_and_its_hint_another() -> None:
    text = format_error(NotFoundError("no such image: x", hint="pull it first"))
    assert text == "Error: no such image: x\nHint: pull it first"


def test_an_error_without_hint_is_one_line() -> None:
    assert format_error(ConflictError("name taken")) == "Error: name taken"


def test_control_characters_are_escaped_in_message_and_hint() -> None:
    text = format_error(UsageError("bad\nError: forged\x1b[2J", hint="a\rb"))
    assert text == "Error: bad\\nError: forged\\x1b[2J\nHint: a\\rb"


def test_an_error_listing_problems_gets_a_line_each() -> None:
    exc = UsageError("a.toml:1: first (and 1 more below)\na.toml:2: sec\x07ond", hint="fix")
    exc.problems = ("one", "two")  # type: ignore[attr-defined]
    assert format_error(exc).split("\n") == [
        "Error: a.toml:1: first (and 1 more below)",
        "a.toml:2: sec\\x07ond",
        "Hint: fix",
    ]


def test_a_bug_is_an_internal_error_naming_its_type() -> None:
    text = format_error(KeyError("x\ny"))
    assert text.startswith("Error: internal error: KeyError: 'x\\ny'\nHint: run with --debug")
    assert len(text.split("\n")) == 2


def test_a_class_hint_is_the_default_and_a_given_one_wins() -> None:
    assert HostError("no newuidmap").hint == HostError.default_hint is not None
    assert HostError("no newuidmap", hint="install uidmap").hint == "install uidmap"
    assert CommandFailed("x failed").hint is not None


def test_http_status_per_class() -> None:
    statuses = [c.http_status for c in (UsageError, NotFoundError, ConflictError, HostError)]
    assert statuses == [400, 404, 409, 500]
    assert ExternalError.http_status == CommandFailed.http_status == RctlError.http_status == 500


def test_the_message_is_read_back_from_a_helpers_stderr() -> None:
    said = "noise\nError: volume chown of /v failed: EPERM\nHint: check the directory\n"
    assert reported_message(said) == "volume chown of /v failed: EPERM"
    assert reported_message("crun: error: no\n\n") == "crun: error: no"
    assert reported_message("") == ""


# -- the boundary --------------------------------------------------------------------------


def fails(exc: BaseException) -> int:
    raise exc


def test_the_boundary_reports_an_rctl_error_in_one_line_with_its_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_main(lambda: fails(UsageError("bad", hint="better")), debug=False) == 125
    assert capsys.readouterr().err == "Error: bad\nHint: better\n"
    exc = CommandNotRunnable("exec: x: not found", exit_code=127, hint="check PATH")
    assert run_main(lambda: fails(exc), debug=False) == 127
    assert run_main(lambda: fails(exc), error_code=125, debug=False) == 125


def test_the_boundary_passes_the_status_through() -> None:
    assert run_main(lambda: 3, debug=False) == 3


def test_a_bug_is_one_line_without_debug(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(lambda: fails(ZeroDivisionError("boom")), debug=False) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("Error: internal error: ZeroDivisionError: boom\nHint: ")
    assert run_main(lambda: fails(ValueError()), internal_code=0, debug=False) == 0


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(lambda: fails(ZeroDivisionError("boom")), debug=True) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback")
    assert "Error: internal error: ZeroDivisionError: boom\n" in err


def test_rctl_debug_in_the_environment_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["helper"])
    monkeypatch.setenv("RCTL_DEBUG", "1")
    assert run_main(lambda: fails(UsageError("bad"))) == 125
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("RCTL_DEBUG", "0")
    assert run_main(lambda: fails(UsageError("bad"))) == 125
    assert "Traceback" not in capsys.readouterr().err


# -- the CLI ------------------------------------------------------------------------------


def test_the_cli_reports_a_bug_in_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rootless import cli  # noqa: PLC0415 - the CLI's import is what is tested

    def broken(*_args: object, **_kwargs: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli.cli, "main", broken)
    assert cli.main(["ps"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: internal error: RuntimeError: a bug\nHint: ")
    assert "Traceback" not in err
    assert cli.main(["--debug", "ps"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "Error: internal error: RuntimeError: a bug\n" in err


# -- the helpers run by units -------------------------------------------------------------


def test_the_launcher_exits_125_for_any_rctl_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rootless.containers import launch  # noqa: PLC0415

    def launch_fails(_directory: Path) -> int:
        raise CommandNotRunnable("exec: nope", exit_code=127, hint="check PATH")

    monkeypatch.setattr(launch, "launch", launch_fails)
    monkeypatch.setattr(sys, "argv", ["launch", "/nonexistent"])
    assert launch.main() == 125
    assert capsys.readouterr().err == "Error: exec: nope\nHint: check PATH\n"


def test_the_stop_hook_exits_1_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rootless.containers import exited  # noqa: PLC0415

    monkeypatch.setattr(sys, "argv", ["exited", str(tmp_path / "bundle")])
    monkeypatch.delenv("RCTL_DEBUG", raising=False)
    assert exited.main() == 1  # no container.json
    err = capsys.readouterr().err
    assert err.startswith("Error: internal error: FileNotFoundError: ")
    assert "Traceback" not in err


def test_the_network_detach_hook_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rootless.networks import detach  # noqa: PLC0415

    monkeypatch.setattr(sys, "argv", ["detach", str(tmp_path)])
    assert detach.main() == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("Error: network detach: [Errno 2]")
    assert err[1].startswith("Hint: ")


def test_the_network_holder_exits_125(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rootless.networks import holder  # noqa: PLC0415

    def start_fails(_directory: Path) -> None:
        raise HostError("no slirp4netns", hint="install it")

    monkeypatch.setattr(holder, "start", start_fails)
    monkeypatch.setattr(sys, "argv", ["holder", str(tmp_path)])
    assert holder.main() == 125
    assert capsys.readouterr().err == "Error: no slirp4netns\nHint: install it\n"


def test_netctl_exits_1_and_its_caller_quotes_the_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from netns import netctl  # noqa: PLC0415

    def ops_fail(_ops: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(netctl, "decode_ops", lambda _data: [])
    monkeypatch.setattr(netctl, "do_ops", ops_fail)
    monkeypatch.setattr(sys, "stdin", type("In", (), {"buffer": type("B", (), {"read": bytes})}))
    assert netctl.main() == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: [Errno 1] Operation not permitted\nHint: ")

    def helper_failed(*_args: object, **_kwargs: object) -> None:
        raise CommandFailed("nsenter failed", stderr=err)

    monkeypatch.setattr(netctl, "run_program", helper_failed)
    with pytest.raises(ExternalError) as caught:
        netctl.run_ops(1, [netctl.InitOp()])
    assert caught.value.message.endswith(": [Errno 1] Operation not permitted")


@pytest.mark.parametrize("module", ["rootless.volumes.userjob", "rootless.images.layerjob"])
def test_the_user_namespace_jobs_exit_125_outside_it(
    module: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RCTL_USERNS", raising=False)
    main = __import__(module, fromlist=["main"]).main
    assert main(["[]"]) == 125
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("must run inside rctl's user namespace")
    assert err[0].startswith("Error: ")
    assert err[1].startswith("Hint: ")


def test_a_failed_volume_job_exits_1_with_its_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rootless.volumes import userjob  # noqa: PLC0415

    def job_fails(_job: object) -> dict[str, object]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setenv("RCTL_USERNS", "1")
    monkeypatch.setattr(userjob, "run_job", job_fails)
    job = {"op": "remove", "path": str(tmp_path)}
    assert userjob.main([json.dumps([job])]) == 1
    err = capsys.readouterr().err
    assert (
        reported_message(err) == f"volume remove of {tmp_path} failed: [Errno 13] Permission denied"
    )
    assert err.splitlines()[1].startswith("Hint: ")


def test_a_failed_layer_job_exits_1_with_its_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rootless.images import layerjob  # noqa: PLC0415

    def job_fails(_job: object) -> dict[str, object]:
        raise ExternalError("layer sha256:ab is corrupt", hint="pull again")

    monkeypatch.setenv("RCTL_USERNS", "1")
    monkeypatch.setattr(layerjob, "decode_jobs", lambda _text: [object()])
    monkeypatch.setattr(layerjob, "run_job", job_fails)
    (tmp_path / "jobs.json").write_text("[]")
    assert layerjob.main([str(tmp_path / "jobs.json")]) == 1
    assert capsys.readouterr().err == "Error: layer sha256:ab is corrupt\nHint: pull again\n"


def test_the_generator_never_fails_the_manager(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rootless.definitions import generator  # noqa: PLC0415

    def generate_fails(*_args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.delenv("RCTL_DEBUG", raising=False)
    monkeypatch.setattr(generator, "generate", generate_fails)
    assert generator.main([str(tmp_path)]) == 0
    assert capsys.readouterr().err.startswith("Error: internal error: RuntimeError: a bug\n")


def test_uidmap_enter_reports_a_missing_command_with_a_hint() -> None:
    # In a child: exec_program changes the signal dispositions of its process.
    code = "import sys; from uidmap.enter import exec_program; sys.exit(exec_program(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "rctl-no-such-program-xyz"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 127
    err = proc.stderr.splitlines()
    assert err[0] == 'Error: exec: "rctl-no-such-program-xyz": executable file not found in $PATH'
    assert err[1].startswith("Hint: ")


# -- the program door ------------------------------------------------------------------


def test_a_failed_program_quotes_its_last_line_and_hints_at_debug() -> None:
    from rctlbase.run import run_program  # noqa: PLC0415

    with pytest.raises(CommandFailed) as caught:
        run_program(["sh", "-c", "echo first >&2; echo oops >&2; exit 3"])
    assert caught.value.message == "sh failed: oops"
    assert caught.value.returncode == 3
    assert caught.value.hint is not None and "--debug" in caught.value.hint


def test_a_failed_helper_is_quoted_by_its_error_line_not_its_hint() -> None:
    from rctlbase.run import run_program  # noqa: PLC0415

    script = "echo 'Error: no space left' >&2; echo 'Hint: free some' >&2; exit 1"
    with pytest.raises(CommandFailed) as caught:
        run_program(["sh", "-c", script])
    assert caught.value.message == "sh failed: no space left"


def test_a_bad_flag_is_one_line_with_the_help_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rootless import cli  # noqa: PLC0415

    assert cli.main(["ps", "--no-such-flag\x1b[2J\nError: forged"]) == 125
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("Error: ") and "\\x1b[2J\\nError" in err[0]
    assert err[1] == "Hint: see 'rctl --help' or 'rctl COMMAND --help'"
