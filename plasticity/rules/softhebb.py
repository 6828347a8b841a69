"""SoftHebb: Hebbian learning in soft winner-take-all layers (Moraitis et al. 2022, Neuromorph.
Comput. Eng. 2:044017, "SoftHebb: Bayesian inference in unsupervised Hebbian soft
winner-take-all networks"; multilayer version: Journé, Garcia Rodriguez, Guo & Moraitis 2023,
ICLR, "Hebbian deep learning without feedback").

Hidden layers learn without any target, error or feedback; only the output layer, a linear
readout, sees the labels. For hidden layer l with input x = h_l (batch row) and pre-activation
u = a_l = W_l x (hidden biases are not plastic and stay at their initial 0, so u = W_l x):

  soft WTA      y = softmax(u / τ) over the layer's units (temperature τ)
  anti-Hebbian  (`anti_hebbian`, Journé et al. 2023) every unit but the winner k* = argmax_k u_k
                takes −y_k: the winner moves towards the input, the others away from it
  plasticity    ΔW_k = η y_k (x − u_k W_k): Hebbian growth y_k x with a decay u_k y_k W_k that
                drives every weight vector to unit norm (the SoftHebb rule)
  readout       the output layer learns by the delta rule on the last hidden layer:
                ΔW_L = −η (softmax(logits) − onehot(y)) h_{L−1}ᵀ

η is the shared optimizer's learning rate (SGD with momentum by default, see SoftHebbConfig),
applied to the batch mean of ΔW; the papers' per-neuron adaptive learning rate (which shrinks as
a neuron's weight norm approaches 1) is not used. The forward pass is the benchmark MLP's (tanh
by default): the soft WTA shapes plasticity only, not the activity passed on (the papers'
convolutional layers pass triangle or rectified-polynomial activations on). Journé et al.'s 99.4%
on MNIST is a convolutional network; this is the MLP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from plasticity.nets import MLP
from plasticity.rules.base import Rule, RuleConfig, StepInfo, layer_direction, output_error, step_info
from plasticity.rules.card import PlausibilityCard


@dataclass
class SoftHebbConfig(RuleConfig):
    """SoftHebb settings (and the shared optimizer's, from RuleConfig).

    temperature: τ of the soft winner-take-all softmax(u / τ); small τ approaches a hard WTA.
    anti_hebbian: non-winning units learn anti-Hebbian (−y_k), as in Journé et al. 2023.
    hebbian: False freezes the hidden layers at their random initialisation, so that only the
        readout learns: the control that shows what the Hebbian features add.
    optimizer, lr, momentum: SGD with momentum by default, not Adam: Adam divides every
        synapse's step by its own running magnitude, so a losing unit with a tiny y_k moves as
        far as the winner and the soft competition is lost (measured in docs/rules.md).
    """

    optimizer: str = "sgd"
    lr: float = 0.05
    temperature: float = 0.1
    anti_hebbian: bool = True
    hebbian: bool = True

    def validate(self) -> None:
        super().validate()
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be a positive finite number; got {self.temperature}")


class SoftHebb(Rule):
    name = "softhebb"
    config_class = SoftHebbConfig

    def competition(self, u: torch.Tensor) -> torch.Tensor:
        """The postsynaptic factor y of every unit: soft WTA, anti-Hebbian for the losers."""
        y = torch.softmax(u / self.config.temperature, dim=1)
        if not self.config.anti_hebbian:
            return y
        winners = F.one_hot(u.argmax(dim=1), u.shape[1]).bool()
        return torch.where(winners, y, -y)

    def hebbian_direction(self, x: torch.Tensor, u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """−mean over the batch of ΔW_k = y_k (x − u_k W_k), in gradient convention."""
        y = self.competition(u)
        growth = y.T @ x
        decay = (y * u).sum(dim=0)[:, None] * weight
        return (decay - growth) / len(x)

    @torch.no_grad()
    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        trace = net.trace(x)
        directions: list[torch.Tensor] = []
        for layer, pre, u in zip(net.layers[:-1], trace.h[:-2], trace.a[:-1]):
            weight = self.hebbian_direction(pre, u, layer.weight) if self.config.hebbian else torch.zeros_like(layer.weight)
            directions += [weight, torch.zeros_like(layer.bias)]
        directions += layer_direction(output_error(trace.logits, y), trace.h[-2])
        return directions, step_info(trace.logits, y, directions)

    def card(self) -> PlausibilityCard:
        config = self.config
        hidden = (
            f"ΔW_k = y_k(x − u_k W_k), y = softmax(u/{config.temperature})"
            + (", anti-Hebbian for non-winners" if config.anti_hebbian else "")
            if config.hebbian
            else "frozen"
        )
        return PlausibilityCard(
            rule=self.name,
            weight_transport="none",
            # Frozen hidden layers read nothing, and `reads` lists what every layer reads.
            reads=("pre", "post", "own_weights") if config.hebbian else (),
            global_signal=0,
            error_signal=f"hidden: no error ({hidden}); output: delta rule e = softmax(logits) − onehot(y)",
            phases_per_step=1,
            inference_iterations=0,
            locks_removed=("update", "backward"),
            reference="Moraitis et al. 2022, Neuromorph. Comput. Eng. 2:044017; Journé et al. 2023, ICLR",
        )
