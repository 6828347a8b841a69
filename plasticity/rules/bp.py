"""Backpropagation (Rumelhart, Hinton & Williams 1986): the baseline every rule is measured against.

Nothing is attached: gradients are autograd's on the batch-mean cross-entropy. It is
deliberately the ordinary PyTorch way to train, so that time ratios compare local rules with
what users run today.

`loss="gce"` trains on the generalized cross-entropy instead (Zhang & Sabuncu 2018, NeurIPS,
"Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy Labels"),
L_q = (1 − p_y^q) / q with p_y the softmax probability of the labelled class: q → 0 gives the
cross-entropy, q = 1 the mean absolute error, which is robust to symmetric label noise but slow to
train; the paper's q = 0.7 is the default. It is the noise-robust baseline of the workspace's
label-noise test (docs/workspace.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError, brief
from plasticity.rules.attach import GradientRule
from plasticity.rules.base import LATER, RuleConfig, StepInfo

LOSSES = ("ce", "gce")


@dataclass
class BackpropConfig(RuleConfig):
    """loss: "ce" (cross-entropy) or "gce" (generalized cross-entropy with exponent `gce_q` in (0, 1])."""

    loss: str = field(default="ce", metadata={LATER: True})
    gce_q: float = field(default=0.7, metadata={LATER: True})

    def validate(self) -> None:
        super().validate()
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}; got {brief(self.loss)}")
        if not 0.0 < self.gce_q <= 1.0:
            raise ConfigError(f"gce_q must be in (0, 1]; got {self.gce_q}")


def generalized_cross_entropy(logits: torch.Tensor, y: torch.Tensor, q: float) -> torch.Tensor:
    """Batch mean of (1 − p_y^q) / q, p_y = softmax(logits)_y, computed from log p_y for stability."""
    log_p = torch.log_softmax(logits, dim=1).gather(1, y[:, None]).squeeze(1)
    return ((1.0 - torch.exp(q * log_p)) / q).mean()


class Backprop(GradientRule):
    name = "bp"
    converts = False
    config_class = BackpropConfig

    def objective(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "gce":
            return generalized_cross_entropy(logits, y, self.config.gce_q)
        return F.cross_entropy(logits, y)

    def step_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, StepInfo]:
        """The objective's loss; the step reports the cross-entropy whichever loss is trained."""
        loss, info = super().step_loss(model, x, y)
        if self.config.loss != "ce":
            info.loss = F.cross_entropy(info.logits, y)
        return loss, info

    def card(self) -> PlausibilityCard:
        return PlausibilityCard(
            rule=self.name,
            weight_transport="exact",
            reads=("pre", "post", "error_from_above"),
            global_signal=0,
            error_signal="δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f′(a_l): per-neuron errors through the transposed forward weights",
            phases_per_step=2,
            inference_iterations=0,
            locks_removed=(),
            reference="Rumelhart, Hinton & Williams 1986, Nature 323:533",
        )
