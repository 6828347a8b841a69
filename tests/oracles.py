"""Closed-form directions of the feedback-alignment family on the library's MLP: the rules as
they were written before they became PyTorch extensions, kept as test oracles.

Each returns, for every layer of the MLP, [ΔW_l, Δb_l] in gradient convention from one
recorded forward pass (`MLP.trace`), with δ_l the error at layer l's pre-activation:
  fa / sign:  δ_l = (δ_{l+1} B_{l+1}) ⊙ f′(a_l)  (chain; B = feedback, or c·sign(W))
  dfa:        δ_l = (e B_l) ⊙ f′(a_l)             (direct, from the output error e)
and ΔW_l = δ_lᵀ h_{l−1}, Δb_l = Σ_batch δ_l.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from plasticity.nets import MLP, Trace, activation_derivative
from plasticity.rules.base import layer_directions, output_error


def fprime(trace: Trace, index: int, activation: str) -> torch.Tensor:
    return activation_derivative(trace.a[index], trace.h[index + 1], activation)


@torch.no_grad()
def chain(net: MLP, x: torch.Tensor, y: torch.Tensor, feedback: list[torch.Tensor]) -> list[torch.Tensor]:
    """fa / sign: feedback[l] stands where W_{l+2} stands in backprop (layers 2..L)."""
    trace = net.trace(x)
    deltas = [output_error(trace.logits, y)]
    for index in reversed(range(net.depth - 1)):
        deltas.insert(0, (deltas[0] @ feedback[index]) * fprime(trace, index, net.activation))
    return layer_directions(trace, deltas)


@torch.no_grad()
def direct(net: MLP, x: torch.Tensor, y: torch.Tensor, feedback: list[torch.Tensor]) -> list[torch.Tensor]:
    """dfa: feedback[l] (classes × n_{l+1}) carries the output error to hidden layer l+1."""
    trace = net.trace(x)
    error = output_error(trace.logits, y)
    deltas = [(error @ B) * fprime(trace, index, net.activation) for index, B in enumerate(feedback)]
    return layer_directions(trace, deltas + [error])


def backprop(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Autograd's gradients of the batch cross-entropy (call it with no rule attached)."""
    with torch.enable_grad():
        return list(torch.autograd.grad(F.cross_entropy(net(x), y), list(net.parameters())))
