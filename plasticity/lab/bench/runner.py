"""Run every rule on the same network, data and seeds, and collect comparable results.

For each dataset and seed, every rule gets one `Trainer` with the same network sizes (unless a
rule has widths of its own, `BenchConfig.hidden`), initial weights (from the seed), batch order
and epochs. The rules of one (dataset, seed) advance in
lockstep, one epoch each in turn (the order rotating every epoch), so that the slow drifts of a
shared machine's speed hit every rule alike and the time ratios to backprop stay fair. With an output folder, each finished
run is appended to `results.jsonl` at once; a rerun skips the runs already there (each record
checked before it is reused) and resumes a half-finished one from its checkpoint, so an
interrupted bench loses at most one epoch. The bench holds the output folder's lock from start to
end, so a second bench on the same folder fails at once; a grid that would run anything twice (a
rule, label or dataset given twice) is refused before anything runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from plasticity.build import (
    TrainConfig,
    default_batch_size,
    default_epochs,
    run_options,
)
from plasticity.data import Dataset, load
from plasticity.data import names as data_names
from plasticity.data.locate import check_folder
from plasticity.errors import ConfigError, FileCheckError, brief
from plasticity.io import append_jsonl, atomic_write_json, folder_lock, output_folder
from plasticity.lab.bench.summary import summarize
from plasticity.observe.base import Observer
from plasticity.results import BENCH_RESULTS, RUNNING, SUMMARY, Place, RunRecord, SummaryRow, read_lines
from plasticity.rules import make_config, rule_class
from plasticity.rules import names as rule_names
from plasticity.train import Trainer

RESULTS = BENCH_RESULTS
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
LABEL_RULE = "1 to 64 letters, digits and . _ + -, starting with a letter or digit"


def check_name(value: Any, what: str) -> str:
    """`value` if it can name a folder (a label, a rule, a suite); else a ConfigError saying why.

    Starting with a letter or digit keeps out `.` and `..`; 64 characters keep paths short."""
    if not isinstance(value, str) or not LABEL.fullmatch(value):
        raise ConfigError(f"{what} {brief(value)} must be {LABEL_RULE} (it names a folder)")
    return value


def _refuse_repeats(values: Iterable[str], what: str, advice: str) -> None:
    """A ConfigError naming the first value given twice: a repeat would train its runs twice."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"{what} {brief(value)} is given twice; {advice}")
        seen.add(value)


def check_count(value: Any, what: str) -> int:
    """`value` if it is a whole number ≥ 1 (not a bool): seeds, epochs, widths, batch sizes; else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a whole number ≥ 1; got {brief(value)}")
    return value


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
        """Refuse, before anything runs, a grid that cannot run or would run something twice."""
        self._validate_grid()
        self._validate_settings()
        keys: dict[str, str] = {}
        for label in self.rules:
            first = self.train_config(label, self.datasets[0], 0)
            first.validate()  # e.g. a rule that cannot take --model
            twin = keys.setdefault(run_key(first), label)
            if twin != label:
                raise ConfigError(f"{twin!r} and {label!r} would run identical settings; change one's options")

    def _validate_grid(self) -> None:
        """Names: each rule, label and dataset known and given once, each label a folder name."""
        if not self.rules or not self.datasets:
            raise ConfigError("a bench needs at least one rule and one dataset")
        check_count(self.seeds, "seeds")
        for label in self.rules:
            check_name(label, "rule or label")
        for label, rule in self.variants.items():
            check_name(label, "label")
            check_name(rule, f"the rule of label {label!r}")
            if label in rule_names():
                raise ConfigError(f"label {label!r} is a registered rule's name; give the variant of {rule!r} another label")
        _refuse_repeats(self.rules, "rule or label", "each may appear once in a bench: give a second configuration its own label")
        unknown_data = [dataset for dataset in self.datasets if dataset not in data_names()]
        if unknown_data:
            raise ConfigError(f"unknown dataset(s) {brief(unknown_data)}; known datasets: {', '.join(data_names())}")
        _refuse_repeats(self.datasets, "dataset", "each dataset may appear once in a bench")

    def _validate_settings(self) -> None:
        """Options, epochs and data folders: each for a rule or dataset of the bench, each usable."""
        for label in self.rules:
            make_config(self.rule_of(label), self.rule_options.get(label))  # unknown rule or option: fail before running anything
        unknown = set(self.rule_options) - set(self.rules)
        if unknown:
            raise ConfigError(f"options given for rules not in the bench: {brief(sorted(unknown, key=str))}")
        for what, given in (("epochs", self.epochs), ("data folders (roots)", self.roots)):
            if isinstance(given, Mapping) and set(given) - set(self.datasets):
                raise ConfigError(f"{what} given for datasets not in the bench: {brief(sorted(set(given) - set(self.datasets), key=str))}")
        for dataset in self.datasets:
            check_count(self.epochs_for(dataset), f"epochs for {dataset}")
        for dataset, root in self.roots.items():
            check_folder(root, f"data folder for {dataset}")
        networks = {rule_class(self.rule_of(label)).network for label in self.rules}
        if len(networks) > 1 and self.hidden is not None and len(self.hidden) != 1:
            raise ConfigError("spiking rules have one layer: give the bench one hidden width (--hidden 100), or none for each rule's own")

    def rule_of(self, label: str) -> str:
        """The registered rule that runs under `label`."""
        return self.variants.get(label, label)

    def epochs_for(self, dataset: str, label: str | None = None) -> int:
        """Epochs on `dataset`: as given, else the default of the dataset (and of the rule
        under `label`, for rules with defaults of their own, such as the spiking ones)."""
        rule = self.rule_of(label) if label is not None else None
        if isinstance(self.epochs, Mapping):
            return self.epochs.get(dataset, default_epochs(dataset, rule, self.model))
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


def finished_runs(path: Path) -> dict[str, RunRecord]:
    """The records of a bench's results.jsonl by run key ({} when there is none), each checked
    (`RunRecord.from_json`, and its key) before a rerun trusts it. Lines written before records
    carried a schema version read as version 1."""
    finished = {}
    lines = read_lines(path) if path.exists() else []
    for number, line in enumerate(lines, start=1):
        place = Place(path, f"record {number}")
        record = RunRecord.from_json(line, place)
        if record.key is None:
            place.at("key").fail("is missing: a bench writes each run's key")
        finished[record.key] = record
    return finished


def _reused(record: RunRecord, config: TrainConfig, label: str, path: Path) -> RunRecord:
    """A finished run's record under this bench's `label`, once it is seen to be that run's."""
    if (record.rule, record.dataset, record.seed) != (config.rule, config.data, config.seed):
        raise FileCheckError(
            f"{path}: the record of run {record.key} is of {brief(record.rule)} on {brief(record.dataset)} seed "
            f"{record.seed}, not of {config.rule} on {config.data} seed {config.seed}; the file was edited: use another --out"
        )
    return replace(record, label=label)


def run_bench(
    config: BenchConfig,
    out_dir: str | Path | None = None,
    observers: Callable[[], list[Observer]] = list,
    progress: bool = True,
    datasets: dict[str, Dataset] | None = None,
) -> tuple[list[RunRecord], list[SummaryRow]]:
    """Run the grid; returns (run records, summary), what results.jsonl and summary.json hold
    (`plasticity.results`), in the grid's order: dataset, seed, rule. `datasets` may pre-supply loaded data.

    With an output folder, the bench holds its lock (`plasticity.io.folder_lock`) from start to end:
    a second bench on the same folder fails at once (`FolderBusy`) instead of interleaving its lines."""
    config.validate()
    out = output_folder(out_dir) if out_dir is not None else None
    with folder_lock(out) if out is not None else contextlib.nullcontext():
        return _run_grid(config, out, observers, progress, dict(datasets or {}))


def _run_grid(
    config: BenchConfig, out: Path | None, observers: Callable[[], list[Observer]], progress: bool, loaded: dict[str, Dataset]
) -> tuple[list[RunRecord], list[SummaryRow]]:
    """`run_bench` once its settings are checked and its folder is held."""
    done = finished_runs(out / RESULTS) if out is not None else {}
    records: dict[tuple[str, int, str], RunRecord] = {}
    total = sum(config.epochs_for(d, label) for d in config.datasets for label in config.rules) * config.seeds
    bar = tqdm(total=total, desc="bench", unit="epoch", disable=not progress)
    for dataset in config.datasets:
        for seed in range(config.seeds):
            pending: dict[str, tuple[TrainConfig, Trainer]] = {}
            for label in config.rules:
                run_config = config.train_config(label, dataset, seed)
                key = run_key(run_config)
                if key in done:
                    records[(dataset, seed, label)] = _reused(done[key], run_config, label, out / RESULTS)
                    bar.update(run_config.epochs)
                    continue
                if dataset not in loaded:
                    loaded[dataset] = load(dataset, root=config.roots.get(dataset))
                run_dir = out / "runs" / dataset / label / f"seed{seed}-{key}" if out is not None else None
                pending[label] = (run_config, Trainer.from_config(run_config, loaded[dataset], observers(), run_dir, progress=False))
            _lockstep(pending, bar, f"{dataset} · seed {seed}")
            for label, (run_config, trainer) in pending.items():
                record = RunRecord.of(trainer.finish(), label, run_key(run_config))
                if out is not None:
                    append_jsonl(out / RESULTS, record.to_json())
                records[(dataset, seed, label)] = record
    bar.close()
    ordered = [records[(d, s, r)] for d in config.datasets for s in range(config.seeds) for r in config.rules]
    summary = summarize(ordered)
    if out is not None:
        atomic_write_json(out / SUMMARY, [row.to_json() for row in summary])
    return ordered, summary


def _lockstep(pending: dict[str, tuple[TrainConfig, Trainer]], bar: tqdm, where: str) -> None:
    """Run the pending trainers one epoch each in turn, the order rotating every epoch."""
    started = {label: trainer.begin(resume=True) for label, (_, trainer) in pending.items()}
    bar.update(sum(started.values()))
    names = list(pending)
    for epoch in range(1, max((run.epochs for run, _ in pending.values()), default=0) + 1):
        shift = epoch % len(names) if names else 0
        for label in names[shift:] + names[:shift]:
            run_config, trainer = pending[label]
            if started[label] < epoch <= run_config.epochs and trainer.status == RUNNING:
                bar.set_postfix_str(f"{where} · {label}")
                trainer.run_epoch(epoch)
                bar.update(1)
