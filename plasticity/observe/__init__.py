"""Read-only instruments: ΣPI, synergy (Ω), alignment angles, forgetting."""

from plasticity.observe.base import Observer

__all__ = ["Observer"]
