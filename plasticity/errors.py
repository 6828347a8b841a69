"""The project's own error types: problems a user can fix, each told in one line.

The command line catches `PlasticityError` (and nothing broader), prints its message on one
line and exits with status 2; any other exception is a bug of the library and keeps its
traceback. Every message says what went wrong and what to do about it, and shows user-given
values through `brief`, so that a huge value never floods the terminal.

The types that describe bad *values* also subclass `ValueError`, so code that guards against
bad values keeps working (scikit-learn's estimator checks expect `ValueError`, for instance).
"""

from __future__ import annotations

from typing import Any

BRIEF = 80  # characters of a user-given value that an error message shows


class PlasticityError(Exception):
    """A problem with the user's input, files or environment that the user can fix."""


class ConfigError(PlasticityError, ValueError):
    """A setting, option or command-line argument that is missing, mistyped or out of range."""


class FileCheckError(PlasticityError, ValueError):
    """A file the project wrote (checkpoint, results, memory, cache) that fails its checks:
    truncated, tampered with, foreign, or from an incompatible version."""


def brief(value: Any, limit: int = BRIEF) -> str:
    """`repr(value)`, cut to `limit` characters (with the length of what was cut) for messages."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text)} characters)"


def os_reason(error: Exception) -> str:
    """Why an operating-system call failed, without the file name it quotes (which may be huge):
    "Permission denied", "File name too long", or, for a NUL byte in a name, "embedded null byte"."""
    return (error.strerror if isinstance(error, OSError) else None) or str(error)
