"""Closed-form Forward-Forward on the benchmark MLP (a `nn.Sequential` of Linear layers and
activation modules): the rule as it was written before it became a PyTorch extension, kept as
the test oracle of `plasticity.rules.ff`.

For hidden layer l with pre-activation a_l, output f_l = f(a_l) and goodness G_l = mean_j f_{l,j}²,
the error at a_l is δ_l = ∂ℓ_l/∂a_l = ∂ℓ_l/∂G_l · 2 f_l f′(a_l) / n_l, and ΔW_l = δ_lᵀ h_l with h_l
the layer's (RMS-normalised) input; the label weights get δ_0ᵀ onehot; the head gets the delta
rule on the neutral-label pass. `trace` records one pass (also used by `oracle_softhebb`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.nets import rms_normalize
from plasticity.rules.ff import FFConfig


@dataclass
class Trace:
    """h[l]: the input Linear layer l computes with (RMS-normalised after the first layer in a
    normalised pass), h[L] the logits; a[l]: layer l's output (pre-activation, the context
    included); f[l]: hidden block l's output as the model passes it on (before the pass's
    normalisation)."""

    h: list[torch.Tensor]
    a: list[torch.Tensor]
    f: list[torch.Tensor]

    @property
    def logits(self) -> torch.Tensor:
        return self.h[-1]


def linears(model: nn.Sequential) -> list[nn.Linear]:
    return [module for module in model if isinstance(module, nn.Linear)]


def trace(model: nn.Sequential, x: torch.Tensor, context: torch.Tensor | None = None, normalize: bool = False) -> Trace:
    """One pass of the MLP by hand (F.linear, whatever forward a rule gave the layers), `context`
    added to the first layer's pre-activation, each later layer's input RMS-normalised if
    `normalize`."""
    h: list[torch.Tensor] = []
    a: list[torch.Tensor] = []
    f: list[torch.Tensor] = []
    value = x
    for module in model:
        if not isinstance(module, nn.Linear):
            value = module(value)
            continue
        if h:
            f.append(value)
            value = rms_normalize(value) if normalize else value
        h.append(value)
        value = F.linear(value, module.weight, module.bias)
        if context is not None and not a:
            value = value + context
        a.append(value)
    return Trace(h + [value], a, f)


def activation_of(model: nn.Sequential) -> str:
    """ "relu" or "tanh": the MLP's hidden non-linearity."""
    kinds = {type(module) for module in model} & {nn.ReLU, nn.Tanh}
    assert len(kinds) == 1, kinds
    return "relu" if kinds == {nn.ReLU} else "tanh"


def fprime(a: torch.Tensor, f: torch.Tensor, activation: str) -> torch.Tensor:
    """f′(a) from the pre-activation and the output (tanh′ = 1 − f²)."""
    return (a > 0).to(a.dtype) if activation == "relu" else 1.0 - f * f


def output_error(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂(batch-mean cross-entropy)/∂logits = (softmax(logits) − onehot(y)) / batch."""
    error = torch.softmax(logits, dim=1)
    error[torch.arange(len(y)), y] -= 1.0
    return error / len(y)


def layer_direction(delta: torch.Tensor, pre: torch.Tensor) -> list[torch.Tensor]:
    """[ΔW, Δb] = [δᵀ h, Σ_batch δ]."""
    return [delta.T @ pre, delta.sum(dim=0)]


def goodness(f: torch.Tensor) -> torch.Tensor:
    return f.pow(2).mean(dim=1)


def forward_pass(model: nn.Sequential, U: torch.Tensor, x: torch.Tensor, labels: torch.Tensor) -> Trace:
    """The FF pass with `labels` (batch × C: one-hot, or the neutral 1/C) as the label input."""
    return trace(model, x, context=labels @ U.T, normalize=True)


def neutral(x: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.full((len(x), classes), 1.0 / classes, dtype=x.dtype)


def negative_labels(config: FFConfig, seed: int, steps: int, head_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A wrong label per sample, from a generator seeded by (seed, steps)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + steps)
    weights = torch.softmax(head_logits, dim=1).clamp_min(1e-12) if config.negatives == "hard" else torch.ones_like(head_logits)
    weights = weights.scatter(1, y[:, None], 0.0)
    return torch.multinomial(weights, 1, generator=generator)[:, 0]


def layer_deltas(config: FFConfig, t: Trace, activation: str, positive: bool) -> list[torch.Tensor]:
    """δ_l of the softplus loss of one pass (positive or negative), batch mean."""
    deltas = []
    for a, f in zip(t.a[:-1], t.f, strict=True):
        logit = config.sharpness * (goodness(f) - config.threshold)
        # d softplus(∓logit)/d logit = ∓σ(∓logit); dG/da = 2 f f′ / n.
        slope = -torch.sigmoid(-logit) if positive else torch.sigmoid(logit)
        scale = slope * (2 * config.sharpness / (a.shape[1] * a.shape[0]))
        deltas.append(scale[:, None] * f * fprime(a, f, activation))
    return deltas


def all_label_directions(model: nn.Sequential, U: torch.Tensor, config: FFConfig, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Hidden [ΔW, Δb] per layer, then ΔU, of the softmax loss over every label:
    ∂ℓ_l/∂a_l(c) = α (p_l(c) − [c = y]) ∂G_l/∂a_l(c) for the pass with label c."""
    classes, activation = U.shape[1], activation_of(model)
    eye = torch.eye(classes, dtype=x.dtype)
    traces = [forward_pass(model, U, x, eye[c].expand(len(x), classes)) for c in range(classes)]
    pick = F.one_hot(y, classes).to(x.dtype)
    hidden: list[torch.Tensor] = []
    for l in range(len(linears(model)) - 1):
        fs = [t.f[l] for t in traces]
        p = torch.softmax(config.sharpness * torch.stack([goodness(f) for f in fs], dim=1), dim=1)
        scale = 2 * config.sharpness / (fs[0].shape[1] * len(x))
        grads = [scale * f * fprime(t.a[l], f, activation) for f, t in zip(fs, traces, strict=True)]
        negative = [p[:, c, None] * g for c, g in enumerate(grads)]
        positive = sum(pick[:, c, None] * g for c, g in enumerate(grads))
        positive_pre = sum(pick[:, c, None] * t.h[l] for c, t in enumerate(traces))
        weight = sum(n.T @ t.h[l] for n, t in zip(negative, traces, strict=True)) - positive.T @ positive_pre
        bias = sum(n.sum(dim=0) for n in negative) - positive.sum(dim=0)
        hidden += [weight, bias]
        if l == 0:  # the label weights feed layer 0 only
            labels = torch.stack([n.sum(dim=0) for n in negative], dim=1) - positive.T @ pick
    return hidden + [labels]


@torch.no_grad()
def directions(model: nn.Sequential, U: torch.Tensor, config: FFConfig, x: torch.Tensor, y: torch.Tensor, seed: int = 0, steps: int = 0) -> list[torch.Tensor]:
    """Every parameter's direction (the model's, in order, then U's), in gradient convention."""
    classes = U.shape[1]
    neutral_pass = forward_pass(model, U, x, neutral(x, classes))
    head = layer_direction(output_error(neutral_pass.logits, y), neutral_pass.h[-2])
    if config.negatives == "all":
        hidden_and_labels = all_label_directions(model, U, config, x, y)
        return hidden_and_labels[:-1] + head + hidden_and_labels[-1:]
    activation = activation_of(model)
    negative_y = negative_labels(config, seed, steps, neutral_pass.logits, y)
    positive_onehot, negative_onehot = (F.one_hot(labels, classes).to(x.dtype) for labels in (y, negative_y))
    positive = forward_pass(model, U, x, positive_onehot)
    negative = forward_pass(model, U, x, negative_onehot)
    positive_deltas = layer_deltas(config, positive, activation, positive=True)
    negative_deltas = layer_deltas(config, negative, activation, positive=False)
    hidden = []
    for l, (dp, dn) in enumerate(zip(positive_deltas, negative_deltas, strict=True)):
        hidden += [p + n for p, n in zip(layer_direction(dp, positive.h[l]), layer_direction(dn, negative.h[l]), strict=True)]
    labels = positive_deltas[0].T @ positive_onehot + negative_deltas[0].T @ negative_onehot
    return hidden + head + [labels]


@torch.no_grad()
def logits(model: nn.Sequential, U: torch.Tensor, config: FFConfig, x: torch.Tensor) -> torch.Tensor:
    """ "head": the neutral pass's logits; "scan": α Σ_l G_l(x, c) for every label c."""
    classes = U.shape[1]
    if config.inference == "head":
        return forward_pass(model, U, x, neutral(x, classes)).logits
    eye = torch.eye(classes, dtype=x.dtype)
    scores = [sum(goodness(f) for f in forward_pass(model, U, x, eye[c].expand(len(x), classes)).f) for c in range(classes)]
    return config.sharpness * torch.stack(scores, dim=1)
