"""Reading a Dockerfile (or Containerfile) into stages of instructions; pure.

What is recognised follows the Dockerfile reference (docs.docker.com/reference/dockerfile)
and BuildKit's parser (frontend/dockerfile/parser):

- parser directives at the very top (``# syntax=`` accepted and ignored, ``# escape=\\``
  or a backtick; ``# check=`` ignored); once anything else is seen there are no more;
- comment lines (``#`` first), blank lines, and lines continued with the escape character
  at their end (comment and blank lines inside a continuation are dropped);
- heredocs after RUN, COPY and ADD: ``<<EOF``, ``<<-EOF`` (leading tabs removed),
  ``<<"EOF"``/``<<'EOF'`` (no substitution in the body), several on one line;
- leading ``--flag[=value]`` words of instructions that take flags;
- the JSON (exec) form of CMD, ENTRYPOINT, RUN, SHELL, COPY, ADD, VOLUME: an argument
  that is a JSON list of strings; anything else is the shell form, as docker does.

Instructions before the first FROM may only be ARG (the stages' meta arguments). Variables
are not substituted here: the builder does, with the values in effect at each instruction
(:mod:`rootless.build.shellwords`). Every error names the file's line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from rctlbase.errors import UsageError

MAX_DOCKERFILE = 4 << 20  # bytes: BuildKit refuses Dockerfiles over a few MB too
MAX_INSTRUCTIONS = 10_000
INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
        "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
        "WORKDIR",
    }
)  # fmt: skip
# The flags each instruction accepts (BuildKit's instructions/parse.go).
FLAGS: dict[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "RUN": frozenset({"mount", "network", "security"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "ADD": frozenset({"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}
HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*")
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_.-]*)\2")
_FLAG = re.compile(r"--([a-z][a-z-]*)(?:=(.*))?")


@dataclass(frozen=True, slots=True)
class Heredoc:
    """A here-document: its name, body and whether variables in it are substituted."""

    name: str
    body: str
    expand: bool


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction as written; ``args`` follows the flags (continuations joined)."""

    keyword: str  # upper case
    args: str
    line: int  # of its first line, from 1
    flags: tuple[tuple[str, str | None], ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def text(self) -> str:
        """The instruction as docker shows it in step lines and history."""
        flags = "".join(f"--{k}={v} " if v is not None else f"--{k} " for k, v in self.flags)
        return f"{self.keyword} {flags}{self.args}".rstrip()

    def flag(self, name: str) -> str | None:
        """The last value of the flag ``name`` (a bare ``--link`` is "true")."""
        found = [v if v is not None else "true" for k, v in self.flags if k == name]
        return found[-1] if found else None

    def flag_values(self, name: str) -> list[str]:
        """Every value of a repeatable flag (``--mount``)."""
        return [v or "" for k, v in self.flags if k == name]

    def exec_form(self) -> list[str] | None:
        """The JSON form's list, or None for the shell form."""
        return exec_form(self.args)


@dataclass(frozen=True, slots=True)
class Stage:
    """A FROM and what follows it."""

    index: int
    base: str  # FROM's image argument, unsubstituted
    name: str | None  # FROM ... AS name (lower case)
    platform: str | None
    instructions: tuple[Instruction, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Dockerfile:
    """A parsed file: ARGs before the first FROM, then the stages."""

    meta_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    escape: str = "\\"


def exec_form(args: str) -> list[str] | None:
    """``args`` as a JSON list of strings, or None when it is not one."""
    text = args.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _error(name: str, line: int, what: str) -> UsageError:
    return UsageError(f"{name}:{line}: {what}", hint="see docs/build.md for what rctl reads")


def parse_directives(lines: list[str], name: str) -> tuple[dict[str, str], int]:
    """The parser directives at the top and the index of the first line after them."""
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = _DIRECTIVE.fullmatch(line.strip())
        if match is None:
            return found, index
        key, value = match.group(1).lower(), match.group(2)
        if key not in ("syntax", "escape", "check"):
            return found, index  # an unknown directive is a comment, and ends them
        if key in found:
            raise _error(name, index + 1, f"the {key} directive is given twice")
        found[key] = value
    return found, len(lines)


def parse_dockerfile(text: str, name: str = "Dockerfile") -> Dockerfile:
    """Parse ``text``; UsageError ``NAME:LINE: what`` for anything rctl won't build."""
    if len(text) > MAX_DOCKERFILE:
        raise UsageError(
            f"{name} is larger than {MAX_DOCKERFILE >> 20} MiB",
            hint="a Dockerfile that large is not one people write: check the file given",
        )
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    directives, start = parse_directives(lines, name)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise _error(name, 1, f"invalid escape character {escape!r}: use \\ or `")
    instructions = _instructions(lines, start, escape, name)
    return _stages(instructions, escape, name)


def _continued(line: str, escape: str) -> str | None:
    """The line without its continuation escape, or None when it does not continue."""
    stripped = line.rstrip()
    if stripped.endswith(escape):
        return stripped[: -len(escape)]
    return None


def _instructions(lines: list[str], start: int, escape: str, name: str) -> list[Instruction]:
    found: list[Instruction] = []
    i = start
    while i < len(lines):
        raw = lines[i]
        first = i + 1
        i += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts: list[str] = []
        current: str | None = raw
        while current is not None:
            rest = _continued(current, escape)
            if rest is None:
                parts.append(current)
                break
            parts.append(rest)
            current = None
            while i < len(lines):
                nxt = lines[i]
                i += 1
                if not nxt.strip() or nxt.lstrip().startswith("#"):
                    continue  # dropped inside a continuation
                current = nxt
                break
        joined = "".join(parts).strip()
        keyword, _, args = joined.partition(" ")
        if "\t" in keyword:
            keyword, _, more = keyword.partition("\t")
            args = f"{more} {args}"
        keyword = keyword.upper()
        if keyword not in INSTRUCTIONS:
            raise _error(name, first, f"unknown instruction {keyword!r}")
        args = args.strip()
        flags: tuple[tuple[str, str | None], ...] = ()
        if keyword in FLAGS:
            flags, args = _flags(keyword, args, name, first)
        heredocs: tuple[Heredoc, ...] = ()
        if keyword in HEREDOC_INSTRUCTIONS and "<<" in args:
            heredocs, i = _heredocs(args, lines, i, name, first)
        found.append(Instruction(keyword, args, first, flags, heredocs))
        if len(found) > MAX_INSTRUCTIONS:
            raise _error(name, first, f"more than {MAX_INSTRUCTIONS} instructions")
    return found


def _flags(
    keyword: str, args: str, name: str, line: int
) -> tuple[tuple[tuple[str, str | None], ...], str]:
    flags: list[tuple[str, str | None]] = []
    rest = args
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        match = _FLAG.fullmatch(word)
        if match is None:
            raise _error(name, line, f"{keyword}: malformed flag {word!r}")
        flag, value = match.group(1), match.group(2)
        if flag not in FLAGS[keyword]:
            raise _error(name, line, f"{keyword}: unknown flag --{flag}")
        flags.append((flag, value))
        rest = after.lstrip()
    return tuple(flags), rest


def _heredocs(
    args: str, lines: list[str], i: int, name: str, line: int
) -> tuple[tuple[Heredoc, ...], int]:
    if exec_form(args) is not None:
        return (), i
    found: list[Heredoc] = []
    for match in _HEREDOC.finditer(args):
        if args[max(match.start() - 1, 0) : match.start()] == "<":
            continue  # <<< is a here-string of the shell, no heredoc
        chomp, quote, word = match.group(1) == "-", match.group(2), match.group(3)
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise _error(name, line, f"here-document {word!r} is not terminated")
            text = lines[i]
            i += 1
            check = text.lstrip("\t") if chomp else text
            if check == word:
                break
            body.append(check)
        content = "".join(f"{part}\n" for part in body)
        found.append(Heredoc(word, content, expand=not quote))
    return tuple(found), i


def _stages(instructions: list[Instruction], escape: str, name: str) -> Dockerfile:
    meta: list[Instruction] = []
    stages: list[Stage] = []
    current: list[Instruction] = []
    head: Instruction | None = None

    def close() -> None:
        if head is None:
            return
        base, stage_name = _from_args(head, name)
        platform = head.flag("platform")
        taken = {s.name for s in stages}
        if stage_name is not None and stage_name in taken:
            raise _error(name, head.line, f"duplicate stage name {stage_name!r}")
        stages.append(Stage(len(stages), base, stage_name, platform, tuple(current), head.line))

    for instruction in instructions:
        if instruction.keyword == "FROM":
            close()
            head, current = instruction, []
        elif head is None:
            if instruction.keyword != "ARG":
                raise _error(name, instruction.line, f"{instruction.keyword} before the first FROM")
            meta.append(instruction)
        else:
            if instruction.keyword == "ONBUILD":
                check_onbuild(instruction.args, name, instruction.line)
            current.append(instruction)
    close()
    if not stages:
        raise UsageError(f"{name} has no FROM instruction", hint="start it with FROM IMAGE")
    return Dockerfile(tuple(meta), tuple(stages), escape)


def _from_args(head: Instruction, name: str) -> tuple[str, str | None]:
    words = head.args.split()
    if len(words) == 1:
        return words[0], None
    if len(words) == 3 and words[1].lower() == "as":
        stage = words[2].lower()
        if not re.fullmatch(r"[a-z][a-z0-9_.-]*", stage):
            raise _error(name, head.line, f"invalid stage name {words[2]!r}")
        return words[0], stage
    raise _error(name, head.line, "FROM takes IMAGE [AS NAME]")


def check_onbuild(args: str, name: str, line: int) -> Instruction:
    """The instruction an ONBUILD holds; some can't be deferred."""
    keyword = args.split(maxsplit=1)[0].upper() if args.strip() else ""
    if keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise _error(name, line, f"ONBUILD can't hold {keyword}")
    nested = _instructions([args], 0, "\\", name)
    if len(nested) != 1:
        raise _error(name, line, "ONBUILD needs an instruction")
    return nested[0]
