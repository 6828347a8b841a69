"""Global-workspace broadcast learning: integrated, broadcast prediction error as the teacher.

An operational reading of "consciousness as macroscopic backpropagation" (Integrated Predictive
Workspace Theory; see docs/workspace.md), built on global workspace theory (Baars 1988;
Dehaene, Kerszberg & Changeux 1998) and on three-factor plasticity (Frémaux & Gerstner 2016).
The broadcast pathway is direct feedback alignment's (Nøkland 2016; `plasticity.rules.dfa`,
whose injection point this rule shares); what is new is what gets broadcast. Per training step:

1. **Modules predict.** The output of every hidden block m (the input h_m of a converted layer
   that carries a graph, as in `dfa`) is a module with a linear readout
   r_m = softmax(R_m h_m + c_m) (a head of C classes on the flattened block output), trained by
   the delta rule on its own error; the model's output is the output module (r = softmax(logits)).
   Module error e_m = (r_m − onehot(y)) / batch and uncertainty τ_m = entropy(r_m), per sample.
2. **Competition with limited capacity** (an option, off by default). Salience
   s_m = ‖e_m‖·batch / (τ_m + ε) (a confident error is salient, an uncertain one is not). For
   each sample, the `capacity` most salient modules enter the workspace (`modules="output"`: only
   the output module competes). By default (`capacity=None`) every module enters and there is no
   competition: limited capacity and salience-based admission passed none of the pre-registered
   tests of docs/workspace.md (H2, H3), so by the rule written down before them they are off.
3. **Integration** into one packet z of size C (the classes) per sample:
   "identity" (capacity 1: the winner's error), "sum" (Σ admitted e_m), or "precision"
   (Σ π_m e_m / Σ π_m over admitted modules, π_m = 1 / (τ_m + ε): the precision-weighted
   mean, the Bayes-optimal fusion of independent Gaussian estimates).
4. **Ignition** (`gate`): the packet's surprise S = mean per-sample ‖z‖·batch is compared with a
   running μ ± kσ band (`plasticity.integrity.SurpriseBand`, the gate of gated backprop):
   below the band (redundant) or above it (anomalous) nothing is broadcast and no weight moves:
   the step reports `applied = False`, and the optimizer is not stepped.
5. **Broadcast and three-factor plasticity.** Every hidden block m receives the same packet
   through its own map B_m (C × numel(h_m)): the error at h_m is g_m (z B_m), and autograd carries
   it into the block's weights (⊙ f′(a) inside the block), so ΔW = −η δᵀ h for a Linear block.
   The output module learns from its own error (`output_teacher="own"`, the delta rule) or from
   the packet, which it reads directly, the packet being in class space ("packet"). The maps B_m
   start random, as in DFA, and learn from the network's own noise by a weight mirror (Akrout et
   al. 2019; `DirectFeedbackAlignment.mirror`; `mirror_rate` 0 keeps them fixed).
   g_m is a per-module precision gain: 1 ("none"), the module's salience relative to its own
   running mean ("salience"), or 1 − PI of its own prediction ("pi", ΣPI with the module's
   error norm as surprise: a module that predicts well consolidates). The gain of the module
   read from block m's output scales the error that block m receives; the output's, the output's.
6. **Rhythm** (`period` P > 1): the packet is broadcast every P steps. In between, each synapse
   accumulates an eligibility trace of pre ⊗ post coincidences, Ē_l = mean f′(a_l) ⊗ h_{l−1}
   (computed by autograd as the gradient of the block output's sum, so it needs blocks whose
   output has one unit per row of the layer's weight: Linear layers with element-wise
   activations), and the packets are integrated over time (z̄ = mean packet; the output layer's
   own error likewise); at the broadcast, ΔW_l = −η g_l (z̄ B_l)ᵢ Ē_l,ᵢⱼ: a per-neuron
   neuromodulator times a Hebbian trace, delivered as `.grad`. With P = 1 each sample's packet
   meets that sample's own activity (no trace is needed).

All state (feedback maps, readouts, running statistics, traces, the gate's moments) is buffers:
it moves with `.to(device)` and is saved by `state_dict`. The rule needs y to form the packet, so
the loss must come from `rule.loss(model, x, y)` (or `loss_and_info`), not from the model's
output alone.

Limit (tested bit for bit): capacity 1, `modules="output"`, identity integration, gate off,
period 1 and gain "none" is exactly `dfa` with the same seed and the same feedback options
(`mirror_rate` 0: Nøkland's DFA; the packet is then the output error, so both output teachers
agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError, brief
from plasticity.integrity import PIConfig, SurpriseBand, SurpriseBandConfig, predictive_integrity
from plasticity.rules.attach import LazyFeedback
from plasticity.rules.base import Extras, StepInfo
from plasticity.rules.dfa import DirectFeedbackAlignment, DirectFeedbackConfig, feedback_phrase

MODULES = ("all", "output")
INTEGRATIONS = ("identity", "sum", "precision")
GAINS = ("none", "salience", "pi")
OUTPUT_TEACHERS = ("own", "packet")


@dataclass
class WorkspaceConfig(DirectFeedbackConfig):
    """capacity: modules admitted per sample (k), the most salient first; None (the default):
    every module, no competition (docs/workspace.md, H2 and H3). modules: "all" (hidden readouts and the output
    compete) or "output". integration: "identity" (capacity 1 only), "sum" or "precision".
    gate: ignition band on the packet's surprise, half-width gate_k running std, after
    gate_warmup steps. period: broadcast every `period` steps (eligibility traces in between).
    gain: per-module precision gain "none", "salience" or "pi". readout_lr: delta-rule rate of
    the hidden readouts. epsilon: floor of the uncertainty in salience and precision.
    output_teacher: what the output layer learns from, its own module's error ("own") or the
    packet. mirror_rate, mirror_every, mirror_samples (and mirror_sigma, of `DirectFeedbackConfig`):
    the feedback maps learn by a weight mirror, by default every 16 steps on 64 samples at rate 0.04
    (chosen on seeds 10–24 for cost at equal accuracy: docs/workspace.md, "Cost"); mirror_rate 0
    keeps them fixed and random."""

    capacity: int | None = None
    modules: str = "all"
    integration: str = "precision"
    gate: bool = False
    gate_k: float = 3.0
    gate_warmup: int = 10
    period: int = 1
    gain: str = "none"
    readout_lr: float = 0.05
    epsilon: float = 0.1
    output_teacher: str = "own"
    mirror_rate: float = 0.04
    mirror_every: int = 16

    def validate(self) -> None:
        super().validate()  # the options' types first: capacity, period and gate_warmup are whole numbers
        if self.modules not in MODULES:
            raise ConfigError(f"modules must be one of {MODULES}; got {brief(self.modules)}")
        if self.integration not in INTEGRATIONS:
            raise ConfigError(f"integration must be one of {INTEGRATIONS}; got {brief(self.integration)}")
        if self.output_teacher not in OUTPUT_TEACHERS:
            raise ConfigError(f"output_teacher must be one of {OUTPUT_TEACHERS}; got {brief(self.output_teacher)}")
        if self.gain not in GAINS:
            raise ConfigError(f"gain must be one of {GAINS}; got {brief(self.gain)}")
        if self.capacity is not None and self.capacity < 1:
            raise ConfigError(f"capacity must be ≥ 1 or None (every module); got {self.capacity}")
        if self.integration == "identity" and self.capacity != 1:
            raise ConfigError("identity integration passes one module's error on: it needs capacity 1")
        if self.modules == "output" and self.capacity != 1:
            raise ConfigError('with modules="output" only one module competes: capacity must be 1')
        if self.period < 1:
            raise ConfigError(f"period must be ≥ 1; got {self.period}")
        if not (self.readout_lr > 0 and self.epsilon > 0 and self.gate_k > 0):
            raise ConfigError("readout_lr, epsilon and gate_k must be > 0")


@dataclass
class Modules:
    """Per-module quantities of one batch (M modules, B samples, C classes); each is computed when
    first read, from the modules' predictions r_m."""

    probabilities: torch.Tensor  # (M, B, C): r_m
    labels: torch.Tensor  # (B,)
    epsilon: float  # the floor of the uncertainty in salience and precision

    @cached_property
    def error(self) -> torch.Tensor:
        """(M, B, C): e_m = (r_m − onehot(y)) / B."""
        onehot = torch.zeros_like(self.probabilities[0]).scatter_(1, self.labels[:, None], 1.0)
        return (self.probabilities - onehot).div_(len(self.labels))

    @cached_property
    def entropy(self) -> torch.Tensor:
        """(M, B): the uncertainty τ_m = −Σ_c r_m log r_m."""
        return -(self.probabilities * torch.log(self.probabilities.clamp_min(1e-12))).sum(dim=-1)

    @cached_property
    def loss(self) -> torch.Tensor:
        """(M,): the batch-mean cross-entropy of each module's prediction."""
        chosen = self.probabilities.gather(-1, self.labels.expand(len(self.probabilities), -1)[:, :, None])[:, :, 0]
        return -torch.log(chosen.clamp_min(1e-12)).mean(dim=1)

    @cached_property
    def salience(self) -> torch.Tensor:
        """(M, B): s_m = B‖e_m‖ / (τ_m + ε). The defaults read it nowhere (only competition, the
        salience gain and the step's report do)."""
        return self.error.norm(dim=-1) * self.error.shape[1] / (self.entropy + self.epsilon)


class LazyPair(LazyFeedback):
    """A weight and a bias, buffers created when their shapes are first known: a module's linear
    readout (C × features and C, zero at the start, learned by the rule's delta rule, not by the
    optimizer), or a Linear layer's eligibility traces (the rhythm's)."""

    bias: torch.Tensor | None

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("bias", None)

    def materialize(self, tensor: torch.Tensor) -> torch.Tensor:
        self.bias = tensor.new_zeros(tensor.shape[0])
        return super().materialize(tensor)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        stored = state_dict.get(prefix + "bias")
        if self.bias is None and stored is not None:
            self.bias = torch.empty_like(stored)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class Workspace(DirectFeedbackAlignment):
    name = "workspace"
    config_class = WorkspaceConfig

    def _register(self, model: nn.Module) -> list[Any]:
        handles = super()._register(model)
        if len(getattr(self, "readouts", ())) != len(self.layers_):
            # Per converted layer: the readout of the block output it receives, the running mean
            # salience of that module (the last entry: the output module), eligibility traces.
            count = len(self.layers_)
            self.readouts = nn.ModuleList(LazyPair() for _ in self.layers_)
            self.register_buffer("salience_mean", torch.zeros(count))
            self.register_buffer("band_state", torch.zeros(3, dtype=torch.float64))
            self.traces = nn.ModuleList(LazyPair() for _ in self.layers_)
            self.sums = LazyFeedback()  # (2, C): the packets and the output's own errors summed over a period
            self.register_load_state_dict_post_hook(lambda module, keys: module.band.load_state(module.band_state.tolist()))
        self.band = SurpriseBand(SurpriseBandConfig(k=self.config.gate_k, warmup=self.config.gate_warmup))
        self.band.load_state(self.band_state.tolist())
        self.packet_: torch.Tensor | None = None
        self.gains_: list[float] = []
        return handles

    # ------------------------------------------------------------------------------ modules
    def _readout(self, index: int, h: torch.Tensor, classes: int) -> LazyPair:
        readout = self.readouts[index]
        if not readout.ready:
            readout.materialize(h.new_zeros(classes, h[0].numel()))
        return readout

    def module_logits(self, hidden: list[tuple[int, torch.Tensor]], logits: torch.Tensor) -> list[torch.Tensor]:
        """Each module's prediction (logits): the hidden readouts in layer order, the output last."""
        if self.config.modules == "output":
            return [logits]
        classes = logits.shape[1]
        reads = []
        for index, h in hidden:
            readout = self._readout(index, h, classes)
            reads.append(torch.addmm(readout.bias, h.detach().flatten(1), readout.weight.t()))
        return reads + [logits]

    def modules_of(self, hidden: list[tuple[int, torch.Tensor]], logits: torch.Tensor, y: torch.Tensor) -> Modules:
        """Every module's prediction r_m = softmax(logits_m) (`Modules` derives the rest)."""
        stacked = torch.stack(self.module_logits(hidden, logits.detach()))  # (M, B, C)
        return Modules(torch.softmax(stacked, dim=-1), y, self.config.epsilon)

    def integrate(self, modules: Modules) -> tuple[torch.Tensor, torch.Tensor]:
        """(packet (B, C), admitted (M, B) bool): top-`capacity` modules per sample, fused; every
        module, without ranking them, when the capacity holds them all."""
        count, capacity = modules.probabilities.shape[0], self.config.capacity
        if (capacity is None or capacity >= count) and self.config.integration != "identity":
            admitted = torch.ones(modules.probabilities.shape[:2], dtype=torch.bool, device=modules.probabilities.device)
            if self.config.integration == "sum":
                return modules.error.sum(dim=0), admitted
            weight = (modules.entropy + self.config.epsilon).reciprocal_()
        else:
            winners = modules.salience.topk(min(capacity, count), dim=0).indices  # (k, B)
            admitted = torch.zeros_like(modules.salience, dtype=torch.bool).scatter_(0, winners, True)
            if self.config.integration == "identity":
                return modules.error.gather(0, winners[:, :, None].expand(1, -1, modules.error.shape[2]))[0], admitted
            if self.config.integration == "sum":
                return (modules.error * admitted[:, :, None]).sum(dim=0), admitted
            weight = admitted / (modules.entropy + self.config.epsilon)
        return (modules.error * weight[:, :, None]).sum(dim=0) / weight.sum(dim=0)[:, None], admitted

    def gains(self, modules: Modules) -> list[float]:
        """Precision gain g_m per module (hidden modules in layer order, the output last)."""
        count = modules.error.shape[0]
        if self.config.gain == "none":
            return [1.0] * count
        slots = self._salience_slots(count)
        gains = []
        for module in range(count):
            if self.config.gain == "salience":
                mean, running = float(modules.salience[module].mean()), float(self.salience_mean[slots[module]])
                gains.append(mean / running if running > 0 else 1.0)
            else:
                pi = predictive_integrity(
                    float(modules.loss[module]),
                    float(modules.entropy[module].mean()),
                    float(modules.error[module].norm(dim=1).mean() * modules.error.shape[1]),
                    PIConfig(),
                ).pi
                gains.append(1.0 - pi)
        return gains

    def _salience_slots(self, count: int) -> list[int]:
        """Where each module's running salience is kept: hidden modules first, the output last."""
        return list(range(count - 1)) + [len(self.salience_mean) - 1]

    # ------------------------------------------------------------------------------ learning
    def step_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, StepInfo]:
        logits = model(x)
        hidden = self.recorded_
        with torch.no_grad():
            modules = self.modules_of(hidden, logits, y)
            packet, admitted = self.integrate(modules)
            gains = self.gains(modules)
        signal = packet if self.pinned_broadcast is None else self.pinned_broadcast
        # Per recorded block, the gain of the module read from its output (1 if none is read).
        block_gains = gains[:-1] if self.config.modules == "all" else [1.0] * len(hidden)

        def packet_surprise() -> float:
            return float(signal.norm(dim=1).mean() * len(y))

        if self.config.period == 1:
            # The packet's surprise waits for the step to finish: read at once only by the gate.
            surprise = packet_surprise() if self.config.gate else None
            self.packet_, self.gains_, broadcast_now = signal, block_gains + gains[-1:], True
            loss = self.objective(logits, y)
        else:
            loss, surprise, broadcast_now = self._rhythm_loss(hidden, modules, signal, block_gains + gains[-1:], len(y))
        decision = self.band.classify(surprise) if self.config.gate else "consolidate"
        applied = broadcast_now and decision == "consolidate"
        info = StepInfo(
            loss=loss.detach() if self.config.period == 1 else modules.loss[-1],
            logits=logits.detach(),
            extras=Extras(
                {"broadcast": broadcast_now, "decision": decision if broadcast_now else "wait", "ignited": applied, "gains": block_gains + gains[-1:]},
                {  # read by the workspace observer, computed only then
                    "admitted": lambda: admitted.float().mean(dim=1).tolist(),
                    "salience": lambda: modules.salience.mean(dim=1).tolist(),
                    "packet_norm": packet_surprise if surprise is None else lambda: surprise,
                },
            ),
            applied=applied,
        )
        if self.plastic:
            self._learn(hidden, modules, surprise, broadcast_now)
        return loss, info

    def direct_signals(self, error: torch.Tensor, blocks: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The output learns from its own error e (`output_teacher="own"`) or the packet z; block
        m receives g_m z (the output's error scaled by the output module's gain)."""
        if self.packet_ is None:
            raise RuntimeError("the workspace rule forms its packet from the labels: take the loss from rule.loss(model, x, y)")
        packet, gains = self.packet_, self.gains_
        self.packet_ = None
        if self.packet_is_output_error and self.pinned_broadcast is None:
            packet = error  # take it as the backward computes it: the DFA limit holds bit for bit
        output = error if self.config.output_teacher == "own" else packet
        if self.config.gain == "none":
            return output, [packet] * blocks
        return gains[-1] * output, [g * packet for g in gains[:blocks]]

    def _rhythm_loss(
        self, hidden: list[tuple[int, torch.Tensor]], modules: Modules, signal: torch.Tensor, gains: list[float], batch: int
    ) -> tuple[torch.Tensor, float, bool]:
        """Period > 1: (a loss whose gradient is the broadcast update onto the eligibility traces,
        the mean packet's norm, whether this step broadcasts). The traces are kept for `_learn`."""
        config, layers = self.config, self.layers_
        outputs = [h for _, h in hidden] + [self.output_]
        if len(outputs) != len(layers) or any(
            not isinstance(layer, nn.Linear) or layer.bias is None or out[0].numel() != layer.out_features for layer, out in zip(layers, outputs, strict=True)
        ):
            raise ConfigError("period > 1 needs a chain of Linear layers with biases and element-wise activations (one trace per synapse)")
        params = [p for layer in layers for p in (layer.weight, layer.bias)]
        with torch.enable_grad():  # Ē_l = mean over the batch of f′(a_l) ⊗ h_{l−1}, per layer
            now = torch.autograd.grad(sum(out.sum() for out in outputs) / batch, params)
        for index, trace in enumerate(self.traces):
            if not trace.ready:
                trace.materialize(torch.zeros_like(now[2 * index]))  # and a zero bias of out_features
        if not self.sums.ready:
            self.sums.materialize(signal.new_zeros(2, signal.shape[1]))
        packet_sum, output_error_sum = self.sums.weight
        step = int(self.steps) - int(self.plastic)  # this pass's step (the forward counted it when plastic)
        broadcast_now = step % config.period == config.period - 1
        own = (modules.error[-1] if config.output_teacher == "own" else signal).sum(dim=0)
        mean_packet = (packet_sum + signal.sum(dim=0)) / config.period
        modulators = [mean_packet @ self.slots_[index].weight for index, _ in hidden]
        modulators.append((output_error_sum + own) / config.period)
        loss = signal.new_zeros(())
        for index, (layer, m, g) in enumerate(zip(layers, modulators, gains, strict=True)):
            trace = self.traces[index]
            weight = g * m[:, None] * (trace.weight + now[2 * index]) / config.period
            bias = g * m * (trace.bias + now[2 * index + 1]) / config.period
            loss = loss + (weight.detach() * layer.weight).sum() + (bias.detach() * layer.bias).sum()
        self.rhythm_ = (signal.sum(dim=0), own, now)
        self.commit_mirror()  # no backward runs through DirectPath in this mode
        return loss, float(mean_packet.norm()), broadcast_now

    @torch.no_grad()
    def _learn(self, hidden: list[tuple[int, torch.Tensor]], modules: Modules, surprise: float | None, broadcast_now: bool) -> None:
        """The rule's own plasticity: readouts (delta rule), running statistics, traces."""
        config = self.config
        if config.modules == "all":
            sums = modules.error.sum(dim=1)  # (M, C)
            for m, (index, h) in enumerate(hidden):
                readout = self.readouts[index]
                readout.weight.sub_(torch.mm(modules.error[m].t(), h.detach().flatten(1)), alpha=config.readout_lr)
                readout.bias.sub_(sums[m], alpha=config.readout_lr)
        if config.gain == "salience":
            for module, slot in enumerate(self._salience_slots(modules.error.shape[0])):
                value = float(modules.salience[module].mean())
                old = float(self.salience_mean[slot])
                self.salience_mean[slot] = value if old == 0 else 0.99 * old + 0.01 * value
        if broadcast_now and config.gate:
            self.band.update(surprise)
            self.band_state.copy_(torch.tensor(self.band.state(), dtype=torch.float64))
        if config.period > 1:
            packet_sum, own, now = self.rhythm_
            if broadcast_now:
                self.sums.weight.zero_()
                for trace in self.traces:
                    trace.weight.zero_()
                    trace.bias.zero_()
            else:
                self.sums.weight[0] += packet_sum
                self.sums.weight[1] += own
                for index, trace in enumerate(self.traces):
                    trace.weight += now[2 * index]
                    trace.bias += now[2 * index + 1]

    def modules(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Modules:
        """Every module's error, uncertainty and salience for (x, y), computed without changing
        any state (with a graph, so that the block outputs are recorded as in training)."""
        with self.frozen(), torch.enable_grad():
            logits = model(x)
        return self.modules_of(self.recorded_, logits.detach(), y)

    @property
    def packet_is_output_error(self) -> bool:
        """Whether the packet is the output module's error itself (only the output competes, and
        is passed on unweighted)."""
        return self.config.modules == "output" and self.config.integration != "precision"

    def broadcast(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The packet z for (x, y) (batch × C): the output error as the backward pass computes
        it when that is what the packet is, so that it matches the update bit for bit."""
        if self.packet_is_output_error:
            return super().broadcast(model, x, y)
        return self.integrate(self.modules(model, x, y))[0]

    # ------------------------------------------------------------------------------ card
    def card(self) -> PlausibilityCard:
        config = self.config
        return PlausibilityCard(
            rule=self.name,
            weight_transport="random",
            reads=("pre", "post", "broadcast"),
            global_signal=self.classes,
            error_signal=(
                "δ_l = g_l (B_lᵀ z) ⊙ f′(a_l): packet z of "
                + ("every module's error, " if config.capacity is None else f"the {config.capacity} most salient module errors, ")
                + f"{config.integration}-integrated, through {feedback_phrase(config)}"
                + ("; the output layer learns from its own error" if config.output_teacher == "own" else "")
                + (", gated by ignition" if config.gate else "")
                + (f", broadcast every {config.period} steps onto eligibility traces" if config.period > 1 else "")
            ),
            phases_per_step=3 if config.learned else 2,
            inference_iterations=0,
            locks_removed=("backward",),
            reference="ours (docs/workspace.md); broadcast pathway of Nøkland 2016; three-factor rules, Frémaux & Gerstner 2016"
            + ("; weight mirror, Akrout et al. 2019" if config.learned else ""),
        )
