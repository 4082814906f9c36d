"""One error root for the whole tool; the CLI turns each class into its exit code."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error the tool reports; `exit_code` is what the CLI exits with."""

    exit_code = 1


class BadInput(RegistryError):
    """The command line or settings are wrong; found before any request to the server."""

    exit_code = 2


class Unreachable(RegistryError):
    """The server cannot be reached, or refused our credentials (401/403)."""

    exit_code = 3


class ServerFailed(Unreachable):
    """The server answered, with an HTTP 5xx error (its store down, a bug): exit 3 like a down server."""


class PermissionDenied(Unreachable):
    """The server knows us but refuses: wrong credentials (401) or missing permission (403)."""


class NotFound(RegistryError):
    """A model, version or alias does not exist, or there is nothing to roll back to."""

    exit_code = 4


class Refused(RegistryError):
    """The request is valid but a policy of this tool forbids it."""

    exit_code = 5


class Drift(RegistryError):
    """`doctor` found the registry in a state this tool would never leave it in."""

    exit_code = 6


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of an error (its class name when it has no message)."""
    lines = str(error).strip().splitlines()
    if lines:
        return lines[0].strip()
    return type(error).__name__ if isinstance(error, BaseException) else ""
