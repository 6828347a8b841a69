"""Plausibility cards: what a rule's weight update is allowed to read, stated so it can be tested.

The vocabulary lives here, beside the building blocks and without torch, so that reading a
card from a results file (`plasticity.results`, the report) needs no rule; every rule declares
its card through `plasticity.rules` (`Rule.card()`), which re-exports this module.

A card is a declaration; `plasticity.observe.plausibility.verify` checks it by
perturbation (it changes what the card says the update must not read and requires a
bit-identical update, and changes what it says the update reads and requires a change).

Vocabulary (for the update of one layer l, activities held fixed):
  weight_transport — how the error reaching layer l depends on the forward weights of the
      layers above: "exact" (reads W_{l+1}ᵀ, backprop), "sign" (reads only sign(W_{l+1})),
      "random" (feedback matrices of the rule's own stand in for the forward weights: fixed and
      random, Lillicrap et al. 2016, or learned from activity without reading a forward weight,
      as a weight mirror does, Akrout et al. 2019), "none" (no feedback weights standing in for
      forward weights at all).
  reads — subset of READS:
      "pre": the layer's input h_{l−1};  "post": its pre-activation a_l / output h_l;
      "own_weights": its own W_l;  "error_from_above": activities of the layers above l (an
      error chain, layer by layer);  "broadcast": a signal computed at the output and sent
      identically to every hidden layer.
  global_signal — number of scalars in that broadcast (0 if there is none).
  phases_per_step — distinct computation phases per update (forward, backward, relaxation...).
  inference_iterations — relaxation steps before an update (0 for single-pass rules).
  locks_removed — which of Jaderberg et al.'s (2017) locks the rule removes: "forward",
      "update", "backward".

A card describes the learning signal (`Rule.directions`). The optimizer that applies it (SGD
momentum, Adam, weight decay) keeps per-synapse state only, is the same for every rule, and is
not part of the card.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

TRANSPORTS = ("exact", "sign", "random", "none")
READS = ("pre", "post", "own_weights", "error_from_above", "broadcast")
LOCKS = ("forward", "update", "backward")


@dataclass(frozen=True)
class PlausibilityCard:
    rule: str
    weight_transport: str
    reads: tuple[str, ...]
    global_signal: int
    error_signal: str
    phases_per_step: int
    inference_iterations: int
    locks_removed: tuple[str, ...]
    reference: str

    def __post_init__(self) -> None:
        if self.weight_transport not in TRANSPORTS:
            raise ValueError(f"weight_transport must be one of {TRANSPORTS}; got {self.weight_transport!r}")
        unknown = set(self.reads) - set(READS)
        if unknown:
            raise ValueError(f"unknown reads {sorted(unknown)}; known: {READS}")
        unknown = set(self.locks_removed) - set(LOCKS)
        if unknown:
            raise ValueError(f"unknown locks {sorted(unknown)}; known: {LOCKS}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["reads"] = list(self.reads)
        out["locks_removed"] = list(self.locks_removed)
        return out

    def rows(self) -> list[tuple[str, str]]:
        """(property, value) rows for a table."""
        return [
            ("weight transport", self.weight_transport),
            ("update reads", ", ".join(self.reads)),
            ("error signal", self.error_signal),
            ("global signal size", str(self.global_signal)),
            ("phases per step", str(self.phases_per_step)),
            ("inference iterations", str(self.inference_iterations)),
            ("locks removed", ", ".join(self.locks_removed) or "none"),
            ("reference", self.reference),
        ]

    def to_markdown(self) -> str:
        lines = [f"| {self.rule} | |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in self.rows()]
        return "\n".join(lines)


def cards_table(cards: list[PlausibilityCard], measured: list[dict | None] | None = None) -> str:
    """One markdown table, a column per rule; with measurements, rows for what was measured."""
    measured = measured or [None] * len(cards)
    lines = ["| | " + " | ".join(f"`{c.rule}`" for c in cards) + " |", "|---" * (len(cards) + 1) + "|"]
    for index, (key, _) in enumerate(cards[0].rows()):
        lines.append(f"| {key} | " + " | ".join(c.rows()[index][1] for c in cards) + " |")
    if any(m is not None for m in measured):
        for key in ("weight_transport", "reads", "no_weight_transport", "layer_local"):
            label = "measured " + key.replace("_", " ")
            values = ["—" if m is None else (", ".join(m[key]) if isinstance(m[key], list) else str(m[key])) for m in measured]
            lines.append(f"| {label} | " + " | ".join(values) + " |")
    return "\n".join(lines)
