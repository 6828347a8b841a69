"""Random feedback, and the direct-feedback pathway of the workspace rule.

`uniform_feedback` draws the fixed random matrices of `fa` and `dfa`; `weight_product` is what a
direct feedback matrix stands in for (alignment angles). The rest is the closed-form direct
broadcast the workspace rule still computes on the MLP (`direct_deltas`, output → every hidden
layer through its own B_l) and its weight mirror (`mirror_feedback`); the `dfa` rule does the
same inside autograd (`plasticity.rules.dfa`). They go when the workspace rule moves onto the
attached core.
"""

from __future__ import annotations

import math

import torch

from plasticity.nets import MLP, Trace, activate, activation_derivative


def uniform_feedback(shape: tuple[int, int], fan_in: int, scale: float, generator: torch.Generator) -> torch.Tensor:
    """A fixed random matrix with entries ~ U(−s, s), s = scale·sqrt(3 / fan_in).

    Entry variance is scale²/fan_in, so a signal of unit variance entering through `fan_in`
    inputs leaves with variance ≈ scale² (the LeCun initialisation, applied to the feedback
    direction).
    """
    bound = scale * math.sqrt(3.0 / fan_in)
    return torch.rand(shape, generator=generator) * 2 * bound - bound


def direct_feedback(sizes: list[int], scale: float, generator: torch.Generator) -> list[torch.Tensor]:
    """One fixed matrix per hidden layer, mapping a class-space signal (sizes[-1]) to its width."""
    classes = sizes[-1]
    return [uniform_feedback((classes, width), classes, scale, generator) for width in sizes[1:-1]]


@torch.no_grad()
def mirror_feedback(
    net: MLP, trace: Trace, feedback: list[torch.Tensor], rate: float, sigma: float, samples: int, generator: torch.Generator
) -> None:
    """Learn direct feedback in place from noise: a weight mirror (Akrout, Wilson, Humphreys,
    Lillicrap & Tweed 2019, NeurIPS, "Deep learning without weight transport"), adapted to
    direct feedback.

    A second forward pass of the first `samples` inputs of `trace` — the clean pass, which must
    have been made with the current weights — in which every hidden unit adds its own noise σξᵢ
    to its output. The output's change per unit of noise, Δo = (o_noisy − o_clean) / σ, reaches
    every feedback synapse as a broadcast (C numbers per sample), and synapse B_l[k, i] moves
    toward the product of Δo_k and unit i's own noise: B_l ← (1 − rate) B_l + rate · mean Δo ξ_lᵀ.
    The noises of different units are independent with unit variance, so to first order in σ the
    product's expectation is the batch-mean Jacobian E[∂o/∂h_l]: B_l comes to carry the path
    W_L f′ ⋯ f′ W_{l+1} from layer l to the output without any forward weight being read — what
    reaches a feedback synapse is activity (its unit's noise and the output's response).
    """
    h = trace.h[0][:samples]
    noises = []
    last = len(net.layers) - 1
    for index, layer in enumerate(net.layers):
        h = layer(h)
        if index < last:
            noise = torch.randn(h.shape, generator=generator)
            h = activate(h, net.activation) + sigma * noise
            noises.append(noise)
    response = (h - trace.logits[:samples]) / sigma
    for matrix, noise in zip(feedback, noises):
        matrix.mul_(1.0 - rate).add_(response.T @ noise, alpha=rate / len(response))


def direct_deltas(trace: Trace, signal: torch.Tensor, feedback: list[torch.Tensor], activation: str) -> list[torch.Tensor]:
    """Hidden errors from one broadcast signal: δ_l = (signal B_l) ⊙ f′(a_l), for each hidden l.

    feedback[l] has shape (len(signal row), n_l). Returns the hidden layers' errors only.
    """
    return [
        (signal @ matrix) * activation_derivative(trace.a[index], trace.h[index + 1], activation)
        for index, matrix in enumerate(feedback)
    ]


def direct_pairs(feedback: list[torch.Tensor], net: MLP) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, B_l, W_L⋯W_{l+1}) for direct feedback: B_l stands for the linear path to the output."""
    weights = [layer.weight for layer in net.layers]
    return [(f"B{index + 1}", B, weight_product(weights[index + 1 :])) for index, B in enumerate(feedback)]


def weight_product(weights: list[torch.Tensor]) -> torch.Tensor:
    """W_L ⋯ W_{l+1}: the linear part of the path from a hidden layer to the output."""
    product = weights[-1]
    for weight in reversed(weights[:-1]):
        product = product @ weight
    return product
