"""Exit codes, and the errors a command raises to end with one line on stderr."""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # an API call or an operation failed
EXIT_USAGE = 2  # bad arguments or configuration
EXIT_NO_ACCESS = 3  # no credentials, or no running local cloud
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class CliError(Exception):
    """A failure worth one line on stderr and a non-zero exit."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CliError):
    """Bad arguments: exit code 2."""

    def __init__(self, message: str):
        super().__init__(message, EXIT_USAGE)
