"""The one exception type for every user-facing data problem.

Callers (the CLI, benchmarks) catch `DataError` to show the message and stop; the message
always says what went wrong *and* what to do about it. It subclasses `ValueError` so code
that already guards against bad values keeps working.
"""

from __future__ import annotations


class DataError(ValueError):
    """A dataset could not be found, verified, parsed or prepared."""
