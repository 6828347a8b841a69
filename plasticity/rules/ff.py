"""Forward-Forward (Hinton 2022, arXiv:2212.13345, "The Forward-Forward Algorithm: Some
Preliminary Investigations").

Each hidden layer learns on its own to give high goodness to positive data (an input with its
true label) and low goodness to negative data (the same input with a wrong label). Nothing is
passed backwards: a layer's loss is a function of its own activity, and its update reads its
own input and output only.

  label input   the label enters as a one-hot vector through label weights U owned by the rule
                (`own_parameters`): a_0 = W_0 x + U onehot + b_0. Appending the label keeps every
                input feature (Hinton overwrote MNIST's first 10 pixels, which are always black;
                MNIST-1D has 40 features and digits 64, so overwriting 10 would lose data).
  forward       h_l = n(f(a_l)) for the hidden layers, with n the RMS normalisation
                (`nets.rms_normalize`; Hinton's length normalisation): the next layer sees only
                the direction of the activity, not the goodness it carries.
  goodness      G_l = mean_j f(a_l)_j² (mean rather than Hinton's sum, so θ does not depend on
                the width).
  loss          with one negative ("random", "hard"), per layer
                ℓ_l = softplus(α(θ − G_l⁺)) + softplus(α(G_l⁻ − θ)), batch mean:
                logistic p(positive) = σ(α(G − θ)). Its gradient δ_l = ∂ℓ_l/∂a_l is computed
                in closed form from the layer's own activity, and ΔW_l ∝ δ_lᵀ h_{l−1}.
  negatives     "random": a wrong label drawn uniformly; "hard": a wrong label drawn with the
                probabilities the head gives it on the neutral pass (Hinton's hard negatives).
                Draws come from a generator seeded by (seed, step), so `directions` is pure.
                "all" (default): every label is presented (one pass each) and each layer's loss
                is the softmax cross-entropy of its goodness over the labels,
                ℓ_l = −α G_l(x, y) + log Σ_c exp(α G_l(x, c)) (θ unused): SymBa's symmetric
                loss softplus(−α(G⁺ − G⁻)) (Lee & Song 2023, arXiv:2303.08418) with every wrong
                label as a negative at once, i.e. the multi-class N-pair loss (Sohn 2016). The
                positive pass is pushed up, and every label's pass down in proportion to its
                probability p_l(c | x) = softmax_c(α G_l(x, c)); it trains the scan's own score.
  head          the output layer is a linear softmax head on the last hidden layer's
                normalised activity for a neutral label (every entry 1/C), trained by the delta
                rule (the output layer of `bp`, without any error reaching the hidden layers).

Inference (`inference`):
  "head": one forward pass with the neutral label; logits = the head's output. Cost: 1 pass.
  "scan": one forward pass per label c; logits_c = α Σ_l G_l(x, c) over the hidden layers (the
      label with the most goodness wins). Cost: C passes (C = number of classes).
Training costs C + 1 passes per step with negatives="all" (every label, and the neutral pass
for the head), three with "random" or "hard" (positive, negative, neutral), whichever inference
is chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from plasticity.nets import MLP, Trace, activate, activation_derivative
from plasticity.rules.base import Rule, RuleConfig, StepInfo, layer_direction, layer_directions, output_error, step_info
from plasticity.rules.card import PlausibilityCard

INFERENCES = ("head", "scan")
NEGATIVES = ("random", "hard", "all")


@dataclass
class FFConfig(RuleConfig):
    """Forward-Forward settings (and the shared optimizer's, from RuleConfig).

    threshold: θ, the goodness (mean square of f(a)) separating positive from negative data
        (unused with negatives="all").
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
            raise ValueError(f"threshold must be a positive finite number; got {self.threshold}")
        if not (self.sharpness > 0 and math.isfinite(self.sharpness)):
            raise ValueError(f"sharpness must be a positive finite number; got {self.sharpness}")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}; got {self.negatives!r}")
        if self.inference not in INFERENCES:
            raise ValueError(f"inference must be one of {INFERENCES}; got {self.inference!r}")


class ForwardForward(Rule):
    name = "ff"
    config_class = FFConfig

    @classmethod
    def hidden_activity(cls, config: RuleConfig, activation: str) -> str:
        return f"RMS-normalised {activation}"

    def setup(self, net: MLP, generator: torch.Generator) -> None:
        if net.depth < 2:
            raise ValueError("ff needs at least one hidden layer")
        classes, width = net.sizes[-1], net.sizes[1]
        # Entries of unit variance (times the hidden layers' gain, as in MLP.reset_parameters): the
        # one-hot label drives layer 0 as strongly as a standardised input through W_0 at the start.
        # A weaker label (variance 1/C) learned markedly worse on MNIST-1D (docs/rules.md).
        bound = (math.sqrt(2.0) if net.activation == "relu" else 1.0) * math.sqrt(3.0)
        self.label_weights = torch.rand((width, classes), generator=generator) * 2 * bound - bound
        self.steps = torch.zeros((), dtype=torch.long)

    def own_parameters(self) -> list[torch.Tensor]:
        return [self.label_weights]

    # ------------------------------------------------------------------------------ passes
    def forward_pass(self, net: MLP, x: torch.Tensor, labels: torch.Tensor) -> Trace:
        """The FF forward pass with `labels` (batch × C: one-hot, or the neutral 1/C) as input."""
        return net.trace(x, context=labels @ self.label_weights.T, normalize=True)

    @staticmethod
    def goodness(activity: torch.Tensor) -> torch.Tensor:
        """G = mean_j f_j² of a layer's activity f = f(a), per sample."""
        return activity.pow(2).mean(dim=1)

    def neutral(self, x: torch.Tensor, classes: int) -> torch.Tensor:
        return torch.full((len(x), classes), 1.0 / classes, dtype=x.dtype)

    def negative_labels(self, head_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A wrong label per sample: uniform ("random") or by the head's probabilities ("hard")."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.steps))
        if self.config.negatives == "hard":
            weights = torch.softmax(head_logits, dim=1).clamp_min(1e-12)
        else:
            weights = torch.ones_like(head_logits)
        weights = weights.scatter(1, y[:, None], 0.0)  # never the true label
        return torch.multinomial(weights, 1, generator=generator)[:, 0]

    # ------------------------------------------------------------------------------ learning
    def _layer_deltas(self, trace: Trace, activation: str, positive: bool) -> tuple[list[torch.Tensor], list[float]]:
        """δ_l = ∂ℓ_l/∂a_l of every hidden layer (batch mean), and each layer's mean goodness."""
        config, deltas, goodness = self.config, [], []
        for a in trace.a[:-1]:
            f = activate(a, activation)
            g = self.goodness(f)
            logit = config.sharpness * (g - config.threshold)
            # d softplus(∓logit)/d logit = ∓σ(∓logit); dG/da = 2 f f′ / n.
            slope = -torch.sigmoid(-logit) if positive else torch.sigmoid(logit)
            scale = slope * (2 * config.sharpness / (a.shape[1] * a.shape[0]))
            deltas.append(scale[:, None] * f * activation_derivative(a, f, activation))
            goodness.append(float(g.mean()))
        return deltas, goodness

    def label_passes(self, net: MLP, x: torch.Tensor) -> list[Trace]:
        """One forward pass per label c, with onehot(c) as the label input (the scan's passes)."""
        classes = net.sizes[-1]
        eye = torch.eye(classes, dtype=x.dtype)
        return [self.forward_pass(net, x, eye[c].expand(len(x), classes)) for c in range(classes)]

    def _all_label_directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], list[float], list[float]]:
        """Hidden and label-weight directions of the softmax loss over every label ("all").

        ∂ℓ_l/∂a_l(c) = α (p_l(c) − [c = y]) ∂G_l/∂a_l(c) for the pass with label c. The positive
        term is taken from the true label's activities of each sample and the sum over labels
        from every pass, so that identical passes (all labels giving the same activity) give an
        update that does not depend on y.
        """
        classes, activation, config = net.sizes[-1], net.activation, self.config
        traces = self.label_passes(net, x)
        pick = F.one_hot(y, classes).to(x.dtype)
        hidden: list[torch.Tensor] = []
        positive_goodness, negative_goodness = [], []
        for l in range(net.depth - 1):
            fs = [activate(t.a[l], activation) for t in traces]
            goodness = torch.stack([self.goodness(f) for f in fs], dim=1)
            p = torch.softmax(config.sharpness * goodness, dim=1)
            # dG/da = 2 f f′ / n, times α / batch (the batch mean of ℓ_l).
            scale = 2 * config.sharpness / (fs[0].shape[1] * len(x))
            grads = [scale * f * activation_derivative(t.a[l], f, activation) for f, t in zip(fs, traces)]
            negative = [p[:, c, None] * g for c, g in enumerate(grads)]
            positive = sum(pick[:, c, None] * g for c, g in enumerate(grads))
            positive_pre = sum(pick[:, c, None] * t.h[l] for c, t in enumerate(traces))
            weight = sum(n.T @ t.h[l] for n, t in zip(negative, traces)) - positive.T @ positive_pre
            bias = sum(n.sum(dim=0) for n in negative) - positive.sum(dim=0)
            hidden += [weight, bias]
            if l == 0:  # the label weights feed layer 0 only
                labels = torch.stack([n.sum(dim=0) for n in negative], dim=1) - positive.T @ pick
            positive_goodness.append(float((goodness * pick).sum(dim=1).mean()))
            negative_goodness.append(float((goodness * (1 - pick)).sum(dim=1).mean() / (classes - 1)))
        return hidden + [labels], positive_goodness, negative_goodness

    @torch.no_grad()
    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        classes, activation = net.sizes[-1], net.activation
        neutral = self.forward_pass(net, x, self.neutral(x, classes))
        if self.config.negatives == "all":
            hidden_and_labels, positive_goodness, negative_goodness = self._all_label_directions(net, x, y)
            head = layer_direction(output_error(neutral.logits, y), neutral.h[-2])
            directions = hidden_and_labels[:-1] + head + hidden_and_labels[-1:]
            return directions, step_info(
                neutral.logits, y, directions, goodness_positive=positive_goodness, goodness_negative=negative_goodness
            )
        negative_y = self.negative_labels(neutral.logits, y)
        positive_onehot = F.one_hot(y, classes).to(x.dtype)
        negative_onehot = F.one_hot(negative_y, classes).to(x.dtype)
        positive = self.forward_pass(net, x, positive_onehot)
        negative = self.forward_pass(net, x, negative_onehot)
        positive_deltas, positive_goodness = self._layer_deltas(positive, activation, positive=True)
        negative_deltas, negative_goodness = self._layer_deltas(negative, activation, positive=False)
        hidden = [
            p + n
            for p, n in zip(layer_directions(positive, positive_deltas), layer_directions(negative, negative_deltas))
        ]
        head = layer_direction(output_error(neutral.logits, y), neutral.h[-2])
        labels = positive_deltas[0].T @ positive_onehot + negative_deltas[0].T @ negative_onehot
        directions = hidden + head + [labels]
        return directions, step_info(
            neutral.logits, y, directions, goodness_positive=positive_goodness, goodness_negative=negative_goodness
        )

    @torch.no_grad()
    def step(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> StepInfo:
        info = super().step(net, x, y)
        self.steps += 1  # the next step draws other negatives
        return info

    # ------------------------------------------------------------------------------ inference
    @torch.no_grad()
    def logits(self, net: MLP, x: torch.Tensor) -> torch.Tensor:
        classes = net.sizes[-1]
        if self.config.inference == "head":
            return self.forward_pass(net, x, self.neutral(x, classes)).logits
        scores = [sum(self.goodness(activate(a, net.activation)) for a in trace.a[:-1]) for trace in self.label_passes(net, x)]
        return self.config.sharpness * torch.stack(scores, dim=1)

    # ------------------------------------------------------------------------------ card, state
    def card(self) -> PlausibilityCard:
        config = self.config
        return PlausibilityCard(
            rule=self.name,
            weight_transport="none",
            reads=("pre", "post"),
            global_signal=0,
            error_signal=(
                "δ_l = ∂/∂a_l [−αG_l(x, y) + log Σ_c exp(αG_l(x, c))], G_l = mean f(a_l)²: per-layer softmax over the "
                "goodness of every label's pass (the true label's is positive; θ unused); "
                if config.negatives == "all"
                else f"δ_l = ∂/∂a_l [softplus(α(θ − G_l⁺)) + softplus(α(G_l⁻ − θ))], G_l = mean f(a_l)², θ = {config.threshold}: "
                f"per-layer goodness of positive (true label) vs {config.negatives} negative (wrong label) data; "
            )
            + "the output layer is a delta-rule head on the neutral-label pass",
            phases_per_step=self.net.sizes[-1] + 1 if config.negatives == "all" else 3,
            inference_iterations=0,
            locks_removed=("update", "backward"),
            reference="Hinton 2022, arXiv:2212.13345",
        )

    def rule_state(self) -> dict[str, torch.Tensor]:
        return {"label_weights": self.label_weights, "steps": self.steps}
