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

On Ray (`plasticity.lab.executor`), every run is a task of its own, placed wherever Ray finds a free
CPU (or GPU): runs of one seed no longer share a machine's moment, so each record carries its host
and time ratios are formed only between runs of one host (`summary.py`). The driver alone writes
the folder, so results land exactly as a local bench writes them and either executor resumes
the other's folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from plasticity.lab.executor import Executor, Failed, host, ray_session, run_tasks
from plasticity.observe.base import Observer
from plasticity.results import (
    BENCH_RESULTS,
    FAILURES,
    RUN_RESULTS,
    RUNNING,
    SUMMARY,
    Place,
    RunFailure,
    RunRecord,
    RunResults,
    SummaryRow,
    read_lines,
)
from plasticity.rules import make_config, rule_class
from plasticity.rules import names as rule_names
from plasticity.rules.base import keyed_options
from plasticity.threads import torch_threads
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


def check_count(value: Any, what: str, least: int = 1) -> int:
    """`value` if it is a whole number ≥ `least` (not a bool): seeds, epochs, widths, batch sizes
    (≥ 1), a first seed (≥ 0); else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{what} must be a whole number ≥ {least}; got {brief(value)}")
    return value


@dataclass
class BenchConfig:
    """A grid of runs: rules × datasets × seeds (seeds first_seed..first_seed+seeds−1: 0..seeds−1
    by default; a later first seed keeps settings chosen on some seeds apart from a table's).

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
    label_noise: every run's training labels corrupted with this probability (`TrainConfig.label_noise`).
    """

    rules: Sequence[str] = ("bp",)
    datasets: Sequence[str] = ("digits",)
    seeds: int = 3
    first_seed: int = 0
    epochs: int | Mapping[str, int] | None = None
    model: str = "mlp"
    device: str = "cpu"
    hidden: tuple[int, ...] | None = None
    activation: str = "tanh"
    batch_size: int | None = None
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)
    label_noise: float = 0.0

    def validate(self) -> None:
        """Refuse, before anything runs, a grid that cannot run or would run something twice."""
        self._validate_grid()
        self._validate_settings()
        keys: dict[str, str] = {}
        for label in self.rules:
            first = self.train_config(label, self.datasets[0], self.first_seed)
            first.validate()  # e.g. a rule that cannot take --model
            twin = keys.setdefault(run_key(first), label)
            if twin != label:
                raise ConfigError(f"{twin!r} and {label!r} would run identical settings; change one's options")

    def _validate_grid(self) -> None:
        """Names: each rule, label and dataset known and given once, each label a folder name."""
        if not self.rules or not self.datasets:
            raise ConfigError("a bench needs at least one rule and one dataset")
        check_count(self.seeds, "seeds")
        check_count(self.first_seed, "first seed", least=0)
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

    @property
    def seed_range(self) -> range:
        """The seeds of the grid, in order."""
        return range(self.first_seed, self.first_seed + self.seeds)

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
            label_noise=self.label_noise,
        )


def run_key(config: TrainConfig) -> str:
    """Identifies a run by everything that changes its result (the data root does not): the
    rule's whole config is hashed, defaults included, so a run is redone when they change."""
    settings = config.to_dict()
    settings.pop("root")
    if settings["device"] == "cpu":  # runs keyed before devices existed keep their keys
        settings.pop("device")
    settings["rule_options"] = keyed_options(make_config(config.rule, run_options(config.rule, config.data, config.model, config.rule_options)))
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def run_folder(out: Path, dataset: str, label: str, seed: int, key: str) -> Path:
    """The folder of one run of a bench folder: runs/<dataset>/<label>/seed<seed>-<key>."""
    return out / "runs" / dataset / label / f"seed{seed}-{key}"


def stored_run_results(out: Path, dataset: str, seed: int, key: str) -> Path:
    """The results.json of the run with this key in the bench folder `out`, found by the key: its
    folder is named by the label it was first run under, which a later bench may reuse under
    another. FileNotFoundError when the folder holds no such run."""
    found = sorted(out.glob(f"runs/{dataset}/*/seed{seed}-{key}/{RUN_RESULTS}"))
    if not found:
        raise FileNotFoundError(f"{out} holds no run {key} of {dataset} seed {seed} (runs/{dataset}/*/seed{seed}-{key}/{RUN_RESULTS})")
    return found[0]


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
    executor: Executor | None = None,
    threads: int | None = None,
) -> tuple[list[RunRecord], list[SummaryRow]]:
    """Run the grid; returns (run records, summary), what results.jsonl and summary.json hold
    (`plasticity.results`), in the grid's order: dataset, seed, rule. `datasets` may pre-supply loaded data.

    executor: where the runs execute (`plasticity.lab.executor`). Here (the default) the runs of a
    (dataset, seed) advance in lockstep and an error stops the bench. On Ray every run is a task
    (trained with `threads` torch threads, on the data the driver loaded and put in Ray's object
    store) that writes nothing: the driver writes each run's results.json and results.jsonl line as
    the task finishes, and a run that fails is reported (failures.json, the summary's `failed`)
    while the others go on; a rerun runs it again. Ray's runs keep no checkpoint, so an
    interrupted one starts afresh.

    With an output folder, the bench holds its lock (`plasticity.io.folder_lock`) from start to end:
    a second bench on the same folder fails at once (`FolderBusy`) instead of interleaving its lines."""
    config.validate()
    executor = executor or Executor()
    executor.validate(config.device)
    out = output_folder(out_dir) if out_dir is not None else None
    with folder_lock(out) if out is not None else contextlib.nullcontext():
        plan = _plan(config, out)
        loaded = dict(datasets or {})
        if executor.remote:
            failures = _run_remote(plan, config, out, observers, progress, loaded, executor, threads)
        else:
            _run_local(plan, config, out, observers, progress, loaded)
            failures = []
        return _close(config, plan, failures, out)


@dataclass
class _Run:
    """A run of the grid: its cell, settings, key and folder; `record` once it has one."""

    label: str
    config: TrainConfig
    key: str
    folder: Path | None
    record: RunRecord | None = None


def _plan(config: BenchConfig, out: Path | None) -> list[_Run]:
    """Every run of the grid in its order (dataset, seed, rule), finished ones with their records."""
    done = finished_runs(out / RESULTS) if out is not None else {}
    plan = []
    for dataset in config.datasets:
        for seed in config.seed_range:
            for label in config.rules:
                run_config = config.train_config(label, dataset, seed)
                key = run_key(run_config)
                folder = run_folder(out, dataset, label, seed, key) if out is not None else None
                run = _Run(label, run_config, key, folder)
                if key in done:
                    run.record = _reused(done[key], run_config, label, out / RESULTS)
                plan.append(run)
    return plan


def _keep(run: _Run, record: RunRecord, out: Path | None) -> None:
    """A run's record, appended to results.jsonl at once."""
    run.record = record
    if out is not None:
        append_jsonl(out / RESULTS, record.to_json())


def _close(config: BenchConfig, plan: list[_Run], failures: list[RunFailure], out: Path | None) -> tuple[list[RunRecord], list[SummaryRow]]:
    """The records in grid order and the summary; summary.json and failures.json written (an old
    failures.json removed when nothing failed)."""
    ordered = [run.record for run in plan if run.record is not None]
    summary = summarize(ordered, failures)
    if out is not None:
        atomic_write_json(out / SUMMARY, [row.to_json() for row in summary])
        if failures:
            atomic_write_json(out / FAILURES, [failure.to_json() for failure in failures])
        else:
            (out / FAILURES).unlink(missing_ok=True)
    return ordered, summary


def _run_local(
    plan: list[_Run], config: BenchConfig, out: Path | None, observers: Callable[[], list[Observer]], progress: bool, loaded: dict[str, Dataset]
) -> None:
    """The runs still to do, here: those of one (dataset, seed) in lockstep."""
    bar = tqdm(total=sum(run.config.epochs for run in plan), desc="bench", unit="epoch", disable=not progress)
    bar.update(sum(run.config.epochs for run in plan if run.record is not None))
    for dataset in config.datasets:
        for seed in config.seed_range:
            todo = [run for run in plan if run.record is None and run.config.data == dataset and run.config.seed == seed]
            if todo and dataset not in loaded:
                loaded[dataset] = load(dataset, root=config.roots.get(dataset))
            pending = {run.label: (run, Trainer.from_config(run.config, loaded[dataset], observers(), run.folder, progress=False)) for run in todo}
            _lockstep(pending, bar, f"{dataset} · seed {seed}")
            for run, trainer in pending.values():
                _keep(run, RunRecord.of(trainer.finish(), run.label, run.key, host()), out)
    bar.close()


def _lockstep(pending: dict[str, tuple[_Run, Trainer]], bar: tqdm, where: str) -> None:
    """Run the pending trainers one epoch each in turn, the order rotating every epoch."""
    started = {label: trainer.begin(resume=True) for label, (_, trainer) in pending.items()}
    bar.update(sum(started.values()))
    names = list(pending)
    for epoch in range(1, max((run.config.epochs for run, _ in pending.values()), default=0) + 1):
        shift = epoch % len(names) if names else 0
        for label in names[shift:] + names[:shift]:
            run, trainer = pending[label]
            if started[label] < epoch <= run.config.epochs and trainer.status == RUNNING:
                bar.set_postfix_str(f"{where} · {label}")
                trainer.run_epoch(epoch)
                bar.update(1)


def train_run(config: TrainConfig, data: Dataset, observers: Callable[[], list[Observer]], threads: int | None) -> RunResults:
    """One run of a remote grid, as a Ray task runs it: trained in memory, nothing written."""
    with torch_threads(threads):
        return Trainer.from_config(config, data, observers(), None, progress=False).fit()


def _run_remote(
    plan: list[_Run],
    config: BenchConfig,
    out: Path | None,
    observers: Callable[[], list[Observer]],
    progress: bool,
    loaded: dict[str, Dataset],
    executor: Executor,
    threads: int | None,
) -> list[RunFailure]:
    """The runs still to do, as Ray tasks; the driver writes what each returns as it comes.
    Returns the runs that failed."""
    todo = [run for run in plan if run.record is None]
    bar = tqdm(total=len(plan), initial=len(plan) - len(todo), desc="bench", unit="run", disable=not progress)
    failures: list[RunFailure] = []
    if not todo:
        bar.close()
        return failures
    with ray_session(executor) as ray:
        stored = {}
        for run in todo:
            dataset = run.config.data
            if dataset not in stored:
                data = loaded[dataset] if dataset in loaded else load(dataset, root=config.roots.get(dataset))
                stored[dataset] = ray.put(data)
        jobs = [(run, (run.config, stored[run.config.data], observers, threads)) for run in todo]
        active = len(todo)
        bar.set_postfix_str(f"{active} queued or running · 0 failed")
        for run, where, result in run_tasks(ray, executor, train_run, jobs):
            if isinstance(result, Failed):
                failures.append(_failure(run, result, where, out, bar))
            else:
                if run.folder is not None:
                    atomic_write_json(run.folder / RUN_RESULTS, result.to_json())
                _keep(run, RunRecord.of(result, run.label, run.key, where), out)
            active -= 1
            bar.update(1)
            bar.set_postfix_str(f"{active} queued or running · {len(failures)} failed")
    bar.close()
    return failures


def _failure(run: _Run, failed: Failed, where: str | None, out: Path | None, bar: tqdm) -> RunFailure:
    """A failed run's record, said at once (its traceback too when there is no failures.json)."""
    failure = RunFailure(
        rule=run.config.rule,
        label=run.label,
        dataset=run.config.data,
        seed=run.config.seed,
        key=run.key,
        host=where,
        error=failed.error,
        traceback=failed.traceback,
    )
    on = f" on {where}" if where else ""
    detail = f"its traceback is in {out / FAILURES}" if out is not None else failed.traceback
    bar.write(f"run {run.label} on {run.config.data} seed {run.config.seed} failed{on}: {failed.error}; {detail}")
    return failure
