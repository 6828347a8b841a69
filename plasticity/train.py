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

An output folder holds one run: results.json (a `plasticity.results.RunResults`, written first,
after every epoch) and checkpoint.safetensors (written after it). A fresh run writes both at
once, before epoch 1 (status "running", epoch 0), so an interruption at any moment leaves a
folder that resumes. The two are tied: results.json carries the run's `run_id`, and each
checkpoint the run id and a digest of the epoch entries written before it, so a results.json
from another run, or an edited one, is refused on resume (`stored_run`), and so is a checkpoint
whose checksum fails.

Divergence: a non-finite loss or weight, or a training loss far above chance for many steps in
a row (`LOSS_LIMIT`), ends the run with status "diverged"; the last good checkpoint stays.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

import plasticity
from plasticity.build import TrainConfig, build_run
from plasticity.checkpoint import START_AFRESH, Checkpoint, read_checkpoint, save_checkpoint
from plasticity.data import Dataset, load
from plasticity.data.noise import with_label_noise
from plasticity.errors import ConfigError, FileCheckError, brief
from plasticity.io import atomic_write_json, folder_lock, output_folder
from plasticity.nets import linear_sizes
from plasticity.observe.base import Observer
from plasticity.results import (
    COMPLETED,
    DIVERGED,
    RUN_RESULTS,
    RUNNING,
    DatasetFacts,
    EpochRecord,
    Network,
    Place,
    RunResults,
    RunSettings,
    Versions,
    read_json,
)
from plasticity.rules.attach import GradientRule
from plasticity.rules.base import StepInfo, keyed_options
from plasticity.rules.spiking import SpikingRule

RESULTS = RUN_RESULTS
CHECKPOINT = "checkpoint.safetensors"


WAYS_OUT = "add --overwrite (overwrite=True in Python) to replace it, or use another --out"


class Diverged(RuntimeError):
    """The loss or the weights became NaN or infinite, or the loss stayed far above chance."""


@dataclass(frozen=True)
class LossLimit:
    """When a finite training loss counts as diverged: above `multiple` × its chance level for
    `patience` consecutive steps of one epoch (or for every step of an epoch with fewer steps).

    The loss every attached rule reports (`StepInfo.loss`, for bp, fa, dfa, sign, workspace, pc,
    ff and softhebb) is the batch cross-entropy of its class scores; its chance level, a uniform
    guess's, is ln(n_classes). 5× sits well above healthy runs and below runaway ones (how it was
    chosen, and what the tests hold it to: docs/reliability.md), and 10 steps let single bad
    batches pass. The check reads the losses the trainer reads once per epoch anyway: no step
    waits for it.

    The spiking rules are not checked: their class scores are spike counts, whose cross-entropy
    has no fixed chance level (it grows with the presentation time), and their weights are kept
    bounded by normalisation."""

    multiple: float = 5.0
    patience: int = 10

    def breach(self, losses: Sequence[float], n_classes: int) -> str | None:
        """Why `losses` (one epoch's step losses, in order) count as diverged, or None."""
        limit = self.multiple * math.log(n_classes)
        needed = min(self.patience, len(losses))
        streak = 0
        for step, loss in enumerate(losses):
            streak = streak + 1 if loss > limit else 0
            if streak == needed:
                return (
                    f"training loss stayed above {limit:.3g} ({self.multiple:g}× chance, ln {n_classes}) for {needed} consecutive "
                    f"steps ({step - needed + 1}–{step}, last {loss:.4g})"
                )
        return None


LOSS_LIMIT = LossLimit()


@dataclass
class StoredRun:
    """A run found in an output folder, checked (`stored_run`): its checkpoint, and what
    results.json says of it up to the checkpoint's epoch."""

    checkpoint: Checkpoint
    run_id: str
    status: str
    epochs: list[EpochRecord]

    @property
    def epoch(self) -> int:
        return self.checkpoint.epoch


def epochs_digest(epochs: list[EpochRecord]) -> str:
    """SHA-256 of epoch entries as JSON: a checkpoint stores it for the entries written before it,
    and resuming recomputes it from results.json (an entry reads back to the same JSON)."""
    return hashlib.sha256(json.dumps([e.to_json() for e in epochs], ensure_ascii=False).encode()).hexdigest()


def _read_results(path: Path) -> RunResults:
    """A run's results.json, every field checked (ResultsError naming the file and field);
    FileCheckError if it is missing."""
    if not path.exists():
        raise FileCheckError(f"{path} is missing, so the checkpoint beside it cannot be checked; {START_AFRESH}")
    return RunResults.from_json(read_json(path), Place(path))


def _differences(stored: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """'setting: stored → asked' for each setting that differs (rule options one by one);
    epochs are not compared: a run may be continued for more of them."""
    out = []
    for key, value in asked.items():
        before = stored.get(key)
        if key == "rule_options" and isinstance(before, dict):
            out += [
                f"{key}.{option}: {brief(before.get(option, '(default)'))} → {brief(value.get(option, '(default)'))}"
                for option in sorted(set(before) | set(value))
                if before.get(option, ...) != value.get(option, ...)
            ]
        elif key != "epochs" and before != value:
            out.append(f"{key}: {brief(before)} → {brief(value)}")
    return out


def _rule_changes(stored: Any, config: TrainConfig) -> list[str]:
    """'option: stored → now' for each option of the rule's resolved config (`keyed_options`: the
    options that identify a run) that differs from the config a stored run recorded, so that a
    changed default is caught as a changed option is; nothing when no config was recorded."""
    if not isinstance(stored, dict):
        return []
    now = json.loads(json.dumps(keyed_options(config.rule_config())))
    return [f"{option}: {brief(stored.get(option, '(absent)'))} → {brief(value)}" for option, value in now.items() if stored.get(option, ...) != value]


def stored_run(folder: Path, config: TrainConfig) -> StoredRun | None:
    """The run stored in `folder`, checked, or None if there is none (results.json of a run
    interrupted before its first checkpoint, with no epoch, counts as none).

    The checkpoint's checksum is verified and its settings compared with `config` (resolved)
    before any tensor is loaded (ConfigError naming the settings that differ); then results.json
    must carry the checkpoint's run id and, up to the checkpoint's epoch, the epoch entries it was
    saved with (FileCheckError naming the file otherwise)."""
    results_path, checkpoint_path = folder / RESULTS, folder / CHECKPOINT
    if not checkpoint_path.exists():
        if not results_path.exists() or not _read_results(results_path).epochs:
            return None
        raise FileCheckError(f"{results_path} records epochs but {checkpoint_path} is missing, so the run cannot be resumed; {START_AFRESH}")
    checkpoint = read_checkpoint(checkpoint_path)
    differs = _differences(checkpoint.config, json.loads(json.dumps(config.to_dict())))
    if differs:
        raise ConfigError(f"{folder} holds a run with other settings ({'; '.join(differs)}; stored → asked); {WAYS_OUT}")
    results = _read_results(results_path)
    changed = _rule_changes((results.rule or {}).get("config"), config)
    if changed:
        raise ConfigError(
            f"{folder} holds a {config.rule} run made with other rule settings ({'; '.join(changed)}; stored → now: a default changed since it ran); {WAYS_OUT}"
        )
    if results.run_id != checkpoint.tie.get("run"):
        raise FileCheckError(f"{results_path} belongs to another run than {checkpoint_path} (copied or replaced); restore it, or {START_AFRESH}")
    epochs = [e for e in results.epochs if e.epoch <= checkpoint.epoch]
    if epochs_digest(epochs) != checkpoint.tie.get("epochs"):
        raise FileCheckError(f"{results_path} was edited: its epochs 1–{checkpoint.epoch} differ from those {checkpoint_path} was saved with; {START_AFRESH}")
    return StoredRun(checkpoint, results.run_id, results.status, epochs)


def _continues(stored: StoredRun | None, config: TrainConfig, resume: bool | None, folder: Path | None) -> bool:
    """Whether a run continues `stored` (True) or starts afresh (False: only when none is stored);
    ConfigError where the user must choose. `resume`: see `Trainer.begin`."""
    if stored is None:
        return False
    if resume is True:
        return True
    if resume is False:
        raise ConfigError(f"{folder} already holds a run ({stored.epoch} epochs, {stored.status}); {WAYS_OUT}")
    if stored.status == DIVERGED:
        raise ConfigError(f"{folder} holds a run that diverged after epoch {stored.epoch}; {WAYS_OUT}")
    if stored.epoch > config.epochs:
        raise ConfigError(f"{folder} holds a run of {stored.epoch} epochs, more than the {config.epochs} asked for; {WAYS_OUT}")
    if stored.status == COMPLETED and stored.epoch == config.epochs:
        raise ConfigError(f"{folder} holds a finished run ({stored.epoch} epochs); {WAYS_OUT}")
    return True


def software() -> Versions:
    """The software this process runs: what results record of a run's environment."""
    return Versions(
        plasticity=plasticity.__version__,
        python=sys.version.split()[0],
        torch=torch.__version__,
        numpy=np.__version__,
        platform=platform.platform(),
        threads=str(torch.get_num_threads()),
    )


def clear_grads(optimizer: torch.optim.Optimizer) -> None:
    """`optimizer.zero_grad(set_to_none=True)` without its profiler scope and per-call bookkeeping,
    which cost about 20 µs a step on one CPU thread (1–2% of a step of the benchmark MLP)."""
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            parameter.grad = None


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


def model_description(model: nn.Module, config: TrainConfig) -> Network:
    """What results.json says of the network: its class and size, and for the MLP its layer
    widths and the run's non-linearity (a spiking network: its own `sizes`)."""
    widths = linear_sizes(model)
    sizes = getattr(model, "sizes", None) or widths
    return Network(
        kind=type(model).__name__,
        parameters=sum(p.numel() for p in model.parameters()),
        sizes=list(sizes) if sizes is not None else None,
        activation=config.activation if widths is not None else None,  # the MLP's
    )


class Trainer:
    """Trains `model` with `rule` and `optimizer` on `data`; see `train` for the usual entry point.

    config: the run's description by names (settings left as None take their defaults,
    `TrainConfig.resolved`), kept in results.json and compared on resume; its epochs, batch size
    and seed (which fixes the batch order) drive the loop. `from_config` builds the model, rule
    and optimizer from it.
    out_dir: the folder for results.json and the checkpoint (None: nothing is written); `begin`
    decides whether the run stored there continues.
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
            raise ConfigError(f"dataset {data.name!r} holds text; encode it first (plasticity.memory.encoders)")
        if isinstance(rule, GradientRule):
            rule.check_model(model)
        if observers and rule.network != "mlp":
            raise ConfigError(f"observers read the activities of a model with Linear / Conv layers; {rule.name} trains a {rule.network} network")
        self.model, self.rule, self.optimizer, self.data, self.config = model, rule, optimizer, data, config
        # Batches go where the model's parameters are.
        self.device = next(iter(model.parameters()), torch.empty(0)).device
        self.observers = list(observers)
        self.reads_update_norm = any(getattr(o, "reads_update_norm", False) for o in self.observers)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.epochs: list[EpochRecord] = []
        self.status = RUNNING
        self.message = ""
        self.run_id = secrets.token_hex(8)  # ties results.json to its checkpoints; a resumed run keeps its own

    @classmethod
    def from_config(
        cls,
        config: TrainConfig,
        data: Dataset | None = None,
        observers: Sequence[Observer] = (),
        out_dir: str | Path | None = None,
        progress: bool = True,
    ) -> Trainer:
        """A trainer for the run `config` describes (data loaded unless given)."""
        config.validate()
        data = data if data is not None else load(config.data, root=config.root)
        data = with_label_noise(data, config.label_noise, config.seed)
        run = build_run(config, data)
        return cls(run.model, run.rule, run.optimizer, data, config, observers, out_dir, progress)

    @property
    def net(self) -> nn.Module:
        return self.model

    # ----------------------------------------------------------------------------- results
    def record(self) -> RunResults:
        """The run's results as they stand: what results.json holds."""
        data = self.data
        return RunResults(
            run_id=self.run_id,
            config=RunSettings(**self.config.to_dict()),
            rule=self.rule.describe(),
            card=self.rule.card(),
            seed=self.config.seed,
            dataset=DatasetFacts(
                name=data.name,
                n_train=len(data.train),
                n_test=len(data.test),
                n_features=data.n_features,
                n_classes=data.n_classes,
                source=data.source,
            ),
            network=model_description(self.model, self.config),
            versions=software(),
            status=self.status,
            message=self.message,
            test_accuracy=self.epochs[-1].test_accuracy if self.epochs else None,
            epoch_seconds=float(np.median([e.epoch_seconds for e in self.epochs])) if self.epochs else None,
            epochs=list(self.epochs),
        )

    def _save(self, epoch: int, checkpoint: bool) -> None:
        """Write the results, then the checkpoint: an interruption between the two leaves results
        one epoch ahead of the checkpoint, and `resume` redoes that epoch (the other order would
        leave the checkpoint ahead, and that epoch's entry would be lost)."""
        if self.out_dir is None:
            return
        atomic_write_json(self.out_dir / RESULTS, self.record().to_json())
        if checkpoint:
            tie = {"run": self.run_id, "epochs": epochs_digest(self.epochs)}
            save_checkpoint(self.out_dir / CHECKPOINT, self.model, self.rule, self.optimizer, epoch, self.config.to_dict(), tie)

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
        losses = torch.stack(losses).double().cpu()  # the epoch's one wait for its losses
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            step = int((~finite).nonzero()[0])
            raise Diverged(f"loss became {float(losses[step])} at epoch {epoch}, step {step}")
        if not all(bool(torch.isfinite(t).all()) for t in self.rule.trained(self.model)):
            raise Diverged(f"weights became NaN or infinite during epoch {epoch}")
        breach = LOSS_LIMIT.breach(losses.tolist(), self.data.n_classes) if isinstance(self.rule, GradientRule) else None
        if breach:
            raise Diverged(f"{breach} in epoch {epoch}")
        return float(losses.mean()), seconds, counters

    def step(self, x: torch.Tensor, y: torch.Tensor) -> StepInfo:
        """One learning step on the batch (x, y).

        The step's update norm is computed only when an observer reads it (ΣPI:
        `reads_update_norm`); otherwise it is NaN and costs nothing."""
        if not isinstance(self.rule, GradientRule):  # it takes the step itself (a spiking rule)
            return self.rule.step(self.model, x, y)
        clear_grads(self.optimizer)
        loss, info = self.rule.loss_and_info(self.model, x, y)
        loss.backward()
        if self.reads_update_norm:
            grads = [p.grad for p in self.rule.trained(self.model) if p.grad is not None]
            info.update_norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
        if info.applied:  # a rule may withhold plasticity (the workspace's ignition gate)
            self.optimizer.step()
        return info

    def begin(self, resume: bool | None = None, overwrite: bool = False) -> int:
        """Prepare the run in out_dir; returns the epochs already done.

        resume=None: continue the run stored there (`stored_run`: checked, same settings) if it
        is unfinished — more epochs than it was run for may be asked —, start afresh if there is
        none, and refuse (ConfigError) a finished or diverged one. resume=True: continue any
        stored run, finished ones included, or start afresh if there is none (the bench: its
        per-run folders are named by their settings). resume=False: start afresh; refuse if a run
        is stored. overwrite=True: start afresh without reading what is stored."""
        stored = None if overwrite or self.out_dir is None else stored_run(self.out_dir, self.config)
        return self.start(stored if _continues(stored, self.config, resume, self.out_dir) else None)

    def start(self, stored: StoredRun | None) -> int:
        """Continue `stored`, or start afresh when it is None: results.json (status running) and an
        epoch-0 checkpoint are written at once, so that even an interruption in epoch 1 leaves
        a folder that resumes. Returns the epochs already done."""
        self.status = RUNNING
        if stored is None:
            self.epochs = []
            self._save(0, checkpoint=True)
            return 0
        stored.checkpoint.restore(self.model, self.rule, self.optimizer)
        self.run_id, self.epochs = stored.run_id, stored.epochs
        return stored.epoch

    def run_epoch(self, epoch: int) -> bool:
        """Train and evaluate one epoch; False if training diverged (the run is then over)."""
        try:
            train_loss, seconds, counters = self.train_epoch(epoch)
        except Diverged as error:
            self.status = DIVERGED
            last = self.epochs[-1].epoch if self.epochs else 0
            kept = (
                f"the last good checkpoint (epoch {last}) is kept in {self.out_dir / CHECKPOINT}"
                if self.out_dir is not None and (self.out_dir / CHECKPOINT).exists()
                else "no checkpoint was kept"
            )
            self.message = f"training diverged: {error}; {kept}. Try a smaller learning rate (--set lr=..., or the rule's own rates)."
            self._save(last, checkpoint=False)
            return False
        accuracy, test_loss = evaluate(partial(self.rule.logits, self.model), self.data.test.x, self.data.test.y, device=self.device)
        observed = {observer.name: observer.on_epoch_end(self.model, self.rule, epoch, self.data) for observer in self.observers}
        entry = EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            test_loss=test_loss,
            test_accuracy=accuracy,
            epoch_seconds=seconds,
            counters=counters or None,
            observed=observed,
        )
        self.epochs.append(entry)
        self._save(epoch, checkpoint=True)
        return True

    def finish(self) -> RunResults:
        """Close the run: mark it completed unless it diverged, write and return the results."""
        if self.status != DIVERGED:
            self.status = COMPLETED
            self._save(self.config.epochs, checkpoint=False)
        return self.record()

    def fit(self, resume: bool | None = None, overwrite: bool = False) -> RunResults:
        """Train for config.epochs epochs, continuing a stored run as `begin` decides."""
        return self.train_after(self.begin(resume, overwrite))

    def train_after(self, start: int) -> RunResults:
        """Train epochs start+1 … config.epochs (until one diverges), then `finish`."""
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
                bar.set_postfix(loss=f"{self.epochs[-1].train_loss:.3f}", acc=f"{self.epochs[-1].test_accuracy:.3f}")
        return self.finish()


def train(
    config: TrainConfig,
    data: Dataset | None = None,
    observers: Sequence[Observer] = (),
    out_dir: str | Path | None = None,
    progress: bool = True,
    resume: bool | None = None,
    overwrite: bool = False,
    on_resume: Callable[[int], None] | None = None,
) -> RunResults:
    """Train one run and return its results (`plasticity.results.RunResults`: what
    out_dir/results.json holds, `results.test_accuracy`, `results.epochs[-1].train_loss`, ...).

    With `out_dir` (what `plasticity train --out` does), the folder is checked and locked for the
    run (a second run into it fails at once), and what it holds is checked before any data is
    loaded. resume=None: continue a compatible unfinished run stored there (`on_resume` is
    called with its finished epochs), start afresh if there is none, refuse a finished, diverged
    or different one (ConfigError: it names the settings that differ). resume=True (--resume):
    the same, but refuse when there is nothing to continue. resume=False: start afresh, refusing
    a stored run. overwrite=True (--overwrite): start afresh, replacing the stored run."""
    if out_dir is None:
        if resume or overwrite:
            raise ConfigError("resuming or overwriting acts on the run in an output folder; give --out (out_dir)")
        return Trainer.from_config(config, data, observers, None, progress).fit()
    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it; give one of them")
    folder = output_folder(out_dir)
    config.validate()
    resolved = config.resolved()
    with folder_lock(folder):
        stored = None if overwrite else stored_run(folder, resolved)
        if resume and stored is None:
            raise ConfigError(f"{folder} holds no run to resume; drop --resume to start one there")
        continues = _continues(stored, resolved, None if resume else resume, folder)
        if continues and on_resume is not None:
            on_resume(stored.epoch)
        trainer = Trainer.from_config(config, data, observers, folder, progress)
        return trainer.train_after(trainer.start(stored if continues else None))


__all__ = ["CHECKPOINT", "LOSS_LIMIT", "RESULTS", "Diverged", "LossLimit", "TrainConfig", "Trainer", "evaluate", "software", "stored_run", "train"]
