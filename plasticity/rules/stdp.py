"""Spike-timing-dependent plasticity in the network of Diehl & Cook (2015).

Diehl, P. U. & Cook, M. (2015). "Unsupervised learning of digit recognition using
spike-timing-dependent plasticity." Front. Comput. Neurosci. 9:99.

The excitatory layer of `plasticity.spiking.SpikingNet` learns its input weights W with no
label, no error and no feedback: for every presentation,

  ΔW_ij = η_post · (Σ_pairs pre-before-post of exp(−Δt/τ_pre)) · (w_max − W_ij)^μ
        − η_pre  · (Σ_pairs post-before-pre of exp(−Δt/τ_post)) · W_ij^μ

(all-to-all pair STDP with exponential traces, `plasticity.spiking.pair_correlations`; μ = 0 is
the additive rule with hard bounds), then W is clipped to [0, w_max] and each neuron's incoming
weights are rescaled to sum to mean_weight × inputs (Diehl & Cook's normalisation: 78 for 784
pixels). Thresholds adapt (homeostasis, in the network) while learning.

Labels enter only the read-out: every training presentation adds the neurons' spike counts to
per-class response statistics (`SpikingNet.record_responses`), each neuron is labelled with the
class it answers most, and inputs are classified by the vote of the labelled neurons. Diehl &
Cook label neurons in a separate pass over the training set after learning; here the labelling
is online, from the learning presentations themselves, with older presentations fading
(`label_memory`) so that labels follow the weights — no second pass, and the same labels are
used for the test set.

Differences from the paper, all deliberate: W changes after each presentation (batch) rather
than continuously during it; a batch of B presentations runs on B copies of the network that
share W and θ (see `SpikingNet`); the inhibitory population is implicit.

The rule adds ΔW to W itself, with no optimizer (`plasticity.rules.spiking.SpikingRule`): η_post
and η_pre are the learning rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError
from plasticity.rules.spiking import SpikingConfig, SpikingRule
from plasticity.spiking.network import Presentation, SpikingNet
from plasticity.spiking.traces import pair_correlations


@dataclass
class STDPConfig(SpikingConfig):
    """STDP amplitudes and windows, and the neuron constants of the network it trains and the
    read-out's memory (every field of `SpikingConfig` can be set here, e.g. dt, duration_ms,
    theta_plus, label_memory).

    eta_post: potentiation per pre-before-post pair at zero lag (Diehl & Cook's ν_post 0.01).
    eta_pre: depression per post-before-pre pair (their ν_pre 0.0001).
    tau_pre, tau_post: widths (ms) of the potentiation and depression windows (20 ms).
    w_max: weight bound. mu: weight dependence exponent (0: additive, hard bounds).
    mean_weight: each neuron's incoming weights are rescaled to average this (0: no
        normalisation); 0.1 is Diehl & Cook's 78 over 784 inputs.
    tau_theta: decay of the adaptive thresholds, 2.5·10⁶ ms instead of Diehl & Cook's 10⁷ ms.
        θ settles where decay balances growth, near θ₊ (spikes per neuron and presentation)
        τ_θ / 500 ms; with 10⁷ ms a 100-neuron layer's θ climbs so high in the second pass over
        mnist-t10k that a conductance neuron (E_exc = 0 mV) hardly reaches threshold, and
        accuracy collapses (measured in docs/rules.md, § STDP); 2.5·10⁶ ms keeps θ well below it.
    There is no learning rate or optimizer: the amplitudes above are the learning rates.
    """

    eta_post: float = 0.01
    eta_pre: float = 1e-4
    tau_pre: float = 20.0
    tau_post: float = 20.0
    w_max: float = 1.0
    mu: float = 0.0
    mean_weight: float = 0.1
    tau_theta: float = 2.5e6

    def validate(self) -> None:
        super().validate()
        for name in ("eta_post", "eta_pre", "mu", "mean_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0; got {getattr(self, name)}")
        for name in ("tau_pre", "tau_post", "w_max"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ConfigError(f"{name} must be a positive finite number; got {getattr(self, name)}")


class STDP(SpikingRule):
    name = "stdp"
    config_class = STDPConfig
    config: STDPConfig
    # A pass costs far more than a backprop pass over the same data (docs/benchmarks.md): fewer epochs.
    epochs_by_dataset: ClassVar[dict[str, int]] = {"digits": 5, "mnist-t10k": 3, "mnist": 1, "fashion-mnist": 1, "mnist1d": 5}
    # Diehl & Cook's smallest network; batch 32 rather than the MLP's 64: with 64 presentations
    # per update digits learn less in 5 passes, in the same time (the sweep is in docs/rules.md).
    default_hidden: ClassVar[tuple[int, ...]] = (100,)
    default_batch_size: ClassVar[int] = 32
    # Digits' 64 inputs (summed intensity ≈ 1/5 of an MNIST image's) at MNIST's 63.75 Hz drive the
    # neurons so weakly that most inputs are shown again, brighter, and a pass takes several times
    # longer; at 250 Hz they need no second showing, for a small loss of accuracy (the sweep is in
    # docs/rules.md, the 3-seed figures in docs/benchmarks.md).
    options_by_dataset: ClassVar[dict[str, dict[str, Any]]] = {"digits": {"max_rate_hz": 250.0}}

    def plasticity(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> torch.Tensor:
        """The STDP change of W for one recorded presentation, before clipping and normalising."""
        config = self.config
        potentiation, depression = pair_correlations(
            presentation.inputs,
            presentation.spikes,
            net.weight.shape[0],
            config.dt,
            config.tau_pre,
            config.tau_post,
            **self.third_factor(net, presentation, y),
        )
        weight = net.weight.detach()
        return config.eta_post * potentiation * (config.w_max - weight).clamp(min=0).pow(config.mu) - config.eta_pre * depression * weight.pow(config.mu)

    def third_factor(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> dict[str, object]:
        """Keyword arguments of `pair_correlations` that modulate the pairs. STDP: none."""
        return {}

    def bound(self, weight: torch.Tensor) -> torch.Tensor:
        """Clip to [0, w_max] and rescale each neuron's incoming weights to sum mean_weight × inputs."""
        weight.clamp_(0.0, self.config.w_max)
        if self.config.mean_weight > 0:
            weight.mul_(self.config.mean_weight * weight.shape[0] / weight.sum(dim=0, keepdim=True).clamp(min=1e-12))
        return weight

    def card(self) -> PlausibilityCard:
        config = self.config
        return PlausibilityCard(
            rule=self.name,
            weight_transport="none",
            reads=("pre", "post", "own_weights"),
            global_signal=0,
            error_signal=(
                f"none: pair STDP (τ₊ {config.tau_pre} ms, τ₋ {config.tau_post} ms) on spike times, weight bounds and the "
                "neuron's own weight normalisation; labels only name neurons for the vote"
            ),
            phases_per_step=1,
            inference_iterations=0,
            locks_removed=("update", "backward"),
            reference="Diehl & Cook 2015, Front. Comput. Neurosci. 9:99",
        )
