"""Plausibility cards checked by perturbation, not trusted.

`measure(rule)` asks, for every layer l of the rule's network, what the update of layer l
depends on. It computes the update once, then recomputes it after changing one thing, with
every recorded activity clamped to the reference forward pass, so that a change in a weight
cannot leak in through the activities it would have produced. A dependence is a difference in
any bit of the update (`torch.equal`); independence is bit-identity.

The layers are the Linear / Conv1d / Conv2d layers of whatever model a rule is attached to (a
conv net as well as the MLP): their inputs and outputs are recorded and clamped by forward
hooks (`plasticity.observe.activity`), and a layer's update is what `loss.backward()` puts in
its `.grad` (`GradientRule.directions`).

What is perturbed, for layer l of L (0-based):
  pre          the layer's input h_l (for l = 0, the network input; on an attached model the
               first layer's input is pinned by the clamp like every other)
  post         its pre-activation a_l, sign-flipped (so that f′(a_l) changes for ReLU),
               and its output h_{l+1} (f′ of tanh is read from the output)
  above        activities (a_m, h_{m+1}) of the hidden layers m above l
  output       the logits, for layers below the output
  below        activities of the layers below l's input (no rule may read them)
  weights_above / weights_below / own_weights
               forward weights with magnitudes rescaled and signs kept
  signs_above  forward weights above with a random half of their signs flipped
  feedback     the rule's own state tensors (feedback matrices, readouts), if it has any
  broadcast    the global signal itself, for rules that have one (`GradientRule.broadcast`); a rule
               reads it when every hidden layer's update changes with it (the output layer
               may learn from its own error instead)
  target       the labels (every label moved to the next class)

For a rule with a broadcast, the probes of *other* layers' activities (above, output, below)
run with the broadcast pinned to its reference value (`GradientRule.pin_broadcast`): the broadcast may
carry information from anywhere in the network (that is its job), so the question is whether
anything *else* from other layers reaches the update.

For a rule that relaxes its activities before updating (`GradientRule.relaxed_inputs`, predictive
coding), the probes of the layers *below* run with layer l's relaxed input pinned to its
reference trajectory (`GradientRule.pin_input`), as the clamp pins a forward input: a relaxing network
settles as a whole, so its relaxed input carries the layers below by design, and the question is
whether anything from below reaches the update by another path.

A hidden layer whose update changes with the labels must get them from somewhere its card
declares: an error from above or a broadcast. Hidden layers of unsupervised rules (SoftHebb)
must not read the target at all; their readout (the output layer) may.

`verify(card, measured)` lists every disagreement between a card and the measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.nets import Trace
from plasticity.observe.activity import clamp, record
from plasticity.observe.plausibility_spiking import SpikingMeasured, declared_vs_measured, measure_spiking, verify_spiking
from plasticity.rules.attach import GradientRule
from plasticity.rules.spiking import SpikingRule

PerLayer = list[bool]


@dataclass
class Measured:
    """For each probe, per layer, whether that layer's update changed."""

    pre: PerLayer
    post: PerLayer
    above: PerLayer
    output: PerLayer
    below: PerLayer
    weights_above: PerLayer
    signs_above: PerLayer
    weights_below: PerLayer
    own_weights: PerLayer
    feedback: PerLayer
    broadcast: PerLayer
    target: PerLayer
    size: int | None  # numbers per sample in the rule's broadcast (None: it has none)

    @property
    def weight_transport(self) -> str:
        """exact / sign / random / none, as measured on the hidden layers."""
        hidden = range(len(self.pre) - 1)
        if any(self.weights_above[l] for l in hidden):
            return "exact"
        if any(self.signs_above[l] for l in hidden):
            return "sign"
        return "random" if any(self.feedback[l] for l in hidden) else "none"

    @property
    def reads(self) -> tuple[str, ...]:
        hidden = range(len(self.pre) - 1)
        found = []
        if all(self.pre):
            found.append("pre")
        if all(self.post):
            found.append("post")
        if any(self.own_weights):
            found.append("own_weights")
        if any(self.above[l] for l in hidden):
            found.append("error_from_above")
        elif any(self.output[l] for l in hidden) or all(self.broadcast[l] for l in hidden):
            found.append("broadcast")
        return tuple(found)

    @property
    def hidden_read_target(self) -> bool:
        """Some hidden layer's update changes with the labels (by any path)."""
        return any(self.target[:-1])

    @property
    def no_weight_transport(self) -> bool:
        """No layer's update reads another layer's forward weights (values or signs)."""
        return self.weight_transport in ("random", "none") and not any(self.weights_below)

    @property
    def layer_local(self) -> bool:
        """Each update reads its own pre/post and at most a broadcast: no other layer's state."""
        return self.no_weight_transport and "error_from_above" not in self.reads and not any(self.below)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(
            weight_transport=self.weight_transport,
            reads=list(self.reads),
            no_weight_transport=self.no_weight_transport,
            layer_local=self.layer_local,
            hidden_read_target=self.hidden_read_target,
        )
        return out


class Probed:
    """What the probes need from a rule attached to a model: the blocks are its Linear / Conv
    layers, whose activities are recorded and clamped by hooks (`plasticity.observe.activity`),
    every block's input clamped, the first included."""

    def __init__(self, rule: GradientRule, model: nn.Module) -> None:
        self.rule, self.model = rule, model
        self.layers: list[nn.Module] = list(rule.layers_)
        index = {id(p): i for i, p in enumerate(model.parameters())}
        self.slots = [[index[id(p)] for p in layer.parameters(recurse=False)] for layer in self.layers]

    @property
    def depth(self) -> int:
        return len(self.layers)

    def record(self, x: torch.Tensor) -> Trace:
        return record(self.model, self.layers, x)

    def clamp(self, trace: Trace) -> AbstractContextManager[Any]:
        return clamp(self.layers, trace)

    def updates(
        self, x: torch.Tensor, y: torch.Tensor, trace: Trace, broadcast: torch.Tensor | None = None, pinned_input: tuple[int, list[torch.Tensor]] | None = None
    ) -> list[torch.Tensor]:
        """Each layer's update (its parameters' directions concatenated) at clamped activities."""
        rule = self.rule
        with (
            self.clamp(trace),
            rule.pin_broadcast(broadcast) if broadcast is not None else nullcontext(),
            rule.pin_input(*pinned_input) if pinned_input is not None else nullcontext(),
        ):
            directions, _ = rule.directions(self.model, x, y)
        return [torch.cat([directions[i].flatten() for i in slots]) for slots in self.slots]

    @contextmanager
    def weights_changed(self, layers: range, generator: torch.Generator, flip_signs: bool) -> Iterator[None]:
        """Within the block, the forward weights of `layers` are rescaled (signs kept; biases
        moved) or have a random half of their signs flipped; restored afterwards."""
        saved = [[p.detach().clone() for p in self.layers[m].parameters(recurse=False)] for m in layers]
        try:
            with torch.no_grad():
                for m in layers:
                    weight = self.layers[m].weight
                    if flip_signs:
                        weight.mul_(torch.where(torch.rand(weight.shape, generator=generator) < 0.5, -1.0, 1.0))
                    else:
                        weight.mul_(0.5 + 1.5 * torch.rand(weight.shape, generator=generator))
                        bias = self.layers[m].bias
                        if bias is not None:
                            bias.add_(torch.randn(bias.shape, generator=generator))
            yield
        finally:
            with torch.no_grad():
                for m, tensors in zip(layers, saved, strict=True):
                    for p, tensor in zip(self.layers[m].parameters(recurse=False), tensors, strict=True):
                        p.copy_(tensor)


def _changed(before: list[torch.Tensor], after: list[torch.Tensor]) -> list[bool]:
    return [not torch.equal(b, a) for b, a in zip(before, after, strict=True)]


# Input widths of the conv models a card can be measured on (`probe_rule(..., model=...)`).
PROBE_WIDTHS = {"cnn1d": 40, "lenet5": 784}


def probe_inputs(model: str, batch: int = 16, seed: int = 0) -> torch.Tensor:
    """N(0, 1) probe inputs for the conv model `model` (`measure(rule, x=...)`)."""
    return torch.randn(batch, PROBE_WIDTHS[model], generator=torch.Generator().manual_seed(seed))


def probe_rule(name: str, options: dict[str, object] | None = None, activation: str = "relu", model: str = "mlp") -> GradientRule | SpikingRule:
    """Rule `name` on the small network its card is measured on.

    MLP rules get three hidden layers (16, 12, 8), so that the first has hidden layers above it
    and the last has some below; spiking rules get 20 inputs and 16 neurons. With `model`
    "cnn1d" or "lenet5", an attachable rule is attached to that conv net (10 classes) instead.
    """
    from plasticity.models import build_cnn1d, build_lenet5
    from plasticity.nets import build_mlp
    from plasticity.rules import attach, build_rule, make_config, rule_class
    from plasticity.spiking.network import SpikingNet

    if model != "mlp":
        if model not in PROBE_WIDTHS:
            raise ValueError(f"cards are measured on the MLP or on {', '.join(PROBE_WIDTHS)}; got model {model!r}")
        builder = build_cnn1d if model == "cnn1d" else build_lenet5
        return attach(builder(PROBE_WIDTHS[model], 10, seed=0), name, seed=0, **(options or {}))
    if rule_class(name).network == "spiking":
        config = make_config(name, options)
        return rule_class(name)(SpikingNet(20, 16, 10, config=config.neuron(), seed=0), config, seed=0)  # type: ignore[attr-defined]
    cls = rule_class(name)
    mlp = {"activation": activation, **cls.mlp_options(make_config(name, options))}
    return build_rule(name, build_mlp(20, 10, (16, 12, 8), seed=0, **mlp), options)


def measure(rule: GradientRule | SpikingRule, batch: int = 16, seed: int = 0, x: torch.Tensor | None = None) -> Measured | SpikingMeasured:
    """Probe `rule` on the network it trains with a random batch (inputs ~ N(0, 1), random labels).

    x: the probe inputs, needed for a model whose input width cannot be read from its first
    Linear layer (a conv model); `batch` rows of N(0, 1) of that width otherwise.
    Spiking rules are probed on recorded spike trains instead (`measure_spiking`).
    """
    if rule.network == "spiking":
        return measure_spiking(rule)  # type: ignore[arg-type]
    model = rule.model_
    if model is None:
        raise ValueError(f"the {rule.name} rule is not attached to a model; attach it before measuring its card")
    target = Probed(rule, model)
    generator = torch.Generator().manual_seed(seed)
    if x is None:
        first = target.layers[0]
        if not isinstance(first, nn.Linear):
            raise ValueError("measure needs probe inputs x for a model whose first layer is not Linear")
        x = torch.randn(batch, first.in_features, generator=generator)
    classes = int(target.layers[-1].weight.shape[0])
    y = torch.randint(0, classes, (len(x),), generator=generator)
    reference = target.record(x)
    with target.clamp(reference):
        signal = rule.broadcast(model, x, y)
        relaxed = rule.relaxed_inputs(model, x, y)
    base = target.updates(x, y, reference)
    L = target.depth

    def noise(t: torch.Tensor) -> torch.Tensor:
        return torch.randn(t.shape, generator=generator)

    def own_input(l: int) -> tuple[int, list[torch.Tensor]] | None:
        """Layer l's relaxed input, to pin while the layers below it change (None: none to pin)."""
        return None if relaxed is None or relaxed[l] is None else (l, relaxed[l])

    def activity_probe(edit: Callable[[Trace, int], None], pin: bool = False, pin_own_input: bool = False) -> list[bool]:
        """Per layer l: the update at a copy of the reference trace edited by `edit`."""
        result = []
        for l in range(L):
            trace = reference.clone()
            edit(trace, l)
            pinned = own_input(l) if pin_own_input else None
            result.append(_changed(base, target.updates(x, y, trace, signal if pin else None, pinned))[l])
        return result

    def broadcast_probe() -> list[bool]:
        if signal is None:
            return [False] * L
        return _changed(base, target.updates(x, y, reference, signal + noise(signal)))

    def edit_pre(trace: Trace, l: int) -> None:
        trace.h[l] += noise(trace.h[l])

    def edit_post(trace: Trace, l: int) -> None:
        trace.a[l] = -trace.a[l] + 0.1 * noise(trace.a[l])
        if l < L - 1:
            trace.h[l + 1] += noise(trace.h[l + 1])

    def edit_above(trace: Trace, l: int) -> None:
        for m in range(l + 1, L - 1):
            trace.a[m] = -trace.a[m] + noise(trace.a[m])
            trace.h[m + 1] += noise(trace.h[m + 1])

    def edit_output(trace: Trace, l: int) -> None:
        if l < L - 1:
            trace.a[L - 1] += 3 * noise(trace.a[L - 1])

    def edit_below(trace: Trace, l: int) -> None:
        for m in range(l):
            trace.a[m] = -trace.a[m] + noise(trace.a[m])
            if m > 0:
                trace.h[m] += noise(trace.h[m])

    def weight_probe(layers: Callable[[int], range], flip_signs: bool = False, pin_own_input: bool = False) -> list[bool]:
        result = []
        for l in range(L):
            pinned = own_input(l) if pin_own_input else None
            with target.weights_changed(layers(l), generator, flip_signs):
                result.append(_changed(base, target.updates(x, y, reference, pinned_input=pinned))[l])
        return result

    def feedback_probe() -> list[bool]:
        state = rule.rule_state()
        if not state:
            return [False] * L
        saved = {k: v.clone() for k, v in state.items()}
        try:
            with torch.no_grad():
                for tensor in state.values():
                    if tensor.is_floating_point():
                        tensor.add_(noise(tensor))
            return _changed(base, target.updates(x, y, reference))
        finally:
            rule.load_rule_state(saved)

    return Measured(
        pre=activity_probe(edit_pre),
        post=activity_probe(edit_post),
        above=activity_probe(edit_above, pin=True),
        output=activity_probe(edit_output, pin=True),
        below=activity_probe(edit_below, pin=True, pin_own_input=True),
        weights_above=weight_probe(lambda l: range(l + 1, L)),
        signs_above=weight_probe(lambda l: range(l + 1, L), flip_signs=True),
        weights_below=weight_probe(lambda l: range(l), pin_own_input=True),
        own_weights=weight_probe(lambda l: range(l, l + 1)),
        feedback=feedback_probe(),
        broadcast=broadcast_probe(),
        target=_changed(base, target.updates(x, (y + 1) % classes, reference)),
        size=None if signal is None else int(signal.shape[1]),
    )


def verify(card: PlausibilityCard, measured: Measured | SpikingMeasured) -> list[str]:
    """Disagreements between what `card` declares and what was measured (empty: the card holds)."""
    if isinstance(measured, SpikingMeasured):
        return verify_spiking(card, measured)
    problems = declared_vs_measured(card, measured.weight_transport, measured.reads)
    declared, found = set(card.reads), set(measured.reads)
    if any(measured.below) or any(measured.weights_below):
        problems.append("the update reads activities or weights of layers below its input")
    if measured.hidden_read_target and not declared & {"error_from_above", "broadcast"}:
        problems.append("hidden layers' updates read the target, but the card declares no path for it (error_from_above or broadcast)")
    if card.global_signal > 0 and "broadcast" not in found:
        problems.append(f"card declares a broadcast of size {card.global_signal}, but none was measured")
    if card.global_signal > 0 and (measured.size is None or measured.size != card.global_signal):
        problems.append(f"card declares a broadcast of size {card.global_signal}, the rule broadcasts {measured.size} numbers per sample")
    return problems
