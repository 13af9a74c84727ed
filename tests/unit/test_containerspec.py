"""ContainerSpec and the parsers of docker-run flag values (rootless.containers.spec)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from rctlbase.errors import UsageError
from rootless.containers.seccomp import SeccompMode, SeccompPolicy
from rootless.containers.spec import (
    DEFAULT_PATH,
    BindMount,
    ContainerSpec,
    HostEntry,
    ImageDefaults,
    Limits,
    ResolvedUser,
    RestartPolicy,
    RestartPolicyName,
    TmpfsMount,
    UsernsMode,
    UserSpec,
    merge_env,
    parse_add_host,
    parse_capability,
    parse_cpus,
    parse_dns,
    parse_entrypoint,
    parse_env,
    parse_env_file,
    parse_label,
    parse_memory,
    parse_memory_swap,
    parse_pids_limit,
    parse_restart,
    parse_signal,
    parse_tmpfs,
    parse_user,
    parse_userns,
    resolve_user,
)
from rootless.containers.unitspec import plan_spec
from rootless.models import RunOptions

BUSYBOX = ImageDefaults(env=(f"PATH={DEFAULT_PATH}",), cmd=("sh",))


def spec(image: ImageDefaults = BUSYBOX, **kwargs: Any) -> ContainerSpec:
    return ContainerSpec(
        name="c1", image_ref="busybox", image_id="sha256:" + "a" * 64, image=image, **kwargs
    )


def usage_error(func: object, *args: object, **kwargs: object) -> UsageError:
    assert callable(func)
    with pytest.raises(UsageError) as info:
        func(*args, **kwargs)
    return info.value


# ---- parse_memory -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1024", 1024),
        ("512m", 512 * 1024**2),
        ("512M", 512 * 1024**2),
        ("1g", 1024**3),
        ("1.5g", 1610612736),
        ("100k", 102400),
        ("10b", 10),
        ("2gb", 2 * 1024**3),
        ("2GiB", 2 * 1024**3),
        ("0", 0),
    ],
)
def test_parse_memory_accepts_docker_units(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "-1", "-512m", "", "1x", "1.5.2g", "m"])
def test_parse_memory_refuses_garbage_naming_flag_and_value(text: str) -> None:
    err = usage_error(parse_memory, text)
    assert "--memory" in err.message
    assert repr(text) in err.message
    assert err.hint


def test_parse_memory_names_the_flag_it_parses_for() -> None:
    assert "--shm-size" in usage_error(parse_memory, "big", flag="--shm-size").message


def test_parse_memory_swap_allows_minus_one() -> None:
    assert parse_memory_swap("-1") == -1
    assert parse_memory_swap("1g") == 1024**3
    assert "--memory-swap" in usage_error(parse_memory_swap, "-2").message


# ---- limits ---------------------------------------------------------------------------------


def test_limits_refuse_memory_below_six_mebibytes() -> None:
    assert Limits(memory=6 * 1024 * 1024).memory == 6 * 1024 * 1024
    assert "--memory" in usage_error(Limits, memory=1024).message


def test_limits_memory_swap_needs_memory_and_must_cover_it() -> None:
    assert "needs --memory" in usage_error(Limits, memory_swap=1 << 30).message
    err = usage_error(Limits, memory=1 << 30, memory_swap=1 << 20)
    assert "--memory-swap" in err.message
    assert Limits(memory_swap=-1).memory_swap == -1


def test_limits_refuse_bad_cpu_shares_and_pids() -> None:
    assert "--cpu-shares" in usage_error(Limits, cpu_shares=1).message
    assert "--pids-limit" in usage_error(Limits, pids_limit=0).message
    assert "--cpus" in usage_error(Limits, cpus=0.0).message


# ---- parse_cpus / parse_pids_limit ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("1.5", 1.5), ("2", 2.0), ("0.01", 0.01), ("64", 64.0)]
)
def test_parse_cpus(text: str, expected: float) -> None:
    assert parse_cpus(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "abc", "nan", "inf", "0.001", ""])
def test_parse_cpus_refuses(text: str) -> None:
    err = usage_error(parse_cpus, text)
    assert "--cpus" in err.message
    assert repr(text) in err.message


def test_parse_pids_limit() -> None:
    assert parse_pids_limit("100") == 100
    assert parse_pids_limit("0") == -1  # docker: 0 and -1 are "unlimited"
    assert parse_pids_limit("-1") == -1
    assert "--pids-limit" in usage_error(parse_pids_limit, "-5").message
    assert "--pids-limit" in usage_error(parse_pids_limit, "many").message


# ---- parse_restart --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no", RestartPolicy()),
        ("always", RestartPolicy(RestartPolicyName.ALWAYS)),
        ("unless-stopped", RestartPolicy(RestartPolicyName.UNLESS_STOPPED)),
        ("on-failure", RestartPolicy(RestartPolicyName.ON_FAILURE)),
        ("on-failure:3", RestartPolicy(RestartPolicyName.ON_FAILURE, 3)),
    ],
)
def test_parse_restart(text: str, expected: RestartPolicy) -> None:
    assert parse_restart(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("sometimes", "unknown restart policy"),
        ("always:3", "can't go with 'always'"),
        ("on-failure:x", "not a number"),
        ("on-failure:-1", "negative"),
        ("", "unknown restart policy"),
    ],
)
def test_parse_restart_refuses(text: str, why: str) -> None:
    err = usage_error(parse_restart, text)
    assert err.message.startswith(f"invalid --restart value {text!r}")
    assert why in err.message
    assert err.hint is not None and "on-failure" in err.hint


# ---- parse_env / parse_env_file ---------------------------------------------------------------


def test_parse_env() -> None:
    environ = {"HOME": "/home/alice", "EMPTY": ""}
    assert parse_env("A=1", environ) == "A=1"
    assert parse_env("A=", environ) == "A="
    assert parse_env("A=b=c", environ) == "A=b=c"
    assert parse_env("HOME", environ) == "HOME=/home/alice"
    assert parse_env("EMPTY", environ) == "EMPTY="
    assert parse_env("UNSET", environ) is None


@pytest.mark.parametrize("text", ["=1", "", "A B=1"])
def test_parse_env_refuses(text: str) -> None:
    assert "--env" in usage_error(parse_env, text, {}).message


def test_parse_env_file_follows_dockers_syntax() -> None:
    text = (
        "\ufeff# a comment\n"
        "\n"
        "A=1\n"
        "  B=two words  \n"
        'C="quoted"\n'
        "   # indented comment\n"
        "FROM_ENV\n"
        "NOT_SET\n"
        "D=\n"
        "E=x=y\n"
    )
    assert parse_env_file(text, {"FROM_ENV": "yes"}) == (
        "A=1",
        "B=two words  ",
        'C="quoted"',
        "FROM_ENV=yes",
        "D=",
        "E=x=y",
    )


def test_parse_env_file_refuses_whitespace_in_names_naming_file_and_line() -> None:
    err = usage_error(parse_env_file, "A=1\nBAD KEY=2\n", {}, source="app.env")
    assert "app.env" in err.message
    assert "line 2" in err.message
    assert "'BAD KEY'" in err.message
    err = usage_error(parse_env_file, "=nothing\n", {})
    assert "--env-file" in err.message
    assert "line 1" in err.message


# ---- parse_signal ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SIGTERM", signal.SIGTERM),
        ("TERM", signal.SIGTERM),
        ("term", signal.SIGTERM),
        ("15", 15),
        ("SIGKILL", 9),
        ("SIGUSR1", signal.SIGUSR1),
        ("RTMIN", signal.SIGRTMIN),
        ("SIGRTMIN+3", signal.SIGRTMIN + 3),
        ("RTMAX-1", signal.SIGRTMAX - 1),
    ],
)
def test_parse_signal(text: str, expected: int) -> None:
    assert parse_signal(text) == int(expected)


@pytest.mark.parametrize("text", ["SIGFOO", "0", "65", "", "RTMIN+x", "SIG"])
def test_parse_signal_refuses(text: str) -> None:
    err = usage_error(parse_signal, text)
    assert err.message.startswith(f"invalid --stop-signal value {text!r}")


# ---- parse_tmpfs ----------------------------------------------------------------------------


def test_parse_tmpfs_defaults_and_overrides() -> None:
    assert parse_tmpfs("/run") == TmpfsMount("/run", ("rw", "noexec", "nosuid", "nodev"))
    assert parse_tmpfs("/run:rw,size=64m") == TmpfsMount(
        "/run", ("rw", "noexec", "nosuid", "nodev", "size=64m")
    )
    assert parse_tmpfs("/cache:exec,mode=1777,ro") == TmpfsMount(
        "/cache", ("nosuid", "nodev", "exec", "mode=1777", "ro")
    )
    assert parse_tmpfs("/t:size=50%,uid=1000,tmpcopyup").options[-3:] == (
        "size=50%",
        "uid=1000",
        "tmpcopyup",
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("run", "absolute"),
        ("/", "absolute"),
        ("/run:size=lots", "bad size= value"),
        ("/run:mode=999", "bad mode= value"),
        ("/run:bogus", "unknown option 'bogus'"),
        ("/run:rw=1", "unknown option 'rw=1'"),
    ],
)
def test_parse_tmpfs_refuses(text: str, why: str) -> None:
    err = usage_error(parse_tmpfs, text)
    assert err.message.startswith(f"invalid --tmpfs value {text!r}")
    assert why in err.message


# ---- parse_user / resolve_user ----------------------------------------------------------------


def test_parse_user() -> None:
    assert parse_user("1000") == UserSpec("1000")
    assert parse_user("1000:1000") == UserSpec("1000", "1000")
    assert parse_user("www-data:adm") == UserSpec("www-data", "adm")
    assert parse_user("alice:100").raw == "alice:100"


@pytest.mark.parametrize("text", ["", ":1000", "1000:", "a:b:c", "4294967295", "bad user"])
def test_parse_user_refuses(text: str) -> None:
    assert usage_error(parse_user, text).message.startswith(f"invalid --user value {text!r}")


def test_numeric_user_needs_no_files() -> None:
    assert UserSpec("1000").numeric() == ResolvedUser(1000, 0)
    assert UserSpec("1000", "50").numeric() == ResolvedUser(1000, 50)
    assert UserSpec("alice").numeric() is None
    assert UserSpec("1000", "staff").numeric() is None


PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
nohome:x:1001:1001:::/bin/sh
"""
GROUP = """root:x:0:
wheel:x:10:root,alice
alice:x:1000:
audio:x:29:alice
staff:x:50:
"""


def test_resolve_user_by_name_with_supplementary_groups() -> None:
    assert resolve_user(UserSpec("alice"), PASSWD, GROUP) == ResolvedUser(
        1000, 1000, (10, 29), "/home/alice"
    )
    assert resolve_user(UserSpec("0"), PASSWD, GROUP) == ResolvedUser(0, 0, (10,), "/root")


def test_resolve_user_explicit_group_drops_supplementary_groups() -> None:
    assert resolve_user(UserSpec("alice", "staff"), PASSWD, GROUP) == ResolvedUser(
        1000, 50, (), "/home/alice"
    )
    assert resolve_user(UserSpec("alice", "7"), PASSWD, GROUP).gid == 7


def test_resolve_user_unknown_number_is_used_as_is() -> None:
    assert resolve_user(UserSpec("4242"), PASSWD, GROUP) == ResolvedUser(4242, 0, (), "/")
    assert resolve_user(UserSpec("4242"), None, None) == ResolvedUser(4242, 0, (), "/")
    assert resolve_user(UserSpec("1001"), PASSWD, GROUP).home == "/"


def test_resolve_user_refuses_unknown_names() -> None:
    err = usage_error(resolve_user, UserSpec("bob"), PASSWD, GROUP)
    assert err.message == "unable to find user bob: no matching entries in passwd file"
    err = usage_error(resolve_user, UserSpec("alice", "nogroup"), PASSWD, GROUP)
    assert err.message == "unable to find group nogroup: no matching entries in group file"


def test_spec_with_resolved_user_uses_the_images_user() -> None:
    s = spec(ImageDefaults(cmd=("sh",), user="alice")).with_resolved_user(PASSWD, GROUP)
    assert s.resolved_user == ResolvedUser(1000, 1000, (10, 29), "/home/alice")
    s = spec(user=UserSpec("daemon")).with_resolved_user(PASSWD, GROUP)
    assert s.resolved_user == ResolvedUser(1, 1, (), "/usr/sbin")


# ---- parse_label / parse_capability / parse_entrypoint / small ones ---------------------------


def test_parse_label() -> None:
    assert parse_label("a=b") == ("a", "b")
    assert parse_label("a=b=c") == ("a", "b=c")
    assert parse_label("flag") == ("flag", "")
    assert "--label" in usage_error(parse_label, "=x").message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NET_ADMIN", "CAP_NET_ADMIN"),
        ("CAP_NET_ADMIN", "CAP_NET_ADMIN"),
        ("net_admin", "CAP_NET_ADMIN"),
        ("cap_sys_admin", "CAP_SYS_ADMIN"),
        ("ALL", "ALL"),
        ("all", "ALL"),
        ("CHECKPOINT_RESTORE", "CAP_CHECKPOINT_RESTORE"),
    ],
)
def test_parse_capability(text: str, expected: str) -> None:
    assert parse_capability(text) == expected


@pytest.mark.parametrize("text", ["NET_FLY", "CAP_", "", "CAP_ALL"])
def test_parse_capability_refuses(text: str) -> None:
    err = usage_error(parse_capability, text, flag="--cap-drop")
    assert err.message == f"invalid --cap-drop value {text!r}: unknown capability"


def test_parse_entrypoint() -> None:
    assert parse_entrypoint("/bin/app") == ("/bin/app",)
    assert parse_entrypoint("") == ()
    assert parse_entrypoint('["sh", "-c"]') == ("sh", "-c")
    assert "--entrypoint" in usage_error(parse_entrypoint, "[1, 2]").message
    assert "--entrypoint" in usage_error(parse_entrypoint, "[not json").message


def test_parse_userns() -> None:
    assert parse_userns("keep-id") is UsernsMode.KEEP_ID
    assert parse_userns("host") is UsernsMode.HOST
    assert parse_userns("") is UsernsMode.DEFAULT
    assert "--userns" in usage_error(parse_userns, "auto").message


def test_parse_add_host_and_dns() -> None:
    assert parse_add_host("db:10.0.0.5") == HostEntry("db", "10.0.0.5")
    assert parse_add_host("db=10.0.0.5") == HostEntry("db", "10.0.0.5")
    assert parse_add_host("v6=[::1]") == HostEntry("v6", "::1")
    assert parse_add_host("gw:host-gateway") == HostEntry("gw", "host-gateway")
    assert "--add-host" in usage_error(parse_add_host, "db:notanip").message
    assert "--add-host" in usage_error(parse_add_host, ":10.0.0.1").message
    assert parse_dns("1.1.1.1") == "1.1.1.1"
    assert "--dns" in usage_error(parse_dns, "one.one").message


# ---- the effective process: docker's entrypoint and cmd rules ----------------------------------

ENTRY_IMAGE = ImageDefaults(cmd=("--serve",), entrypoint=("/app",))


@pytest.mark.parametrize(
    ("image", "entrypoint", "command", "expected"),
    [
        (BUSYBOX, None, (), ("sh",)),  # the image's Cmd
        (BUSYBOX, None, ("echo", "hi"), ("echo", "hi")),  # the user's command replaces it
        (ENTRY_IMAGE, None, (), ("/app", "--serve")),  # entrypoint + cmd
        (ENTRY_IMAGE, None, ("--debug",), ("/app", "--debug")),  # command replaces cmd only
        (ENTRY_IMAGE, ("/other",), (), ("/other",)),  # --entrypoint drops the image's Cmd
        (ENTRY_IMAGE, ("/other",), ("x",), ("/other", "x")),
        (ENTRY_IMAGE, (), ("sh",), ("sh",)),  # --entrypoint "" clears
        (BUSYBOX, ("env",), (), ("env",)),
    ],
)
def test_process_args_follow_docker(
    image: ImageDefaults,
    entrypoint: tuple[str, ...] | None,
    command: tuple[str, ...],
    expected: tuple[str, ...],
) -> None:
    assert spec(image, entrypoint=entrypoint, command=command).process_args == expected


@pytest.mark.parametrize(
    ("image", "entrypoint"),
    [(ImageDefaults(), None), (BUSYBOX, ()), (ENTRY_IMAGE, ())],
)
def test_no_command_at_all_is_refused(
    image: ImageDefaults, entrypoint: tuple[str, ...] | None
) -> None:
    err = usage_error(spec, image, entrypoint=entrypoint)
    assert err.message == "no command specified"
    assert err.hint is not None and "CMD" in err.hint


# ---- env, workdir, user, stop signal, labels --------------------------------------------------


def test_merge_env_replaces_in_place_and_appends() -> None:
    assert merge_env(["A=1", "B=2"], ["B=3", "C=4", "A=5"]) == ("A=5", "B=3", "C=4")


def test_process_env_merges_over_the_image_and_defaults_path() -> None:
    image = ImageDefaults(env=("LANG=C", "PATH=/opt/bin"), cmd=("x",))
    assert spec(image, env=("LANG=C.UTF-8", "X=1")).process_env == (
        "LANG=C.UTF-8",
        "PATH=/opt/bin",
        "X=1",
    )
    assert spec(ImageDefaults(cmd=("x",)), env=("A=1",)).process_env == (
        f"PATH={DEFAULT_PATH}",
        "A=1",
    )
    assert spec(ImageDefaults(cmd=("x",)), env=("PATH=/mine",)).process_env == ("PATH=/mine",)


def test_workdir_user_signal_and_labels_default_to_the_image() -> None:
    image = ImageDefaults(
        cmd=("x",), working_dir="srv", user="1000:1000", stop_signal="SIGQUIT", labels={"a": "1"}
    )
    s = spec(image, labels={"b": "2", "a": "3"})
    assert s.process_cwd == "/srv"
    assert s.process_user == UserSpec("1000", "1000")
    assert s.kill_signal == signal.SIGQUIT
    assert s.all_labels == {"a": "3", "b": "2"}
    s = spec(image, workdir="/w", user=UserSpec("0"), stop_signal=int(signal.SIGINT))
    assert (s.process_cwd, s.process_user, s.kill_signal) == ("/w", UserSpec("0"), signal.SIGINT)
    s = spec()
    assert (s.process_cwd, s.process_user, s.kill_signal) == ("/", UserSpec("0"), signal.SIGTERM)


def test_image_with_a_bad_stop_signal_is_refused() -> None:
    err = usage_error(spec, ImageDefaults(cmd=("x",), stop_signal="SIGNOPE"))
    assert "the image's StopSignal" in err.message


# ---- validation of the whole spec --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"workdir": "relative"}, "--workdir"),
        ({"hostname": "bad_host!"}, "--hostname"),
        ({"hostname": "a" * 65}, "--hostname"),
        ({"stop_timeout": -1}, "--stop-timeout"),
        ({"stop_timeout": 99999999999999}, "--stop-timeout"),  # not timeout_stop_usec
        ({"tmpfs": (TmpfsMount("rel"),)}, "--tmpfs"),
    ],
)
def test_spec_refuses_bad_fields_naming_them(kwargs: dict[str, object], flag: str) -> None:
    assert flag in usage_error(spec, **kwargs).message


def test_spec_refuses_bad_names() -> None:
    err = usage_error(ContainerSpec, name="-bad", image_ref="x", image_id="y", image=BUSYBOX)
    assert err.message == "invalid --name value '-bad': not a container name"


def test_spec_refuses_duplicate_mount_points() -> None:
    err = usage_error(spec, tmpfs=(TmpfsMount("/data"),), mounts=(BindMount("/h", "/data/"),))
    assert err.message == "duplicate mount point: /data/"


def test_spec_refuses_unparsed_capabilities_and_env() -> None:
    with pytest.raises(ValueError, match="parse_capability"):
        spec(cap_add=("NET_ADMIN",))
    with pytest.raises(ValueError, match="parse_env"):
        spec(env=("NOVALUE",))


def test_seccomp_policy() -> None:
    assert spec().seccomp.mode is SeccompMode.DEFAULT
    texts = {"/p.json": '{"defaultAction": "SCMP_ACT_ALLOW"}'}
    custom = SeccompPolicy.from_option("/p.json", texts.__getitem__)
    assert custom.mode is SeccompMode.CUSTOM
    assert SeccompPolicy.from_option("unconfined", texts.__getitem__).profile() is None
    assert SeccompPolicy.from_option("builtin", texts.__getitem__) == SeccompPolicy()
    with pytest.raises(UsageError, match="defaultAction"):
        SeccompPolicy(SeccompMode.CUSTOM, '{"syscalls": []}')
    with pytest.raises(UsageError, match="seccomp="):
        SeccompPolicy.from_option("", texts.__getitem__)


def plan_with(*security_opt: str) -> ContainerSpec:
    options = RunOptions(image="busybox", security_opt=security_opt)
    return plan_spec(options, "c1", "busybox", "sha256:" + "a" * 64, BUSYBOX, {})


def test_security_opt_seccomp_reaches_the_spec(tmp_path: Path) -> None:
    """``--security-opt seccomp=`` was accepted and then dropped: every container got the
    default profile."""
    assert plan_with().seccomp == SeccompPolicy()
    assert plan_with("seccomp=unconfined").seccomp.mode is SeccompMode.UNCONFINED
    profile = tmp_path / "p.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_LOG"}')
    custom = plan_with("no-new-privileges", f"seccomp={profile}")
    assert custom.seccomp == SeccompPolicy(SeccompMode.CUSTOM, profile.read_text())
    assert custom.no_new_privileges
    missing = usage_error(plan_with, f"seccomp={tmp_path / 'nope.json'}")
    assert (
        missing.message
        == f"--security-opt seccomp={tmp_path / 'nope.json'}: No such file or directory"
    )
    profile.write_text("[]")
    assert "invalid seccomp profile" in usage_error(plan_with, f"seccomp={profile}").message
