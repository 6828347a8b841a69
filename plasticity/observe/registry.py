"""Observers by name, for the command line and the bench (`--observe alignment,pi,omega`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from plasticity.errors import ConfigError
from plasticity.observe.alignment import AlignmentMonitor
from plasticity.observe.base import Observer
from plasticity.observe.pi import PIMonitor
from plasticity.observe.synergy import OmegaMonitor
from plasticity.observe.workspace import WorkspaceMonitor

OBSERVERS: dict[str, Callable[[], Observer]] = {
    "pi": PIMonitor,
    "omega": OmegaMonitor,
    "alignment": AlignmentMonitor,
    "workspace": WorkspaceMonitor,
}


def names() -> list[str]:
    return list(OBSERVERS)


def build_observers(selected: Sequence[str]) -> list[Observer]:
    """Fresh observers for one run, in the order given."""
    unknown = [name for name in selected if name not in OBSERVERS]
    if unknown:
        raise ConfigError(f"unknown observer(s) {unknown}; known observers: {', '.join(OBSERVERS)}")
    return [OBSERVERS[name]() for name in selected]
