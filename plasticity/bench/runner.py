"""Run every rule on the same network, data and seeds, and collect comparable results.

For each dataset and seed, every rule gets one `Trainer` with the same network sizes (unless a
rule has widths of its own, `BenchConfig.hidden`), initial weights (from the seed), batch order
and epochs. The rules of one (dataset, seed) advance in
lockstep, one epoch each in turn (the order rotating every epoch), so that the slow drifts of a
shared machine's speed hit every rule alike and the time ratios to backprop stay fair. With an output folder, each finished
run is appended to `results.jsonl` at once; a rerun skips the runs already there and resumes a
half-finished one from its checkpoint, so an interrupted bench loses at most one epoch.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from plasticity.bench.summary import summarize
from plasticity.data import Dataset, load
from plasticity.data import names as data_names
from plasticity.io import append_jsonl, atomic_write_json, read_jsonl
from plasticity.observe.base import Observer
from plasticity.rules import make_config, rule_class
from plasticity.rules import names as rule_names
from plasticity.build import TrainConfig, default_batch_size, default_epochs, run_options
from plasticity.train import Trainer

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
LABEL = re.compile(r"[A-Za-z0-9._+-]+")


@dataclass
class BenchConfig:
    """A grid of runs: rules × datasets × seeds (seeds are 0..seeds−1).

    rules: what runs on each (dataset, seed), each a registered rule name or a label of
        `variants`; results and summaries carry it as `label`.
    variants: label → registered rule, for several configurations of one rule in one bench
        (e.g. {"fa-lr1e-3": "fa"}); their options go in rule_options under the label.
    epochs: one number for every dataset, a mapping dataset → epochs (others get their
        default), or None for every dataset's default.
    model: the network every rule trains ("mlp", "cnn1d", "lenet5"; `plasticity.build.MODELS`).
    device: where every run trains ("cpu", "cuda"); see `TrainConfig.device`.
    hidden, batch_size: one value for every rule, or None for each rule's own default
        (`Rule.default_hidden`, `default_batch_size`: 256×256 and 64 for the MLP rules, which
        then share one network per seed; SoftHebb takes one hidden layer, spiking rules 100
        neurons and batch 32).
    """

    rules: Sequence[str] = ("bp",)
    datasets: Sequence[str] = ("digits",)
    seeds: int = 3
    epochs: int | Mapping[str, int] | None = None
    model: str = "mlp"
    device: str = "cpu"
    hidden: tuple[int, ...] | None = None
    activation: str = "tanh"
    batch_size: int | None = None
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.rules or not self.datasets:
            raise ValueError("a bench needs at least one rule and one dataset")
        if self.seeds < 1:
            raise ValueError(f"seeds must be ≥ 1; got {self.seeds}")
        unknown_data = [dataset for dataset in self.datasets if dataset not in data_names()]
        if unknown_data:
            raise ValueError(f"unknown dataset(s) {unknown_data}; known datasets: {', '.join(data_names())}")
        if len(set(self.rules)) != len(self.rules):
            raise ValueError(f"each rule or label may appear once in a bench; got {list(self.rules)}")
        for label, rule in self.variants.items():
            if not LABEL.fullmatch(label):
                raise ValueError(f"label {label!r} may only hold letters, digits and . _ + - (it names a folder)")
            if label in rule_names():
                raise ValueError(f"label {label!r} is a registered rule's name; give the variant of {rule!r} another label")
        for label in self.rules:
            make_config(self.rule_of(label), self.rule_options.get(label))  # unknown rule or option: fail before running anything
        unknown = set(self.rule_options) - set(self.rules)
        if unknown:
            raise ValueError(f"options given for rules not in the bench: {sorted(unknown)}")
        if isinstance(self.epochs, Mapping) and set(self.epochs) - set(self.datasets):
            raise ValueError(f"epochs given for datasets not in the bench: {sorted(set(self.epochs) - set(self.datasets))}")
        for dataset in self.datasets:
            if self.epochs_for(dataset) < 1:
                raise ValueError(f"epochs must be ≥ 1; got {self.epochs_for(dataset)} for {dataset}")
        networks = {rule_class(self.rule_of(label)).network for label in self.rules}
        if len(networks) > 1 and self.hidden is not None and len(self.hidden) != 1:
            raise ValueError("spiking rules have one layer: give the bench one hidden width (--hidden 100), or none for each rule's own")
        keys: dict[str, str] = {}
        for label in self.rules:
            first = self.train_config(label, self.datasets[0], 0)
            first.validate()  # e.g. a rule that cannot take --model
            twin = keys.setdefault(run_key(first), label)
            if twin != label:
                raise ValueError(f"{twin!r} and {label!r} would run identical settings; change one's options")

    def rule_of(self, label: str) -> str:
        """The registered rule that runs under `label`."""
        return self.variants.get(label, label)

    def epochs_for(self, dataset: str, label: str | None = None) -> int:
        """Epochs on `dataset`: as given, else the default of the dataset (and of the rule
        under `label`, for rules with defaults of their own, such as the spiking ones)."""
        rule = self.rule_of(label) if label is not None else None
        if isinstance(self.epochs, Mapping):
            return int(self.epochs.get(dataset, default_epochs(dataset, rule, self.model)))
        return self.epochs if self.epochs is not None else default_epochs(dataset, rule, self.model)

    def hidden_for(self, label: str) -> tuple[int, ...]:
        """The hidden widths `label` runs with: the bench's, else its rule's default."""
        return tuple(self.hidden) if self.hidden is not None else rule_class(self.rule_of(label)).default_hidden

    def batch_size_for(self, label: str) -> int:
        """The mini-batch size `label` runs with: the bench's, else its rule's default."""
        return self.batch_size if self.batch_size is not None else default_batch_size(self.rule_of(label), self.model)

    def train_config(self, label: str, dataset: str, seed: int) -> TrainConfig:
        """The run of `label` (a rule or a variant's label) on `dataset` with `seed`."""
        return TrainConfig(
            rule=self.rule_of(label),
            data=dataset,
            root=self.roots.get(dataset),
            model=self.model,
            device=self.device,
            hidden=self.hidden_for(label),
            activation=self.activation,
            epochs=self.epochs_for(dataset, label),
            batch_size=self.batch_size_for(label),
            seed=seed,
            rule_options=dict(self.rule_options.get(label, {})),
        )


def run_key(config: TrainConfig) -> str:
    """Identifies a run by everything that changes its result (the data root does not): the
    rule's whole config is hashed, defaults included, so a run is redone when they change."""
    settings = config.to_dict()
    settings.pop("root")
    if settings["device"] == "cpu":  # runs keyed before devices existed keep their keys
        settings.pop("device")
    settings["rule_options"] = asdict(make_config(config.rule, run_options(config.rule, config.data, config.model, config.rule_options)))
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def throughput(results: dict[str, Any]) -> dict[str, float] | None:
    """Training samples per second and, for rules that count events, events per second, in the
    last epoch's learning steps (None for rules without event counters)."""
    last = results["epochs"][-1] if results["epochs"] else {}
    if "counters" not in last:
        return None
    seconds = last["epoch_seconds"]
    rates = {"samples_per_second": results["dataset"]["n_train"] / seconds}
    rates.update({f"{key}_per_second": value / seconds for key, value in last["counters"].items()})
    return rates


def run_record(config: TrainConfig, results: dict[str, Any], label: str | None = None) -> dict[str, Any]:
    """One line of results.jsonl; `label` (default: the rule's name) names the run in summaries."""
    return {
        "rule": config.rule,
        "label": label or config.rule,
        "dataset": config.data,
        "seed": config.seed,
        "test_accuracy": results["test_accuracy"],
        "epoch_seconds": results["epoch_seconds"],
        "status": results["status"],
        "epochs": len(results["epochs"]),
        "key": run_key(config),
        "config": config.to_dict(),
        "curve": [curve_point(e) for e in results["epochs"]],
        "throughput": throughput(results),
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
    total = sum(config.epochs_for(d, label) for d in config.datasets for label in config.rules) * config.seeds
    bar = tqdm(total=total, desc="bench", unit="epoch", disable=not progress)
    for dataset in config.datasets:
        for seed in range(config.seeds):
            pending: dict[str, tuple[TrainConfig, Trainer]] = {}
            for label in config.rules:
                run_config = config.train_config(label, dataset, seed)
                key = run_key(run_config)
                if key in done:
                    records[(dataset, seed, label)] = {**done[key], "label": label}
                    bar.update(run_config.epochs)
                    continue
                if dataset not in loaded:
                    loaded[dataset] = load(dataset, root=config.roots.get(dataset))
                run_dir = out / "runs" / dataset / label / f"seed{seed}-{key}" if out is not None else None
                pending[label] = (run_config, Trainer.from_config(run_config, loaded[dataset], observers(), run_dir, progress=False))
            started = {label: trainer.begin(resume=True) for label, (_, trainer) in pending.items()}
            bar.update(sum(started.values()))
            names = list(pending)
            for epoch in range(1, max((run.epochs for run, _ in pending.values()), default=0) + 1):
                shift = epoch % len(names) if names else 0
                for label in names[shift:] + names[:shift]:
                    run_config, trainer = pending[label]
                    if started[label] < epoch <= run_config.epochs and trainer.status == "running":
                        bar.set_postfix_str(f"{dataset} · seed {seed} · {label}")
                        trainer.run_epoch(epoch)
                        bar.update(1)
            for label, (run_config, trainer) in pending.items():
                record = run_record(run_config, trainer.finish(), label)
                if out is not None:
                    append_jsonl(out / RESULTS, record)
                records[(dataset, seed, label)] = record
    bar.close()
    ordered = [records[(d, s, r)] for d in config.datasets for s in range(config.seeds) for r in config.rules]
    summary = summarize(ordered)
    if out is not None:
        atomic_write_json(out / SUMMARY, summary)
    return ordered, summary
