"""The benchmark MLP, a plain `nn.Sequential` built by a function, and the activity record
(`Trace`) that observers and probes read from any model.

`build_mlp` returns `Linear, f, Linear, f, ..., Linear`: nothing in it knows about learning rules.
A rule attaches to it as to any other model (`plasticity.rules.attach`); the activities a rule or
an observer reads are recorded by hooks on its layers (`plasticity.observe.activity`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from plasticity.errors import ConfigError

ACTIVATIONS = ("relu", "tanh", "triangle")


def rms_normalize(h: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """h / sqrt(mean h² + eps) per sample (over every feature of the sample): the activity's
    direction, with unit root mean square.

    Hinton's (2022) length normalisation between Forward-Forward layers, scaled by sqrt(width)
    so that every unit keeps unit RMS whatever the layer's width."""
    dims = tuple(range(1, h.dim()))
    return h * torch.rsqrt(h.pow(2).mean(dim=dims, keepdim=True) + eps)


class Triangle(nn.Module):
    """f(a)_j = max(0, a_j − mean_k a_k): each unit's drive above the layer's mean (Coates, Lee &
    Ng 2011; SoftHebb's activation, Journé et al. 2023). The mean runs over dim 1 (units, or
    channels of a conv layer's output at each position)."""

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return torch.relu(a - a.mean(dim=1, keepdim=True))


class RMSNormalize(nn.Module):
    """`rms_normalize` as a layer without parameters."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return rms_normalize(h)


def activation_module(kind: str) -> nn.Module:
    """The hidden non-linearity `kind` as a module."""
    if kind not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {ACTIVATIONS}; got {kind!r}")
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "triangle": Triangle}[kind]()


@dataclass
class Trace:
    """Activities of one forward pass of a model's blocks (`plasticity.observe.activity.record`).

    h[l] is block l's input (h[0] the model's input) and a[l] block l's output, the layer's
    pre-activation; h[L] is the model's output (the logits)."""

    h: list[torch.Tensor]
    a: list[torch.Tensor]

    @property
    def logits(self) -> torch.Tensor:
        return self.h[-1]

    def detach(self) -> Trace:
        return Trace([t.detach() for t in self.h], [t.detach() for t in self.a])

    def clone(self) -> Trace:
        return Trace([t.detach().clone() for t in self.h], [t.detach().clone() for t in self.a])


# Bytes that one float32 parameter holds while it trains: itself, its gradient, Adam's two moments.
TRAINING_BYTES = 16


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(parameters: int, what: str) -> None:
    """Refuse, before anything is allocated, a network whose training state (`TRAINING_BYTES`
    per parameter) exceeds this machine's physical memory: a clear message instead of an
    allocator error or the out-of-memory killer."""
    available = memory_bytes()
    if available is not None and parameters * TRAINING_BYTES > available:
        raise ConfigError(
            f"{what} has {parameters:,} parameters: training it needs about {parameters * TRAINING_BYTES / 2**30:,.0f} GiB, "
            f"and this machine has {available / 2**30:,.0f} GiB; choose smaller widths (--hidden)"
        )


def build_mlp(
    n_features: int,
    n_classes: int,
    hidden: Sequence[int] = (256, 256),
    activation: str = "relu",
    seed: int = 0,
    normalize: bool = False,
) -> nn.Sequential:
    """The benchmark network: Linear layers [n_features, *hidden, n_classes] with `activation`
    ("relu", "tanh" or "triangle") after every hidden layer (followed by `RMSNormalize` if
    `normalize`), the output linear.

    Initialisation (He et al. 2015 for ReLU, Glorot & Bengio 2010 otherwise), drawn from one
    generator seeded by `seed`, layer by layer: hidden weights ~ U(−s, s), s = gain·sqrt(3 /
    fan_in), gain = sqrt(2) for ReLU and 1 otherwise; the output layer gain 1; biases zero."""
    sizes = [int(n_features), *(int(h) for h in hidden), int(n_classes)]
    if any(s < 1 for s in sizes):
        raise ConfigError(f"layer widths must all be ≥ 1; got {sizes}")
    check_fits(sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True)), f"an MLP of widths {sizes}")
    activation_module(activation)  # checks the name
    generator = torch.Generator().manual_seed(seed)
    hidden_gain = math.sqrt(2.0) if activation == "relu" else 1.0
    modules: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layer = nn.Linear(fan_in, fan_out)
        last = index == len(sizes) - 2
        bound = (1.0 if last else hidden_gain) * math.sqrt(3.0 / fan_in)
        with torch.no_grad():
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * bound - bound)
            layer.bias.zero_()
        modules.append(layer)
        if not last:
            modules.append(activation_module(activation))
            if normalize:
                modules.append(RMSNormalize())
    return nn.Sequential(*modules)


def linear_sizes(model: nn.Module) -> list[int] | None:
    """[input, widths...] of a model made of Linear layers only (None if it has another layer
    with parameters)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears or any(list(m.parameters(recurse=False)) and not isinstance(m, nn.Linear) for m in model.modules()):
        return None
    return [linears[0].in_features] + [m.out_features for m in linears]
