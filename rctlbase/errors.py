"""The one exception root of rctl, and the one way every entry point reports an error.

::

    RctlError                     anything rctl reports to a user (message + hint)    500
    ├── UsageError                a bad flag value or argument                        400
    │   ├── DefinitionError       definition files that don't validate (definitions.tables)
    │   ├── TemplateError         a --format template that fails (cli.gotemplate.errors)
    │   ├── NotServed             an API endpoint rctl does not serve (api.http)      501
    │   └── ContextTooLarge       a build context over the API's bound (build.upload)  413
    ├── NotFoundError             a named image, container, volume... is missing      404
    ├── ConflictError             a name taken, a thing in use or in the wrong state  409
    │   └── UnitStillActive       a unit did not end in time (units.session)
    ├── HostError                 the host lacks something (a program, /etc/subuid)   500
    │   ├── ProgramNotFound       an external program is not installed
    │   └── CorruptStoreError     a store file isn't what rctl wrote (images.store)
    ├── CommandFailed             an external program ran and failed                  500
    ├── CommandNotRunnable        the container's command is missing or not executable 500
    ├── BuildFailed               a build's step failed, exit 1 (build.builder)
    ├── UntrustedFileError        an image's file is no regular file (containers.untrusted)
    └── ExternalError             a foreign failure (D-Bus, netlink, HTTP) translated 500
        ├── CopyFailed            ``rctl cp`` could not finish (containers.copy)
        ├── AuthenticationError   the registry wants other credentials (images.auth)
        ├── DigestMismatchError   content doesn't match its digest (images.registry)
        ├── TruncatedBlobError    a blob's download ended early (images.registry)
        ├── InvalidManifestError  a manifest rctl won't use (images.manifest)
        ├── ArchiveError          an archive rctl can't read (images.archive)
        ├── LayerError            a layer blob that can't be unpacked (images.unpack)
        │   └── UnsafeLayerError  an entry aimed outside its layer (images.unpack)
        ├── DownloadError         ADD could not download a URL (build.fetch)
        └── UnitStartFailed       a unit's start job failed (units.session)

Classes drawn with a module are defined there (under ``rootless``, or ``units`` as named);
this module imports nothing from the project. The number is ``http_status``, what the API
answers with (500 unless drawn; subclasses inherit their parent's).
``units.connection.ConnectionLost`` is no RctlError: a ``ConnectionError`` of the bus
client, translated by its callers.

Every error carries a one-line ``message`` and a ``hint`` telling the user what to do (a
class may supply a default hint). Entry points (the CLI, the helpers systemd units run, the
API) report them through :func:`format_error` and :func:`run_main`: ``Error: MESSAGE`` and
``Hint: HINT`` on stderr, the class's ``exit_code`` (125 unless the entry point says
otherwise); anything else is a bug, one ``internal error`` line unless ``--debug`` or
``RCTL_DEBUG`` asks for its traceback. Nothing below the entry points prints or exits.
"""

from __future__ import annotations

import os
import sys

# Not typing.TYPE_CHECKING: importing typing costs the stop hook and the launcher, which
# load this module on every container run, some 4 ms; mypy and ruff honour the name alone.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

DEBUG_ENV = "RCTL_DEBUG"


class RctlError(Exception):
    """An error reported to the user as one line with a hint."""

    exit_code: int = 125
    http_status: int = 500
    # What a class tells the user to do when the raiser gives no hint of its own.
    default_hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class UsageError(RctlError):
    """A flag, argument or definition key has a value rctl can't use."""

    http_status = 400


class NotFoundError(RctlError):
    """A named object does not exist."""

    http_status = 404


class ConflictError(RctlError):
    """The object exists already, is in use, or is in a state that forbids the request."""

    http_status = 409


class HostError(RctlError):
    """The host is missing something rctl needs."""

    default_hint = "'rctl doctor' checks what the host lacks"


class ProgramNotFound(HostError):
    """An external program is not installed or not on PATH."""


class CommandFailed(RctlError):
    """An external program exited with a failure status; the message quotes the last line
    it wrote, ``stderr`` keeps all of it."""

    default_hint = "run with --debug to see the program's command line and full output"

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


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\x1b``): a name, media type
    or error a registry or an image wrote, quoted in a message, can neither forge lines nor
    drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_error(exc: BaseException) -> str:
    """What an entry point writes for ``exc`` (no final newline): ``Error: MESSAGE``, then
    ``Hint: HINT`` when there is one. Each line is escaped by :func:`one_line`; an error
    listing several problems (a definition file's, with ``problems``) gets one line each.
    Anything but an RctlError is a bug, named by its type."""
    if not isinstance(exc, RctlError):
        said = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return (
            f"Error: internal error: {one_line(said)}\n"
            f"Hint: run with --debug (or {DEBUG_ENV}=1) for the traceback, and report it"
        )
    if getattr(exc, "problems", None):
        lines = [one_line(line) for line in exc.message.split("\n")]
    else:
        lines = [one_line(exc.message)]
    lines[0] = f"Error: {lines[0]}"
    if exc.hint:
        lines.append(f"Hint: {one_line(exc.hint)}")
    return "\n".join(lines)


def reported_message(output: str) -> str:
    """The message of an error a helper reported with :func:`format_error`, taken back from
    its stderr: the last ``Error:`` line without the prefix, or else the last non-empty line
    (a program that isn't rctl's). Callers quote it in an error of their own."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("Error: "):
            return line.removeprefix("Error: ")
    return lines[-1] if lines else ""


def debug_requested(argv: list[str] | None = None) -> bool:
    """Whether tracebacks are wanted: ``--debug`` among ``argv`` or ``RCTL_DEBUG`` set."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0") or "--debug" in (argv or ())


def report(exc: BaseException, *, debug: bool = False) -> None:
    """Write ``exc`` to stderr as :func:`format_error` does, its traceback first with
    ``debug``. For the forked children that end with ``os._exit`` and can't unwind."""
    if debug:
        # Imported only here: the stop hook and the launcher load this module on every run.
        import traceback  # noqa: PLC0415

        traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(format_error(exc) + "\n")
    sys.stderr.flush()


def run_main(
    body: Callable[[], int],
    *,
    error_code: int | None = None,
    internal_code: int = 1,
    debug: bool | None = None,
) -> int:
    """The error boundary of a ``main()``: ``body()``'s status, or, when it raises, the
    error reported on stderr and the status for it. An RctlError exits with ``error_code``
    when the entry point has one of its own (the units that run it read it), else its class's
    ``exit_code``; any other exception with ``internal_code`` (1, as an uncaught exception
    exits), its traceback shown only with ``debug`` (default: :func:`debug_requested` on
    ``sys.argv``)."""
    if debug is None:
        debug = debug_requested(sys.argv[1:])
    try:
        return body()
    except RctlError as exc:
        report(exc, debug=debug)
        return exc.exit_code if error_code is None else error_code
    except Exception as exc:  # a bug: reported in one line, not as a wall of traceback
        report(exc, debug=debug)
        return internal_code
