"""Poisson rate coding: an input of intensity p ∈ [0, 1] fires a Poisson train at p · rate Hz.

Spikes are drawn as events, not step by step: for each input, the number of spikes in the
presentation is Poisson(p · rate · duration) and their steps are uniform over the presentation,
which is exactly a Poisson process observed on the step grid (two spikes may share a step).
Only inputs with p > 0 cost anything, so the draw is ~100× cheaper than a Bernoulli draw per
input and step on MNIST, where most pixels are black.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Events:
    """Input spikes of a batch as events: spike k is input `index[k]` of sample `sample[k]` at
    step `step[k]` (all int64 tensors of equal length)."""

    step: torch.Tensor
    sample: torch.Tensor
    index: torch.Tensor

    def __len__(self) -> int:
        return len(self.step)

    def select(self, keep: torch.Tensor) -> Events:
        """The events where the boolean mask `keep` is True."""
        return Events(self.step[keep], self.sample[keep], self.index[keep])


def poisson_events(intensity: torch.Tensor, rate_hz: torch.Tensor | float, steps: int, dt_ms: float, generator: torch.Generator) -> Events:
    """Poisson spike events for intensities (batch, inputs) in [0, 1] over `steps` steps of dt ms.

    rate_hz: the rate of intensity 1, a number or one per sample (batch,).
    """
    if intensity.dim() != 2:
        raise ValueError(f"intensities must be (batch, inputs); got shape {tuple(intensity.shape)}")
    if steps < 1 or not dt_ms > 0:
        raise ValueError(f"need steps ≥ 1 and dt > 0; got steps={steps}, dt={dt_ms}")
    rate = torch.as_tensor(rate_hz, dtype=torch.float32)
    rate = rate[:, None] if rate.dim() == 1 else rate
    expected = intensity.clamp(0.0, 1.0) * rate * (steps * dt_ms / 1000.0)
    sample, index = expected.nonzero(as_tuple=True)
    n = torch.poisson(expected[sample, index], generator=generator).long()
    spike = torch.repeat_interleave(torch.arange(len(sample)), n)
    step = (torch.rand(len(spike), generator=generator) * steps).long().clamp(max=steps - 1)
    return Events(step=step, sample=sample[spike], index=index[spike])
