"""Rules that are not gradients: the interface of the spiking rules (`stdp`, `rstdp`).

A spiking rule learns from events, not from a loss, and needs no optimizer: its amplitudes are
its learning rates, and momentum or Adam would move weights without a spike. One learning step
(`step`) on a batch (x, y) is

  presentation = present(net, x)         input spike events and the excitatory spikes they cause (W fixed)
  ΔW = change(net, presentation, y)      = bound(W + plasticity(net, presentation, y)) − W   (pure)
  W ← W + ΔW                             in place, under no_grad (`update`)
  θ, the read-out's statistics, the counter    homeostasis and labels after W moved (`after_step`)

`plasticity` is the rule's raw change (pair STDP, or its three-factor form) and `bound` its
constraints on W (clipping, normalisation); `change` changes nothing, so the plausibility probes
(`plasticity.observe.plausibility_spiking`) call it on edited spike records.

A rule is an `nn.Module` whose state is buffers: `presented` (batches presented so far, which
seeds the Poisson draws) and whatever a rule adds (rstdp's running mean reward), so that
`state_dict()` / `load_state_dict()` resume a run and `.to()` moves it. The network it trains
(`plasticity.spiking.SpikingNet`: W, θ and the read-out's statistics, an `nn.Module` of its own)
is held by the rule but is not a submodule: the rule's `state_dict` holds only the rule's state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.data import Dataset
from plasticity.errors import ConfigError
from plasticity.rules.base import RuleFacts, StepInfo
from plasticity.spiking.network import LIFConfig, Presentation, SpikingNet


@dataclass
class SpikingConfig(LIFConfig):
    """What every spiking rule is set with: the neuron constants of the network it trains (every
    field of `LIFConfig`, e.g. dt, duration_ms, theta_plus) and the read-out's memory.

    label_memory: presentations over which the response statistics behind the neuron labels
        fade by e (0: never fade).
    """

    label_memory: float = 8000.0

    def validate(self) -> None:
        super().validate()
        if self.label_memory < 0:
            raise ConfigError(f"label_memory must be ≥ 0; got {self.label_memory}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def neuron(self) -> LIFConfig:
        """The network's constants taken from this config."""
        return LIFConfig(**{f.name: getattr(self, f.name) for f in fields(LIFConfig)})


class SpikingRule(RuleFacts, nn.Module):
    """Base class of the rules that train a `SpikingNet` by plasticity, without an optimizer.

    Built for one network (`net`), which it holds but does not own as a submodule; `seed` fixes
    the Poisson draws of every presentation. The config is given whole (`config`) or as keywords
    (`STDP(net, eta_post=0.02)`), not both.
    """

    network: ClassVar[str] = "spiking"
    config_class: ClassVar[type[SpikingConfig]] = SpikingConfig  # type: ignore[assignment]
    # The event counts of every step (`report`), summed per epoch for throughput.
    counters: ClassVar[tuple[str, ...]] = ("input_spikes", "output_spikes", "synaptic_events")

    def __init__(self, net: SpikingNet, config: SpikingConfig | None = None, seed: int = 0, **options: Any) -> None:
        super().__init__()
        config = self.checked_config(config, options)
        if not isinstance(net, SpikingNet):
            raise TypeError(f"{self.name} trains a plasticity.spiking.SpikingNet, not a {type(net).__name__}")
        self.config = config
        self.seed = seed
        # The network is held outside the module tree: saving or moving the rule leaves it alone.
        object.__setattr__(self, "net", net)
        self.register_buffer("presented", torch.zeros((), dtype=torch.int64))  # batches presented: indexes the Poisson draws
        self.pinned_broadcast: torch.Tensor | None = None  # set by `pin_broadcast`
        with torch.no_grad():
            self.bound(net.weight)  # W starts within the rule's bounds

    @classmethod
    def build_net(cls, config: SpikingConfig, data: Dataset, hidden: tuple[int, ...], activation: str, seed: int) -> SpikingNet:
        """Diehl & Cook's network with `hidden` = (excitatory neurons,) for `data`.

        The input range maps the data's training minimum and maximum to intensities 0 and 1.
        """
        if len(hidden) != 1:
            raise ConfigError(f"{cls.name} trains one layer of excitatory neurons: give one width (--hidden 100); got {list(hidden)}")
        if not isinstance(config, cls.config_class):
            raise TypeError(f"{cls.name} needs a {cls.config_class.__name__}, got {type(config).__name__}")
        x = data.train.x
        if not isinstance(x, torch.Tensor):
            raise ConfigError(f"dataset {data.name!r} holds text; a spiking network needs numeric inputs")
        return SpikingNet(data.n_features, hidden[0], data.n_classes, low=float(x.min()), high=float(x.max()), config=config.neuron(), seed=seed)

    # ----------------------------------------------------------------------------- events
    def present(self, net: SpikingNet, x: torch.Tensor) -> Presentation:
        """Show the batch to the network in learning mode (thresholds adapting within it).

        The Poisson draws of the k-th batch come from a generator seeded by (seed, k), so a run
        resumed from a checkpoint draws what it would have drawn.
        """
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.presented))
        return net.present(x, generator, adapt=True)

    # ----------------------------------------------------------------------------- plasticity
    def plasticity(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> torch.Tensor:
        """The rule's raw change of W (inputs × neurons) for one recorded presentation, before
        `bound`. Must not change `net` or the rule."""
        raise NotImplementedError

    def bound(self, weight: torch.Tensor) -> torch.Tensor:
        """Bring `weight` (changed in place) within the rule's constraints; returns it.
        Default: none."""
        return weight

    def change(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> torch.Tensor:
        """ΔW = bound(W + plasticity) − W for one recorded presentation. Pure: changes neither
        `net` nor the rule."""
        weight = net.weight.detach()
        return self.bound(weight + self.plasticity(net, presentation, y)) - weight

    @torch.no_grad()
    def update(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> torch.Tensor:
        """W ← W + ΔW in place (`change`); returns ΔW."""
        delta = self.change(net, presentation, y)
        net.weight.add_(delta)
        return delta

    def after_step(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> None:
        """Homeostasis, the read-out's statistics and the draw counter, after W moved."""
        net.adapt_thresholds(presentation.counts)
        memory = self.config.label_memory
        net.record_responses(presentation.counts, y, keep=math.exp(-len(y) / memory) if memory > 0 else 1.0)
        self.presented += 1

    def step(self, net: SpikingNet, x: torch.Tensor, y: torch.Tensor) -> StepInfo:
        """One learning step on the batch (x, y): present it, apply the plasticity it caused,
        then `after_step`."""
        if net is not self.net:
            raise ConfigError("this rule was built for another network; build one rule per network")
        presentation = self.present(net, x)
        info = self.report(net, presentation, y, self.update(net, presentation, y))
        self.after_step(net, presentation, y)
        return info

    @torch.no_grad()
    def report(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor, delta: torch.Tensor) -> StepInfo:
        """What a step on `presentation` reports: the vote's cross-entropy and scores, ‖ΔW‖, and
        the presentation's spike and synaptic-event counts."""
        logits = net.vote(presentation.counts)
        return StepInfo(
            loss=F.cross_entropy(logits, y),
            logits=logits,
            update_norm=float(torch.nn.utils.get_total_norm([delta])),
            extras={
                "spikes_per_sample": float(presentation.counts.sum(dim=1).mean()),
                "shown_again": int((presentation.rate_hz > net.config.max_rate_hz).sum()),
                "input_spikes": len(presentation.inputs),
                "output_spikes": int(presentation.counts.sum()),
                # Each input spike reaches the plastic synapses of all N neurons.
                "synaptic_events": len(presentation.inputs) * net.n_neurons,
            },
        )

    def trained(self, net: SpikingNet) -> list[torch.Tensor]:
        """The tensors the rule changes by plasticity: W."""
        return [net.weight]

    def logits(self, net: SpikingNet, x: torch.Tensor) -> torch.Tensor:
        """Class scores for `x` at evaluation: the vote of the labelled neurons (`net(x)`)."""
        return net(x)

    # ----------------------------------------------------------------------------- broadcast
    def broadcast(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> torch.Tensor | None:
        """The third factor sent identically to every synapse for this presentation (batch ×
        size), or None (the default: the rule has none)."""
        return None

    def signal(self, net: SpikingNet, presentation: Presentation, y: torch.Tensor) -> torch.Tensor | None:
        """The broadcast the update uses: the pinned one (`pin_broadcast`), else `broadcast`."""
        return self.broadcast(net, presentation, y) if self.pinned_broadcast is None else self.pinned_broadcast

    @contextmanager
    def pin_broadcast(self, signal: torch.Tensor) -> Iterator[None]:
        """Within the block the update uses `signal` as the broadcast instead of computing it.

        This is how the plausibility check holds the third factor fixed while it perturbs the
        spikes: whatever still changes an update then reached it by another path.
        """
        previous, self.pinned_broadcast = self.pinned_broadcast, signal
        try:
            yield
        finally:
            self.pinned_broadcast = previous

    # ----------------------------------------------------------------------------- description
    def card(self) -> PlausibilityCard:
        """The rule's plausibility card for its current configuration."""
        raise NotImplementedError

    def rule_state(self) -> dict[str, torch.Tensor]:
        """The rule's own state by name (its buffers, the tensors themselves)."""
        return dict(self.named_buffers())

    def load_rule_state(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state)

    def describe(self) -> dict[str, Any]:
        return {"rule": self.name, "seed": self.seed, "config": asdict(self.config)}

    def extra_repr(self) -> str:
        return f"seed={self.seed}, presented={int(self.presented)}"
