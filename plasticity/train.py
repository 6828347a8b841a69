"""The training loop shared by every rule: epochs, evaluation, observers, checkpoints.

`Trainer` takes objects (a model, a rule, an optimizer, data, observers); `Trainer.from_config`
and `train` build them from names first (`plasticity.build`). For a rule that attaches to the
model (`GradientRule`: every rule but the spiking ones) one learning step is the plain PyTorch
loop, visible in `Trainer.step`:

    optimizer.zero_grad(); loss, info = rule.loss_and_info(model, x, y); loss.backward()
    if info.applied: optimizer.step()    # the workspace's ignition gate may withhold a step

A spiking rule changes its network's weights itself (`SpikingRule.step`) and has no optimizer.

Determinism: the network is initialised from `seed`, the rule's own randomness from `seed`,
and the batch order of epoch e from `seed` and e alone, so the same seed gives bit-identical
weights, and a run resumed from a checkpoint continues exactly as if it had not stopped.

`epoch_seconds` of an epoch is the wall time of its learning steps only (no evaluation, no
observers). A run's `epoch_seconds` is the median over its epochs: a shared machine's bursts of
load hit single epochs, and the median keeps them out of the time ratios between rules.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

import plasticity
from plasticity.checkpoint import load_checkpoint, save_checkpoint
from plasticity.build import TrainConfig, build_run
from plasticity.data import Dataset, load
from plasticity.io import atomic_write_json
from plasticity.nets import linear_sizes
from plasticity.observe.base import Observer
from plasticity.rules.attach import GradientRule
from plasticity.rules.base import StepInfo
from plasticity.rules.spiking import SpikingRule

RESULTS = "results.json"
CHECKPOINT = "checkpoint.safetensors"


class Diverged(RuntimeError):
    """The loss or the weights became NaN or infinite."""


def versions() -> dict[str, str]:
    return {
        "plasticity": plasticity.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "threads": str(torch.get_num_threads()),
    }


def batch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of the training set used in `epoch` (depends on seed and epoch only)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


@torch.no_grad()
def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, batch_size: int = 2048, device: torch.device | str = "cpu"
) -> tuple[float, float]:
    """(accuracy in [0, 1], mean cross-entropy) of the class scores `model(x)` on (x, y).

    `model` is a network, or a rule's `logits` bound to its network (`Trainer` passes
    `partial(rule.logits, net)`, so rules that classify by more than the plain pass are
    evaluated the way they classify).
    """
    correct, loss = 0, 0.0
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size].to(device))
        target = y[start : start + batch_size].to(device)
        correct += int((logits.argmax(dim=1) == target).sum())
        loss += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
    return correct / len(y), loss / len(y)


def model_description(model: nn.Module, config: TrainConfig) -> dict[str, Any]:
    """What results.json says of the network: its class and size, and for the MLP its layer
    widths and the run's non-linearity (a spiking network: its own `sizes`)."""
    described: dict[str, Any] = {"class": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters())}
    widths = linear_sizes(model)
    sizes = getattr(model, "sizes", None) or widths
    if sizes is not None:
        described["sizes"] = list(sizes)
    if widths is not None:  # the MLP
        described["activation"] = config.activation
    return described


class Trainer:
    """Trains `model` with `rule` and `optimizer` on `data`; see `train` for the usual entry point.

    config: the run's description by names (settings left as None take their defaults,
    `TrainConfig.resolved`), kept in results.json and compared on resume; its epochs, batch size
    and seed (which fixes the batch order) drive the loop. `from_config` builds the model, rule
    and optimizer from it.
    """

    def __init__(
        self,
        model: nn.Module,
        rule: GradientRule | SpikingRule,
        optimizer: torch.optim.Optimizer | None,
        data: Dataset,
        config: TrainConfig,
        observers: Sequence[Observer] = (),
        out_dir: str | Path | None = None,
        progress: bool = True,
    ) -> None:
        config.validate()
        config = config.resolved()
        if isinstance(data.train.x, list):
            raise ValueError(f"dataset {data.name!r} holds text; encode it first (plasticity.memory.encoders)")
        if isinstance(rule, GradientRule):
            rule.check_model(model)
        if observers and rule.network != "mlp":
            raise ValueError(f"observers read the activities of a model with Linear / Conv layers; {rule.name} trains a {rule.network} network")
        self.model, self.rule, self.optimizer, self.data, self.config = model, rule, optimizer, data, config
        # Batches go where the model's parameters are.
        self.device = next(iter(model.parameters()), torch.empty(0)).device
        self.observers = list(observers)
        self.reads_update_norm = any(getattr(o, "reads_update_norm", False) for o in self.observers)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.epochs: list[dict[str, Any]] = []
        self.status = "running"
        self.message = ""

    @classmethod
    def from_config(
        cls,
        config: TrainConfig,
        data: Dataset | None = None,
        observers: Sequence[Observer] = (),
        out_dir: str | Path | None = None,
        progress: bool = True,
    ) -> "Trainer":
        """A trainer for the run `config` describes (data loaded unless given)."""
        config.validate()
        data = data if data is not None else load(config.data, root=config.root)
        run = build_run(config, data)
        return cls(run.model, run.rule, run.optimizer, data, config, observers, out_dir, progress)

    @property
    def net(self) -> nn.Module:
        return self.model

    # ----------------------------------------------------------------------------- results
    def results(self) -> dict[str, Any]:
        data = self.data
        last = self.epochs[-1] if self.epochs else {}
        return {
            "config": self.config.to_dict(),
            "rule": self.rule.describe(),
            "card": self.rule.card().to_dict(),
            "seed": self.config.seed,
            "dataset": {
                "name": data.name,
                "n_train": len(data.train),
                "n_test": len(data.test),
                "n_features": data.n_features,
                "n_classes": data.n_classes,
                "source": data.source,
            },
            "network": model_description(self.model, self.config),
            "versions": versions(),
            "status": self.status,
            "message": self.message,
            "test_accuracy": last.get("test_accuracy"),
            "epoch_seconds": float(np.median([e["epoch_seconds"] for e in self.epochs])) if self.epochs else None,
            "epochs": self.epochs,
        }

    def _save(self, epoch: int, checkpoint: bool) -> None:
        """Write the results, then the checkpoint: an interruption between the two leaves results
        one epoch ahead of the checkpoint, and `resume` redoes that epoch (the other order would
        leave the checkpoint ahead, and that epoch's entry would be lost)."""
        if self.out_dir is None:
            return
        atomic_write_json(self.out_dir / RESULTS, self.results())
        if checkpoint:
            save_checkpoint(self.out_dir / CHECKPOINT, self.model, self.rule, self.optimizer, epoch, self.config.to_dict())

    def resume(self) -> int:
        """Load the checkpoint in out_dir if there is one; returns the number of finished epochs."""
        if self.out_dir is None or not (self.out_dir / CHECKPOINT).exists():
            return 0
        epoch, saved = load_checkpoint(self.out_dir / CHECKPOINT, self.model, self.rule, self.optimizer)
        mine = self.config.to_dict()
        differs = {k for k in mine if k != "epochs" and saved.get(k) != mine[k]}
        if differs:
            raise ValueError(
                f"checkpoint in {self.out_dir} was made with different settings ({', '.join(sorted(differs))}); "
                "use another --out folder or the same settings"
            )
        previous = json.loads((self.out_dir / RESULTS).read_text(encoding="utf-8")) if (self.out_dir / RESULTS).exists() else {}
        self.epochs = [e for e in previous.get("epochs", []) if e["epoch"] <= epoch]
        return epoch

    # ----------------------------------------------------------------------------- training
    def train_epoch(self, epoch: int) -> tuple[float, float, dict[str, float]]:
        """The learning steps of one epoch: (mean training loss, seconds of the steps alone, the
        rule's counters summed). Raises `Diverged` on a non-finite loss or weight."""
        x, y = self.data.train.x, self.data.train.y
        order = batch_order(len(y), self.config.seed, epoch)
        losses, seconds = [], 0.0  # the losses are read once, at the end: no per-step wait
        counters = dict.fromkeys(self.rule.counters, 0.0)
        starts = range(0, len(y), self.config.batch_size)
        batches = tqdm(starts, desc=f"epoch {epoch}", unit="batch", disable=not self.progress, leave=False, mininterval=0.5)
        for start in batches:
            index = order[start : start + self.config.batch_size]
            xb, yb = x[index].to(self.device), y[index].to(self.device)
            began = time.perf_counter()
            info = self.step(xb, yb)
            seconds += time.perf_counter() - began
            losses.append(info.loss)
            for key in counters:
                counters[key] += info.extras[key]
            for observer in self.observers:
                observer.on_step(self.model, self.rule, xb, yb, info)
        losses = torch.stack(losses)
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            step = int((~finite).nonzero()[0])
            raise Diverged(f"loss became {float(losses[step])} at epoch {epoch}, step {step}")
        if not all(bool(torch.isfinite(t).all()) for t in self.rule.trained(self.model)):
            raise Diverged(f"weights became NaN or infinite during epoch {epoch}")
        return float(losses.double().mean()), seconds, counters

    def step(self, x: torch.Tensor, y: torch.Tensor) -> StepInfo:
        """One learning step on the batch (x, y).

        The step's update norm is computed only when an observer reads it (ΣPI:
        `reads_update_norm`); otherwise it is NaN and costs nothing."""
        if not isinstance(self.rule, GradientRule):  # it takes the step itself (a spiking rule)
            return self.rule.step(self.model, x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss, info = self.rule.loss_and_info(self.model, x, y)
        loss.backward()
        if self.reads_update_norm:
            grads = [p.grad for p in self.rule.trained(self.model) if p.grad is not None]
            info.update_norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
        if info.applied:  # a rule may withhold plasticity (the workspace's ignition gate)
            self.optimizer.step()
        return info

    def begin(self, resume: bool = False) -> int:
        """Prepare a run (loading the checkpoint if `resume`); returns the epochs already done."""
        self.status = "running"
        return self.resume() if resume else 0

    def run_epoch(self, epoch: int) -> bool:
        """Train and evaluate one epoch; False if training diverged (the run is then over)."""
        try:
            train_loss, seconds, counters = self.train_epoch(epoch)
        except Diverged as error:
            self.status = "diverged"
            kept = (
                f"the last good checkpoint (epoch {self.epochs[-1]['epoch']}) is kept in {self.out_dir / CHECKPOINT}"
                if self.out_dir is not None and self.epochs
                else "no checkpoint was kept"
            )
            self.message = f"training diverged: {error}; {kept}. Try a smaller learning rate (--set lr=..., or the rule's own rates)."
            self._save(self.epochs[-1]["epoch"] if self.epochs else 0, checkpoint=False)
            return False
        accuracy, test_loss = evaluate(partial(self.rule.logits, self.model), self.data.test.x, self.data.test.y, device=self.device)
        entry: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train_loss,
            "test_loss": test_loss,
            "test_accuracy": accuracy,
            "epoch_seconds": seconds,
        }
        if counters:
            entry["counters"] = counters
        for observer in self.observers:
            entry[observer.name] = observer.on_epoch_end(self.model, self.rule, epoch, self.data)
        self.epochs.append(entry)
        self._save(epoch, checkpoint=True)
        return True

    def finish(self) -> dict[str, Any]:
        """Close the run: mark it completed unless it diverged, write and return the results."""
        if self.status != "diverged":
            self.status = "completed"
            self._save(self.config.epochs, checkpoint=False)
        return self.results()

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train for config.epochs epochs (continuing from a checkpoint if `resume`)."""
        start = self.begin(resume)
        with tqdm(
            range(start + 1, self.config.epochs + 1),
            desc=f"{self.config.rule} on {self.data.name} (seed {self.config.seed})",
            unit="epoch",
            disable=not self.progress,
            leave=False,
        ) as bar:
            for epoch in bar:
                if not self.run_epoch(epoch):
                    break
                bar.set_postfix(loss=f"{self.epochs[-1]['train_loss']:.3f}", acc=f"{self.epochs[-1]['test_accuracy']:.3f}")
        return self.finish()


def train(
    config: TrainConfig,
    data: Dataset | None = None,
    observers: Sequence[Observer] = (),
    out_dir: str | Path | None = None,
    progress: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Train one run and return its results (the same object written to out_dir/results.json)."""
    return Trainer.from_config(config, data, observers, out_dir, progress).fit(resume=resume)


__all__ = ["CHECKPOINT", "RESULTS", "Diverged", "TrainConfig", "Trainer", "evaluate", "train", "versions"]
