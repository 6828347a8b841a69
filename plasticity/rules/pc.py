"""Predictive coding with inference learning (Whittington & Bogacz 2017, Neural Comput. 29:1229,
"An Approximation of the Error Backpropagation Algorithm in a Predictive Coding Network with
Local Hebbian Synaptic Plasticity"), in the discriminative setting benchmarked by PCX
(Pinchetti et al. 2025, ICLR, "Benchmarking Predictive Coding Networks -- Made Simple").

The network's forward pass sets the value nodes; they then relax for T steps on local prediction
errors with the output clamped to the target by the output energy, and every weight changes
with its own layer's prediction error and input (layer l = 0..L−1, 0-based, as in `Trace`):

  value nodes   v_0 = x (fixed); v_l, l = 1..L−1, start at the forward outputs h_l
  predictions   a_l = W_l v_l + b_l (l ≥ 1; a_0 = W_0 x + b_0 stays the forward one), μ_{l+1} = f(a_l)
  errors        ε_{l+1} = v_{l+1} − μ_{l+1} (hidden);  output ε_L = onehot(y) − softmax(a_{L−1})
                ("ce") or onehot(y) − a_{L−1} ("mse")
  energy        F = Σ_l ½‖ε_l‖² + E(a_{L−1}, y), E = cross-entropy ("ce") or ½‖onehot(y) − a_{L−1}‖² ("mse")
  relaxation    v_l ← v_l − γ ∂F/∂v_l = v_l + γ (−ε_l + W_lᵀ(f′(a_l) ⊙ ε_{l+1})), all l at once, T times
                (f′ = 1 for the linear output layer); predictions are recomputed after every step
  update        ΔW_l ∝ (f′(a_l) ⊙ ε_{l+1}) v_lᵀ, i.e. the direction −∂F/∂W_l averaged over the batch

The relaxation reads W_lᵀ: the feedback is the transposed forward weights ("exact" weight
transport), as in every predictive coding network without learned feedback.

Equivalence with backprop. Under the fixed-prediction assumption (`fixed_prediction=True`:
predictions, f′ and the presynaptic values stay at their forward values during inference;
Millidge, Tschantz & Buckley 2022, Neural Comput. 34:1329), the errors obey
ε_l ← (1−γ) ε_l + γ W_lᵀ(f′(a_l) ⊙ ε_{l+1}) with a fixed output error, so with γ = 1 and
T = L−1 every ε_l is exactly −B ∂loss/∂h_l (B the batch size, loss the batch-mean
cross-entropy): the updates are backprop's gradients (the "exact implementation" of Song,
Lukasiewicz, Xu & Bogacz 2020, NeurIPS). With γ < 1 they are
backprop's up to one positive factor per layer. In the standard regime (predictions
recomputed) with a small inference rate, the updates approach backprop's
(Whittington & Bogacz 2017); tests/test_pc.py checks both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from plasticity.nets import MLP, Trace, activate, activation_derivative
from plasticity.rules.base import Rule, RuleConfig, StepInfo, layer_directions, step_info
from plasticity.rules.card import PlausibilityCard

ENERGIES = ("ce", "mse")


@dataclass
class PCConfig(RuleConfig):
    """Predictive coding's inference settings (and the shared optimizer's, from RuleConfig).

    T: inference steps per batch, at least L−1 so that the output error reaches the first
        layer; None (the default) takes exactly L−1 (2 for the benchmark MLP), which keeps the
        time per epoch under twice backprop's (docs/rules.md).
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
            raise ValueError(f"T must be ≥ 1 or None (L−1); got {self.T}")
        if not (self.inference_rate > 0 and math.isfinite(self.inference_rate)):
            raise ValueError(f"inference_rate must be a positive finite number; got {self.inference_rate}")
        if self.energy not in ENERGIES:
            raise ValueError(f"energy must be one of {ENERGIES}; got {self.energy!r}")


@dataclass
class Relaxation:
    """The network after T inference steps.

    state: value nodes v_l (h[l], with the logits a_{L−1} last) and predictions' pre-activations
        a_l, as a Trace whose h[:-1] are the presynaptic values the update reads.
    errors: f′(a_l) ⊙ ε_{l+1} per layer l (batch × n_{l+1}), per sample (f′ = 1 at the output).
    inputs: per layer, its input v_l before the first step and after each step (None for layer 0,
        whose input is the data).
    energy: F after relaxation, batch mean.
    """

    state: Trace
    errors: list[torch.Tensor]
    inputs: list[list[torch.Tensor] | None]
    energy: float


class PredictiveCoding(Rule):
    name = "pc"
    config_class = PCConfig

    def setup(self, net: MLP, generator: torch.Generator) -> None:
        self.T = net.depth - 1 if self.config.T is None else self.config.T
        if self.T < net.depth - 1:
            raise ValueError(
                f"pc needs T ≥ L−1 = {net.depth - 1} inference steps for the output error to reach the first layer "
                f"of this {net.depth}-layer network; got T={self.T}"
            )

    def _output_error(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """ε_L = −∂E/∂logits per sample (`output_error` without the 1/B), target one-hot."""
        return target - (torch.softmax(logits, dim=1) if self.config.energy == "ce" else logits)

    def _errors(self, values: list[torch.Tensor], predictions: list[torch.Tensor], logits: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """ε_{l+1} for every layer l: value minus prediction (hidden), then the output error."""
        return [value - mu for value, mu in zip(values[1:], predictions)] + [self._output_error(logits, target)]

    @torch.no_grad()
    def relax(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[Trace, Relaxation]:
        """The forward pass and the network after T inference steps (pure)."""
        config, L = self.config, net.depth
        trace = net.trace(x)
        target = F.one_hot(y, net.sizes[-1]).to(trace.logits.dtype)
        values = list(trace.h[:-1])
        a = list(trace.a)
        predictions = list(trace.h[1:-1])  # μ_{l+1} = f(a_l) for the hidden layers
        gains = [activation_derivative(a[l], trace.h[l + 1], net.activation) for l in range(L - 1)] + [None]
        inputs: list[list[torch.Tensor] | None] = [None] + [[value] for value in values[1:]]
        for step in range(1, self.T + 1):
            errors = self._errors(values, predictions, a[-1], target)
            for l in range(1, L):
                gated = errors[l] if gains[l] is None else gains[l] * errors[l]
                decayed = torch.sub(values[l], errors[l - 1], alpha=config.inference_rate)
                moved = torch.addmm(decayed, gated, net.layers[l].weight, alpha=config.inference_rate)
                values[l] = self._input_or_pinned(l, step, moved)
                inputs[l].append(values[l])
            if not config.fixed_prediction:
                for l in range(1, L):
                    a[l] = F.linear(values[l], net.layers[l].weight, net.layers[l].bias)
                    if l < L - 1:
                        predictions[l] = activate(a[l], net.activation)
                        gains[l] = activation_derivative(a[l], predictions[l], net.activation)
        errors = self._errors(values, predictions, a[-1], target)
        # Under the fixed-prediction assumption the predictions' inputs stay the forward values.
        state = trace if config.fixed_prediction else Trace(values + [a[-1]], a)
        gated = [e if g is None else g * e for g, e in zip(gains, errors)]
        return trace, Relaxation(state, gated, inputs, self._energy(errors, a[-1], y))

    def _energy(self, errors: list[torch.Tensor], logits: torch.Tensor, y: torch.Tensor) -> float:
        """F = Σ_l ½‖ε_l‖² + E(logits, y), batch mean."""
        hidden = sum(error.pow(2).sum() for error in errors[:-1]) / 2
        output = F.cross_entropy(logits, y, reduction="sum") if self.config.energy == "ce" else errors[-1].pow(2).sum() / 2
        return float(hidden + output) / len(y)

    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        trace, relaxed = self.relax(net, x, y)
        deltas = [-error / len(y) for error in relaxed.errors]  # −f′ ⊙ ε / B: ∂loss/∂a_l convention
        directions = layer_directions(relaxed.state, deltas)
        return directions, step_info(trace.logits, y, directions, energy=relaxed.energy)

    def relaxed_inputs(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> list[list[torch.Tensor] | None]:
        return self.relax(net, x, y)[1].inputs

    def card(self) -> PlausibilityCard:
        config = self.config
        fixed = config.fixed_prediction
        return PlausibilityCard(
            rule=self.name,
            weight_transport="exact",
            reads=("pre", "post", "error_from_above") if fixed else ("pre", "post", "own_weights", "error_from_above"),
            global_signal=0,
            error_signal=(
                f"ε_l = v_l − f(W_{{l−1}} v_{{l−1}}): prediction errors after T = {'L−1 = ' if config.T is None else ''}"
                f"{self.T} relaxation steps "
                f"v_l += {config.inference_rate}·(−ε_l + W_lᵀ(f′ ⊙ ε_{{l+1}})), output clamped by the {config.energy} energy"
                + (", predictions fixed at the forward pass" if fixed else "")
            ),
            phases_per_step=2,
            inference_iterations=self.T,
            locks_removed=(),
            reference="Whittington & Bogacz 2017, Neural Comput. 29:1229; Song et al. 2020, NeurIPS",
        )
