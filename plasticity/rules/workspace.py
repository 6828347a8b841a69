"""Global-workspace broadcast learning: integrated, broadcast prediction error as the teacher.

An operational reading of "consciousness as macroscopic backpropagation" (Integrated Predictive
Workspace Theory; see docs/workspace.md), built on global workspace theory (Baars 1988;
Dehaene, Kerszberg & Changeux 1998) and on three-factor plasticity (Frémaux & Gerstner 2016).
The broadcast pathway is direct feedback alignment's (Nøkland 2016); what is new is what gets
broadcast. Per training step:

1. **Modules predict.** Every hidden layer m is a module with a local readout
   r_m = softmax(R_m h_m + c_m), trained by the delta rule on its own error; the output layer is
   the output module (r = softmax(logits)). Module error e_m = (r_m − onehot(y)) / batch and
   uncertainty τ_m = entropy(r_m), per sample.
2. **Competition with limited capacity.** Salience s_m = ‖e_m‖·batch / (τ_m + ε) (a confident
   error is salient, an uncertain one is not). For each sample, the `capacity` most salient
   modules enter the workspace (`modules="output"`: only the output module competes).
3. **Integration** into one packet z of size C (the classes) per sample:
   "identity" (capacity 1: the winner's error), "sum" (Σ admitted e_m), or "precision"
   (Σ π_m e_m / Σ π_m over admitted modules, π_m = 1 / (τ_m + ε): the precision-weighted
   mean, the Bayes-optimal fusion of independent Gaussian estimates).
4. **Ignition** (`gate`): the packet's surprise S = mean per-sample ‖z‖ is compared with a
   running μ ± kσ band (`plasticity.observe.pi.SurpriseBand`, the gate of gated backprop):
   below the band (redundant) or above it (anomalous) nothing is broadcast and no weight moves.
5. **Broadcast and three-factor plasticity.** Every hidden layer receives the same packet
   through its own map B_l: δ_l = g_l · (z B_l) ⊙ f′(a_l), ΔW_l = −η δ_lᵀ h_{l−1}. The output
   layer is the output module's readout and, like the hidden readouts, learns from its own
   module's error (`output_teacher="own"`, the delta rule; "packet": from the packet, which it
   reads directly, the packet being in class space). The maps B_l start random, as in DFA, and
   learn from the network's own noise by a weight mirror (Akrout et al. 2019;
   `feedback.mirror_feedback`; `mirror_rate` 0 keeps them fixed).
   g_l is a per-module precision gain: 1 ("none"), the module's salience relative to its own
   running mean ("salience"), or 1 − PI of its own prediction ("pi", ΣPI with the module's
   error norm as surprise: a module that predicts well consolidates).
6. **Rhythm** (`period` P > 1): the packet is broadcast every P steps. In between, each synapse
   accumulates an eligibility trace of pre ⊗ post coincidences, Ē_l = mean f′(a_l) ⊗ h_{l−1},
   and the packets are integrated over time (z̄ = mean packet; the output layer's own error
   likewise); at the broadcast, ΔW_l = −η g_l (z̄ B_l)ᵢ Ē_l,ᵢⱼ: a per-neuron neuromodulator
   times a Hebbian trace. With P = 1 each sample's packet meets that sample's own activity (no
   trace is needed).

Limit (tested bit for bit): capacity 1, `modules="output"`, identity integration, gate off,
period 1 and gain "none" is exactly `dfa` with the same seed and the same feedback options
(`mirror_rate` 0: Nøkland's DFA; the packet is then the output error, so both output teachers
agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from plasticity.nets import MLP, Trace, activation_derivative
from plasticity.observe.pi import (
    PIConfig,
    SurpriseBand,
    SurpriseBandConfig,
    predictive_integrity,
)
from plasticity.rules.base import Rule, StepInfo, layer_directions, step_info
from plasticity.rules.card import PlausibilityCard
from plasticity.rules.dfa import DirectFeedbackConfig, feedback_phrase, learn_feedback
from plasticity.rules.feedback import direct_deltas, direct_feedback, direct_pairs

MODULES = ("all", "output")
INTEGRATIONS = ("identity", "sum", "precision")
GAINS = ("none", "salience", "pi")
OUTPUT_TEACHERS = ("own", "packet")


@dataclass
class WorkspaceConfig(DirectFeedbackConfig):
    """capacity: modules admitted per sample (k). modules: "all" (hidden readouts and the output
    compete) or "output". integration: "identity" (capacity 1 only), "sum" or "precision".
    gate: ignition band on the packet's surprise, half-width gate_k running std, after
    gate_warmup steps. period: broadcast every `period` steps (eligibility traces in between).
    gain: per-module precision gain "none", "salience" or "pi". readout_lr: delta-rule rate of
    the hidden readouts. epsilon: floor of the uncertainty in salience and precision.
    output_teacher: what the output layer learns from, its own module's error ("own") or the
    packet. mirror_rate (and the other mirror options of `DirectFeedbackConfig`): the feedback
    maps learn by a weight mirror; 0 keeps them fixed and random."""

    capacity: int = 2
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

    def validate(self) -> None:
        super().validate()
        if self.modules not in MODULES:
            raise ValueError(f"modules must be one of {MODULES}; got {self.modules!r}")
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"integration must be one of {INTEGRATIONS}; got {self.integration!r}")
        if self.output_teacher not in OUTPUT_TEACHERS:
            raise ValueError(f"output_teacher must be one of {OUTPUT_TEACHERS}; got {self.output_teacher!r}")
        if self.gain not in GAINS:
            raise ValueError(f"gain must be one of {GAINS}; got {self.gain!r}")
        if self.capacity < 1:
            raise ValueError(f"capacity must be ≥ 1; got {self.capacity}")
        if self.integration == "identity" and self.capacity != 1:
            raise ValueError("identity integration passes one module's error on: it needs capacity 1")
        if self.modules == "output" and self.capacity != 1:
            raise ValueError('with modules="output" only one module competes: capacity must be 1')
        if self.period < 1:
            raise ValueError(f"period must be ≥ 1; got {self.period}")
        if not (self.readout_lr > 0 and self.epsilon > 0 and self.gate_k > 0):
            raise ValueError("readout_lr, epsilon and gate_k must be > 0")


@dataclass
class Modules:
    """Per-module quantities of one batch (M modules, B samples, C classes)."""

    error: torch.Tensor  # (M, B, C), divided by B
    entropy: torch.Tensor  # (M, B)
    salience: torch.Tensor  # (M, B)
    loss: torch.Tensor  # (M,) batch-mean cross-entropy of each module's prediction


@dataclass
class Computation:
    """Everything one step computes; `directions` returns part of it, `step` uses all of it."""

    directions: list[torch.Tensor]
    info: StepInfo
    trace: Trace
    modules: Modules
    packet: torch.Tensor
    eligibility: list[tuple[torch.Tensor, torch.Tensor]] | None
    surprise: float


def _entropy(probabilities: torch.Tensor) -> torch.Tensor:
    return -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum(dim=-1)


class Workspace(Rule):
    name = "workspace"
    config_class = WorkspaceConfig

    def setup(self, net: MLP, generator: torch.Generator) -> None:
        classes = net.sizes[-1]
        # Drawn first and exactly as `dfa` draws them: the DFA limit is bit-identical.
        self.feedback = direct_feedback(net.sizes, self.config.feedback_scale, generator)
        hidden = net.sizes[1:-1] if self.config.modules == "all" else []
        self.readouts = [torch.zeros(classes, width) for width in hidden]
        self.readout_biases = [torch.zeros(classes) for _ in hidden]
        self.band = SurpriseBand(SurpriseBandConfig(k=self.config.gate_k, warmup=self.config.gate_warmup))
        self.salience_mean = torch.zeros(net.depth)  # running mean of each layer's module salience
        self.steps = torch.zeros((), dtype=torch.long)
        self.traces = [(torch.zeros_like(layer.weight), torch.zeros_like(layer.bias)) for layer in net.layers]
        self.packet_sum = torch.zeros(classes)
        self.output_error_sum = torch.zeros(classes)  # the output module's own error, summed over a period

    # ------------------------------------------------------------------------------ modules
    def module_logits(self, trace: Trace) -> list[torch.Tensor]:
        """Each module's prediction (logits): hidden readouts first, the output last."""
        hidden = [trace.h[m + 1] @ R.T + c for m, (R, c) in enumerate(zip(self.readouts, self.readout_biases))]
        return hidden + [trace.logits]

    def modules_of(self, trace: Trace, y: torch.Tensor) -> Modules:
        logits = torch.stack(self.module_logits(trace))  # (M, B, C)
        probabilities = torch.softmax(logits, dim=-1)
        batch = len(y)
        rows = torch.arange(batch)
        error = probabilities.clone()
        error[:, rows, y] -= 1.0
        error /= batch
        entropy = _entropy(probabilities)
        salience = error.norm(dim=-1) * batch / (entropy + self.config.epsilon)
        loss = -torch.log(probabilities[:, rows, y].clamp_min(1e-12)).mean(dim=1)
        return Modules(error, entropy, salience, loss)

    def integrate(self, modules: Modules) -> tuple[torch.Tensor, torch.Tensor]:
        """(packet (B, C), admitted (M, B) bool): top-`capacity` modules per sample, fused."""
        count = modules.error.shape[0]
        k = min(self.config.capacity, count)
        winners = modules.salience.topk(k, dim=0).indices  # (k, B)
        admitted = torch.zeros_like(modules.salience, dtype=torch.bool).scatter_(0, winners, True)
        if self.config.integration == "identity":
            packet = modules.error.gather(0, winners[:, :, None].expand(1, -1, modules.error.shape[2]))[0]
        elif self.config.integration == "sum":
            packet = (modules.error * admitted[:, :, None]).sum(dim=0)
        else:
            weight = admitted / (modules.entropy + self.config.epsilon)
            packet = (modules.error * weight[:, :, None]).sum(dim=0) / weight.sum(dim=0)[:, None]
        return packet, admitted

    def gains(self, modules: Modules, depth: int) -> list[float]:
        """Precision gain g_l per layer, from the layer's own module only (1 where it has none)."""
        if self.config.gain == "none":
            return [1.0] * depth
        layers = list(range(depth - 1)) if self.config.modules == "all" else []
        layers.append(depth - 1)  # the output module belongs to the output layer
        gains = [1.0] * depth
        for module, layer in enumerate(layers):
            if self.config.gain == "salience":
                mean, running = float(modules.salience[module].mean()), float(self.salience_mean[layer])
                gains[layer] = mean / running if running > 0 else 1.0
            else:
                pi = predictive_integrity(
                    float(modules.loss[module]),
                    float(modules.entropy[module].mean()),
                    float(modules.error[module].norm(dim=1).mean() * modules.error.shape[1]),
                    PIConfig(),
                ).pi
                gains[layer] = 1.0 - pi
        return gains

    # ------------------------------------------------------------------------------ learning
    def _eligibility(self, trace: Trace, activation: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This batch's mean pre ⊗ post coincidences, f′(a_l)ᵀ h_{l−1} / B (output: f′ = 1)."""
        batch = trace.h[0].shape[0]
        out = []
        for index, (pre, a) in enumerate(zip(trace.h[:-1], trace.a)):
            post = (
                torch.ones_like(a)
                if index == len(trace.a) - 1
                else activation_derivative(a, trace.h[index + 1], activation)
            )
            out.append((post.T @ pre / batch, post.mean(dim=0)))
        return out

    @torch.no_grad()
    def compute(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> Computation:
        """One step's directions and everything the rule's own state learns from (pure)."""
        config = self.config
        trace = net.trace(x)
        modules = self.modules_of(trace, y)
        packet, admitted = self.integrate(modules)
        packet = self._broadcast_or_pinned(packet)
        gains = self.gains(modules, net.depth)
        eligibility = None
        if config.period == 1:
            signal, surprise, broadcast_now = packet, float(packet.norm(dim=1).mean() * len(y)), True
            deltas = direct_deltas(trace, packet, self.feedback, net.activation) + [self._output_signal(modules, packet)]
            if config.gain != "none":
                deltas = [g * d for g, d in zip(gains, deltas)]
            directions = layer_directions(trace, deltas)
        else:
            eligibility = self._eligibility(trace, net.activation)
            broadcast_now = int(self.steps) % config.period == config.period - 1
            signal = (self.packet_sum + packet.sum(dim=0)) / config.period  # mean packet over the period
            surprise = float(signal.norm())
            directions = []
            own = self._output_signal(modules, packet).sum(dim=0)
            maps = [signal @ B for B in self.feedback] + [(self.output_error_sum + own) / config.period]
            for (trace_w, trace_b), (now_w, now_b), modulator, gain in zip(self.traces, eligibility, maps, gains):
                mean_w, mean_b = (trace_w + now_w) / config.period, (trace_b + now_b) / config.period
                directions += [gain * modulator[:, None] * mean_w, gain * modulator * mean_b]
        decision = self.band.classify(surprise) if config.gate else "consolidate"
        applied = broadcast_now and decision == "consolidate"
        info = step_info(
            trace.logits,
            y,
            directions,
            admitted=admitted.float().mean(dim=1).tolist(),
            salience=modules.salience.mean(dim=1).tolist(),
            packet_norm=surprise,
            broadcast=broadcast_now,
            decision=decision if broadcast_now else "wait",
            ignited=applied,
            gains=gains,
        )
        info.applied = applied
        return Computation(directions, info, trace, modules, packet, eligibility, surprise)

    def _output_signal(self, modules: Modules, packet: torch.Tensor) -> torch.Tensor:
        """What the output layer learns from: its own module's error, or the packet."""
        return modules.error[-1] if self.config.output_teacher == "own" else packet

    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        computation = self.compute(net, x, y)
        return computation.directions, computation.info

    @torch.no_grad()
    def step(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> StepInfo:
        self._check_net(net)
        computation = self.compute(net, x, y)
        learn_feedback(self.config, net, computation.trace, self.feedback, self.seed, int(self.steps))
        self.apply(computation.directions, computation.info)
        self._learn(computation, y)
        return computation.info

    def _learn(self, computation: Computation, y: torch.Tensor) -> None:
        """The rule's own plasticity: readouts (delta rule), running statistics, traces."""
        config, trace, modules = self.config, computation.trace, computation.modules
        for m, (R, c) in enumerate(zip(self.readouts, self.readout_biases)):
            R -= config.readout_lr * modules.error[m].T @ trace.h[m + 1]
            c -= config.readout_lr * modules.error[m].sum(dim=0)
        if config.gain == "salience":
            layers = list(range(len(self.readouts))) + [len(self.salience_mean) - 1]
            for module, layer in enumerate(layers):
                value = float(modules.salience[module].mean())
                old = float(self.salience_mean[layer])
                self.salience_mean[layer] = value if old == 0 else 0.99 * old + 0.01 * value
        if computation.info.extras["broadcast"] and config.gate:
            self.band.update(computation.surprise)
        if computation.eligibility is not None:
            if computation.info.extras["broadcast"]:
                self.packet_sum.zero_()
                self.output_error_sum.zero_()
                for trace_w, trace_b in self.traces:
                    trace_w.zero_()
                    trace_b.zero_()
            else:
                self.packet_sum += computation.packet.sum(dim=0)
                self.output_error_sum += self._output_signal(modules, computation.packet).sum(dim=0)
                for (trace_w, trace_b), (now_w, now_b) in zip(self.traces, computation.eligibility):
                    trace_w += now_w
                    trace_b += now_b
        self.steps += 1

    @torch.no_grad()
    def broadcast(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.integrate(self.modules_of(net.trace(x), y))[0]

    # ------------------------------------------------------------------------------ card, state
    def card(self) -> PlausibilityCard:
        config = self.config
        return PlausibilityCard(
            rule=self.name,
            weight_transport="random",
            reads=("pre", "post", "broadcast"),
            global_signal=self.net.sizes[-1],
            error_signal=(
                f"δ_l = g_l (B_lᵀ z) ⊙ f′(a_l): packet z of the {config.capacity} most salient module errors, "
                f"{config.integration}-integrated, through {feedback_phrase(config)}"
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

    def feedback_pairs(self, net: MLP) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        return direct_pairs(self.feedback, net)

    def rule_state(self) -> dict[str, torch.Tensor]:
        state = {f"feedback.{i}": B for i, B in enumerate(self.feedback)}
        state.update({f"readout.{i}": R for i, R in enumerate(self.readouts)})
        state.update({f"readout_bias.{i}": c for i, c in enumerate(self.readout_biases)})
        state.update({f"trace.{i}.weight": w for i, (w, _) in enumerate(self.traces)})
        state.update({f"trace.{i}.bias": b for i, (_, b) in enumerate(self.traces)})
        state.update(packet_sum=self.packet_sum, output_error_sum=self.output_error_sum, salience_mean=self.salience_mean, steps=self.steps)
        state["band"] = torch.tensor(self.band.state(), dtype=torch.float64)  # a copy: loaded below
        return state

    def load_rule_state(self, state: dict[str, torch.Tensor]) -> None:
        super().load_rule_state(state)
        self.band.load_state(state["band"].tolist())
