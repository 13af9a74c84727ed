"""The instructions that only change an image's config (ENV, LABEL, CMD, ENTRYPOINT,
EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, SHELL, HEALTHCHECK, MAINTAINER, ONBUILD), and
ARG; pure.

Variables are substituted with the values in effect *before* the instruction, so
``ENV a=1 b=$a`` gives ``b`` the old ``a`` (the Dockerfile reference, "Environment
replacement"). Which instructions substitute: ADD, COPY, ENV, EXPOSE, FROM, LABEL,
STOPSIGNAL, USER, VOLUME, WORKDIR, ONBUILD's stored text not (it is substituted when
triggered); RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK are left to the shell.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from rctlbase.errors import UsageError
from rootless.build.dockerfile import Instruction
from rootless.build.shellwords import expand_word, expand_words

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Predefined ARGs usable without declaring them (the Dockerfile reference, "Predefined ARGs").
PROXY_ARGS = frozenset(
    {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
     "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
)  # fmt: skip
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}  # fmt: skip


@dataclass(slots=True)
class StageVars:
    """What substitution sees in a stage: its declared ARGs and the image's ENV."""

    args: dict[str, str] = field(default_factory=dict)  # declared in this stage, with values
    config_cmd_from_stage: bool = False  # a CMD was set in this stage (ENTRYPOINT keeps it)


def env_map(config: dict[str, Any]) -> dict[str, str]:
    """The config's ``Env`` list as a mapping."""
    out: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def lookup(config: dict[str, Any], vars_: StageVars) -> dict[str, str]:
    """Variables for substitution: ARGs, overridden by ENV of the same name."""
    return {**vars_.args, **env_map(config)}


def _err(instruction: Instruction, what: str, hint: str) -> UsageError:
    return UsageError(f"line {instruction.line}: {instruction.keyword}: {what}", hint=hint)


def key_values(instruction: Instruction, words: list[str]) -> list[tuple[str, str]]:
    """``k=v`` words, or the legacy ``KEY VALUE...`` form of ENV and LABEL."""
    if not words:
        raise _err(instruction, "needs at least one KEY=VALUE", "e.g. ENV MODE=production")
    if "=" not in words[0]:
        if len(words) < 2:
            raise _err(instruction, f"{words[0]!r} has no value", "write KEY=VALUE")
        return [(words[0], " ".join(words[1:]))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise _err(instruction, f"{word!r} is not KEY=VALUE", "write KEY=VALUE")
        pairs.append((key, value))
    return pairs


def command_of(instruction: Instruction, config: dict[str, Any]) -> list[str]:
    """CMD, ENTRYPOINT, RUN: the exec form, or the shell form run by SHELL."""
    form = instruction.exec_form()
    if form is not None:
        return form
    shell = config.get("Shell") or DEFAULT_SHELL
    return [*shell, instruction.args]


def apply_arg(
    instruction: Instruction, vars_: StageVars, env: dict[str, str], build_args: dict[str, str],
    escape: str,
) -> None:  # fmt: skip
    """ARG NAME[=DEFAULT]...: the build argument's value, else the default."""
    for word in expand_words(instruction.args, env, escape) if instruction.args else []:
        name, sep, default = word.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise _err(instruction, f"invalid name {name!r}", "ARG NAME[=DEFAULT]")
        if name in build_args:
            vars_.args[name] = build_args[name]
        elif sep:
            vars_.args[name] = default
        else:
            vars_.args.pop(name, None)  # declared without a value: unset, as docker


def parse_duration(instruction: Instruction, flag: str, text: str) -> int:
    """Go's ``time.ParseDuration`` for HEALTHCHECK's flags, in nanoseconds."""
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if match is None:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise _err(instruction, f"--{flag}={text}: not a duration", "e.g. --interval=30s")
    return int(total)


def apply_config(  # noqa: PLR0911, PLR0912, PLR0915 - one branch per instruction
    instruction: Instruction, config: dict[str, Any], vars_: StageVars, escape: str
) -> str:
    """Apply a config-only instruction to ``config`` (the image config's ``config``
    section); what the history shows for it, substituted."""
    env = lookup(config, vars_)
    keyword, args = instruction.keyword, instruction.args
    if keyword == "ENV":
        pairs = key_values(instruction, expand_words(args, env, escape))
        current = env_map(config)
        for key, value in pairs:
            current[key] = value
        config["Env"] = [f"{k}={v}" for k, v in current.items()]
        return "ENV " + " ".join(f'{k}="{v}"' for k, v in pairs)
    if keyword == "LABEL":
        pairs = key_values(instruction, expand_words(args, env, escape))
        labels = config.get("Labels") or {}
        labels.update(pairs)
        config["Labels"] = labels
        return "LABEL " + " ".join(f'{k}="{v}"' for k, v in pairs)
    if keyword in ("CMD", "ENTRYPOINT"):
        command = command_of(instruction, config)
        if keyword == "CMD":
            config["Cmd"] = command
            vars_.config_cmd_from_stage = True
        else:
            config["Entrypoint"] = command
            if not vars_.config_cmd_from_stage:
                config["Cmd"] = None  # a base image's CMD does not outlive a new ENTRYPOINT
        return f"{keyword} {_json(command)}"
    if keyword == "EXPOSE":
        ports = config.get("ExposedPorts") or {}
        for word in expand_words(args, env, escape):
            port = word if "/" in word else f"{word}/tcp"
            if not re.fullmatch(r"\d{1,5}(-\d{1,5})?/(tcp|udp|sctp)", port.lower()):
                raise _err(instruction, f"invalid port {word!r}", "e.g. EXPOSE 80 or 53/udp")
            ports[port.lower()] = {}
        config["ExposedPorts"] = ports
        return f"EXPOSE {' '.join(sorted(ports))}"
    if keyword == "VOLUME":
        form = instruction.exec_form()
        paths = form if form is not None else expand_words(args, env, escape)
        volumes = config.get("Volumes") or {}
        for path in paths:
            if not path:
                raise _err(instruction, "empty path", "VOLUME /data")
            volumes[path] = {}
        config["Volumes"] = volumes
        return f"VOLUME {_json(paths)}"
    if keyword == "USER":
        config["User"] = expand_word(args, env, escape)
        return f"USER {config['User']}"
    if keyword == "WORKDIR":
        path = expand_word(args, env, escape)
        config["WorkingDir"] = posixpath.normpath(
            posixpath.join(config.get("WorkingDir") or "/", path)
        )
        return f"WORKDIR {config['WorkingDir']}"
    if keyword == "STOPSIGNAL":
        config["StopSignal"] = expand_word(args, env, escape)
        return f"STOPSIGNAL {config['StopSignal']}"
    if keyword == "SHELL":
        form = instruction.exec_form()
        if not form:
            raise _err(instruction, "needs the JSON form", 'SHELL ["/bin/bash", "-c"]')
        config["Shell"] = form
        return f"SHELL {_json(form)}"
    if keyword == "HEALTHCHECK":
        return _healthcheck(instruction, config)
    if keyword == "ONBUILD":
        config["OnBuild"] = [*(config.get("OnBuild") or []), args]
        return f"ONBUILD {args}"
    raise _err(instruction, "is not a config instruction", "this is a bug in rctl")


def _healthcheck(instruction: Instruction, config: dict[str, Any]) -> str:
    words = instruction.args.split(maxsplit=1)
    if words and words[0].upper() == "NONE":
        config["Healthcheck"] = {"Test": ["NONE"]}
        return "HEALTHCHECK NONE"
    if len(words) < 2 or words[0].upper() != "CMD":
        raise _err(instruction, "needs CMD or NONE", "HEALTHCHECK CMD curl -f http://localhost/")
    form = words[1]
    from rootless.build.dockerfile import exec_form  # noqa: PLC0415 - one use

    listed = exec_form(form)
    test = ["CMD", *listed] if listed is not None else ["CMD-SHELL", form]
    check: dict[str, Any] = {"Test": test}
    durations = (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    )
    for flag, key in durations:
        value = instruction.flag(flag)
        if value is not None:
            check[key] = parse_duration(instruction, flag, value)
    retries = instruction.flag("retries")
    if retries is not None:
        if not retries.isdigit():
            raise _err(instruction, f"--retries={retries}: not a number", "--retries=3")
        check["Retries"] = int(retries)
    config["Healthcheck"] = check
    return f"HEALTHCHECK {_json(test)}"


def _json(value: object) -> str:
    import json  # noqa: PLC0415 - small

    return json.dumps(value)
