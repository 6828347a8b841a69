"""Closed-form predictive coding on the benchmark MLP (`build_mlp`'s `nn.Sequential`): the rule as
it was written before it became a PyTorch extension, kept as a test oracle.

Layer l = 0..L−1 reads h_l and computes a_l = W_l h_l + b_l, h_{l+1} = f(a_l) (the logits a_{L−1}
last). Value nodes v_l, l = 1..L−1, start at h_l; with errors ε_{l+1} = v_{l+1} − f(a_l) (hidden)
and ε_L = onehot(y) − softmax(a_{L−1}) ("ce") or onehot(y) − a_{L−1} ("mse"), T steps of

    v_l ← v_l + γ (−ε_l + W_lᵀ(f′(a_l) ⊙ ε_{l+1}))          (all l at once)

with a_l = W_l v_l + b_l recomputed after every step (unless predictions are fixed; a_0 always
stays the forward one), then ΔW_l = −(f′(a_l) ⊙ ε_{l+1}) v_lᵀ / B, Δb_l = −Σ_batch f′(a_l) ⊙ ε_{l+1} / B
(gradient convention), read at the forward values under fixed prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.nets import Trace


def activate(a: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.relu(a) if activation == "relu" else torch.tanh(a)


def derivative(a: torch.Tensor, h: torch.Tensor, activation: str) -> torch.Tensor:
    """f′(a), from h = f(a) for tanh."""
    return (a > 0).to(a.dtype) if activation == "relu" else 1.0 - h * h


def linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def trace(model: nn.Module, x: torch.Tensor, activation: str) -> Trace:
    """The forward pass of a `build_mlp` network: per Linear layer its input h and output a."""
    h, a = [x], []
    layers = linears(model)
    for index, layer in enumerate(layers):
        a.append(F.linear(h[-1], layer.weight, layer.bias))
        h.append(a[-1] if index == len(layers) - 1 else activate(a[-1], activation))
    return Trace(h, a)


@dataclass
class Relaxed:
    """state: the values the update reads (relaxed, or the forward ones under fixed prediction);
    errors: f′(a_l) ⊙ ε_{l+1} per layer; inputs: per layer its input after each step (None for
    layer 0); energy: F after relaxation, batch mean."""

    forward: Trace
    state: Trace
    errors: list[torch.Tensor]
    inputs: list[list[torch.Tensor] | None]
    energy: float


def output_error(logits: torch.Tensor, target: torch.Tensor, energy: str) -> torch.Tensor:
    return target - (torch.softmax(logits, dim=1) if energy == "ce" else logits)


@torch.no_grad()
def relax(model: nn.Module, x: torch.Tensor, y: torch.Tensor, activation: str, T: int, rate: float, energy: str = "ce", fixed: bool = False) -> Relaxed:
    layers = linears(model)
    L = len(layers)
    forward = trace(model, x, activation)
    target = F.one_hot(y, layers[-1].out_features).to(x.dtype)
    values = list(forward.h[:-1])
    a = list(forward.a)
    predictions = list(forward.h[1:-1])
    gains = [derivative(a[l], forward.h[l + 1], activation) for l in range(L - 1)] + [None]
    inputs: list[list[torch.Tensor] | None] = [None] + [[value] for value in values[1:]]

    def errors() -> list[torch.Tensor]:
        return [v - mu for v, mu in zip(values[1:], predictions, strict=True)] + [output_error(a[-1], target, energy)]

    for _ in range(T):
        eps = errors()
        for l in range(1, L):
            gated = eps[l] if gains[l] is None else gains[l] * eps[l]
            values[l] = values[l] - rate * eps[l - 1] + rate * gated @ layers[l].weight
            inputs[l].append(values[l])
        if not fixed:
            for l in range(1, L):
                a[l] = F.linear(values[l], layers[l].weight, layers[l].bias)
                if l < L - 1:
                    predictions[l] = activate(a[l], activation)
                    gains[l] = derivative(a[l], predictions[l], activation)
    eps = errors()
    state = forward if fixed else Trace(values + [a[-1]], a)
    gated = [e if g is None else g * e for g, e in zip(gains, eps, strict=True)]
    hidden = sum(e.pow(2).sum() for e in eps[:-1]) / 2
    output = F.cross_entropy(a[-1], y, reduction="sum") if energy == "ce" else eps[-1].pow(2).sum() / 2
    return Relaxed(forward, state, gated, inputs, float(hidden + output) / len(y))


def directions(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, activation: str, T: int, rate: float, energy: str = "ce", fixed: bool = False
) -> list[torch.Tensor]:
    """[ΔW_0, Δb_0, ΔW_1, ...] in gradient convention (batch mean)."""
    relaxed = relax(model, x, y, activation, T, rate, energy, fixed)
    out = []
    for error, pre in zip(relaxed.errors, relaxed.state.h[:-1], strict=True):
        delta = -error / len(y)
        out += [delta.T @ pre, delta.sum(dim=0)]
    return out
