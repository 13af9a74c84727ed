"""Reading /etc/subuid and /etc/subgid: the subordinate ID ranges each user may map.

Each line is ``OWNER:START:COUNT`` where OWNER is a user name or a numeric uid (subuid(5),
subgid(5)); a user may have several lines. newuidmap accepts a range listed under either the
name or the uid (the uid in /etc/subgid too: shadow's ``find_range``), so :func:`load_subids`
returns both, in file order. Comments, blank lines and malformed lines are skipped like
shadow's ``commonio`` does, but malformed lines are counted so ``rctl doctor`` can point at
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rctlbase.errors import HostError

SUBUID_PATH = Path("/etc/subuid")
SUBGID_PATH = Path("/etc/subgid")

# IDs are 32-bit and (uid_t)-1 is reserved (user_namespaces(7)).
MAX_ID = 2**32 - 1


@dataclass(frozen=True, slots=True)
class IDRange:
    """``count`` consecutive IDs starting at ``start``."""

    start: int
    count: int

    @property
    def end(self) -> int:
        """The first ID after the range."""
        return self.start + self.count

    def __str__(self) -> str:
        return f"{self.start}-{self.end - 1}"


@dataclass(frozen=True, slots=True)
class SubidEntry:
    """One valid line of a subid file."""

    owner: str
    range: IDRange
    line: int


@dataclass(frozen=True, slots=True)
class SubidFile:
    """A parsed subid file: its valid entries and the numbers of its malformed lines."""

    path: Path
    entries: tuple[SubidEntry, ...]
    malformed: tuple[int, ...]

    def ranges_for(self, user_name: str, uid: int) -> tuple[IDRange, ...]:
        """The ranges listed under ``user_name`` or under ``uid`` itself, in file order."""
        owners = {user_name, str(uid)}
        return tuple(entry.range for entry in self.entries if entry.owner in owners)

    def highest_end(self) -> int:
        """The first ID after every range of every user (0 for an empty file)."""
        return max((entry.range.end for entry in self.entries), default=0)


def parse_subid_line(line: str, number: int = 0) -> SubidEntry | None:
    """Parse line ``number``; None unless it is ``OWNER:START:COUNT`` with 32-bit IDs."""
    fields = [field.strip() for field in line.split(":")]
    if len(fields) != 3 or not fields[0]:
        return None
    owner, start_text, count_text = fields
    if not (start_text.isdecimal() and count_text.isdecimal()):
        return None
    start, count = int(start_text), int(count_text)
    if count == 0 or start + count > MAX_ID:
        return None
    return SubidEntry(owner, IDRange(start, count), number)


def parse_subid_text(text: str, path: Path = SUBUID_PATH) -> SubidFile:
    """Parse the text of a subid file (``path`` only names it in diagnostics)."""
    entries: list[SubidEntry] = []
    malformed: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        entry = parse_subid_line(line, number)
        if entry is None:
            malformed.append(number)
        else:
            entries.append(entry)
    return SubidFile(path, tuple(entries), tuple(malformed))


def read_subid_file(path: Path) -> SubidFile:
    """Read and parse a subid file; a missing file has no entries (as for newuidmap)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return SubidFile(path, (), ())
    except OSError as exc:
        raise HostError(
            f"cannot read {path}: {exc.strerror}",
            hint=f"it should be world-readable: sudo chmod 644 {path}",
        ) from exc
    return parse_subid_text(text, path)


def load_subids(user_name: str, uid: int, path: Path = SUBUID_PATH) -> tuple[IDRange, ...]:
    """The subordinate ranges of a user (by name or numeric uid) in ``path``, in file order.

    Malformed lines are skipped and logged; an empty tuple means the user has no entry,
    which :func:`uidmap.mapping.plan_userns` turns into a diagnostic with the fix.
    """
    parsed = read_subid_file(path)
    if parsed.malformed:
        import logging  # noqa: PLC0415 - rarely needed, and costly at every container's start

        lines = ", ".join(map(str, parsed.malformed))
        logging.getLogger("rctl.uidmap").warning(
            "%s: ignored malformed line(s) %s (expected OWNER:START:COUNT)", path, lines
        )
    return parsed.ranges_for(user_name, uid)
