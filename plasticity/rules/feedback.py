"""Random feedback: `uniform_feedback` draws the fixed random matrices of `fa`, `dfa` and the
workspace; `weight_product` is what a direct feedback matrix stands in for (alignment angles)."""

from __future__ import annotations

import math

import torch


def uniform_feedback(shape: tuple[int, int], fan_in: int, scale: float, generator: torch.Generator) -> torch.Tensor:
    """A fixed random matrix with entries ~ U(−s, s), s = scale·sqrt(3 / fan_in).

    Entry variance is scale²/fan_in, so a signal of unit variance entering through `fan_in`
    inputs leaves with variance ≈ scale² (the LeCun initialisation, applied to the feedback
    direction).
    """
    bound = scale * math.sqrt(3.0 / fan_in)
    return torch.rand(shape, generator=generator) * 2 * bound - bound


def weight_product(weights: list[torch.Tensor]) -> torch.Tensor:
    """W_L ⋯ W_{l+1}: the linear part of the path from a hidden layer to the output."""
    product = weights[-1]
    for weight in reversed(weights[:-1]):
        product = product @ weight
    return product
