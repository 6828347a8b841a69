"""ΣPI: Predictive Integrity of a training step, its smoothing, and a surprise band for gates.

The math only: the workspace rule's gate and salience use it, and so does the ΣPI observer
(`plasticity.observe.pi.PIMonitor`), which reads it on any rule's training steps.

PI is a cheap per-step heuristic from the IPWT programme (dmf-archive; research note
`ipwt.md` §1). It combines how wrong the network is (ε), how unsure it is (τ) and how hard
the step pushes the weights (S). PI is *not* the synergy Ω of IPWT; synergy estimators live in
`plasticity.observe.synergy`.

Operational definitions (all logs natural, all values in nats):

- ε (epsilon): the batch-mean cross-entropy the rule learned from (`StepInfo.loss`).
- τ (tau): batch-mean softmax entropy of the logits, τ = mean_b −Σ_c p_bc·log(p_bc + 1e-9),
  p = softmax(logits), computed in float64. The 1e-9 inside the log is the `sigma-pi` SDK's
  convention (it keeps p = 0 finite); we keep it so values match the package.
- S (surprise): global L2 norm over all parameters of the update direction, taken after the
  backward pass and before the optimizer step: the gradient for backprop, and for rules
  without a gradient the direction the rule hands its optimizer (`StepInfo.update_norm`),
  before learning rate, momentum or Adam scaling. With AMP, S is unscaled (S = S_scaled /
  scale); steps whose norm is inf or NaN (GradScaler overflow steps, which the optimizer also
  skips) are skipped.

Variants (`PIConfig.variant`), each PI = exp(−cost):

- "sdk" (default; `sigma-pi` 0.1–0.3, P2 in ipwt.md):
  cost = α·((1−γ)·ε/(τ+1e-9) + γ·S).
- "manuscript" (IPWT manuscript v2, P1, one channel): cost = α·(ε/(τ+1e-9) + γ·S).
  The manuscript divides by τ without a guard; we keep the SDK's 1e-9 so τ = 0 stays finite.
  It calls τ both "variance" (genesis draft) and "precision" (v2); we read it as uncertainty
  (the output entropy), the only reading under which a confident error costs more.
- "entropy" (F3EO/ARS telemetry, P3): cost = α·τ + γ·S (ε is not used). F3EO evaluates it
  once per epoch on the epoch means of τ and S and smooths it with a bias-corrected EMA
  (β = 0.9); `PIMonitor` reports exactly that as `pi_at_means` / `pi_ema`.

Defaults α = 1, γ = 0.5 (the SDK's). Note that F3EO's own default is γ = 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch

VARIANTS = ("sdk", "manuscript", "entropy")
LOG_EPS = 1e-9
"""Added to p inside log(p) for τ (sigma-pi convention)."""
DIV_EPS = 1e-9
"""Added to τ in ε/τ (sigma-pi convention), in every variant that divides by τ."""

Decision = Literal["ignore", "consolidate", "reject"]


def softmax_entropy(logits: torch.Tensor) -> float:
    """τ: batch-mean entropy (nats) of softmax(logits), −Σ p·log(p + 1e-9), in float64.

    logits: (batch, classes), or (classes,) for a single example.
    """
    logits = torch.as_tensor(logits).detach().to(torch.float64)
    if logits.ndim == 1:
        logits = logits.unsqueeze(0)
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(f"logits must have shape (batch, classes) with batch ≥ 1; got {tuple(logits.shape)}")
    p = torch.softmax(logits, dim=1)
    return float(-(p * torch.log(p + LOG_EPS)).sum(dim=1).mean())


def global_grad_norm(tensors: Iterable[torch.Tensor | None]) -> float:
    """Global L2 norm of the concatenation of `tensors`, skipping None (0.0 if all are None).

    Use it as S with `[p.grad for p in net.parameters()]`. Per-tensor norms are combined in
    float64; an fp16 overflow shows up as inf, which `unscale_norm` then rejects.
    """
    norms = [t.detach().to(torch.float64).norm(2) for t in tensors if t is not None]
    if not norms:
        return 0.0
    return float(torch.stack(norms).norm(2))


def unscale_norm(norm: float, scale: float = 1.0) -> float | None:
    """S_true = S_scaled / scale for gradients scaled by an AMP GradScaler (`get_scale()`).

    The L2 norm is homogeneous, so dividing the norm equals taking the norm of the unscaled
    gradients (what sigma-pi 0.3.0 does). Returns None for an inf/NaN norm: GradScaler skips
    the optimizer step on overflow, so such a step has no update to measure and is skipped.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number; got {scale}")
    if not math.isfinite(norm):
        return None
    return norm / scale


@dataclass(frozen=True)
class PIConfig:
    """ΣPI parameters. alpha: sensitivity; gamma: weight of surprise; ema_beta: smoothing of
    the epoch PI in `PIMonitor` (None: no smoothing)."""

    alpha: float = 1.0
    gamma: float = 0.5
    variant: str = "sdk"
    ema_beta: float | None = 0.9

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}; got {self.variant!r}")
        if self.alpha < 0 or self.gamma < 0:
            raise ValueError(f"alpha and gamma must be ≥ 0; got alpha={self.alpha}, gamma={self.gamma}")
        if self.variant == "sdk" and self.gamma > 1:
            raise ValueError(f"the sdk variant weighs (1−γ)·error + γ·surprise, so gamma must be ≤ 1; got {self.gamma}")
        if self.ema_beta is not None and not 0 <= self.ema_beta < 1:
            raise ValueError(f"ema_beta must lie in [0, 1) or be None; got {self.ema_beta}")


@dataclass(frozen=True)
class PIStep:
    """One PI evaluation. cost is the full exponent, PI = exp(−cost) (the SDK's
    `cognitive_cost` is cost/α for the sdk variant)."""

    epsilon: float
    tau: float
    surprise: float
    cost: float
    pi: float


def predictive_integrity(epsilon: float, tau: float, surprise: float, config: PIConfig = PIConfig()) -> PIStep:
    """PI = exp(−cost) with the cost of `config.variant` (see the module docstring).

    The ratio's denominator is τ + 1e-9 as in the SDK, but never below 1e-9: τ computed with the
    1e-9 inside the log is −log(1 + 1e-9) ≈ −1e-9 for a one-hot prediction, where the SDK's
    denominator reaches zero or turns negative and its exp overflows. With the floor, a
    confidently wrong prediction costs ε / 1e-9 and its PI is 0; for τ ≥ 0 nothing changes."""
    a, g = config.alpha, config.gamma
    spread = max(tau + DIV_EPS, DIV_EPS)
    if config.variant == "sdk":
        cost = a * ((1.0 - g) * epsilon / spread + g * surprise)
    elif config.variant == "manuscript":
        cost = a * (epsilon / spread + g * surprise)
    else:  # "entropy"
        cost = a * tau + g * surprise
    return PIStep(epsilon=epsilon, tau=tau, surprise=surprise, cost=cost, pi=math.exp(-cost))


def pi_from_batch(loss: float, logits: torch.Tensor, surprise: float, config: PIConfig = PIConfig()) -> PIStep:
    """PI of one step from its batch loss ε, its logits (→ τ) and its surprise S."""
    return predictive_integrity(float(loss), softmax_entropy(logits), float(surprise), config)


class BiasCorrectedEMA:
    """Adam-style smoothed value (F3EO telemetry): m ← β·m + (1−β)·x, value = m / (1−β^n).

    The correction removes the pull towards the zero initialisation of m, so a constant
    input x gives value == x from the first update on.
    """

    def __init__(self, beta: float = 0.9) -> None:
        if not 0 <= beta < 1:
            raise ValueError(f"beta must lie in [0, 1); got {beta}")
        self.beta = beta
        self.count = 0
        self._m = 0.0

    def update(self, x: float) -> float:
        self.count += 1
        self._m = self.beta * self._m + (1.0 - self.beta) * x
        return self.value

    @property
    def value(self) -> float | None:
        """The bias-corrected average, None before the first update."""
        if self.count == 0:
            return None
        return self._m / (1.0 - self.beta**self.count)


@dataclass(frozen=True)
class SurpriseBandConfig:
    """k: band half-width in standard deviations; alpha: EMA rate of the running moments;
    warmup: observations during which every step is consolidated while the moments settle."""

    k: float = 3.0
    alpha: float = 0.1
    warmup: int = 10

    def __post_init__(self) -> None:
        if not self.k > 0:
            raise ValueError(f"k must be > 0; got {self.k}")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha must lie in (0, 1]; got {self.alpha}")
        if self.warmup < 1:
            raise ValueError(f"warmup must be ≥ 1 (the first step initialises the moments); got {self.warmup}")


class SurpriseBand:
    """Running μ ± kσ band of the surprise S, the gate of gated backprop (sigma-pi GBP).

    Moments: μ ← (1−α)μ + αS and q ← (1−α)q + αS² (α = 0.1 in GBP); the first observation
    sets μ = S, q = S² (GBP leaves the start open; this is our choice). σ = sqrt(max(q − μ², 0)).
    z = (S − μ)/σ, with z = 0 when S == μ and ±inf when σ = 0 and S ≠ μ.
    Decision for a step, made against the moments *before* the step is added:
      "ignore" if z < −k (S < μ − kσ: redundant, nothing new),
      "reject" if z ≥ k (S ≥ μ + kσ: anomalous, possibly harmful),
      "consolidate" otherwise; and always "consolidate" during the first `warmup` steps.
    Every finite S updates the moments whatever the decision. A non-finite S (an AMP overflow
    step) is rejected and leaves the moments untouched.
    """

    def __init__(self, config: SurpriseBandConfig | None = None) -> None:
        self.config = config or SurpriseBandConfig()
        self.count = 0
        self.mean = 0.0
        self._second = 0.0

    @property
    def std(self) -> float:
        return math.sqrt(max(self._second - self.mean * self.mean, 0.0))

    def zscore(self, surprise: float) -> float:
        if surprise == self.mean:
            return 0.0
        std = self.std
        if std == 0.0:
            return math.copysign(math.inf, surprise - self.mean)
        return (surprise - self.mean) / std

    def classify(self, surprise: float) -> Decision:
        """The decision for `surprise` against the current moments (no update)."""
        if not math.isfinite(surprise):
            return "reject"
        if self.count < self.config.warmup:
            return "consolidate"
        z = self.zscore(surprise)
        if z < -self.config.k:
            return "ignore"
        if z >= self.config.k:
            return "reject"
        return "consolidate"

    def update(self, surprise: float) -> None:
        """Add a finite `surprise` to the running moments (non-finite values are ignored)."""
        if not math.isfinite(surprise):
            return
        if self.count == 0:
            self.mean, self._second = surprise, surprise * surprise
        else:
            a = self.config.alpha
            self.mean = (1 - a) * self.mean + a * surprise
            self._second = (1 - a) * self._second + a * surprise * surprise
        self.count += 1

    def state(self) -> list[float]:
        """(count, mean, second moment), for checkpoints."""
        return [float(self.count), self.mean, self._second]

    def load_state(self, values: list[float]) -> None:
        count, self.mean, self._second = values
        self.count = int(count)

    def observe(self, surprise: float) -> Decision:
        """Classify `surprise`, then add it to the moments; what a gate calls once per step."""
        decision = self.classify(surprise)
        self.update(surprise)
        return decision
