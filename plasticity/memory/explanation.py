"""What `StructuralMemory.explain` returns: the path, the distances, the nearest exemplars.

Plain dataclasses (JSON-ready through `to_dict`) and a text rendering used by the docs and the
CLI, so that every decision can be read as "which concepts did this query pass through, how far
was it from each, which stored examples does it resemble, and why was it (not) answered".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PathStep:
    """One node on the path from the root to the matched concept.

    kind: "root", "topic" (a label-mixed group of concepts) or "concept" (label-pure).
    distance: the query's residual distance δ to this node (to the centroid for the root and
        topics, to the affine subspace for concepts).
    radius: the node's radius ρ̂ (RMS residual distance of its own samples).
    abstention_radius: for concepts, the radius shrunk toward the pooled one, ρ, that the
        abstention score divides by; None for the root and topics.
    labels: the node's label histogram, largest first (at most 5 entries).
    """

    node: int
    kind: str
    depth: int
    count: int
    distance: float
    radius: float
    abstention_radius: float | None
    labels: list[tuple[Any, int]]
    created: int


@dataclass(frozen=True)
class Exemplar:
    """A stored training sample of a concept: its key (e.g. the query text) and distance to the query."""

    key: str
    label: Any
    concept: int
    distance: float


@dataclass(frozen=True)
class Explanation:
    """Why one query got its answer.

    prediction: the returned label, or the unknown label when the memory abstains.
    abstained: True when the abstention score exceeds the tolerance.
    abstention_score: min over concepts (in the beam) of δ / ρ, the query's distance in radii.
    runner_up: the best other class and √(−its decision value), to show the margin: its residual
        distance δ with own_covariance=None, else its distance in the covariance model,
        √((x − μ)ᵀΣ⁻¹(x − μ) + log det Σ − log det A), in other units than the path's δ.
    """

    prediction: Any
    abstained: bool
    abstention_score: float
    tolerance: float | None
    path: list[PathStep]
    runner_up: tuple[Any, float] | None
    exemplars: list[Exemplar]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        verdict = "abstains (unknown)" if self.abstained else f"predicts {self.prediction!r}"
        tolerance = "no tolerance set" if self.tolerance is None else f"tolerance {self.tolerance:g}"
        lines = [f"{verdict}; abstention score {self.abstention_score:.3f} radii ({tolerance})"]
        for step in self.path:
            top = ", ".join(f"{label}: {n}" for label, n in step.labels[:3])
            shrunk = "" if step.abstention_radius is None else f" (abstention radius {step.abstention_radius:.3f})"
            lines.append(
                f"  {'  ' * step.depth}{step.kind} #{step.node}: distance {step.distance:.3f}, radius {step.radius:.3f}{shrunk}, "
                f"{step.count} samples [{top}] (created in call {step.created})"
            )
        if self.runner_up is not None:
            lines.append(f"  runner-up class {self.runner_up[0]!r} at distance {self.runner_up[1]:.3f}")
        for exemplar in self.exemplars:
            lines.append(f"  exemplar ({exemplar.label}, concept #{exemplar.concept}, distance {exemplar.distance:.3f}): {exemplar.key}")
        return "\n".join(lines)
