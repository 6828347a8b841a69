"""Networks made of explicit layers, with a forward pass that records what local rules read.

A local learning rule needs, for every layer l, the layer's input h_{l-1} (presynaptic
activity), its pre-activation a_l = W_l h_{l-1} + b_l and its output h_l = f(a_l)
(postsynaptic activity). `MLP.trace` returns all of them in one `Trace`.

`MLP.clamp(trace)` pins the recorded activities to a reference trace while keeping the
current weights in the computation graph (a straight-through substitution). It exists so that
the plausibility tests can ask "does this layer's update read the forward weights of another
layer?" with every activity held fixed: a rule whose update is computed from activities alone
gives the same update; backprop, whose backward pass reads W_{l+1}, does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

ACTIVATIONS = ("relu", "tanh")
# Layer-wise non-linearities a rule may pass on instead of the network's own (`MLP.trace`):
# they have no element-wise derivative, so no rule that propagates errors can use them.
LAYER_ACTIVATIONS = ("triangle",)


def activate(a: torch.Tensor, kind: str) -> torch.Tensor:
    """f(a) for the hidden non-linearity `kind`.

    "triangle" (Coates, Lee & Ng 2011; SoftHebb's activation, Journé et al. 2023):
    f(a)_j = max(0, a_j − mean_k a_k), each unit's drive above the layer's mean.
    """
    if kind == "relu":
        return torch.relu(a)
    if kind == "triangle":
        return torch.relu(a - a.mean(dim=1, keepdim=True))
    return torch.tanh(a)


def activation_derivative(a: torch.Tensor, h: torch.Tensor, kind: str) -> torch.Tensor:
    """f'(a), using the already computed h = f(a) where that is cheaper (tanh' = 1 − h²)."""
    if kind == "relu":
        return (a > 0).to(a.dtype)
    return 1.0 - h * h


def rms_normalize(h: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """h / sqrt(mean_j h_j² + eps) per row: the activity's direction, with unit root mean square.

    Hinton's (2022) length normalisation between Forward-Forward layers, scaled by sqrt(width)
    so that every unit keeps unit RMS whatever the layer's width.
    """
    return h * torch.rsqrt(h.pow(2).mean(dim=1, keepdim=True) + eps)


@dataclass
class Trace:
    """Activities of one forward pass.

    h[0] is the input; for layer l = 1..L, a[l-1] is its pre-activation and h[l] its output
    (what layer l+1 receives: f(a[l-1]), or its normalised version for a pass with
    `normalize=True`). The last layer is linear, so h[L] == a[L-1] are the logits.
    """

    h: list[torch.Tensor]
    a: list[torch.Tensor]

    @property
    def logits(self) -> torch.Tensor:
        return self.h[-1]

    def detach(self) -> "Trace":
        return Trace([t.detach() for t in self.h], [t.detach() for t in self.a])

    def clone(self) -> "Trace":
        return Trace([t.detach().clone() for t in self.h], [t.detach().clone() for t in self.a])


class MLP(nn.Module):
    """A multilayer perceptron of `nn.Linear` layers with a documented initialisation.

    sizes: [input, hidden..., classes], e.g. [64, 256, 256, 10].
    activation: "relu" or "tanh" on every hidden layer; the output layer is linear (logits).

    Initialisation (He et al. 2015 for ReLU, Glorot & Bengio 2010 for tanh), drawn from
    `generator` so that a seed fixes the network: hidden weights ~ U(−s, s) with
    s = gain·sqrt(3 / fan_in), gain = sqrt(2) for ReLU and 1 for tanh; the output layer uses
    gain 1; biases start at zero.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"sizes must list at least input and output widths, all ≥ 1; got {list(sizes)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}; got {activation!r}")
        self.sizes = [int(s) for s in sizes]
        self.activation = activation
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(self.sizes[:-1], self.sizes[1:]))
        self._clamp: Trace | None = None
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        hidden_gain = math.sqrt(2.0) if self.activation == "relu" else 1.0
        for index, layer in enumerate(self.layers):
            gain = 1.0 if index == len(self.layers) - 1 else hidden_gain
            bound = gain * math.sqrt(3.0 / layer.in_features)
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * bound - bound)
            layer.bias.zero_()

    @property
    def depth(self) -> int:
        """Number of weight layers L."""
        return len(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trace(x).logits

    def trace(
        self, x: torch.Tensor, context: torch.Tensor | None = None, normalize: bool = False, activation: str | None = None
    ) -> Trace:
        """Forward pass recording every layer's input, pre-activation and output.

        context: added to the first layer's pre-activation, shape (batch, sizes[1]): an input
            pathway a rule owns, e.g. Forward-Forward's label embedding. a[0] includes it.
        normalize: pass each hidden layer's output through `rms_normalize` before the next layer
            (Forward-Forward's layer normalisation); h[l] records the normalised output, so
            f(a[l-1]) is then no longer h[l] and must be recomputed from a[l-1].
        activation: the hidden non-linearity of this pass instead of the network's own, one of
            ACTIVATIONS or LAYER_ACTIVATIONS (SoftHebb passes triangle activity on).
        Under `clamp`, a and h are the reference activities whatever the options.
        """
        kind = self.activation if activation is None else activation
        if kind not in ACTIVATIONS + LAYER_ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS + LAYER_ACTIVATIONS}; got {kind!r}")
        h, a = [x], []
        last = self.depth - 1
        for index, layer in enumerate(self.layers):
            pre = layer(h[-1])
            if index == 0 and context is not None:
                pre = pre + context
            pre = self._pin(pre, index, "a")
            if index == last:
                post = pre
            else:
                post = activate(pre, kind)
                post = self._pin(rms_normalize(post) if normalize else post, index + 1, "h")
            a.append(pre)
            h.append(post)
        return Trace(h, a)

    def _pin(self, value: torch.Tensor, index: int, kind: str) -> torch.Tensor:
        """Replace `value` by the clamped activity (same graph, reference numbers)."""
        if self._clamp is None:
            return value
        reference = (self._clamp.a if kind == "a" else self._clamp.h)[index]
        if reference.shape != value.shape:
            raise ValueError(f"clamped {kind}[{index}] has shape {tuple(reference.shape)}, expected {tuple(value.shape)}")
        # reference + (value − value) is the reference bit for bit, with value's gradient path.
        return reference + (value - value.detach()) if value.requires_grad else reference

    @contextmanager
    def clamp(self, reference: Trace) -> Iterator["MLP"]:
        """Within the block, every forward pass returns the reference trace's activities.

        Gradients still flow through the current weights (reference + value − value.detach()),
        so autograd's backward pass reads the current weights at the reference activities.
        The input h[0] is whatever the caller passes.
        """
        previous, self._clamp = self._clamp, reference.detach()
        try:
            yield self
        finally:
            self._clamp = previous


def build_mlp(
    n_features: int,
    n_classes: int,
    hidden: Sequence[int] = (256, 256),
    activation: str = "relu",
    seed: int = 0,
) -> MLP:
    """The benchmark network: [n_features, *hidden, n_classes], initialised from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    return MLP([n_features, *hidden, n_classes], activation=activation, generator=generator)
