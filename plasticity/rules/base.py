"""The Rule interface: one way for every learning rule to change a network's weights.

A rule splits a training step in two:

* `directions(net, x, y)` — pure: runs the forward pass the rule needs and returns, for every
  parameter of `net` (in `net.parameters()` order) and then for every tensor of the rule's
  `own_parameters()`, the direction the rule wants to move it (in gradient convention: the
  optimizer subtracts it), plus a `StepInfo` for observers. It changes nothing, so observers
  and the plausibility tests can call it freely.
* `step(net, x, y)` — applies those directions with the rule's optimizer (SGD with momentum
  or Adam, per synapse and identical for every rule, so that benchmarks compare the learning
  signal and not the optimizer); a rule with state of its own (readouts, traces, running
  statistics) overrides `step` to update it after `apply`.

Every rule also has a dataclass config with working defaults and a plausibility card (`card`).
Local rules compute their directions under `torch.no_grad()` from recorded activities; only
the backprop baseline uses autograd.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from plasticity.data import Dataset
from plasticity.nets import MLP, Trace, build_mlp
from plasticity.rules.card import PlausibilityCard

OPTIMIZERS = ("sgd", "adam")


@dataclass
class StepInfo:
    """What one training step reports to observers.

    loss: the batch-mean cross-entropy of the forward pass the rule learned from.
    logits: that forward pass's output (detached), shape (batch, classes).
    update_norm: global L2 norm over all parameters of the update direction the rule handed
        to its optimizer (the gradient for `bp`; the rule's own direction for local rules),
        before the optimizer's learning rate, momentum or Adam scaling.
    extras: rule-specific numbers (broadcast sizes, winners, ...), JSON-serialisable.
    applied: whether `step` hands the directions to the optimizer. False when the rule withholds
        plasticity this step (an ignition gate closed, or between two rhythmic broadcasts): then
        no weight moves at all, not even by the optimizer's momentum.
    """

    loss: float
    logits: torch.Tensor
    update_norm: float
    extras: dict[str, Any] = field(default_factory=dict)
    applied: bool = True


@dataclass
class RuleConfig:
    """Optimizer settings shared by every rule.

    lr: learning rate. optimizer: "adam" (Kingma & Ba 2015) or "sgd" (with `momentum`).
    weight_decay: L2 decay applied by the optimizer (it reads the synapse's own weight).
    """

    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0

    def validate(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number; got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {self.optimizer!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be ≥ 0; got {self.weight_decay}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def make_optimizer(params: Iterable[torch.Tensor], config: RuleConfig) -> torch.optim.Optimizer:
    """The benchmark optimizer of `config` over `params`: Adam (Kingma & Ba 2015) or SGD with
    momentum, with the config's learning rate and weight decay."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def output_error(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂(batch-mean cross-entropy)/∂logits = (softmax(logits) − onehot(y)) / batch."""
    error = torch.softmax(logits, dim=1)
    error[torch.arange(len(y)), y] -= 1.0
    return error / len(y)


def layer_direction(delta: torch.Tensor, pre: torch.Tensor) -> list[torch.Tensor]:
    """[weight, bias] directions of one layer from its error δ (batch × out) and input (batch × in).

    ΔW ∝ δᵀ h_pre: the product of a postsynaptic error and presynaptic activity, the form shared
    by the delta rule and every feedback-alignment variant; the bias gets δ summed over the batch.
    """
    return [delta.T @ pre, delta.sum(dim=0)]


def layer_directions(trace: Trace, deltas: list[torch.Tensor]) -> list[torch.Tensor]:
    """Turn per-layer errors δ_l (∂loss/∂a_l convention) into (weight, bias) directions.

    deltas[l] pairs with the input trace.h[l]; fewer deltas than layers give the directions of
    the first len(deltas) layers only.
    """
    directions: list[torch.Tensor] = []
    for delta, pre in zip(deltas, trace.h[:-1]):
        directions += layer_direction(delta, pre)
    return directions


class RuleFacts:
    """What the trainer and the bench read from a rule's class, whichever kind of rule it is."""

    name: ClassVar[str]
    config_class: ClassVar[type[RuleConfig]] = RuleConfig
    # The kind of network the rule trains: "mlp" (`plasticity.nets.MLP`, or any model for a rule
    # that attaches to one) or "spiking" (`plasticity.spiking.SpikingNet`).
    network: ClassVar[str] = "mlp"
    # Keys of StepInfo.extras that the trainer sums over each epoch (event counts for throughput).
    counters: ClassVar[tuple[str, ...]] = ()
    # Default epochs per dataset where they differ from the trainer's (`build.default_epochs`).
    epochs_by_dataset: ClassVar[dict[str, int]] = {}
    # The network width(s) and mini-batch size `plasticity train` uses when none are given.
    default_hidden: ClassVar[tuple[int, ...]] = (256, 256)
    default_batch_size: ClassVar[int] = 64
    # Default options per dataset where they differ from the config's defaults; options the user
    # gives override them (`rules.options_for`).
    options_by_dataset: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def hidden_activity(cls, config: RuleConfig, activation: str) -> str:
        """What the hidden layers pass on, in words, in a network of non-linearity `activation`
        (for the benchmark's setup line). Default: the network's own non-linearity."""
        return activation


class Rule(RuleFacts, ABC):
    """Base class of the rules that train the library's own network with their own optimizer.

    A rule is built for one network (`net`), whose parameters its optimizer updates; `seed`
    fixes any randomness the rule owns (feedback matrices).
    """

    @classmethod
    def build_net(cls, config: RuleConfig, data: Dataset, hidden: tuple[int, ...], activation: str, seed: int) -> torch.nn.Module:
        """The network this rule trains on `data`: by default the benchmark MLP."""
        return build_mlp(data.n_features, data.n_classes, hidden, activation, seed)

    def __init__(self, net: MLP, config: RuleConfig | None = None, seed: int = 0) -> None:
        self.config = config if config is not None else self.config_class()
        if not isinstance(self.config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(self.config).__name__}")
        self.config.validate()
        self.net = net
        self.seed = seed
        self.setup(net, torch.Generator().manual_seed(seed))
        self.optimizer = self._make_optimizer()

    def setup(self, net: MLP, generator: torch.Generator) -> None:
        """Create the rule's own state for `net` (feedback matrices, readouts). Default: none."""

    def own_parameters(self) -> list[torch.Tensor]:
        """Tensors the rule owns that its optimizer trains with the network's parameters.

        Synapses that belong to the rule's own pathway rather than to the shared network (e.g.
        Forward-Forward's label-input weights). `directions` returns their directions after the
        network's, in this order; `rule_state` must hold them too, for checkpoints. Default: none.
        """
        return []

    def trained(self) -> list[torch.Tensor]:
        """Everything the optimizer updates: the network's parameters, then `own_parameters()`."""
        return list(self.net.parameters()) + self.own_parameters()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return make_optimizer(self.trained(), self.config)

    @abstractmethod
    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        """Update directions for every parameter of `net`, then for `own_parameters()` (gradient
        convention), and step info.

        Must not change `net` or the rule's state.
        """

    def step(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> StepInfo:
        """One learning step on the batch (x, y): compute directions and apply them."""
        self._check_net(net)
        directions, info = self.directions(net, x, y)
        self.apply(directions, info)
        return info

    def _check_net(self, net: MLP) -> None:
        if net is not self.net:
            raise ValueError("this rule was built for another network; build one rule per network")

    def apply(self, directions: list[torch.Tensor], info: StepInfo) -> None:
        """Hand `directions` to the optimizer, unless the rule withheld plasticity (info.applied)."""
        if not info.applied:
            return
        params = self.trained()
        if len(directions) != len(params):
            raise ValueError(f"{self.name} returned {len(directions)} directions for {len(params)} trained tensors")
        with torch.no_grad():
            for param, direction in zip(params, directions):
                param.grad = direction
            self.optimizer.step()
            for param in params:
                param.grad = None

    def logits(self, net: MLP, x: torch.Tensor) -> torch.Tensor:
        """Class scores for `x` at evaluation. Default: the plain forward pass `net(x)`.

        A rule whose network classifies by more than the plain pass (Forward-Forward's label
        input and normalised layers) overrides it; the trainer evaluates through it.
        """
        return net(x)

    # The global signal, for rules that broadcast one (card.global_signal > 0).
    def broadcast(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """The signal sent identically to every layer for this batch (batch × size), or None."""
        return None

    @contextmanager
    def pin_broadcast(self, signal: torch.Tensor) -> Iterator[None]:
        """Within the block, `directions` uses `signal` as the broadcast instead of computing it.

        This is how the plausibility check holds the global signal fixed while it perturbs the
        activities of other layers: whatever still changes a layer's update then reached it by
        another path than the broadcast.
        """
        previous, self._pinned_broadcast = getattr(self, "_pinned_broadcast", None), signal
        try:
            yield
        finally:
            self._pinned_broadcast = previous

    def _broadcast_or_pinned(self, computed: torch.Tensor) -> torch.Tensor:
        pinned = getattr(self, "_pinned_broadcast", None)
        return computed if pinned is None else pinned

    # Relaxed inputs, for rules whose update reads activities after an inference phase.
    def relaxed_inputs(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> list[list[torch.Tensor] | None] | None:
        """Per layer, its input after every inference step (None: the recorded forward input).

        None for rules without an inference phase (the default). A rule that relaxes its
        activities before updating (predictive coding) returns, for each layer l, the list
        [input before the first step, after step 1, ..., after step T].
        """
        return None

    @contextmanager
    def pin_input(self, layer: int, trajectory: list[torch.Tensor]) -> Iterator[None]:
        """Within the block, `directions` uses `trajectory` as the relaxed input of `layer`.

        The plausibility check holds a layer's relaxed input fixed this way while it perturbs
        the layers below, as `MLP.clamp` holds a forward input fixed: a relaxing network
        settles as a whole, so the relaxed input carries the layers below by design, and the
        question is whether anything from below reaches the update by another path.
        """
        previous, self._pinned_input = getattr(self, "_pinned_input", None), (layer, trajectory)
        try:
            yield
        finally:
            self._pinned_input = previous

    def _input_or_pinned(self, layer: int, step: int, computed: torch.Tensor) -> torch.Tensor:
        """The relaxed input of `layer` after `step` steps: `computed`, or the pinned value."""
        pinned = getattr(self, "_pinned_input", None)
        return computed if pinned is None or pinned[0] != layer else pinned[1][step]

    @abstractmethod
    def card(self) -> PlausibilityCard:
        """The rule's plausibility card for its current configuration."""

    def feedback_pairs(self, net: MLP) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(name, feedback B, what B stands in for) per layer, for alignment measurements.

        Both matrices have the same shape. Default: none (the rule has no feedback pathway).
        """
        return []

    # State for checkpoints: the rule's own tensors and the optimizer's state.
    def rule_state(self) -> dict[str, torch.Tensor]:
        """The rule's own tensors (e.g. feedback matrices), by name. Default: none."""
        return {}

    def load_rule_state(self, state: dict[str, torch.Tensor]) -> None:
        own = self.rule_state()
        if set(own) != set(state):
            raise ValueError(f"rule state has keys {sorted(state)}, expected {sorted(own)}")
        for key, tensor in own.items():
            if tensor.shape != state[key].shape:
                raise ValueError(f"rule state {key!r} has shape {tuple(state[key].shape)}, expected {tuple(tensor.shape)}")
            tensor.copy_(state[key])

    def describe(self) -> dict[str, Any]:
        return {"rule": self.name, "seed": self.seed, "config": asdict(self.config)}


def step_info(logits: torch.Tensor, y: torch.Tensor, directions: list[torch.Tensor], **extras: Any) -> StepInfo:
    """StepInfo with the batch loss and the global norm of `directions`."""
    with torch.no_grad():
        loss = F.cross_entropy(logits, y).item()
        norm = float(torch.nn.utils.get_total_norm(directions))
    return StepInfo(loss=loss, logits=logits.detach(), update_norm=norm, extras=dict(extras))
