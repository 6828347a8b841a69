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
  plasticity    ΔW_k = y_k (x − u_k W_k), batch mean: Hebbian growth y_k x with a decay
                u_k y_k W_k that drives every weight vector to unit norm (the SoftHebb rule)
  step          W_k += η s r_k^adapt ΔW_k / max|ΔW_l| through the shared optimizer (SGD with
                momentum, learning rate η):
                - r_k^adapt = |‖W_k‖ − 1|^p, Journé et al.'s adaptive rate: a neuron learns fast
                  while its weight norm is far from the unit sphere and settles as it arrives.
                  With weights that start far from it (`init_norm`, norm 25) every neuron takes
                  part in the competition at first, instead of the few that win the first inputs
                  (with norm-1 weights and p = 0 only 7 of 256 first-layer units ever won on
                  mnist-t10k: docs/rules.md);
                - max|ΔW_l|, the largest change in the layer (one gain shared by the layer's
                  neurons), makes the step size independent of the input's scale;
                - s (`hebbian_scale`) sets the hidden step relative to the readout's η.
  activity      the layer passes on triangle activity, f(u)_j = max(0, u_j − mean_k u_k)
                (Journé et al. 2023's activation), RMS-normalised per sample (`nets.trace`,
                where the paper puts batch normalisation before the next layer).
  readout       the output layer learns by the delta rule on the last hidden layer:
                ΔW_L = −η (softmax(logits) − onehot(y)) h_{L−1}ᵀ

`activation="net"`, `init_norm=None`, `adaptive_power=0`, `normalize_step=False`,
`hebbian_scale=1` give the plain rule on the network's own activation (tanh in the benchmark),
as in this project's first version; docs/rules.md compares the two. Journé et al.'s 99.4% on
MNIST is a convolutional network with widths growing 4× per layer; here a second SoftHebb
layer as wide as the first loses accuracy (measured in docs/rules.md), so `plasticity train`
and the benchmark give the rule one hidden layer (Moraitis et al.'s single soft-WTA layer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from plasticity.nets import MLP, Trace
from plasticity.rules.base import Rule, RuleConfig, StepInfo, layer_direction, output_error, step_info
from plasticity.rules.card import PlausibilityCard

ACTIVITIES = ("triangle", "net")


@dataclass
class SoftHebbConfig(RuleConfig):
    """SoftHebb settings (and the shared optimizer's, from RuleConfig).

    temperature: τ of the soft winner-take-all softmax(u / τ); small τ approaches a hard WTA.
    anti_hebbian: non-winning units learn anti-Hebbian (−y_k), as in Journé et al. 2023.
    activation: what hidden layers pass on: "triangle" (RMS-normalised triangle activity) or
        "net" (the network's own non-linearity, unnormalised).
    init_norm: the norm every hidden weight vector is scaled to at the start (its direction
        stays the network's random one); None keeps the network's initialisation (norm ≈ 1).
    adaptive_power: p of the per-neuron rate |‖W_k‖ − 1|^p; 0 turns it off.
    normalize_step: divide each hidden layer's ΔW by its largest entry.
    hebbian_scale: the hidden step's size relative to the learning rate (the readout's).
    hebbian: False freezes the hidden layers at their initialisation, so that only the
        readout learns: the control that shows what the Hebbian features add.
    optimizer, lr, momentum: SGD with momentum by default, not Adam: Adam divides every
        synapse's step by its own running magnitude, so a losing unit with a tiny y_k moves as
        far as the winner and the soft competition is lost (measured in docs/rules.md).
    """

    optimizer: str = "sgd"
    lr: float = 0.05
    temperature: float = 0.5
    anti_hebbian: bool = True
    activation: str = "triangle"
    init_norm: float | None = 25.0
    adaptive_power: float = 0.5
    normalize_step: bool = True
    hebbian_scale: float = 0.2
    hebbian: bool = True

    def validate(self) -> None:
        super().validate()
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be a positive finite number; got {self.temperature}")
        if self.activation not in ACTIVITIES:
            raise ValueError(f"activation must be one of {ACTIVITIES}; got {self.activation!r}")
        if self.init_norm is not None and not (self.init_norm > 0 and math.isfinite(self.init_norm)):
            raise ValueError(f"init_norm must be a positive finite number or None; got {self.init_norm}")
        if not (self.adaptive_power >= 0 and math.isfinite(self.adaptive_power)):
            raise ValueError(f"adaptive_power must be ≥ 0; got {self.adaptive_power}")
        if not (self.hebbian_scale > 0 and math.isfinite(self.hebbian_scale)):
            raise ValueError(f"hebbian_scale must be a positive finite number; got {self.hebbian_scale}")


class SoftHebb(Rule):
    name = "softhebb"
    config_class = SoftHebbConfig
    default_hidden: ClassVar[tuple[int, ...]] = (256,)

    @classmethod
    def hidden_activity(cls, config: RuleConfig, activation: str) -> str:
        triangle = isinstance(config, SoftHebbConfig) and config.activation == "triangle"
        return "RMS-normalised triangle" if triangle else activation

    def setup(self, net: MLP, generator: torch.Generator) -> None:
        if self.config.init_norm is None:
            return
        with torch.no_grad():
            for layer in net.layers[:-1]:
                layer.weight.mul_(self.config.init_norm / layer.weight.norm(dim=1, keepdim=True))

    def forward_pass(self, net: MLP, x: torch.Tensor) -> Trace:
        """The network's pass with the activity the hidden layers pass on (`activation`)."""
        if self.config.activation == "triangle":
            return net.trace(x, normalize=True, activation="triangle")
        return net.trace(x)

    def competition(self, u: torch.Tensor) -> torch.Tensor:
        """The postsynaptic factor y of every unit: soft WTA, anti-Hebbian for the losers."""
        y = torch.softmax(u / self.config.temperature, dim=1)
        if not self.config.anti_hebbian:
            return y
        winners = F.one_hot(u.argmax(dim=1), u.shape[1]).bool()
        return torch.where(winners, y, -y)

    def plasticity(self, x: torch.Tensor, u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """ΔW_k = y_k (x − u_k W_k), batch mean: the SoftHebb rule, before any step scaling."""
        y = self.competition(u)
        return (y.T @ x - (y * u).sum(dim=0)[:, None] * weight) / len(x)

    def hebbian_direction(self, x: torch.Tensor, u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The hidden layer's direction (gradient convention): −s r^adapt ΔW / max|ΔW|."""
        config = self.config
        change = self.plasticity(x, u, weight)
        if config.normalize_step:
            change = change / change.abs().max().clamp_min(torch.finfo(change.dtype).tiny)
        if config.adaptive_power:
            change = change * (weight.norm(dim=1, keepdim=True) - 1.0).abs().pow(config.adaptive_power)
        return -config.hebbian_scale * change

    @torch.no_grad()
    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        trace = self.forward_pass(net, x)
        directions: list[torch.Tensor] = []
        for layer, pre, u in zip(net.layers[:-1], trace.h[:-2], trace.a[:-1]):
            weight = self.hebbian_direction(pre, u, layer.weight) if self.config.hebbian else torch.zeros_like(layer.weight)
            directions += [weight, torch.zeros_like(layer.bias)]
        directions += layer_direction(output_error(trace.logits, y), trace.h[-2])
        return directions, step_info(trace.logits, y, directions)

    def logits(self, net: MLP, x: torch.Tensor) -> torch.Tensor:
        return self.forward_pass(net, x).logits

    def card(self) -> PlausibilityCard:
        config = self.config
        step = []
        if config.adaptive_power:
            step.append(f"per-neuron rate abs(‖W_k‖ − 1)^{config.adaptive_power}")
        if config.normalize_step:
            step.append("one gain per layer, 1 / max abs(ΔW_l)")
        hidden = (
            f"ΔW_k = y_k(x − u_k W_k), y = softmax(u/{config.temperature})"
            + (", anti-Hebbian for non-winners" if config.anti_hebbian else "")
            + (f"; step scaled by {' and '.join(step)}" if step else "")
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
