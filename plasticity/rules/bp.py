"""Backpropagation (Rumelhart, Hinton & Williams 1986): the baseline every rule is measured against.

Nothing is attached: gradients are autograd's on the batch-mean cross-entropy. It is
deliberately the ordinary PyTorch way to train, so that time ratios compare local rules with
what users run today.
"""

from __future__ import annotations

from plasticity.card import PlausibilityCard
from plasticity.rules.attach import GradientRule


class Backprop(GradientRule):
    name = "bp"
    converts = False

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
