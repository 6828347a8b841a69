"""Closed-form directions on the benchmark MLP: the rules as they were written before they became
PyTorch extensions, kept as test oracles.

The MLP is `plasticity.nets.build_mlp`'s `nn.Sequential` (Linear, f, ..., Linear); `trace` records
what a closed-form rule reads from it. Each oracle returns, for every layer, [ΔW_l, Δb_l] in
gradient convention, with δ_l the error at layer l's pre-activation:
  fa / sign:  δ_l = (δ_{l+1} B_{l+1}) ⊙ f′(a_l)  (chain; B = feedback, or c·sign(W))
  dfa:        δ_l = (e B_l) ⊙ f′(a_l)             (direct, from the output error e)
  workspace:  δ_l = (z B_l) ⊙ f′(a_l), z the packet; the output learns from its own error or z
and ΔW_l = δ_lᵀ h_{l−1}, Δb_l = Σ_batch δ_l.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.nets import Trace


def linears(net: nn.Module) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


def activation(net: nn.Module) -> str:
    """The MLP's hidden non-linearity, by the type of its first non-Linear module."""
    kind = next(type(m).__name__ for m in net if not isinstance(m, nn.Linear))
    return {"ReLU": "relu", "Tanh": "tanh"}[kind]


@torch.no_grad()
def trace(net: nn.Module, x: torch.Tensor) -> Trace:
    """h[l]: layer l's input; a[l]: its pre-activation; h[L]: the logits."""
    h, a = [x], []
    layers = linears(net)
    kind = activation(net)
    for index, layer in enumerate(layers):
        a.append(layer(h[-1]))
        last = index == len(layers) - 1
        h.append(a[-1] if last else (torch.relu(a[-1]) if kind == "relu" else torch.tanh(a[-1])))
    return Trace(h, a)


def fprime(t: Trace, index: int, kind: str) -> torch.Tensor:
    return (t.a[index] > 0).to(t.a[index].dtype) if kind == "relu" else 1.0 - t.h[index + 1] ** 2


def output_error(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂(batch-mean cross-entropy)/∂logits = (softmax(logits) − onehot(y)) / batch."""
    error = torch.softmax(logits, dim=1)
    error[torch.arange(len(y)), y] -= 1.0
    return error / len(y)


def layer_directions(t: Trace, deltas: list[torch.Tensor]) -> list[torch.Tensor]:
    directions: list[torch.Tensor] = []
    for delta, pre in zip(deltas, t.h[:-1], strict=True):
        directions += [delta.T @ pre, delta.sum(dim=0)]
    return directions


@torch.no_grad()
def chain(net: nn.Module, x: torch.Tensor, y: torch.Tensor, feedback: list[torch.Tensor]) -> list[torch.Tensor]:
    """fa / sign: feedback[l] stands where W_{l+2} stands in backprop (layers 2..L)."""
    t, kind = trace(net, x), activation(net)
    deltas = [output_error(t.logits, y)]
    for index in reversed(range(len(t.a) - 1)):
        deltas.insert(0, (deltas[0] @ feedback[index]) * fprime(t, index, kind))
    return layer_directions(t, deltas)


@torch.no_grad()
def direct(net: nn.Module, x: torch.Tensor, y: torch.Tensor, feedback: list[torch.Tensor]) -> list[torch.Tensor]:
    """dfa: feedback[l] (classes × n_{l+1}) carries the output error to hidden layer l+1."""
    t = trace(net, x)
    error = output_error(t.logits, y)
    return layer_directions(t, [(error @ B) * fprime(t, i, activation(net)) for i, B in enumerate(feedback)] + [error])


@torch.no_grad()
def workspace(net: nn.Module, x: torch.Tensor, y: torch.Tensor, rule) -> list[torch.Tensor]:
    """The workspace rule's directions at period 1 with no gain, from its feedback and readouts:
    module errors (hidden readouts, then the output), top-`capacity` salience per sample,
    integration, and the packet broadcast through B_l."""
    config, t, kind = rule.config, trace(net, x), activation(net)
    feedback = [slot.weight for slot in rule.feedback[1:]]
    reads = [] if config.modules == "output" else [t.h[index + 1] @ readout.weight.T + readout.bias for index, readout in enumerate(rule.readouts[1:])]
    probabilities = torch.softmax(torch.stack(reads + [t.logits]), dim=-1)
    errors = probabilities.clone()
    errors[:, torch.arange(len(y)), y] -= 1.0
    errors /= len(y)
    entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum(dim=-1)
    salience = errors.norm(dim=-1) * len(y) / (entropy + config.epsilon)
    winners = salience.topk(min(config.capacity or len(errors), len(errors)), dim=0).indices
    admitted = torch.zeros_like(salience, dtype=torch.bool).scatter_(0, winners, True)
    if config.integration == "identity":
        packet = errors.gather(0, winners[:, :, None].expand(1, -1, errors.shape[2]))[0]
    elif config.integration == "sum":
        packet = (errors * admitted[:, :, None]).sum(dim=0)
    else:
        weight = admitted / (entropy + config.epsilon)
        packet = (errors * weight[:, :, None]).sum(dim=0) / weight.sum(dim=0)[:, None]
    hidden = [(packet @ B) * fprime(t, i, kind) for i, B in enumerate(feedback)]
    return layer_directions(t, hidden + [errors[-1] if config.output_teacher == "own" else packet])


@torch.no_grad()
def mirror(net: nn.Module, x: torch.Tensor, feedback: list[torch.Tensor], rate: float, sigma: float, generator: torch.Generator) -> None:
    """One weight-mirror step in place (Akrout et al. 2019, adapted to direct feedback): every
    hidden unit adds noise σξ to its output; B_l ← (1 − rate) B_l + rate · mean Δo ξ_lᵀ with
    Δo = (o_noisy − o_clean) / σ."""
    clean, h, noises = trace(net, x).logits, x, []
    layers, kind = linears(net), activation(net)
    for index, layer in enumerate(layers):
        h = layer(h)
        if index < len(layers) - 1:
            noise = torch.randn(h.shape, generator=generator)
            h = (torch.relu(h) if kind == "relu" else torch.tanh(h)) + sigma * noise
            noises.append(noise)
    response = (h - clean) / sigma
    for matrix, noise in zip(feedback, noises, strict=True):
        matrix.mul_(1.0 - rate).add_(response.T @ noise, alpha=rate / len(response))


def backprop(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Autograd's gradients of the batch cross-entropy (call it with no rule attached)."""
    with torch.enable_grad():
        return list(torch.autograd.grad(F.cross_entropy(net(x), y), list(net.parameters())))
