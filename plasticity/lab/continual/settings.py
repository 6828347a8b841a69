"""Hyperparameters of every method per dataset, as chosen on held-out data by `selection.py`.

The values in `CHOSEN` were produced by `plasticity continual --data NAME --select` (the val
split for CLINC150, a stratified 20% of train for digits and mnist-t10k; never the test split)
and are listed, with the grid, in docs/memory.md. Running with `--select` chooses them again in
the same run instead of reading this table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from plasticity.lab.continual.baselines import HeadConfig


@dataclass(frozen=True)
class Settings:
    """memory: StructuralMemory parameters (random_state is the run's seed); head: the backprop
    head's training; knn_k: neighbours of k-NN; replay_budget: replay's buffer (vectors) when
    the structural memory does not run to size it; logreg_c: the logistic regression's inverse
    L2 strength C."""

    memory: dict[str, Any] = field(default_factory=dict)
    head: HeadConfig = HeadConfig()
    knn_k: int = 10
    replay_budget: int = 1000
    logreg_c: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory": dict(self.memory),
            "head": asdict(self.head),
            "knn_k": self.knn_k,
            "replay_budget": self.replay_budget,
            "logreg_c": self.logreg_c,
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> Settings:
        """Settings from `to_dict`'s object; runs stored before logreg existed lack `logreg_c`."""
        return cls(
            dict(payload["memory"]),
            HeadConfig(**payload["head"]),
            int(payload["knn_k"]),
            int(payload["replay_budget"]),
            float(payload.get("logreg_c", cls.logreg_c)),
        )


CHOSEN: dict[str, Settings] = {
    "clinc150": Settings(
        memory={
            "rank": 3,
            "evolution_threshold": 2.0,
            "beam": None,
            "topic_threshold": 1.3,
            "own_covariance": 0.1,
            "shrinkage": 0.3,
            "radius_prior": 1000.0,
            "tolerance": 1.4546,
        },
        head=HeadConfig(lr=0.01, epochs=10),
        knn_k=10,
        logreg_c=10.0,
    ),
    "digits": Settings(
        memory={"rank": 3, "evolution_threshold": 1.0, "beam": 3, "topic_threshold": 0.8, "own_covariance": 0.2, "shrinkage": 0.3, "tolerance": 1.5759},
        head=HeadConfig(lr=0.01, epochs=30),
        knn_k=5,
        logreg_c=10.0,
    ),
    "mnist-t10k": Settings(
        memory={"rank": 20, "evolution_threshold": 2.0, "beam": 3, "topic_threshold": 1.0, "own_covariance": None, "shrinkage": 0.02, "tolerance": 1.4594},
        head=HeadConfig(lr=0.001, epochs=30),
        knn_k=3,
        logreg_c=0.1,
    ),
}
