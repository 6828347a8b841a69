"""Plausibility cards of spiking rules, checked by perturbing recorded spike trains.

A spiking rule's update is computed from a recorded presentation (`Presentation`: input spike
events and excitatory spikes), the way an MLP rule's is computed from a clamped trace. The
probes edit that record, or the weights, and recompute with everything else held fixed:

  pre          remove input i's spikes: the raw STDP change of row i must change (the update
               reads presynaptic spikes), and no other row may (local on the presynaptic side)
  post         remove neuron j's spikes: column j must change, no other column may
  own_weights  rescale neuron j's incoming weights: its update changes (bounds, weight
               dependence, normalisation of its own synapses); another neuron's may not
  target       move every label to the next class, with the broadcast pinned: no change
               (labels may reach plasticity only through a declared broadcast)
  broadcast    perturb the broadcast third factor (rules that have one): the update changes
  silent       a presentation without any excitatory spike changes no weight (event-driven)

"Raw" is `rule.plasticity` (before clipping and normalisation, which couple a neuron's own
synapses by design); the other probes use the full change `rule.change` (ΔW after the bounds).
Every probe but `broadcast` runs with the broadcast pinned to its reference value, as for MLP
rules. A single layer has no layers above it, so weight transport is "none" unless another
neuron's weights reach an update.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import torch

from plasticity.card import PlausibilityCard
from plasticity.spiking.network import Presentation, SpikingNet

if TYPE_CHECKING:
    from plasticity.rules.spiking import SpikingRule


@dataclass
class SpikingMeasured:
    """What each probe changed: True where the named part of the update changed."""

    pre: bool
    pre_other_rows: bool
    post: bool
    post_other_columns: bool
    own_weights: bool
    other_weights: bool
    target: bool
    broadcast: bool
    silent: bool
    size: int | None

    @property
    def weight_transport(self) -> str:
        return "exact" if self.other_weights else "none"

    @property
    def reads(self) -> tuple[str, ...]:
        found = [name for name in ("pre", "post", "own_weights") if getattr(self, name)]
        return (*found, "broadcast") if self.broadcast else tuple(found)

    @property
    def no_weight_transport(self) -> bool:
        return not self.other_weights

    @property
    def layer_local(self) -> bool:
        """Each synapse reads its own pre and post neuron (plus a broadcast) and nothing else."""
        return not (self.pre_other_rows or self.post_other_columns or self.other_weights or self.target)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(weight_transport=self.weight_transport, reads=list(self.reads), no_weight_transport=self.no_weight_transport, layer_local=self.layer_local)
        return out


def measure_spiking(rule: SpikingRule, batch: int = 8, seed: int = 0) -> SpikingMeasured:
    """Probe a spiking rule on a copy of its network with random intensities and labels.

    The copy's neurons are first labelled from the probe presentation, so that a third factor
    read through labels (rstdp's "packet" modulator) has something to act on.
    """
    rule = copy.deepcopy(rule)
    net = rule.net
    generator = torch.Generator().manual_seed(seed)
    n_in, n_classes = net.sizes[0], net.sizes[-1]
    x = net.low + (net.high - net.low) * torch.rand(batch, n_in, generator=generator)
    y = torch.randint(0, n_classes, (batch,), generator=generator)
    record = rule.present(net, x)
    if not record.spikes.any():
        raise RuntimeError("the probe presentation produced no excitatory spike; nothing to measure")
    net.record_responses(record.counts, y)
    modulator = rule.broadcast(net, record, y)

    def raw(p: Presentation) -> torch.Tensor:
        # The broadcast is pinned: removing a neuron's spikes changes the vote and so the
        # modulator (that is its job); the question is whether anything else spreads.
        if modulator is None:
            return rule.plasticity(net, p, y)
        with rule.pin_broadcast(modulator):
            return rule.plasticity(net, p, y)

    def full(p: Presentation, target: torch.Tensor = y, on: SpikingNet = net, signal: torch.Tensor | None = modulator) -> torch.Tensor:
        if signal is None:
            return rule.change(on, p, target)
        with rule.pin_broadcast(signal):
            return rule.change(on, p, target)

    base_raw, base = raw(record), full(record)
    # pre: the input with the most spikes loses them.
    i = int(torch.bincount(record.inputs.index, minlength=n_in).argmax())
    edited = replace(record, inputs=record.inputs.select(record.inputs.index != i))
    changed = raw(edited) != base_raw
    pre, pre_other = bool(changed[i].any()), bool(torch.cat([changed[:i], changed[i + 1 :]]).any())
    # post: the neuron with the most spikes loses them.
    j = int(record.counts.sum(dim=0).argmax())
    spikes = record.spikes.clone()
    spikes[:, :, j] = False
    changed = raw(replace(record, spikes=spikes)) != base_raw
    post, post_other = bool(changed[:, j].any()), bool(torch.cat([changed[:, :j], changed[:, j + 1 :]], dim=1).any())
    # weights: neuron j's incoming weights rescaled (on a copy of the network).
    other = copy.deepcopy(net)
    with torch.no_grad():
        other.weight[:, j] *= 0.5 + torch.rand(n_in, generator=generator)
    changed = full(record, on=other) != base
    own, other_weights = bool(changed[:, j].any()), bool(torch.cat([changed[:, :j], changed[:, j + 1 :]], dim=1).any())
    target = bool((full(record, target=(y + 1) % n_classes) != base).any())
    broadcast = modulator is not None and bool((full(record, signal=modulator + torch.randn(modulator.shape, generator=generator)) != base).any())
    silent = replace(record, spikes=torch.zeros_like(record.spikes))
    return SpikingMeasured(
        pre=pre,
        pre_other_rows=pre_other,
        post=post,
        post_other_columns=post_other,
        own_weights=own,
        other_weights=other_weights,
        target=target,
        broadcast=broadcast,
        silent=bool(raw(silent).any()),
        size=None if modulator is None else int(modulator.shape[1]),
    )


def declared_vs_measured(card: PlausibilityCard, weight_transport: str, reads: tuple[str, ...]) -> list[str]:
    """Where a card's weight transport and reads differ from the measured ones (any network)."""
    problems = []
    if card.weight_transport != weight_transport:
        problems.append(f"card says weight transport {card.weight_transport!r}, measured {weight_transport!r}")
    declared, found = set(card.reads), set(reads)
    for item in sorted(declared - found):
        problems.append(f"card says the update reads {item!r}, but perturbing it changed nothing")
    for item in sorted(found - declared):
        problems.append(f"the update reads {item!r}, which the card does not declare")
    return problems


def verify_spiking(card: PlausibilityCard, measured: SpikingMeasured) -> list[str]:
    """Disagreements between a spiking rule's card and the measurement (empty: the card holds)."""
    problems = declared_vs_measured(card, measured.weight_transport, measured.reads)
    if measured.pre_other_rows or measured.post_other_columns:
        problems.append("a synapse's update reads the spikes of neurons it does not connect")
    if measured.target:
        problems.append("the update reads the labels by a path other than the declared broadcast")
    if measured.silent:
        problems.append("weights change in a presentation without postsynaptic spikes (not event-driven)")
    if card.global_signal != (measured.size or 0):
        problems.append(f"card declares a broadcast of size {card.global_signal}, the rule broadcasts {measured.size or 0} numbers per sample")
    return problems
