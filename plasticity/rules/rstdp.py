"""Reward-modulated STDP: a three-factor rule in the network of Diehl & Cook (2015).

Florian, R. V. (2007). "Reinforcement learning through modulation of spike-timing-dependent
synaptic plasticity." Neural Computation 19:1468. Frémaux, N. & Gerstner, W. (2016).
"Neuromodulated spike-timing-dependent plasticity, and theory of three-factor learning rules."
Front. Neural Circuits 9:85.

Every STDP pairing (the same pair window as `stdp`) is written into an eligibility trace, which
decays with τ_e; at the end of the presentation a neuromodulator M, broadcast identically to
every synapse, turns the eligibility into a weight change:

  ΔW_ij = M · Σ_pairs exp(−(end − t_pair)/τ_e) · STDP window(pair)      (then clip, normalise)

M = tonic + m, with m the phasic signal (`modulator`):
  "reward"  m_b = r_b − r̄: reward prediction error (Frémaux & Gerstner's form), with r_b = 1 if
            the network's own vote on sample b was right and 0 if not, and r̄ the running mean
            reward over the last `reward_memory` presentations. One number per sample.
  "packet"  the workspace rule's packet for a single module: the vote's class error
            z_b = onehot(y_b) − q_b (q_b: each class's share of the labelled neurons' spikes), C
            numbers per sample. Neuron j reads the packet through its own fixed map, its label
            c_j: m_bj = z_b[c_j] (> 0: it answered for the right class, < 0: for a wrong one).
tonic = 0 is Florian's pure R-STDP: no reward error, no plasticity. tonic = 1 keeps unsupervised
STDP and lets the modulator add to or subtract from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError, brief
from plasticity.rules.stdp import STDP, STDPConfig
from plasticity.spiking.network import Presentation, SpikingNet

MODULATORS = ("reward", "packet")


@dataclass
class RSTDPConfig(STDPConfig):
    """STDP's settings, plus the third factor.

    modulator: "reward" (reward prediction error, 1 number) or "packet" (class-error packet,
        C numbers), see the module docstring. tonic: constant added to the modulator.
    tau_eligibility: decay (ms) of the eligibility trace before the modulator arrives.
    reward_memory: presentations over which the running mean reward r̄ averages.
    """

    modulator: str = "reward"
    tonic: float = 1.0
    tau_eligibility: float = 1000.0
    reward_memory: float = 500.0

    def validate(self) -> None:
        super().validate()
        if self.modulator not in MODULATORS:
            raise ConfigError(f"modulator must be one of {MODULATORS}; got {brief(self.modulator)}")
        if not (self.tau_eligibility > 0 and self.reward_memory > 0):
            raise ConfigError("tau_eligibility and reward_memory must be positive")


class RSTDP(STDP):
    name = "rstdp"
    config_class = RSTDPConfig
    config: RSTDPConfig

    def __init__(self, net: SpikingNet, config: RSTDPConfig | None = None, seed: int = 0, **options: Any) -> None:
        super().__init__(net, config, seed, **options)
        self.register_buffer("mean_reward", torch.zeros(()))  # r̄

    def reward(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> torch.Tensor:
        """r_b: 1 where the network's vote during the presentation was right, else 0."""
        return (net.vote(presentation.counts).argmax(dim=1) == y).to(torch.float32)

    def broadcast(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> torch.Tensor:
        """The phasic signal m (batch × 1 for "reward", batch × C for "packet")."""
        if self.config.modulator == "reward":
            return (self.reward(net, presentation, y) - self.mean_reward)[:, None]
        scores = net.vote(presentation.counts)
        total = scores.sum(dim=1, keepdim=True)
        share = torch.where(total > 0, scores / total.clamp(min=1e-12), 1.0 / scores.shape[1])
        return F.one_hot(y, scores.shape[1]).to(torch.float32) - share

    def third_factor(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> dict[str, object]:
        signal = self.signal(net, presentation, y)
        if self.config.modulator == "reward":
            gain = self.config.tonic + signal[:, 0]
        else:
            labels = net.labels()
            gain = self.config.tonic + signal[:, labels.clamp(min=0)] * (labels >= 0)
        return {"gain": gain, "tau_eligibility": self.config.tau_eligibility}

    def after_step(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> None:
        reward = self.reward(net, presentation, y)  # with the labels the modulator used
        rate = 1.0 - math.exp(-len(y) / self.config.reward_memory)
        self.mean_reward += rate * (reward.mean() - self.mean_reward)
        super().after_step(net, presentation, y)

    def card(self) -> PlausibilityCard:
        config = self.config
        size = 1 if config.modulator == "reward" else self.net.sizes[-1]
        signal = "reward prediction error r − r̄" if config.modulator == "reward" else "class-error packet onehot(y) − q, read through the neuron's label"
        return PlausibilityCard(
            rule=self.name,
            weight_transport="none",
            reads=("pre", "post", "own_weights", "broadcast"),
            global_signal=size,
            error_signal=f"three-factor: eligibility of pair STDP (τ_e {config.tau_eligibility} ms) × ({config.tonic} + {signal})",
            phases_per_step=1,
            inference_iterations=0,
            locks_removed=("update", "backward"),
            reference="Florian 2007, Neural Comput. 19:1468; Frémaux & Gerstner 2016, Front. Neural Circuits 9:85",
        )
