"""The one exception type for errors a user can cause, and the exit codes of the console scripts."""

from __future__ import annotations

EXIT_USAGE = 2
"""Bad input: a missing file, a malformed dataset, an invalid transform."""
EXIT_NOT_CONFIDENT = 3
"""A registration ran but its verifier does not trust the result."""


class NerfregError(Exception):
    """An error the user can fix; its message is one line and is shown without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
