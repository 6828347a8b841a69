"""Run every rule on the same network, data and seeds, and collect comparable results.

For each dataset and seed, every rule gets one `Trainer` with identical network sizes, initial
weights (from the seed), batch order and epochs. The rules of one (dataset, seed) advance in
lockstep, one epoch each in turn (the order rotating every epoch), so that the slow drifts of a
shared machine's speed hit every rule alike and the time ratios to backprop stay fair. With an output folder, each finished
run is appended to `results.jsonl` at once; a rerun skips the runs already there and resumes a
half-finished one from its checkpoint, so an interrupted bench loses at most one epoch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from plasticity.bench.summary import summarize
from plasticity.data import Dataset, load
from plasticity.io import append_jsonl, atomic_write_json, read_jsonl
from plasticity.observe.base import Observer
from plasticity.rules import make_config
from plasticity.train import TrainConfig, Trainer, default_epochs

RESULTS = "results.jsonl"
SUMMARY = "summary.json"


@dataclass
class BenchConfig:
    """A grid of runs: rules × datasets × seeds (seeds are 0..seeds−1), one shared network."""

    rules: Sequence[str] = ("bp",)
    datasets: Sequence[str] = ("digits",)
    seeds: int = 3
    epochs: int | None = None
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "tanh"
    batch_size: int = 64
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.rules or not self.datasets:
            raise ValueError("a bench needs at least one rule and one dataset")
        if self.seeds < 1:
            raise ValueError(f"seeds must be ≥ 1; got {self.seeds}")
        for rule in self.rules:
            make_config(rule, self.rule_options.get(rule))  # unknown rule or option: fail before running anything
        unknown = set(self.rule_options) - set(self.rules)
        if unknown:
            raise ValueError(f"options given for rules not in the bench: {sorted(unknown)}")

    def epochs_for(self, dataset: str) -> int:
        return self.epochs if self.epochs is not None else default_epochs(dataset)

    def train_config(self, rule: str, dataset: str, seed: int) -> TrainConfig:
        return TrainConfig(
            rule=rule,
            data=dataset,
            root=self.roots.get(dataset),
            hidden=tuple(self.hidden),
            activation=self.activation,
            epochs=self.epochs_for(dataset),
            batch_size=self.batch_size,
            seed=seed,
            rule_options=dict(self.rule_options.get(rule, {})),
        )


def run_key(config: TrainConfig) -> str:
    """Identifies a run by everything that changes its result (the data root does not)."""
    settings = config.to_dict()
    settings.pop("root")
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def run_record(config: TrainConfig, results: dict[str, Any]) -> dict[str, Any]:
    return {
        "rule": config.rule,
        "dataset": config.data,
        "seed": config.seed,
        "test_accuracy": results["test_accuracy"],
        "epoch_seconds": results["epoch_seconds"],
        "status": results["status"],
        "epochs": len(results["epochs"]),
        "key": run_key(config),
        "config": config.to_dict(),
        "curve": [curve_point(e) for e in results["epochs"]],
    }


def curve_point(epoch: dict[str, Any]) -> dict[str, Any]:
    """The per-epoch numbers a report plots: loss, accuracy and the observers' headline values."""
    point = {k: epoch[k] for k in ("epoch", "train_loss", "test_accuracy", "epoch_seconds")}
    if "alignment" in epoch:
        point["update_angle"] = epoch["alignment"]["update_angle"]
        point["feedback_angle"] = epoch["alignment"]["feedback_angle"]
    if "pi" in epoch:
        point["pi"] = epoch["pi"]["pi"]
    if "omega" in epoch:
        point["omega"] = epoch["omega"]["omega"]
    return point


def run_bench(
    config: BenchConfig,
    out_dir: str | Path | None = None,
    observers: Callable[[], list[Observer]] = list,
    progress: bool = True,
    datasets: dict[str, Dataset] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the grid; returns (run records, summary). `datasets` may pre-supply loaded data."""
    config.validate()
    out = Path(out_dir) if out_dir is not None else None
    done = {r["key"]: r for r in read_jsonl(out / RESULTS)} if out is not None else {}
    records: dict[tuple[str, int, str], dict[str, Any]] = {}
    loaded: dict[str, Dataset] = dict(datasets or {})
    total = sum(config.epochs_for(d) for d in config.datasets) * config.seeds * len(config.rules)
    bar = tqdm(total=total, desc="bench", unit="epoch", disable=not progress)
    for dataset in config.datasets:
        for seed in range(config.seeds):
            pending: dict[str, tuple[TrainConfig, Trainer]] = {}
            for rule in config.rules:
                run_config = config.train_config(rule, dataset, seed)
                key = run_key(run_config)
                if key in done:
                    records[(dataset, seed, rule)] = done[key]
                    bar.update(run_config.epochs)
                    continue
                if dataset not in loaded:
                    loaded[dataset] = load(dataset, root=config.roots.get(dataset))
                run_dir = out / "runs" / dataset / rule / f"seed{seed}-{key}" if out is not None else None
                pending[rule] = (run_config, Trainer(run_config, loaded[dataset], observers(), run_dir, progress=False))
            started = {rule: trainer.begin(resume=True) for rule, (_, trainer) in pending.items()}
            bar.update(sum(started.values()))
            names = list(pending)
            for epoch in range(1, config.epochs_for(dataset) + 1):
                shift = epoch % len(names) if names else 0
                for rule in names[shift:] + names[:shift]:
                    trainer = pending[rule][1]
                    if epoch > started[rule] and trainer.status == "running":
                        bar.set_postfix_str(f"{dataset} · seed {seed} · {rule}")
                        trainer.run_epoch(epoch)
                        bar.update(1)
            for rule, (run_config, trainer) in pending.items():
                record = run_record(run_config, trainer.finish())
                if out is not None:
                    append_jsonl(out / RESULTS, record)
                records[(dataset, seed, rule)] = record
    bar.close()
    ordered = [records[(d, s, r)] for d in config.datasets for s in range(config.seeds) for r in config.rules]
    summary = summarize(ordered)
    if out is not None:
        atomic_write_json(out / SUMMARY, summary)
    return ordered, summary
