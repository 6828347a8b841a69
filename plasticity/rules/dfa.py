"""Direct feedback alignment (Nøkland 2016, NeurIPS, "Direct Feedback Alignment Provides
Learning in Deep Neural Networks").

The output error e = ∂loss/∂logits is broadcast to every hidden layer through that layer's own
fixed random matrix: δ_l = (B_lᵀ e) ⊙ f′(a_l), ΔW_l = −η δ_l h_{l−1}ᵀ; the output layer uses e
itself (the delta rule). No layer waits for the backward pass of the layers above it.

As a PyTorch extension: the input of every converted layer but the first is a hidden block's
output h_l. It is detached from the layer (no error passes down through a forward weight) and
recorded; the model's output goes through an autograd Function (`DirectPath`) whose backward
takes the output error e once and hands each recorded h_l the error e B_l (B_l: classes ×
numel(h_l), drawn when h_l's shape is first seen). Inside a block (activation, pooling,
flattening) autograd carries it to the block's own weights, which is where ⊙ f′(a_l) comes
from; the output layer's own gradient is the delta rule.

With `mirror_rate` > 0 the feedback is no longer fixed: B_l learns from the network's own noise
by a weight mirror (Akrout et al. 2019; `mirror`), so that it comes to point where the path from
block l to the output points, without reading a forward weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError
from plasticity.rules.attach import GradientRule, LazyFeedback, override_forward
from plasticity.rules.fa import FeedbackConfig
from plasticity.rules.feedback import uniform_feedback, weight_product


@dataclass
class DirectFeedbackConfig(FeedbackConfig):
    """Direct feedback, fixed or learned.

    mirror_rate: how fast the feedback learns by a weight mirror (0: fixed random feedback,
    Nøkland's DFA). Every `mirror_every` steps, the first `mirror_samples` samples of the batch
    are passed again with noise of std `mirror_sigma` added to every hidden unit's output.
    """

    mirror_rate: float = 0.0
    mirror_sigma: float = 0.1
    mirror_every: int = 4
    mirror_samples: int = 64

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.mirror_rate <= 1.0:
            raise ConfigError(f"mirror_rate must be in [0, 1]; got {self.mirror_rate}")
        if not self.mirror_sigma > 0:
            raise ConfigError(f"mirror_sigma must be > 0; got {self.mirror_sigma}")
        if self.mirror_every < 1 or self.mirror_samples < 1:
            raise ConfigError(f"mirror_every and mirror_samples must be ≥ 1; got {self.mirror_every}, {self.mirror_samples}")

    @property
    def learned(self) -> bool:
        return self.mirror_rate > 0


def feedback_phrase(config: DirectFeedbackConfig) -> str:
    """How the card names the feedback pathway."""
    if config.learned:
        return f"feedback learned from noise by a weight mirror every {config.mirror_every} steps"
    return "fixed random feedback"


class DirectPath(torch.autograd.Function):
    """Identity on the model's output; backward hands each recorded block output h_l the error
    s_l B_l, where the rule decides from the output's error e what the output passes on and
    what each block receives (`direct_signals`; for DFA, e itself, or the pinned broadcast)."""

    @staticmethod
    def forward(ctx: Any, output: torch.Tensor, rule: DirectFeedbackAlignment, feedback: list[torch.Tensor], *hidden: torch.Tensor) -> torch.Tensor:
        ctx.rule, ctx.feedback, ctx.shapes = rule, feedback, [h.shape for h in hidden]
        return output.view_as(output)

    @staticmethod
    def backward(ctx: Any, error: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        rule = ctx.rule
        output, signals = rule.direct_signals(error, len(ctx.feedback))
        errors = [(s @ B).view(shape) for s, B, shape in zip(signals, ctx.feedback, ctx.shapes, strict=True)]
        if rule.pending_:
            rule.commit_mirror()
        return (output, None, None, *errors)


class DirectFeedbackAlignment(GradientRule):
    name = "dfa"
    config_class = DirectFeedbackConfig

    def _register(self, model: nn.Module) -> list[Any]:
        if len(getattr(self, "feedback", ())) != len(self.layers_):
            self.feedback = nn.ModuleList(LazyFeedback() for _ in self.layers_)
            self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.slots_ = list(self.feedback)  # plain list: indexing a ModuleList costs more per step
        self.hidden_: list[tuple[int, torch.Tensor]] = []  # (layer, its input) recorded in this pass
        self.recorded_: list[tuple[int, torch.Tensor]] = []  # the last pass's record
        self.output_: torch.Tensor | None = None
        self.noise_: torch.Generator | None = None  # set during the weight mirror's noisy pass
        self.noises_: dict[int, torch.Tensor] = {}
        self.pending_: list[tuple[torch.Tensor, torch.Tensor, int]] = []
        handles = [override_forward(layer, partial(self._record, index)) for index, layer in enumerate(self.layers_)]
        handles.append(override_forward(model, self._direct_path))
        return handles

    def _record(self, index: int, own: Any, x: torch.Tensor) -> torch.Tensor:
        """A converted layer: its input, if it carries a graph, is a block's output h_l; record it
        and detach it from the layer (no error passes down through this layer's weight)."""
        if self.noise_ is not None and self.slots_[index].ready:
            noise = torch.randn(x.shape, generator=self.noise_).to(x)
            self.noises_[index] = noise
            return own(x + self.config.mirror_sigma * noise)
        if self.bypass or not (x.requires_grad and torch.is_grad_enabled()):
            return own(x)
        self.hidden_.append((index, x))
        return own(x.detach())

    def _direct_path(self, own: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The model: its output goes through `DirectPath`, which hands every recorded h_l its error.
        What the pass recorded stays in `recorded_` ((layer, h_l) pairs) and `output_` (the
        model's own output, before `DirectPath`) until the next pass."""
        if self.noise_ is not None:  # the weight mirror's noisy pass records nothing
            return own(*args, **kwargs)
        self.hidden_.clear()
        output = own(*args, **kwargs)
        self.output_ = output
        hidden = self.recorded_ = list(self.hidden_)
        self.hidden_.clear()
        if not hidden:
            return output
        if output.dim() != 2:
            raise ConfigError(f"dfa broadcasts a (batch, classes) output error; the model's output has shape {tuple(output.shape)}")
        feedback = [self._feedback(index, output.shape[1], h) for index, h in hidden]
        if self.plastic:
            if self.config.learned and int(self.steps) % self.config.mirror_every == 0:
                self.pending_ = self.mirror(self.model_, args[0], output.detach())
            self.steps.add_(1)
        return DirectPath.apply(output, self, feedback, *(h for _, h in hidden))

    def direct_signals(self, error: torch.Tensor, blocks: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(what the output passes on, what each of `blocks` recorded blocks receives through its
        B_l) for the output error `error`: e for all (Nøkland), or the pinned broadcast."""
        signal = error if self.pinned_broadcast is None else self.pinned_broadcast
        return signal, [signal] * blocks

    def _feedback(self, index: int, classes: int, h: torch.Tensor) -> torch.Tensor:
        """B for the block whose output is layer `index`'s input, drawn when first needed."""
        matrix = self.slots_[index].weight
        if matrix is None:
            drawn = uniform_feedback((classes, h[0].numel()), classes, self.config.feedback_scale, self.generator)
            matrix = self.slots_[index].materialize(drawn.to(h))
        return matrix

    @torch.no_grad()
    def mirror(self, model: nn.Module, x: torch.Tensor, clean: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        """A weight mirror (Akrout, Wilson, Humphreys, Lillicrap & Tweed 2019, NeurIPS, "Deep
        learning without weight transport"), adapted to direct feedback.

        A second pass of the first `mirror_samples` inputs in which every recorded block output
        adds its own noise σξ (drawn from a generator seeded by (seed, step), so that a resumed
        run draws the same noise). The output's change per unit of noise, Δo = (o_noisy −
        o_clean) / σ, reaches every feedback synapse as a broadcast, and B_l moves toward
        mean Δo ξ_lᵀ: B_l ← (1 − rate) B_l + rate · mean Δo ξ_lᵀ. The noises of different units
        are independent with unit variance, so to first order in σ the product's expectation
        is the batch-mean Jacobian E[∂o/∂h_l] — what reaches a feedback synapse is activity, no
        forward weight. The update is returned, and made after this step's errors have used the
        current feedback (`commit_mirror`)."""
        samples = x[: self.config.mirror_samples]
        self.noise_ = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.steps))
        self.noises_ = {}
        try:
            noisy = model(samples)
        finally:
            self.noise_ = None
        response = (noisy - clean[: len(samples)]) / self.config.mirror_sigma
        return [(self.slots_[index].weight, response.T @ noise.flatten(1), len(response)) for index, noise in self.noises_.items()]

    @torch.no_grad()
    def commit_mirror(self) -> None:
        """Apply the weight mirror's pending update, if any."""
        rate = self.config.mirror_rate
        for B, product, n in self.pending_:
            B.mul_(1.0 - rate).add_(product, alpha=rate / n)
        self.pending_ = []

    def broadcast(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The output error e = ∂loss/∂output for (x, y), computed as the backward pass computes it."""
        with torch.no_grad():
            logits = model(x)
        with torch.enable_grad():
            logits.requires_grad_(True)
            return torch.autograd.grad(self.objective(logits, y), logits)[0]

    @property
    def classes(self) -> int:
        """The broadcast's size: the output layer's width (its out_features or out_channels)."""
        return int(self.layers_[-1].weight.shape[0])

    def card(self) -> PlausibilityCard:
        return PlausibilityCard(
            rule=self.name,
            weight_transport="random",
            reads=("pre", "post", "broadcast"),
            global_signal=self.classes,
            error_signal=f"δ_l = (B_lᵀ e) ⊙ f′(a_l): the output error e broadcast through {feedback_phrase(self.config)}",
            phases_per_step=3 if self.config.learned else 2,
            inference_iterations=0,
            locks_removed=("backward",),
            reference="Nøkland 2016, NeurIPS" + ("; weight mirror, Akrout et al. 2019, NeurIPS" if self.config.learned else ""),
        )

    def feedback_pairs(self, model: nn.Module) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(B_l, W_L⋯W_l) for a model whose converted layers are a chain of Linear layers (B_l
        stands for the linear part of the path from block l to the output); none otherwise."""
        if not all(isinstance(layer, nn.Linear) for layer in self.layers_):
            return []
        weights = [layer.weight for layer in self.layers_]
        return [(f"B{index}", slot.weight, weight_product(weights[index:])) for index, slot in enumerate(self.feedback) if slot.ready]
