"""SoftHebb: Hebbian learning in soft winner-take-all layers (Moraitis et al. 2022, Neuromorph.
Comput. Eng. 2:044017, "SoftHebb: Bayesian inference in unsupervised Hebbian soft
winner-take-all networks"; multilayer version: Journé, Garcia Rodriguez, Guo & Moraitis 2023,
ICLR, "Hebbian deep learning without feedback").

Hidden layers learn without any target, error or feedback; only the output layer, a linear
readout, sees the labels. As a PyTorch extension the rule attaches to any model of Linear /
Conv1d / Conv2d layers: every converted layer but the last is a hidden layer, the last is the
readout. For hidden layer l with input x (detached: no error reaches it) and u = its output
without the bias (u = W_l x; the hidden biases are not plastic):

  soft WTA      y = softmax(u / τ) over the layer's units (temperature τ); for a convolution,
                over the channels at each position (Journé et al. 2023)
  anti-Hebbian  (`anti_hebbian`, Journé et al. 2023) every unit but the winner k* = argmax_k u_k
                takes −y_k: the winner moves towards the input, the others away from it
  plasticity    ΔW_k = y_k (x − u_k W_k), batch mean: Hebbian growth y_k x with a decay
                u_k y_k W_k that drives every weight vector to unit norm (the SoftHebb rule).
                For a convolution, Σ over positions of y_k · (the input patch unit k reads) minus
                (Σ_positions y_k u_k) W_k: the Hebbian term is the weight gradient of ⟨y, u⟩,
                which `weight_gradient` computes for either kind of layer
  step          W_k += η s r_k^adapt ΔW_k / max|ΔW_l| through the optimizer (SGD with momentum
                in the benchmark, learning rate η):
                - r_k^adapt = |‖W_k‖ − 1|^p (per row; per output channel of a convolution),
                  Journé et al.'s adaptive rate: a neuron learns fast while its weight norm is
                  far from the unit sphere and settles as it arrives. With weights that start far
                  from it (`init_norm`, norm 25) every neuron takes part in the competition at
                  first, instead of the few that win the first inputs (with norm-1 weights and
                  p = 0 only a few first-layer units ever win on mnist-t10k: docs/rules.md);
                - max|ΔW_l|, the largest change in the layer (one gain shared by the layer's
                  neurons), makes the step size independent of the input's scale;
                - s (`hebbian_scale`) sets the hidden step relative to the readout's η.
  readout       the last layer learns by the delta rule on its detached input:
                ΔW_L = −η (softmax(logits) − onehot(y)) h_{L−1}ᵀ, the cross-entropy's gradient.

The hidden direction D_l = −s r^adapt ΔW_l / max|ΔW_l| (gradient convention) reaches `.grad`
through the term ⟨D_l, W_l − sg(W_l)⟩ of `step_loss` (sg: detached), whose value is 0 and whose
gradient is D_l. The hidden biases are not plastic: a term ⟨0, b_l − sg(b_l)⟩ gives them a zero
gradient, which SGD (with or without momentum) and Adam turn into no change as long as the
optimizer's weight decay is 0 (a weight decay shrinks them, as it would any weight). `init_norm`
rescales every hidden weight row (output channel) when the rule is attached: attaching changes
the model's initial weights (the conv models of `plasticity.models` get `init_norm=None`,
`options_by_model`).

What a hidden layer passes on is the model's: the rule reads u from the layer's output as the
rest of the model sees it (after any forward hook in front of the rule's, such as the
plausibility probe's clamp). The benchmark MLP passes on triangle activity,
f(u)_j = max(0, u_j − mean_k u_k) (Journé et al. 2023's activation), RMS-normalised per sample
(where the paper puts batch normalisation before the next layer): `mlp_options` builds it so.

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
from typing import Any, ClassVar

import torch
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError, brief
from plasticity.rules.attach import GradientRule, conv_padding, override_forward
from plasticity.rules.base import RuleConfig, StepInfo

ACTIVITIES = ("triangle", "net")


@dataclass
class SoftHebbConfig(RuleConfig):
    """SoftHebb settings (and the benchmark optimizer's, from RuleConfig).

    temperature: τ of the soft winner-take-all softmax(u / τ); small τ approaches a hard WTA.
    anti_hebbian: non-winning units learn anti-Hebbian (−y_k), as in Journé et al. 2023.
    activation: what the hidden layers of the benchmark MLP pass on (`SoftHebb.mlp_options`):
        "triangle" (RMS-normalised triangle activity) or "net" (the run's own non-linearity,
        unnormalised). On any other model, the model's own activity.
    init_norm: the norm every hidden weight row (output channel) is scaled to when the rule is
        attached (its direction stays the model's); None keeps the model's weights. Norm 25
        suits a model that normalises each hidden layer's activity (the benchmark MLP); in one
        that does not (cnn1d, LeNet-5) every layer would scale its input ~25-fold: give None.
    adaptive_power: p of the per-neuron rate |‖W_k‖ − 1|^p; 0 turns it off.
    normalize_step: divide each hidden layer's ΔW by its largest entry.
    hebbian_scale: the hidden step's size relative to the learning rate (the readout's).
    hebbian: False freezes the hidden layers (a zero direction), so that only the readout
        learns: the control that shows what the Hebbian features add.
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
            raise ConfigError(f"temperature must be a positive finite number; got {self.temperature}")
        if self.activation not in ACTIVITIES:
            raise ConfigError(f"activation must be one of {ACTIVITIES}; got {brief(self.activation)}")
        if self.init_norm is not None and not (self.init_norm > 0 and math.isfinite(self.init_norm)):
            raise ConfigError(f"init_norm must be a positive finite number or None; got {self.init_norm}")
        if not (self.adaptive_power >= 0 and math.isfinite(self.adaptive_power)):
            raise ConfigError(f"adaptive_power must be ≥ 0; got {self.adaptive_power}")
        if not (self.hebbian_scale > 0 and math.isfinite(self.hebbian_scale)):
            raise ConfigError(f"hebbian_scale must be a positive finite number; got {self.hebbian_scale}")


def unit_dim(layer: nn.Module) -> int:
    """The dimension of a layer's output that holds its units: the last for Linear, the
    channels (1) for a convolution."""
    return -1 if isinstance(layer, nn.Linear) else 1


def per_row(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One value per unit (weight row, output channel), shaped to scale `weight`'s rows."""
    return values.view(-1, *[1] * (weight.dim() - 1))


def row_norms(weight: torch.Tensor) -> torch.Tensor:
    """‖W_k‖ of every row (output channel: all its input channels and kernel taps)."""
    return weight.flatten(1).norm(dim=1)


def weight_gradient(layer: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂⟨y, W ∗ x⟩/∂W: for every unit k, Σ over the batch (and positions) of y_k times the input
    (patch) unit k reads — yᵀx for a Linear layer, the weight gradient of the convolution."""
    if isinstance(layer, nn.Linear):
        return y.reshape(-1, y.shape[-1]).T @ x.reshape(-1, x.shape[-1])
    weight = layer.weight
    return torch.ops.aten.convolution_backward(
        y,
        x,
        weight,
        None,
        layer.stride,
        conv_padding(layer),
        layer.dilation,
        False,
        [0] * len(layer.stride),
        layer.groups,
        [False, True, False],
    )[1]


def surrogate(parameter: torch.Tensor, direction: torch.Tensor | float) -> torch.Tensor:
    """⟨direction, p − sg(p)⟩ (sg: detached): value 0, gradient `direction` with respect to p."""
    return (direction * (parameter - parameter.detach())).sum()


class SoftHebb(GradientRule):
    name = "softhebb"
    config_class = SoftHebbConfig
    default_hidden: ClassVar[tuple[int, ...]] = (256,)
    # The conv models do not normalise their activity: weights of norm 25 would scale each
    # layer's output ~25-fold (`init_norm`).
    options_by_model: ClassVar[dict[str, dict[str, Any]]] = {"cnn1d": {"init_norm": None}, "lenet5": {"init_norm": None}}

    @classmethod
    def hidden_activity(cls, config: RuleConfig, activation: str) -> str:
        triangle = isinstance(config, SoftHebbConfig) and config.activation == "triangle"
        return "RMS-normalised triangle" if triangle else activation

    @classmethod
    def mlp_options(cls, config: RuleConfig) -> dict[str, Any]:
        """The benchmark MLP passes on RMS-normalised triangle activity (`activation="triangle"`)."""
        triangle = isinstance(config, SoftHebbConfig) and config.activation == "triangle"
        return {"activation": "triangle", "normalize": True} if triangle else {}

    def __init__(self, config: RuleConfig | None = None, seed: int = 0, **options: Any) -> None:
        super().__init__(config, seed, **options)
        # Within `step_loss`: the direction of every hidden layer's weight, by layer.
        self.changes_: dict[nn.Module, torch.Tensor] | None = None

    def _register(self, model: nn.Module) -> list[Any]:
        hidden = self.layers_[:-1]
        if self.config.init_norm is not None:
            with torch.no_grad():
                for layer in hidden:
                    layer.weight.mul_(self.config.init_norm / per_row(row_norms(layer.weight), layer.weight))
        handles = [override_forward(layer, self._hidden) for layer in hidden]
        handles += [layer.register_forward_hook(self._read) for layer in hidden]
        handles.append(override_forward(self.layers_[-1], self._readout))
        return handles

    def _hidden(self, own: Any, x: torch.Tensor) -> torch.Tensor:
        """A hidden layer runs without a graph: no error reaches it or the layers below."""
        if self.bypass:
            return own(x)
        with torch.no_grad():
            return own(x)

    def _readout(self, own: Any, x: torch.Tensor) -> torch.Tensor:
        """The readout takes its input detached: the delta rule."""
        return own(x if self.bypass else x.detach())

    def _read(self, layer: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        """Forward hook of a hidden layer: during `step_loss`, its direction from its input and
        its output (as the model sees it) without the bias."""
        if self.changes_ is None or self.bypass:
            return
        weight = layer.weight
        u = output.detach().to(weight.dtype)  # in the weight's precision, under autocast too
        if layer.bias is not None:
            bias = layer.bias.detach()
            u = u - (bias if unit_dim(layer) == -1 else bias.view(-1, *[1] * (u.dim() - 2)))
        direction = self.hebbian_direction(layer, args[0].detach().to(weight.dtype), u)
        self.changes_[layer] = self.changes_.get(layer, 0) + direction  # a layer that runs twice: the sum

    # ----------------------------------------------------------------------------- the rule
    def competition(self, u: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """The postsynaptic factor y of every unit (units along `dim`): soft WTA, anti-Hebbian
        for the losers."""
        y = torch.softmax(u / self.config.temperature, dim=dim)
        if not self.config.anti_hebbian:
            return y
        winners = torch.zeros_like(u, dtype=torch.bool).scatter_(dim, u.argmax(dim=dim, keepdim=True), True)
        return torch.where(winners, y, -y)

    def plasticity(self, layer: nn.Module, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """ΔW_k = y_k (x − u_k W_k), batch mean: the SoftHebb rule, before any step scaling."""
        dim = unit_dim(layer)
        y = self.competition(u, dim)
        weight = layer.weight.detach()
        others = [d for d in range(u.dim()) if d != dim % u.dim()]
        decay = (y * u).sum(dim=others)
        return (weight_gradient(layer, x, y) - per_row(decay, weight) * weight) / len(x)

    @torch.no_grad()
    def hebbian_direction(self, layer: nn.Module, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The hidden layer's direction (gradient convention): −s r^adapt ΔW / max|ΔW|."""
        config = self.config
        change = self.plasticity(layer, x, u)
        if config.normalize_step:
            change = change / change.abs().max().clamp_min(torch.finfo(change.dtype).tiny)
        if config.adaptive_power:
            weight = layer.weight.detach()
            change = change * per_row((row_norms(weight) - 1.0).abs().pow(config.adaptive_power), weight)
        return -config.hebbian_scale * change

    def step_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, StepInfo]:
        """The readout's cross-entropy + Σ_l ⟨D_l, W_l − sg(W_l)⟩ + ⟨0, b_l − sg(b_l)⟩ over the
        hidden layers: value 0, gradient D_l for the weight (0 with `hebbian=False`) and 0 for
        the bias."""
        self.changes_ = {} if self.config.hebbian else None
        try:
            logits = model(x)
            changes = self.changes_ or {}
        finally:
            self.changes_ = None
        readout = self.objective(logits, y)
        hidden = [
            surrogate(parameter, changes.get(layer, 0.0) if parameter is layer.weight else 0.0)
            for layer in self.layers_[:-1]
            for parameter in layer.parameters(recurse=False)
        ]
        return readout + sum(hidden), StepInfo(loss=readout.detach(), logits=logits.detach())

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
