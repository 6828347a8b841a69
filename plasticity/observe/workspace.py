"""Observer "workspace": what the workspace did each epoch, and the synergy of what it admitted.

Per epoch (for the `workspace` rule; other rules get an empty entry):
  ignition_rate — fraction of broadcast opportunities at which the packet was broadcast
      (the gate consolidated); decisions — counts of consolidate / ignore / reject;
  winners — per module (hidden readouts first, the output last), the fraction of samples
      for which it entered the workspace; salience and gains — epoch means per module / layer;
  packet_norm — mean surprise of the packet;
  rejected_steps — the steps of the epoch (0-based, in the trainer's batch order) whose packet the
      gate rejected as anomalous: with the epoch's batch order (`plasticity.train.batch_order`)
      they name the training samples the gate refused (docs/workspace.md, H1);
  synergy — Gaussian two-source PID with minimum-mutual-information redundancy (Barrett 2015)
      of the two most often admitted modules' error signals about the target, on a fixed
      probe of training rows: how much of what the packet carries about the label exists only
      in the two errors jointly. Targets and errors are one-hot / softmax-minus-one-hot
      vectors, which sum to zero; their last coordinate is dropped to keep covariances regular.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from plasticity.observe.synergy import gaussian_pid_mmi


@dataclass
class WorkspaceMonitorConfig:
    probe_size: int = 1000
    seed: int = 0


class WorkspaceMonitor:
    name = "workspace"

    def __init__(self, config: WorkspaceMonitorConfig | None = None) -> None:
        self.config = config or WorkspaceMonitorConfig()
        self._reset()

    def _reset(self) -> None:
        self.decisions: Counter[str] = Counter()
        self.winners: list[list[float]] = []
        self.salience: list[list[float]] = []
        self.gains: list[list[float]] = []
        self.packet: list[float] = []
        self.steps = 0
        self.rejected: list[int] = []

    def on_step(self, net: Any, rule: Any, x: torch.Tensor, y: torch.Tensor, info: Any) -> None:
        extras = info.extras
        if "admitted" not in extras:
            return
        self.decisions[extras["decision"]] += 1
        if extras["decision"] == "reject":
            self.rejected.append(self.steps)
        self.steps += 1
        self.winners.append(extras["admitted"])
        self.salience.append(extras["salience"])
        self.gains.append(extras["gains"])
        self.packet.append(extras["packet_norm"])

    def on_epoch_end(self, net: Any, rule: Any, epoch: int, data: Any) -> dict[str, Any]:
        if not self.winners:
            return {}
        opportunities = sum(v for k, v in self.decisions.items() if k != "wait")
        winners = np.mean(self.winners, axis=0)
        out = {
            "ignition_rate": self.decisions["consolidate"] / opportunities if opportunities else None,
            "decisions": dict(self.decisions),
            "winners": winners.tolist(),
            "salience": np.mean(self.salience, axis=0).tolist(),
            "gains": np.mean(self.gains, axis=0).tolist(),
            "packet_norm": float(np.mean(self.packet)),
            "rejected_steps": self.rejected,
            "synergy": self._synergy(net, rule, data, winners),
        }
        self._reset()
        return out

    def _synergy(self, net: Any, rule: Any, data: Any, winners: np.ndarray) -> dict[str, Any] | None:
        if len(winners) < 2:
            return None
        first, second = (int(i) for i in np.argsort(-winners)[:2])
        n = len(data.train.y)
        index = torch.randperm(n, generator=torch.Generator().manual_seed(self.config.seed))[: min(self.config.probe_size, n)]
        x, y = data.train.x[index], data.train.y[index]
        device = next(net.parameters()).device
        errors = rule.modules(net, x.to(device), y.to(device)).error.detach().cpu()
        y = y.cpu()
        target = torch.nn.functional.one_hot(y, errors.shape[2]).double()[:, :-1].numpy()
        sources = [errors[m].double()[:, :-1].numpy() * len(y) for m in (first, second)]
        pid = gaussian_pid_mmi(sources[0], sources[1], target)
        return {
            "modules": [first, second],
            "synergy": pid.synergy,
            "redundancy": pid.redundancy,
            "unique": [pid.unique_1, pid.unique_2],
            "mutual_information": pid.mi_joint,
            "estimator": pid.estimator,
        }
