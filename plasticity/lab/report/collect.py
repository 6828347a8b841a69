"""Find what a report shows in a results folder, recognising each file by its content.

- a bench folder: `results.jsonl` whose lines are run records (rule, dataset, test_accuracy,
  curve); one full per-run `results.json` per label under its `runs/` gives the card and
  versions;
- train runs: `results.json` of `plasticity train` (with a card or epochs) outside any bench
  folder; the runs found side by side in one folder share a table;
- continual runs: `summary.json` in the format of `plasticity.lab.report.continual`.

A file is recognised by the keys it holds, then checked whole (`plasticity.records`):
a record with a missing or mistyped field stops the report with the file and the field. A file
with one of these names that holds something else is listed on the page as ignored.

A bench folder rerun with other settings (more epochs, another width) keeps its older lines;
for each (label, dataset) only the runs made with the settings of the latest one are shown,
so one mean never mixes settings. How many runs were left out is reported. A run that stopped
before its last epoch is shown under its label with UNFINISHED appended, never averaged with
the finished runs of that label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from plasticity.build import MODELS
from plasticity.errors import ConfigError, PlasticityError, brief
from plasticity.lab.bench.runner import RESULTS, run_record
from plasticity.lab.bench.summary import summarize
from plasticity.lab.report.continual import check_entries, is_continual_summary
from plasticity.records import (
    Details,
    Place,
    check_details,
    check_run_record,
    check_table,
    check_train_results,
    read_json,
    read_lines,
    run_state,
)
from plasticity.rules.card import PlausibilityCard
from plasticity.train import RESULTS as RUN_RESULTS
from plasticity.train import TrainConfig

RECORD_KEYS = {"rule", "dataset", "seed", "test_accuracy", "curve", "config"}
# What marks a results.json as a train run's (then checked whole): a card or epochs; a continual
# run's results.json has a config too, but neither.
TRAIN_KEYS = {"card", "epochs"}
SUMMARY = "summary.json"
UNFINISHED = " (unfinished)"


def label_of(record: dict[str, Any]) -> str:
    """The name a run is reported under (its rule's, unless a suite gave it a label)."""
    return record.get("label", record["rule"])


@dataclass
class TrainingRuns:
    """Runs that share one table: a bench folder, or the train runs found in one folder.

    records: checked run records in the bench's results.jsonl format (an unfinished run's label
    ends in UNFINISHED); cards: label → the plausibility card of its runs; versions: the
    software of one run; left_out: older runs with other settings.
    """

    source: Path
    kind: str
    records: list[dict[str, Any]]
    cards: dict[str, PlausibilityCard] = field(default_factory=dict)
    versions: dict[str, str] | None = None
    left_out: int = 0

    @cached_property
    def summary(self) -> list[dict[str, Any]]:
        """`plasticity.lab.bench.summary.summarize` of the finished runs, then of the unfinished ones
        without ratios to bp: a ratio compares final results only."""
        finished = [r for r in self.records if run_state(r) != "unfinished"]
        unfinished = [r for r in self.records if run_state(r) == "unfinished"]
        return summarize(finished) + [{**s, "accuracy_ratio_to_bp": None, "time_ratio_to_bp": None} for s in summarize(unfinished)]

    @property
    def unfinished(self) -> set[str]:
        """The labels of unfinished runs (each ends in UNFINISHED)."""
        return {label_of(r) for r in self.records if run_state(r) == "unfinished"}

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(s["label"] for s in self.summary))

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(s["dataset"] for s in self.summary))

    def rule_of(self, label: str) -> str:
        return next(s["rule"] for s in self.summary if s["label"] == label)

    def runs(self, label: str, dataset: str) -> list[dict[str, Any]]:
        return [r for r in self.records if label_of(r) == label and r["dataset"] == dataset]

    def measured(self, label: str, dataset: str) -> list[float]:
        """The test accuracies of the label's runs on `dataset` that have one (a run that diverged
        in its first epoch has none): what the table's mean and spread are over."""
        return [r["test_accuracy"] for r in self.runs(label, dataset) if r["test_accuracy"] is not None]


@dataclass
class ContinualRuns:
    """The entries of one continual summary.json (format: `plasticity.lab.report.continual`)."""

    source: Path
    entries: list[dict[str, Any]]


@dataclass
class Collection:
    """Everything reportable under `root`, and the files with a results name that held something else."""

    root: Path
    training: list[TrainingRuns]
    continual: list[ContinualRuns]
    ignored: list[Path] = field(default_factory=list)


def _settings(record: dict[str, Any]) -> str:
    config = {k: v for k, v in record["config"].items() if k not in ("seed", "root")}
    return json.dumps(config, sort_keys=True)


def latest_settings(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Keep, per (label, dataset), the runs with the settings of its last run; also the count left out.

    A run recorded twice (same label, dataset and seed: a bench rerun after the rule's defaults
    changed, which the records' settings do not show) counts once, by its last record."""
    newest = {(label_of(r), r["dataset"], r["seed"]): r for r in records}
    latest = {(label_of(r), r["dataset"]): _settings(r) for r in records}
    kept = [r for r in records if newest[(label_of(r), r["dataset"], r["seed"])] is r and _settings(r) == latest[(label_of(r), r["dataset"])]]
    return kept, len(records) - len(kept)


def mark_unfinished(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records, an unfinished run's label ending in UNFINISHED: its numbers are not a final
    result, so it gets its own row and curve instead of joining the mean of its label."""
    return [{**r, "label": label_of(r) + UNFINISHED} if run_state(r) == "unfinished" else r for r in records]


def _first_run_files(folder: Path) -> dict[str, Path]:
    """label → the first per-run results.json of that label under a bench folder's runs/."""
    files: dict[str, Path] = {}
    for path in sorted((folder / "runs").glob(f"*/*/*/{RUN_RESULTS}")):
        files.setdefault(path.parent.parent.name, path)
    return files


def _runs(folder: Path, kind: str, records: list[dict[str, Any]], details: dict[str, Details]) -> TrainingRuns:
    """One table's runs: the latest settings' records (unfinished ones marked), with each label's card."""
    kept, left_out = latest_settings(records)
    versions = next((d.versions for d in details.values() if d.versions), None)
    cards = {label: d.card for label, d in details.items()}
    return TrainingRuns(folder, kind, mark_unfinished(kept), cards, versions, left_out)


def _bench(folder: Path, records: list[dict[str, Any]]) -> TrainingRuns:
    """A bench folder's runs, with the details of each label's first per-run results.json."""
    files = _first_run_files(folder)
    labels = [label for label in dict.fromkeys(map(label_of, records)) if label in files]
    return _runs(folder, "bench", records, {label: check_details(read_json(files[label]), Place(files[label])) for label in labels})


def _train_record(results: dict[str, Any], place: Place) -> dict[str, Any]:
    """A checked train run's results as a bench record (`plasticity.lab.bench.runner.run_record`)."""
    config = results["config"]
    model = config.get("model", "mlp")
    if model not in MODELS:
        place.at("config.model").fail(f"must be one of {', '.join(MODELS)}; got {brief(model)}")
    try:
        return run_record(TrainConfig(**{**config, "hidden": tuple(config["hidden"])}), results)
    except PlasticityError as error:  # a rule or option this version of plasticity does not know
        place.at("config").fail(f"does not describe a run this version of plasticity can read ({error})")


def _train_runs(folder: Path, found: list[tuple[Path, dict[str, Any], Details]]) -> TrainingRuns:
    """The train runs found side by side in `folder`, as one table."""
    records = [_train_record(results, Place(path)) for path, results, _ in found]
    check_table(records, folder)
    details = {label_of(record): d for record, (_, _, d) in zip(records, found, strict=True)}
    return _runs(folder, "train", records, details)


def _files(root: Path, name: str) -> list[Path]:
    """The regular files called `name` under root (a folder or a pipe with that name is not read)."""
    return [path for path in sorted(root.rglob(name)) if path.is_file()]


def _is_bench_summary(payload: Any) -> bool:
    """A bench's own summary.json (`plasticity.lab.bench.summary.summarize`): the report recomputes it."""
    return isinstance(payload, list) and all(isinstance(e, dict) and "label" in e for e in payload)


def collect(runs_dir: str | Path) -> Collection:
    """Everything reportable under `runs_dir`, every record checked; a ConfigError if nothing is,
    a ResultsError (naming the file and field) for a file that fails its checks."""
    if not str(runs_dir).strip():
        raise ConfigError("RUNS_DIR is empty; give the --out folder of a bench, train or continual run")
    root = Path(runs_dir)
    if not root.is_dir():
        what = "a file" if root.exists() else "not a folder"
        raise ConfigError(f"{brief(str(root))} is {what}; give the --out folder of a bench, train or continual run")
    training: list[TrainingRuns] = []
    ignored: list[Path] = []
    for path in _files(root, RESULTS):
        lines = read_lines(path)
        if not any(RECORD_KEYS & set(r) for r in lines):
            ignored += [path] if lines else []  # an empty file: a bench that has not finished a run yet
            continue
        records = [check_run_record(r, Place(path, f"record {n} of {len(lines)}")) for n, r in enumerate(lines, 1)]
        check_table(records, path)
        training.append(_bench(path.parent, records))
    benches = [t.source for t in training]

    loose: dict[Path, list[tuple[Path, dict[str, Any], Details]]] = {}
    for path in _files(root, RUN_RESULTS):
        if any(bench in path.parents for bench in benches):
            continue  # a bench's own per-run file: its record is already in results.jsonl
        results = read_json(path)
        if isinstance(results, dict) and TRAIN_KEYS & set(results):
            loose.setdefault(path.parent.parent, []).append((path, results, check_train_results(results, Place(path))))
        else:
            ignored.append(path)
    training += [_train_runs(folder, found) for folder, found in loose.items()]

    continual = []
    for path in _files(root, SUMMARY):
        payload = read_json(path)
        if isinstance(payload, dict) and "method" in payload:
            Place(path).fail("must be a list of entries, one per (method, dataset); got one object")
        if is_continual_summary(payload):
            continual.append(ContinualRuns(path.parent, check_entries(payload, path)))
        elif not _is_bench_summary(payload):
            ignored.append(path)

    if not training and not continual:
        others = f" ({len(ignored)} file(s) with those names hold something else, e.g. {ignored[0]})" if ignored else ""
        raise ConfigError(
            f"no results found under {root}{others}: expected results.jsonl (plasticity bench), results.json "
            "(plasticity train) or a continual summary.json; give the --out folder of such a run"
        )
    return Collection(root, training, continual, ignored)
