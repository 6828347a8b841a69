"""Minimal hand-written training steps, the yardstick of `benchmarks/overhead.py`.

Each is the shortest plain-PyTorch step of one algorithm on an MLP of Linear layers with tanh
between them (the benchmark MLP, `plasticity.nets.build_mlp(..., activation="tanh")`), written
from the paper's equations: what a researcher would type to run the algorithm without a library.
There are two kinds: the backward pass by hand (`*_step`, no autograd at all: the fastest way on
a small network on a CPU, where autograd's per-operation bookkeeping is a visible share of a
step), and, for the feedback rules, the textbook autograd version (`*_autograd_step`: a custom
`torch.autograd.Function` per layer, as BioTorch writes them, and `loss.backward()`). They read the layers' tensors and nothing of `plasticity`; the
package never imports this file.

A step takes the network's Linear layers, the batch and, for the feedback rules, the feedback
matrices, and leaves the update in `.grad`; the loop then calls `optimizer.step()`, as with the
project's rules, so that the same optimizer does the same work in both. The workspace's step
(`WorkspaceStep`, by hand) is an object, since it carries state from step to step: its readouts,
its feedback (learned by the weight mirror) and a step count.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def forward(layers: Sequence[nn.Linear], x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """(inputs h_0..h_{L−1} of the layers, tanh′ of each hidden block, logits)."""
    inputs, slopes, h = [x], [], x
    for layer in layers[:-1]:
        h = torch.tanh(F.linear(h, layer.weight, layer.bias))
        inputs.append(h)
        slopes.append(1 - h * h)
    return inputs, slopes, F.linear(h, layers[-1].weight, layers[-1].bias)


def output_error(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂(batch-mean cross-entropy)/∂logits = (softmax − onehot) / B."""
    error = torch.softmax(logits, dim=1)
    error[torch.arange(len(y)), y] -= 1
    return error / len(y)


def set_grads(layers: Sequence[nn.Linear], deltas: Sequence[torch.Tensor], inputs: Sequence[torch.Tensor]) -> None:
    """∂W_l = δ_lᵀ h_l, ∂b_l = Σ δ_l, into `.grad`."""
    for layer, delta, h in zip(layers, deltas, inputs, strict=True):
        layer.weight.grad = delta.T @ h
        layer.bias.grad = delta.sum(0)


def bp_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Backprop, the ordinary way (Rumelhart, Hinton & Williams 1986)."""
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


@torch.no_grad()
def chain_step(layers: Sequence[nn.Linear], x: torch.Tensor, y: torch.Tensor, feedback: Sequence[torch.Tensor | None]) -> None:
    """Feedback alignment (Lillicrap et al. 2016): δ_{l−1} = (δ_l B_l) ⊙ f′, B_l in place of W_l.
    `feedback[l]` is B_l (None for the first layer)."""
    inputs, slopes, logits = forward(layers, x)
    delta, deltas = output_error(logits, y), []
    for index in range(len(layers) - 1, -1, -1):
        deltas.insert(0, delta)
        if index:
            delta = (delta @ feedback[index]) * slopes[index - 1]
    set_grads(layers, deltas, inputs)


@torch.no_grad()
def sign_step(layers: Sequence[nn.Linear], x: torch.Tensor, y: torch.Tensor, scales: Sequence[float]) -> None:
    """Sign-symmetry (Liao, Leibo & Poggio 2016): feedback alignment with B_l = c_l sign(W_l)."""
    feedback = [None] + [torch.sign(layer.weight) * scale for layer, scale in zip(layers[1:], scales[1:], strict=True)]
    chain_step(layers, x, y, feedback)


@torch.no_grad()
def dfa_step(layers: Sequence[nn.Linear], x: torch.Tensor, y: torch.Tensor, feedback: Sequence[torch.Tensor | None]) -> None:
    """Direct feedback alignment (Nøkland 2016): δ_{l−1} = (e B_l) ⊙ f′ for every hidden block,
    e the output error; `feedback[l]` is B_l (classes × width of layer l's input)."""
    inputs, slopes, logits = forward(layers, x)
    error = output_error(logits, y)
    deltas = [(error @ B) * slope for B, slope in zip(feedback[1:], slopes, strict=True)] + [error]
    set_grads(layers, deltas, inputs)


class Feedback(torch.autograd.Function):
    """y = x Wᵀ + b; backward: δ_x = δ_y B, ∂W = δ_yᵀ x, ∂b = Σ δ_y."""

    @staticmethod
    def forward(ctx, x, weight, bias, feedback):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x, feedback)
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, error):  # noqa: ANN001, ANN205
        x, feedback = ctx.saved_tensors
        return error @ feedback, error.T @ x, error.sum(0), None


class Broadcast(torch.autograd.Function):
    """Identity on the logits; backward hands each recorded block output h_l the error e B_l."""

    @staticmethod
    def forward(ctx, logits, feedback, *hidden):  # noqa: ANN001, ANN205
        ctx.feedback = feedback
        return logits.view_as(logits)

    @staticmethod
    def backward(ctx, error):  # noqa: ANN001, ANN205
        return (error, None, *(error @ B for B in ctx.feedback))


def chain_autograd_step(layers: Sequence[nn.Linear], x: torch.Tensor, y: torch.Tensor, feedback: Sequence[torch.Tensor | None]) -> None:
    """Feedback alignment with a `Feedback` Function per layer whose input carries an error."""
    for layer in layers:
        layer.weight.grad = layer.bias.grad = None
    h = torch.tanh(F.linear(x, layers[0].weight, layers[0].bias))
    for index, layer in enumerate(layers[1:], start=1):
        h = Feedback.apply(h, layer.weight, layer.bias, feedback[index])
        h = torch.tanh(h) if index < len(layers) - 1 else h
    F.cross_entropy(h, y).backward()


def sign_autograd_step(layers: Sequence[nn.Linear], x: torch.Tensor, y: torch.Tensor, scales: Sequence[float]) -> None:
    """Sign-symmetry with `Feedback` Functions: B_l = c_l sign(W_l), read each step."""
    feedback = [None] + [torch.sign(layer.weight.detach()) * scale for layer, scale in zip(layers[1:], scales[1:], strict=True)]
    chain_autograd_step(layers, x, y, feedback)


def dfa_autograd_step(layers: Sequence[nn.Linear], x: torch.Tensor, y: torch.Tensor, feedback: Sequence[torch.Tensor | None]) -> None:
    """Direct feedback alignment: every layer but the first reads its input detached, and the
    logits go through `Broadcast`, which hands every block output its e B_l."""
    for layer in layers:
        layer.weight.grad = layer.bias.grad = None
    hidden, h = [], x
    for index, layer in enumerate(layers):
        if index:
            hidden.append(h)
            h = h.detach()
        h = F.linear(h, layer.weight, layer.bias)
        h = torch.tanh(h) if index < len(layers) - 1 else h
    F.cross_entropy(Broadcast.apply(h, feedback[1:], *hidden), y).backward()


@torch.no_grad()
def pc_step(layers: Sequence[nn.Linear], x: torch.Tensor, y: torch.Tensor, T: int, rate: float) -> None:
    """Predictive coding with inference learning (Whittington & Bogacz 2017), cross-entropy output
    energy, predictions recomputed at every inference step: T steps of
    v_l ← v_l − γ (ε_l − W_lᵀ (f′(a_l) ⊙ ε_{l+1})), then ∂F/∂W_l = −(f′(a_l) ⊙ ε_{l+1})ᵀ v_l / B
    at the relaxed nodes (f′ = 1 and ε_L = onehot − softmax at the output)."""
    values, slopes, logits = forward(layers, x)
    values = [values[0]] + [v.clone() for v in values[1:]]
    target = F.one_hot(y, logits.shape[1]).to(logits.dtype)
    for step in range(T + 1):
        if step:  # predictions at the current nodes (the first step's are the forward pass's)
            slopes, predictions = [], []
            for layer, v in zip(layers[:-1], values[:-1], strict=True):
                mu = torch.tanh(F.linear(v, layer.weight, layer.bias))
                predictions.append(mu)
                slopes.append(1 - mu * mu)
            logits = F.linear(values[-1], layers[-1].weight, layers[-1].bias)
        errors = [torch.zeros_like(v) for v in values[1:]] if not step else [v - mu for v, mu in zip(values[1:], predictions, strict=True)]
        currents = [e * s for e, s in zip(errors, slopes, strict=True)] + [target - torch.softmax(logits, dim=1)]
        if step == T:
            break
        for index in range(1, len(layers)):
            values[index] = values[index] - rate * (errors[index - 1] - currents[index] @ layers[index].weight)
    set_grads(layers, [-c / len(y) for c in currents], values)


class WorkspaceStep:
    """The workspace rule's default (docs/workspace.md): every hidden block h_l is a module with a
    linear readout r_l = softmax(R_l h_l + c_l), the output r_L = softmax(logits); module errors
    e_m = (r_m − onehot) / B, uncertainties τ_m = entropy(r_m); the packet is their precision-weighted
    mean z = Σ π_m e_m / Σ π_m, π_m = 1 / (τ_m + ε); hidden block l learns from δ_l = (z B_l) ⊙ f′,
    the output layer from its own error e_L, the readouts by the delta rule. Every `every` steps
    the first `samples` inputs pass again with noise σξ added to every hidden block's output, and
    B_l ← (1 − ρ) B_l + ρ mean Δo ξ_lᵀ, Δo = (o_noisy − o_clean) / σ (a weight mirror, Akrout et
    al. 2019), after this step's deltas used the old B_l. Holds its own copies of the feedback
    and the readouts; the noise is drawn as the rule draws it, so that both train alike."""

    def __init__(self, layers: Sequence[nn.Linear], feedback: Sequence[torch.Tensor], seed: int, *, epsilon: float, readout_lr: float,
                 mirror_every: int, mirror_samples: int, mirror_rate: float, mirror_sigma: float) -> None:  # fmt: skip
        self.layers, self.feedback, self.seed, self.steps = layers, [B.clone() for B in feedback], seed, 0
        classes = layers[-1].out_features
        self.readouts = [(layer.weight.new_zeros(classes, layer.in_features), layer.weight.new_zeros(classes)) for layer in layers[1:]]
        self.epsilon, self.readout_lr = epsilon, readout_lr
        self.every, self.samples, self.rate, self.sigma = mirror_every, mirror_samples, mirror_rate, mirror_sigma

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        inputs, slopes, logits = forward(self.layers, x)
        hidden = inputs[1:]
        reads = [torch.addmm(c, h, R.T) for (R, c), h in zip(self.readouts, hidden, strict=True)]
        r = torch.softmax(torch.stack(reads + [logits]), dim=-1)
        errors = (r - torch.zeros_like(logits).scatter_(1, y[:, None], 1.0)) / len(y)
        precision = 1 / (self.epsilon - (r * torch.log(r.clamp_min(1e-12))).sum(dim=-1))
        packet = (errors * precision[:, :, None]).sum(dim=0) / precision.sum(dim=0)[:, None]
        deltas = [(packet @ B) * slope for B, slope in zip(self.feedback, slopes, strict=True)] + [errors[-1]]
        set_grads(self.layers, deltas, inputs)
        for (R, c), error, h in zip(self.readouts, errors[:-1], hidden, strict=True):
            R.sub_(error.T @ h, alpha=self.readout_lr)
            c.sub_(error.sum(0), alpha=self.readout_lr)
        if self.steps % self.every == 0:
            self.mirror(x[: self.samples], logits[: self.samples])
        self.steps += 1

    def mirror(self, x: torch.Tensor, clean: torch.Tensor) -> None:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.steps)
        h, noises = x, []
        for index, layer in enumerate(self.layers):
            if index:
                noises.append(torch.randn(h.shape, generator=generator).to(h))
                h = h + self.sigma * noises[-1]
            h = F.linear(h, layer.weight, layer.bias)
            h = torch.tanh(h) if index < len(self.layers) - 1 else h
        response = (h - clean) / self.sigma
        for B, noise in zip(self.feedback, noises, strict=True):
            B.mul_(1 - self.rate).add_(response.T @ noise, alpha=self.rate / len(x))
