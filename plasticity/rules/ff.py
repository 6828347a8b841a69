"""Forward-Forward (Hinton 2022, arXiv:2212.13345, "The Forward-Forward Algorithm: Some
Preliminary Investigations").

Each hidden block learns on its own to give high goodness to positive data (an input with its
true label) and low goodness to negative data (the same input with a wrong label). Nothing is
passed backwards: a block's loss is a function of its own activity, and its update reads its
own input and output only.

As a PyTorch extension the rule attaches to any model of Linear / Conv1d / Conv2d layers. Hidden
block l runs from converted layer l up to the next converted layer (the layer, its non-linearity,
pooling, flattening: the model's own modules); the last converted layer is the head. Each block
has a local loss on its detached input, so `loss.backward()` gives each block the gradient of its
own loss and nothing else:

  label input   the label enters as a one-hot vector through label weights U, an `nn.Parameter`
                of the rule (out × C, out = the first layer's out_features or out_channels),
                added to the first layer's output: a_0 = W_0 x + b_0 + U onehot. For a
                convolution U onehot is one label bias per output channel, broadcast over the
                positions. Appending the label keeps every input feature (Hinton overwrote
                MNIST's first 10 pixels, which are always black; MNIST-1D has 40 features and
                digits 64, so overwriting 10 would lose data).
  forward       every converted layer after the first takes its input h_l detached and
                RMS-normalised per sample, n(h_l) (`nets.rms_normalize` over all the sample's
                features; Hinton's length normalisation): the next block sees only the direction
                of the activity, not the goodness it carries, and no error crosses a block.
  goodness      G_l = mean_j h_{l,j}², the mean square over the features of block l's output h_l
                (what the next converted layer receives, before normalisation: f(a_l) on the
                MLP); the mean rather than Hinton's sum, so that θ does not depend on the width.
  loss          with one negative ("random", "hard"), per block
                ℓ_l = softplus(α(θ − G_l⁺)) + softplus(α(G_l⁻ − θ)), batch mean:
                logistic p(positive) = σ(α(G − θ)).
  negatives     "random": a wrong label drawn uniformly; "hard": a wrong label drawn with the
                probabilities the head gives it on the neutral pass (Hinton's hard negatives).
                Draws come from a generator seeded by (seed, steps), `steps` a buffer that
                advances with every plastic step, so `directions` is pure and a resumed run
                draws the same negatives.
                "all" (default): every label is presented and each block's loss is the softmax
                cross-entropy of its goodness over the labels,
                ℓ_l = −α G_l(x, y) + log Σ_c exp(α G_l(x, c)) (θ unused): SymBa's symmetric
                loss softplus(−α(G⁺ − G⁻)) (Lee & Song 2023, arXiv:2303.08418) with every wrong
                label as a negative at once, i.e. the multi-class N-pair loss (Sohn 2016). The
                positive pass is pushed up, and every label's pass down in proportion to its
                probability p_l(c | x) = softmax_c(α G_l(x, c)); it trains the scan's own score.
                Each sample's passes are ordered from its true label on (slot k carries label
                (y + k) mod C), so the positive pass is slot 0 for every sample and the loss is
                the cross-entropy of slot 0 — the same loss, whose update, when every pass has
                the same activities (the plausibility probe's clamp), does not depend on y bit
                for bit.
  head          the head learns by the delta rule: the cross-entropy of the model's output on
                a pass with the neutral label (every entry 1/C), whose error stops at the head's
                detached input (the output layer of `bp`, without any error reaching the
                hidden blocks).
  step          `step_loss` returns Σ_l ℓ_l + the head's cross-entropy; autograd gives each
                block's weights (and U, through block 0) the gradient of its own loss.

The passes of a step run as one forward pass of P·B rows (x repeated P times; pass p in rows
p·B … (p+1)·B − 1), which is much faster than P passes of B rows: C + 1 passes (every label and
the neutral one) with negatives="all"; the neutral pass, then positive and negative together,
with "random" or "hard". A model with batch-statistics layers (BatchNorm in training mode) then
normalises over all the passes together, which mixes them.

Outside the rule's own passes, `model(x)` is the network with the neutral label: the head's
logits.

Inference (`inference`):
  "head": one pass with the neutral label; logits = the head's output. Cost: 1 pass.
  "scan": one pass per label c; logits_c = α Σ_l G_l(x, c) over the hidden blocks (the label
      with the most goodness wins). Cost: C passes (C = number of classes).
Training costs C + 1 passes per step with negatives="all", three with "random" or "hard"
(positive, negative, neutral), whichever inference is chosen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError, brief
from plasticity.nets import rms_normalize
from plasticity.rules.attach import GradientRule, override_forward
from plasticity.rules.base import RuleConfig, StepInfo

INFERENCES = ("head", "scan")
NEGATIVES = ("random", "hard", "all")


@dataclass
class FFConfig(RuleConfig):
    """Forward-Forward settings (and the benchmark optimizer's, from RuleConfig).

    threshold: θ, the goodness (mean square of a block's output) separating positive from
        negative data (unused with negatives="all").
    sharpness: α, the slope of p(positive) = σ(α(G − θ)); with negatives="all", the inverse
        temperature of the softmax over labels.
    negatives: "all" (default: every label, softmax loss) or one "random" or "hard" wrong label
        (module docstring).
    inference: "head" (one pass, neutral label) or "scan" (one pass per label).
    lr: 3e-3 rather than RuleConfig's 1e-3 (docs/rules.md).
    """

    lr: float = 3e-3
    threshold: float = 0.7
    sharpness: float = 60.0
    negatives: str = "all"
    inference: str = "scan"

    def validate(self) -> None:
        super().validate()
        if not (self.threshold > 0 and math.isfinite(self.threshold)):
            raise ConfigError(f"threshold must be a positive finite number; got {self.threshold}")
        if not (self.sharpness > 0 and math.isfinite(self.sharpness)):
            raise ConfigError(f"sharpness must be a positive finite number; got {self.sharpness}")
        if self.negatives not in NEGATIVES:
            raise ConfigError(f"negatives must be one of {NEGATIVES}; got {brief(self.negatives)}")
        if self.inference not in INFERENCES:
            raise ConfigError(f"inference must be one of {INFERENCES}; got {brief(self.inference)}")


def softplus(z: torch.Tensor) -> torch.Tensor:
    """log(1 + e^z), whose gradient is σ(z) exactly (F.softplus is linear above z = 20)."""
    return -F.logsigmoid(-z)


def goodness(h: torch.Tensor) -> torch.Tensor:
    """G = the mean square of a block's output over each sample's features (dims 1…), per sample."""
    return h.pow(2).flatten(1).mean(dim=1)


class ForwardForward(GradientRule):
    name = "ff"
    config_class = FFConfig

    label_weights: nn.Parameter | None

    @classmethod
    def hidden_activity(cls, config: RuleConfig, activation: str) -> str:
        return f"RMS-normalised {activation}"

    def __init__(self, config: RuleConfig | None = None, seed: int = 0, **options: Any) -> None:
        super().__init__(config, seed, **options)
        # U (first layer's width × classes), drawn from the rule's generator when attached.
        self.register_parameter("label_weights", None)
        # Plastic steps so far: seeds the draw of the negative labels.
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        # Within one of the rule's passes: the label rows (None: the neutral label) and the
        # goodness of every hidden block, in the order the blocks run (None: not recorded).
        self.labels_: torch.Tensor | None = None
        self.goodness_: list[torch.Tensor] | None = None

    # ----------------------------------------------------------------------------- attaching
    def attach(self, model: nn.Module, exclude: Sequence[str] = ()) -> ForwardForward:
        super().attach(model, exclude)
        if len(self.layers_) < 2:
            self.detach()
            raise ConfigError("ff needs at least one hidden block: a Linear / Conv layer before the head")
        return self

    def _register(self, model: nn.Module) -> list[Any]:
        first = self.layers_[0]
        shape = (int(first.weight.shape[0]), self.classes)
        if self.label_weights is None or tuple(self.label_weights.shape) != shape:
            self.label_weights = nn.Parameter(self.draw_label_weights(first.weight, shape[1]))
        handles = [override_forward(first, self._first)]
        handles += [override_forward(layer, self._later) for layer in self.layers_[1:]]
        return handles

    def draw_label_weights(self, weight: torch.Tensor, classes: int) -> torch.Tensor:
        """U ~ U(−s, s) with s = sqrt(3 · mean_k ‖W_{0,k}‖²): entries of variance mean_k ‖W_{0,k}‖²,
        the variance of (W_0 x)_k for a standardised input x, so that the one-hot label drives
        layer 0 as strongly as the input does at the start (on the benchmark MLP s ≈ gain·√3,
        gain the hidden layers' initialisation gain). A weaker label (variance 1/C) learned
        markedly worse on MNIST-1D (docs/rules.md)."""
        drive = float(weight.detach().flatten(1).pow(2).sum(dim=1).mean())
        bound = math.sqrt(3.0 * drive)
        drawn = torch.rand((weight.shape[0], classes), generator=self.generator) * 2 * bound - bound
        return drawn.to(weight.detach())

    @property
    def classes(self) -> int:
        """C: the head's width (its out_features or out_channels)."""
        return int(self.layers_[-1].weight.shape[0])

    def _first(self, own: Any, x: torch.Tensor) -> torch.Tensor:
        """The first layer: its output plus the label drive U · label."""
        out = own(x)
        if self.bypass:
            return out
        labels = self.labels_ if self.labels_ is not None else self.neutral(1)
        drive = labels @ self.label_weights.T  # rows × out
        spatial = [1] * (out.dim() - 2)
        if isinstance(self.layers_[0], nn.Linear):  # features last
            return out + drive.view(len(drive), *spatial, -1)
        return out + drive.view(len(drive), -1, *spatial)  # one bias per channel, all positions

    def _later(self, own: Any, h: torch.Tensor) -> torch.Tensor:
        """A layer after the first: its input h is a block's output; record the block's goodness
        and take h detached and RMS-normalised."""
        if self.bypass:
            return own(h)
        if self.goodness_ is not None:
            self.goodness_.append(goodness(h))
        return own(rms_normalize(h.detach()))

    # ----------------------------------------------------------------------------- passes
    def neutral(self, rows: int) -> torch.Tensor:
        """The neutral label: every entry 1/C."""
        U = self.label_weights
        return torch.full((rows, self.classes), 1.0 / self.classes, dtype=U.dtype, device=U.device)

    def onehot(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, self.classes).to(self.label_weights)

    def passes(self, model: nn.Module, x: torch.Tensor, labels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The passes of `x` with each of `labels` (B × C each) as the label input, run as one
        forward pass of P·B rows. Returns the logits (P × B × C) and the goodness of every hidden
        block (blocks × P × B)."""
        self.labels_, self.goodness_ = torch.cat(labels), []
        try:
            logits = model(x.repeat(len(labels), *[1] * (x.dim() - 1)))
            recorded = self.goodness_
        finally:
            self.labels_, self.goodness_ = None, None
        return logits.unflatten(0, (len(labels), len(x))), torch.stack(recorded).unflatten(1, (len(labels), len(x)))

    def negative_labels(self, head_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A wrong label per sample: uniform ("random") or by the head's probabilities ("hard"),
        drawn from a generator seeded by (seed, steps)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.steps))
        if self.config.negatives == "hard":
            weights = torch.softmax(head_logits.detach().cpu(), dim=1).clamp_min(1e-12)
        else:
            weights = torch.ones(head_logits.shape)
        weights = weights.scatter(1, y.cpu()[:, None], 0.0)  # never the true label
        return torch.multinomial(weights, 1, generator=generator)[:, 0].to(y.device)

    # ----------------------------------------------------------------------------- learning
    def step_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, StepInfo]:
        """Σ_l ℓ_l over the hidden blocks + the head's cross-entropy on the neutral pass."""
        alpha, classes = self.config.sharpness, self.classes
        if self.config.negatives == "all":
            slots = (y + torch.arange(classes, device=y.device)[:, None]) % classes  # slot k: label y + k
            logits, g = self.passes(model, x, [*map(self.onehot, slots), self.neutral(len(x))])
            head, labelled = logits[-1], g[:, :-1]  # labelled: blocks × slots × B
            block_losses = -torch.log_softmax(alpha * labelled, dim=1)[:, 0].mean(dim=1)
            positive, negative = labelled[:, 0].mean(dim=1), labelled[:, 1:].mean(dim=(1, 2))
        else:
            head = self.passes(model, x, [self.neutral(len(x))])[0][0]
            wrong = self.negative_labels(head, y)
            g = self.passes(model, x, [self.onehot(y), self.onehot(wrong)])[1]
            theta = self.config.threshold
            block_losses = softplus(alpha * (theta - g[:, 0])).mean(dim=1) + softplus(alpha * (g[:, 1] - theta)).mean(dim=1)
            positive, negative = g[:, 0].mean(dim=1), g[:, 1].mean(dim=1)
        if self.plastic:
            self.steps.add_(1)  # the next step draws other negatives
        head_loss = self.objective(head, y)
        info = StepInfo(
            loss=head_loss.detach(),
            logits=head.detach(),
            extras={"goodness_positive": positive.detach().tolist(), "goodness_negative": negative.detach().tolist()},
        )
        return block_losses.sum() + head_loss, info

    # ----------------------------------------------------------------------------- inference
    @torch.no_grad()
    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.config.inference == "head":
            return model(x)  # the neutral label
        labels = [self.onehot(torch.full((len(x),), c, dtype=torch.long, device=x.device)) for c in range(self.classes)]
        g = self.passes(model, x, labels)[1]
        return self.config.sharpness * g.sum(dim=0).T

    # ----------------------------------------------------------------------------- card
    def card(self) -> PlausibilityCard:
        config = self.config
        return PlausibilityCard(
            rule=self.name,
            weight_transport="none",
            reads=("pre", "post"),
            global_signal=0,
            error_signal=(
                "δ_l = ∂/∂a_l [−αG_l(x, y) + log Σ_c exp(αG_l(x, c))], G_l = mean square of block l's output: per-block softmax "
                "over the goodness of every label's pass (the true label's is positive; θ unused); "
                if config.negatives == "all"
                else f"δ_l = ∂/∂a_l [softplus(α(θ − G_l⁺)) + softplus(α(G_l⁻ − θ))], G_l = mean square of block l's output, "
                f"θ = {config.threshold}: per-block goodness of positive (true label) vs {config.negatives} negative (wrong label) data; "
            )
            + "the output layer is a delta-rule head on the neutral-label pass",
            phases_per_step=self.classes + 1 if config.negatives == "all" else 3,
            inference_iterations=0,
            locks_removed=("update", "backward"),
            reference="Hinton 2022, arXiv:2212.13345",
        )
