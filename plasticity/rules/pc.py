"""Predictive coding with inference learning (Whittington & Bogacz 2017, Neural Comput. 29:1229,
"An Approximation of the Error Backpropagation Algorithm in a Predictive Coding Network with
Local Hebbian Synaptic Plasticity"), in the discriminative setting benchmarked by PCX
(Pinchetti et al. 2025, ICLR, "Benchmarking Predictive Coding Networks -- Made Simple"), on any
model of Linear / Conv1d / Conv2d layers.

A block is a converted layer and whatever the model does to its output before the next layer
(activation, pooling, flattening). The forward pass sets the value nodes; they then relax for T
steps on the blocks' prediction errors, with the output pulled toward the target by the output
energy, and every weight changes with its own block's prediction error and input:

  value nodes   v_l at the input of every layer whose input is computed (on a chain of L layers,
                l = 1..L−1: the block outputs h_l), starting at the forward pass's values; the
                data x = v_0 stays fixed. A tensor that reaches two layers is one value node.
  predictions   μ_{l+1} = f_l(v_l), block l applied to the value node before it (on the MLP,
                μ_{l+1} = f(a_l), a_l = W_l v_l + b_l); logits = the last block's output
  errors        ε_l = v_l − μ_l (hidden); output ε_L = −∂E/∂logits = onehot(y) − softmax(logits)
                ("ce") or onehot(y) − logits ("mse")
  energy        F = Σ_l ½‖ε_l‖² + E(logits, y), E = cross-entropy ("ce") or ½‖onehot(y) − logits‖²
                ("mse"), summed over units
  relaxation    v ← v − γ ∂F/∂v, all nodes at once, T times, each sample on its own energy; on the
                MLP ∂F/∂v_l = ε_l − W_lᵀ(f′(a_l) ⊙ ε_{l+1}) (f′ = 1 for the linear output layer);
                predictions are recomputed after every step
  update        −∂F/∂W_l at the relaxed values, averaged over the batch: each weight reads its own
                block's error and input; on the MLP ΔW_l ∝ (f′(a_l) ⊙ ε_{l+1}) v_lᵀ

The relaxation reads W_lᵀ (through the vector–Jacobian product of each block): the feedback is
the transposed forward weights ("exact" weight transport), as in every predictive coding network
without learned feedback.

Equivalence with backprop. Under the fixed-prediction assumption (`fixed_prediction=True`:
predictions, f′ and the presynaptic values stay at their forward values during inference;
Millidge, Tschantz & Buckley 2022, Neural Comput. 34:1329), the errors obey
ε_l ← (1−γ) ε_l + γ J_lᵀ ε_{l+1} (J_l the Jacobian of block l at its forward input) with a fixed
output error, so with γ = 1 and T = L−1 every ε_l is exactly −B ∂loss/∂h_l (B the batch size,
loss the batch-mean cross-entropy): the updates are backprop's gradients (the "exact
implementation" of Song, Lukasiewicz, Xu & Bogacz 2020, NeurIPS), on conv nets as on the MLP.
With γ < 1 they are backprop's up to one positive factor per layer. In the standard regime
(predictions recomputed) with a small inference rate, the updates approach backprop's
(Whittington & Bogacz 2017); tests/test_pc.py checks all three.

As a PyTorch extension (PCX's value nodes, in PyTorch): every converted layer's forward is
replaced on the instance (`override_forward`), so that in each run of the model during a
relaxation every computed layer input is replaced by its value node, and one run computes every
prediction μ_l at once (the input a layer receives is its prediction). The forward pass is the
first run. Each step, ∂F/∂v is one vector–Jacobian product of the run's predictions and logits,
with respect to the nodes only (`autograd.grad`: no weight gradient is computed while relaxing).
A final run on the relaxed nodes, detached, computes the predictions whose graphs start at each
block's input, and `step_loss` returns F there (batch mean), carrying dF/dW: `loss.backward()`
puts each weight's update, read from its own block, in `.grad`, and any optimizer steps. Under
fixed prediction there is no other run: the same products on the forward pass's graph are the
blocks' Jacobians at their forward inputs, and the update is read at the forward values.

Precision. A node is kept as its forward value and a shift, v = h + δ, and its error as
ε = δ + (h − μ): near the input the errors scale as γ^(distance to the output), which can fall
below float32's resolution of v itself.

Only what changes is computed. The nodes start at the forward values, so at the first step every
hidden error is zero and only the node below the output moves; after step t only the nodes
within t blocks of the output have moved. A layer whose node has not moved returns its previous
output, a module without parameters between the layers (activation, pooling, reshaping) that
receives the same tensor as in the previous run returns its previous output, and an energy term
whose error is still exactly zero (neither its node nor a node its prediction reads has moved)
is left out. With T = L−1 in the standard regime, layer l (0-based; layer 0 is fed by data) runs
l + 1 times per step: the costly layers near a conv net's input run the fewest times. What this
costs against backprop is measured in docs/benchmarks.md.

The model runs T + 1 times per step: it must compute the same function at every run (no
dropout or batch statistics in training mode). On a model with skip connections an error
reaches a block by paths of different lengths, hence of different powers of γ: with a small γ
the shortest path dominates the update (fixed prediction with γ = 1 stays exactly backprop).
Under `plasticity.observe.activity.clamp` the forward pass is pinned and the runs on the value
nodes are not (`GradientRule.inferring`): the relaxation is the rule's own dynamics, started from
the pinned forward pass, as a relaxing network settles as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError, brief
from plasticity.rules.attach import GradientRule, override_forward
from plasticity.rules.base import RuleConfig, StepInfo

ENERGIES = ("ce", "mse")
# What a run of the model does at the converted layers (`Nodes.call`).
FORWARD, RELAX, FINAL = "forward", "relax", "final"


@dataclass
class PCConfig(RuleConfig):
    """Predictive coding's inference settings (and the shared optimizer's, from RuleConfig).

    T: inference steps per batch, at least L−1 (L: the converted layers) so that the output
        error reaches the first layer; None (the default) takes exactly L−1 (2 for the benchmark
        MLP), the fewest and the cheapest (cost measured in docs/benchmarks.md).
    inference_rate: γ, the step of the relaxation (gradient descent on F over the value nodes).
        Small rates keep the updates close to backprop's: on MNIST-1D 0.01 tracks backprop more
        closely than 0.05 (paired over 10 seeds), and at 0.5 the relaxation overshoots and
        training degrades (both measured in docs/rules.md).
    energy: output energy, "ce" (cross-entropy with the target, as backprop's loss) or "mse".
    fixed_prediction: hold predictions at their forward values during inference (the regime
        where predictive coding computes backprop's gradients; see the module docstring).
    """

    T: int | None = None
    inference_rate: float = 0.01
    energy: str = "ce"
    fixed_prediction: bool = False

    def validate(self) -> None:
        super().validate()
        if self.T is not None and self.T < 1:
            raise ConfigError(f"T must be ≥ 1 or None (L−1); got {self.T}")
        if not (self.inference_rate > 0 and math.isfinite(self.inference_rate)):
            raise ConfigError(f"inference_rate must be a positive finite number; got {self.inference_rate}")
        if self.energy not in ENERGIES:
            raise ConfigError(f"energy must be one of {ENERGIES}; got {brief(self.energy)}")


def sources(tensor: torch.Tensor, leaves: dict[int, int]) -> frozenset[int]:
    """The value nodes `tensor` is computed from: the leaves of its autograd graph found in
    `leaves` (id of the leaf tensor → node). The walk stops at every leaf, so it covers one
    block (and any skip connection) back to the nodes before it."""
    found: set[int] = set()
    stack, seen = [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        leaf = getattr(node, "variable", None)  # AccumulateGrad: a leaf tensor
        if leaf is not None:
            if id(leaf) in leaves:
                found.add(leaves[id(leaf)])
            continue
        stack.extend(parent for parent, _ in node.next_functions)
    return frozenset(found)


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """⟨a, b⟩ over every element."""
    return torch.dot(a.reshape(-1), b.reshape(-1))


@dataclass
class Nodes:
    """The value nodes of one relaxation, and what the runs of the model record.

    A node is kept as its forward value and its shift from it, v_k = h_k + δ_k, so that its error
    ε_k = δ_k + (h_k − μ_k) keeps full precision however small it is: near the input the errors
    scale as γ^(distance to the output), below float32's resolution of the activities themselves.

    calls: per converted-layer call of a run, in call order, the node at its input (None: data).
    bases: h_k, the forward pass's values (detached).
    shifts: δ_k, what the relaxation descends on.
    values: v_k = h_k + δ_k, leaves (what its layers run on); a node that moves gets a new one.
    predictions: μ_k of the latest run (the input its layer received).
    parents: per node, the nodes its prediction is computed from (empty: from data only, so it
        stays the forward pass's).
    moved: per node, whether it has moved since the forward pass.
    outputs: per call, (the value it last ran on, its output), reused while the node stays.
    readers: per node, the indices (in `rule.layers_`) of the layers it feeds.
    passed: per call of a module between the layers (`Nodes.between`), (its input, its output)
        in the latest run, reused while the input is the same tensor.
    """

    calls: list[int | None] = field(default_factory=list)
    bases: list[torch.Tensor] = field(default_factory=list)
    shifts: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    predictions: list[torch.Tensor] = field(default_factory=list)
    parents: list[frozenset[int]] = field(default_factory=list)
    moved: list[bool] = field(default_factory=list)
    outputs: list[tuple[torch.Tensor | None, torch.Tensor]] = field(default_factory=list)
    readers: list[list[int]] = field(default_factory=list)
    passed: list[tuple[torch.Tensor, Any]] = field(default_factory=list)
    mode: str = FORWARD
    cursor: int = 0
    passing: int = 0
    seen: dict[int, int] = field(default_factory=dict)

    def start(self, mode: str) -> None:
        self.mode, self.cursor, self.passing = mode, 0, 0

    def call(self, index: int, own: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        """Converted layer `index` receives `h` in the current run."""
        if self.mode == FORWARD:
            return self._first(index, own, h)
        call, self.cursor = self.cursor, self.cursor + 1
        k = self.calls[call]
        if k is None:
            return self.outputs[call][1]  # input is data: the forward pass's output
        if self.parents[k]:
            self.predictions[k] = h
        value = self.values[k]
        if self.mode == FINAL:
            return own(value.detach())
        ran_on, out = self.outputs[call]
        if ran_on is not value:
            out = own(value)
            self.outputs[call] = (value, out)
        return out

    def _first(self, index: int, own: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        """The forward pass: a computed input becomes a value node (one per tensor)."""
        if h.grad_fn is None:
            out = own(h)
            self.calls.append(None)
            self.outputs.append((None, out))
            return out
        k = self.seen.get(id(h))
        if k is None:
            k = self.seen[id(h)] = len(self.bases)
            self.bases.append(h.detach())
            self.predictions.append(h)  # holds h, so its id stays unique
            self.moved.append(False)
            self.readers.append([])
            self.shifts.append(torch.zeros_like(self.bases[k]))
            self.values.append(h.detach().requires_grad_())
        self.readers[k].append(index)
        value = self.values[k]
        out = own(value)
        self.calls.append(k)
        self.outputs.append((value, out))
        return out

    def between(self, own: Callable[[torch.Tensor], Any], h: torch.Tensor) -> Any:
        """A module without parameters between the layers (activation, pooling, reshaping)
        receives `h`: the same tensor as in the previous run gives the same output, so the
        blocks below the moving nodes are not recomputed."""
        if self.mode == FORWARD:
            out = own(h)
            self.passed.append((h, out))
            return out
        call, self.passing = self.passing, self.passing + 1
        ran_on, out = self.passed[call]
        if ran_on is not h:
            out = own(h)
            self.passed[call] = (h, out)
        return out

    def shift(self, k: int, delta: torch.Tensor) -> None:
        """Set node k's shift to `delta`, and its value to a new leaf h_k + δ_k."""
        self.shifts[k] = delta
        with torch.no_grad():
            self.values[k] = (self.bases[k] + delta).requires_grad_()

    def find_parents(self) -> None:
        leaves = {id(value): k for k, value in enumerate(self.values)}
        self.parents = [sources(mu, leaves) for mu in self.predictions]

    def errors(self, k: int) -> torch.Tensor:
        """ε_k = δ_k + (h_k − μ_k), detached (a number, not a graph); δ_k itself when the
        prediction is computed from data only (it is the forward value, h_k)."""
        if not self.parents[k]:
            return self.shifts[k]
        return self.shifts[k] + (self.bases[k] - self.predictions[k].detach())


@dataclass
class Relaxation:
    """The network after T inference steps.

    logits: the forward pass's class scores (detached).
    inputs: per converted layer, its input before the first step and after each step (detached;
        None for a layer whose input is data). Layers fed by one node share one list.
    energy: F after relaxation, batch mean; its `.backward()` puts the update dF/dW in `.grad`.
    """

    logits: torch.Tensor
    inputs: list[list[torch.Tensor] | None]
    energy: torch.Tensor


class PredictiveCoding(GradientRule):
    name = "pc"
    config_class = PCConfig

    def __init__(self, config: RuleConfig | None = None, seed: int = 0, **options: Any) -> None:
        super().__init__(config, seed, **options)
        self.T: int | None = self.config.T  # resolved to L−1 when attached
        self.nodes_: Nodes | None = None  # the relaxation in progress

    def attach(self, model: nn.Module, exclude: Sequence[str] = ()) -> PredictiveCoding:
        super().attach(model, exclude)
        needed = len(self.layers_) - 1
        self.T = needed if self.config.T is None else self.config.T
        if self.T < needed:
            self.detach()
            raise ConfigError(
                f"pc needs T ≥ L−1 = {needed} inference steps for the output error to reach the first layer "
                f"of this model of {len(self.layers_)} layers; got T={self.T}"
            )
        return self

    def _register(self, model: nn.Module) -> list[Any]:
        """The converted layers, and every module without parameters or submodules of its own
        (activations, pooling, reshaping: what runs between the layers), on this instance."""
        handles = [override_forward(layer, partial(self._layer, index)) for index, layer in enumerate(self.layers_)]
        converted = set(self.layers_)
        for module in model.modules():
            if module not in converted and next(module.children(), None) is None and next(module.parameters(), None) is None:
                handles.append(override_forward(module, self._between))
        return handles

    def _layer(self, index: int, own: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        nodes = self.nodes_
        if nodes is None or self.bypass:
            return own(h)
        return nodes.call(index, own, h)

    def _between(self, own: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        nodes = self.nodes_
        if nodes is None or self.bypass or kwargs or len(args) != 1 or not isinstance(args[0], torch.Tensor):
            return own(*args, **kwargs)
        return nodes.between(own, args[0])

    # ----------------------------------------------------------------------------- relaxation
    def relax(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Relaxation:
        """The forward pass and T inference steps (nothing is written to `.grad`)."""
        self.check_model(model)
        nodes = Nodes()
        with torch.enable_grad(), self._setting("nodes_", nodes):
            logits = model(x)  # the forward pass: every computed layer input becomes a node
            forward = logits.detach()
            nodes.find_parents()
            free = frozenset(self.layers_[index] for layers in nodes.readers for index in layers)
            with self._setting("inferring", free):
                trajectories, loss = self._settle(model, x, y, nodes, logits)
        inputs: list[list[torch.Tensor] | None] = [None] * len(self.layers_)
        for k, layers in enumerate(nodes.readers):
            for index in layers:
                inputs[index] = trajectories[k]
        return Relaxation(forward, inputs, loss / len(x))

    def _settle(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, nodes: Nodes, logits: torch.Tensor) -> tuple[list[list[torch.Tensor]], torch.Tensor]:
        """T steps from the forward pass (`logits`: its output): each node's trajectory, and the
        loss at the relaxed nodes (`_loss`, summed over the batch)."""
        fixed = self.config.fixed_prediction
        target = F.one_hot(y, logits.shape[1]).to(logits.dtype)
        error = self._output_error(logits.detach(), target)
        leaves = list(nodes.values)  # the forward pass's graph reads the nodes through these
        trajectories = [[value.detach()] for value in nodes.values]
        for step in range(1, self.T + 1 if nodes.values else 1):
            if step > 1 and not fixed:
                nodes.start(RELAX)
                logits = model(x)
                error = self._output_error(logits.detach(), target)
                leaves = nodes.values
            self._descend(nodes, leaves, logits, error, step, retain=fixed)
            for trajectory, value in zip(trajectories, nodes.values, strict=True):
                trajectory.append(value.detach())
        if not fixed:
            nodes.start(FINAL)
            logits = model(x)
            error = self._output_error(logits.detach(), target)
        return trajectories, self._loss(nodes, logits, y, error)

    def _live(self, nodes: Nodes) -> list[int]:
        """The nodes whose error may be non-zero: moved, or (predictions recomputed) reading a
        node that moved. Every other error is exactly zero and leaves F and its gradient alone."""
        if self.config.fixed_prediction:
            return [k for k, moved in enumerate(nodes.moved) if moved]
        return [k for k, moved in enumerate(nodes.moved) if moved or any(nodes.moved[j] for j in nodes.parents[k])]

    def _output_error(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """ε_L = −∂E/∂logits per sample: onehot(y) − softmax(logits), or onehot(y) − logits."""
        return target - (torch.softmax(logits, dim=1) if self.config.energy == "ce" else logits)

    def _loss(self, nodes: Nodes, logits: torch.Tensor, y: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """F = E(logits, y) + Σ_k ½‖ε_k‖² (summed over the batch) at the relaxed nodes, carrying
        its gradient in the weights, dF/dW = −(∂logits/∂W)ᵀ ε_L − Σ_k (∂μ_k/∂W)ᵀ ε_k, as the linear
        form −⟨ε_L, logits⟩ − Σ_k ⟨ε_k, μ_k⟩ (errors held fixed; `output` = ε_L): the graph of each
        prediction starts at its block's input, so each weight learns from its own block."""
        live = self._live(nodes)
        errors = [nodes.errors(k) for k in live]
        with torch.no_grad():
            energy = F.cross_entropy(logits, y, reduction="sum") if self.config.energy == "ce" else dot(output, output) / 2
            energy = energy + sum(dot(e, e) for e in errors) / 2
        linear = dot(logits, output)
        for k, e in zip(live, errors, strict=True):
            linear = linear + dot(nodes.predictions[k], e)
        return (energy + linear).detach() - linear

    def _descend(self, nodes: Nodes, leaves: list[torch.Tensor], logits: torch.Tensor, output: torch.Tensor, step: int, retain: bool) -> None:
        """One inference step, v ← v − γ ∂F/∂v, with ∂F/∂v_k = ε_k − Σ_j J_jkᵀ ε_j, the sum running
        over the predictions computed from node k (the logits among them, with ε_L = `output`):
        one vector–Jacobian product on the graph of the run that computed them, with respect to
        `leaves` (that run's nodes). A node in no live term stays; a pinned node (`pin_input`)
        takes its pinned value."""
        live = self._live(nodes)
        errors = {k: nodes.errors(k) for k in live}
        reading = [k for k in live if nodes.parents[k]]
        outputs = [logits] + [nodes.predictions[k] for k in reading]
        through = torch.autograd.grad(outputs, leaves, [output] + [errors[k] for k in reading], allow_unused=True, retain_graph=retain)
        rate, pinned = self.config.inference_rate, self._pinned_node(nodes)
        for k, passed in enumerate(through):
            own = errors.get(k)
            if pinned is not None and k == pinned[0]:
                moved = pinned[1][step] - nodes.bases[k]
            elif own is None and passed is None:
                continue
            else:
                moved = nodes.shifts[k]
                if passed is not None:
                    moved = torch.add(moved, passed, alpha=rate)
                if own is not None:
                    moved = torch.sub(moved, own, alpha=rate)
            nodes.shift(k, moved)
            nodes.moved[k] = True

    def _pinned_node(self, nodes: Nodes) -> tuple[int, list[torch.Tensor]] | None:
        """(node, trajectory) of the pinned input (`pin_input`), if one is pinned."""
        if self.pinned_input is None:
            return None
        layer, trajectory = self.pinned_input
        for k, layers in enumerate(nodes.readers):
            if layer in layers:
                return k, trajectory
        return None

    # ----------------------------------------------------------------------------- learning
    def step_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, StepInfo]:
        relaxed = self.relax(model, x, y)
        return relaxed.energy, StepInfo(loss=F.cross_entropy(relaxed.logits, y), logits=relaxed.logits)

    def relaxed_inputs(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[list[torch.Tensor] | None]:
        return self.relax(model, x, y).inputs

    def card(self) -> PlausibilityCard:
        config = self.config
        fixed = config.fixed_prediction
        return PlausibilityCard(
            rule=self.name,
            weight_transport="exact",
            reads=("pre", "post", "error_from_above") if fixed else ("pre", "post", "own_weights", "error_from_above"),
            global_signal=0,
            error_signal=(
                f"ε_l = v_l − f_{{l−1}}(v_{{l−1}}): prediction errors after T = {'L−1 = ' if config.T is None else ''}"
                f"{self.T} relaxation steps "
                f"v_l += {config.inference_rate}·(−ε_l + J_lᵀ ε_{{l+1}}) (J_l: block l's Jacobian), "
                f"output clamped by the {config.energy} energy" + (", predictions fixed at the forward pass" if fixed else "")
            ),
            phases_per_step=2,
            inference_iterations=int(self.T or 0),
            locks_removed=(),
            reference="Whittington & Bogacz 2017, Neural Comput. 29:1229; Song et al. 2020, NeurIPS",
        )
