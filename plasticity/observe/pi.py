"""Observer "pi": ΣPI (Predictive Integrity) of every training step, per epoch.

The definitions (ε, τ, S, the variants) are in `plasticity.integrity`, whose math this observer
reads on any rule's steps; the workspace rule uses the same math for its gate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from plasticity.rules.attach import GradientRule
    from plasticity.rules.base import StepInfo

from plasticity.integrity import BiasCorrectedEMA, PIConfig, pi_from_batch, predictive_integrity, unscale_norm


@dataclass
class _EpochSteps:
    epsilon: list[float] = field(default_factory=list)
    tau: list[float] = field(default_factory=list)
    surprise: list[float] = field(default_factory=list)
    pi: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    skipped: int = 0


class PIMonitor:
    """Observer "pi": ΣPI of every training step, summarised per epoch.

    On each step: ε = info.loss, τ from info.logits, S = info.update_norm, divided by
    info.extras["grad_scale"] when a rule trained with an AMP GradScaler reports its scale;
    steps with a non-finite S are skipped (counted in `skipped_steps`).

    Epoch entry: pi (mean per-step PI), pi_std (population std of per-step PI), epsilon, tau,
    surprise (epoch means), pi_at_means (the variant's formula on the epoch means of ε, τ, S:
    F3EO's per-epoch PI for the "entropy" variant), pi_ema (bias-corrected EMA over epochs of
    pi_at_means, β = ema_beta; None if ema_beta is None), variant, steps, skipped_steps,
    seconds_per_step (mean wall time this observer spent per step: the cost of ΣPI). In an
    epoch without a usable step the values are None and pi_ema keeps its previous value.
    """

    name = "pi"
    reads_update_norm = True

    def __init__(self, config: PIConfig | None = None) -> None:
        self.config = config or PIConfig()
        self._steps = _EpochSteps()
        beta = self.config.ema_beta
        self._ema = BiasCorrectedEMA(beta) if beta is not None else None

    def on_step(self, net: Any, rule: GradientRule, x: torch.Tensor, y: torch.Tensor, info: StepInfo) -> None:
        start = time.perf_counter()
        surprise = unscale_norm(float(info.update_norm), float(info.extras.get("grad_scale", 1.0)))
        if surprise is None:
            self._steps.skipped += 1
            return
        step = pi_from_batch(info.loss, info.logits, surprise, self.config)
        for name in ("epsilon", "tau", "surprise", "pi"):
            getattr(self._steps, name).append(getattr(step, name))
        self._steps.seconds.append(time.perf_counter() - start)

    def on_epoch_end(self, net: Any, rule: GradientRule, epoch: int, data: Any) -> dict[str, Any]:
        steps, self._steps = self._steps, _EpochSteps()
        entry: dict[str, Any] = {"variant": self.config.variant, "steps": len(steps.pi), "skipped_steps": steps.skipped}
        if not steps.pi:
            keys = ("pi", "pi_std", "epsilon", "tau", "surprise", "pi_at_means", "seconds_per_step")
            entry.update(dict.fromkeys(keys), pi_ema=self._ema.value if self._ema else None)
            return entry
        means = {name: float(np.mean(getattr(steps, name))) for name in ("epsilon", "tau", "surprise")}
        at_means = predictive_integrity(means["epsilon"], means["tau"], means["surprise"], self.config).pi
        entry.update(
            pi=float(np.mean(steps.pi)),
            pi_std=float(np.std(steps.pi)),
            **means,
            pi_at_means=at_means,
            pi_ema=self._ema.update(at_means) if self._ema else None,
            seconds_per_step=float(np.mean(steps.seconds)),
        )
        return entry
