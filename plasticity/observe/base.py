"""The observer protocol: read-only instruments attached to training.

An observer sees every training step and every epoch end, and returns numbers that the
trainer writes into the results JSON. Observers never change weights, rule state or the
data order: data flows data -> net -> rule -> observers -> results, one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from plasticity.data import Dataset
    from plasticity.rules.attach import GradientRule
    from plasticity.rules.base import StepInfo


@runtime_checkable
class Observer(Protocol):
    """What the trainer calls. `name` keys the observer's numbers in each epoch entry.

    An observer whose `on_step` reads `StepInfo.update_norm` says so with a class attribute
    `reads_update_norm = True`: the trainer computes the norm only then (an observer without
    the attribute does not read it)."""

    name: str

    def on_step(self, net: nn.Module, rule: GradientRule, x: torch.Tensor, y: torch.Tensor, info: StepInfo) -> None:
        """Called after every training step with the batch and the rule's StepInfo."""

    def on_epoch_end(self, net: nn.Module, rule: GradientRule, epoch: int, data: Dataset) -> dict[str, Any]:
        """Called after each epoch; returns JSON-serialisable numbers for this epoch."""
        ...
