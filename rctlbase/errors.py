"""The one exception root of rctl.

::

    RctlError                 anything rctl reports to a user (message + hint, exit 125)
    ├── UsageError            a bad flag value or argument
    ├── NotFoundError         a named thing (image, container, volume...) does not exist
    ├── ConflictError         a name is taken, a thing is in use or in the wrong state
    ├── HostError             the host lacks something (a program, an entry in /etc/subuid...)
    │   └── ProgramNotFound   an external program is not installed
    ├── CommandFailed         an external program ran and failed
    ├── CommandNotRunnable    the container's command is missing (127) or not executable (126)
    └── ExternalError         a foreign failure (D-Bus, netlink, HTTP) translated where it entered

Every error carries a one-line ``message`` and an optional ``hint`` telling the user what to
do. Entry points (CLI, API) map these to exit codes and HTTP statuses; nothing below them
prints or exits.
"""

from __future__ import annotations


class RctlError(Exception):
    """An error reported to the user as one line with a hint."""

    exit_code: int = 125

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(RctlError):
    """A flag, argument or definition key has a value rctl can't use."""


class NotFoundError(RctlError):
    """A named object does not exist."""


class ConflictError(RctlError):
    """The object exists already, is in use, or is in a state that forbids the request."""


class HostError(RctlError):
    """The host is missing something rctl needs."""


class ProgramNotFound(HostError):
    """An external program is not installed or not on PATH."""


class CommandFailed(RctlError):
    """An external program exited with a failure status."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        returncode: int = 1,
        stderr: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.returncode = returncode
        self.stderr = stderr


class ExternalError(RctlError):
    """A failure of a foreign library (D-Bus, netlink, HTTP), translated at its entry."""


class CommandNotRunnable(RctlError):
    """The container's command is missing (exit 127) or not executable (126), as in docker."""

    def __init__(self, message: str, *, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code
