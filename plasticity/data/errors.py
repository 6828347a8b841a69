"""The one exception type for every user-facing data problem.

Callers (the CLI, benchmarks) catch `DataError` (a `plasticity.errors.PlasticityError`) to show
the message and stop; the message always says what went wrong *and* what to do about it. It
subclasses `ValueError` so code that already guards against bad values keeps working.
"""

from __future__ import annotations

from plasticity.errors import PlasticityError


class DataError(PlasticityError, ValueError):
    """A dataset could not be found, verified, parsed or prepared."""
