"""The one exception type for errors a user can cause, and the exit codes of the console scripts."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every nerfreg command (as pytest's `ExitCode`)."""

    OK = 0
    WRONG = 1
    """nerfreg-demo: the pipeline ran, and the evaluation against the truth says it is wrong."""
    USAGE = 2
    """Bad input: a missing file, a malformed dataset, an invalid transform, an unknown plugin."""
    NOT_CONFIDENT = 3
    """nerfreg-register ran, but its verifier does not trust the result."""
    STAGE_FAILED = 4
    """nerfreg-demo: one of its commands failed (the message names its log)."""
    INTERRUPTED = 130
    """Stopped by the user (Ctrl-C); nothing partial was kept."""


class NerfregError(Exception):
    """An error the user can fix; its message is one line and is shown without a traceback."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(exit_code)
