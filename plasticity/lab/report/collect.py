"""Find what a report shows in a results folder, recognising each file by its content.

- a bench folder: `results.jsonl` whose lines are run records (`plasticity.results.RunRecord`);
  the first per-run `results.json` of each label under its `runs/` gives the card and versions;
- train runs: `results.json` of `plasticity train` (`RunResults`: it holds a card or epochs)
  outside any bench folder; the runs found side by side in one folder share a table;
- continual runs: `summary.json` whose entries name a method (`ContinualSummary`); the run's own
  results.json (`ContinualResults`) is recognised and left out: the summary holds what is shown.

A file is recognised by the keys it holds, then read whole with `from_json` (`plasticity.results`):
a record with a missing or mistyped field, or of a newer schema than this plasticity reads,
stops the report with the file and the field. A file with one of these names that holds
something else is listed on the page as ignored. Nothing here imports torch or a rule: the
report reads records only.

A bench folder rerun with other settings (more epochs, another width) keeps its older lines;
for each (label, dataset) only the runs made with the settings of the latest one are shown,
so one mean never mixes settings. How many runs were left out is reported. A run that stopped
before its last epoch is shown under its label with UNFINISHED appended, never averaged with
the finished runs of that label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError, brief
from plasticity.lab.bench.summary import summarize
from plasticity.results import (
    BENCH_RESULTS,
    FAILURES,
    RUN_RESULTS,
    SUMMARY,
    UNFINISHED,
    ContinualEntry,
    ContinualResults,
    ContinualSummary,
    Place,
    RunFailure,
    RunRecord,
    RunResults,
    SummaryRow,
    Versions,
    check_table,
    is_bench_summary,
    read_json,
    read_lines,
    schema_of,
)

UNFINISHED_MARK = " (unfinished)"


@dataclass
class TrainingRuns:
    """Runs that share one table: a bench folder, or the train runs found in one folder.

    records: run records (an unfinished run's label ends in UNFINISHED_MARK); cards: label → the
    plausibility card of its runs; versions: the software of one run; left_out: older runs with
    other settings; failures: the runs a Ray bench reported failed (its failures.json).
    """

    source: Path
    kind: str
    records: list[RunRecord]
    cards: dict[str, PlausibilityCard] = field(default_factory=dict)
    versions: Versions | None = None
    left_out: int = 0
    failures: list[RunFailure] = field(default_factory=list)

    @cached_property
    def summary(self) -> list[SummaryRow]:
        """`plasticity.lab.bench.summary.summarize` of the finished runs (and the failed ones of a
        Ray bench, counted), then of the unfinished ones without ratios to bp: a ratio compares
        final results only."""
        finished = [r for r in self.records if r.state() != UNFINISHED]
        unfinished = [r for r in self.records if r.state() == UNFINISHED]
        return summarize(finished, self.failures) + [replace(s, accuracy_ratio_to_bp=None, time_ratio_to_bp=None) for s in summarize(unfinished)]

    @property
    def unfinished(self) -> set[str]:
        """The labels of unfinished runs (each ends in UNFINISHED_MARK)."""
        return {r.name for r in self.records if r.state() == UNFINISHED}

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(s.label for s in self.summary))

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(s.dataset for s in self.summary))

    def rule_of(self, label: str) -> str:
        return next(s.rule for s in self.summary if s.label == label)

    def runs(self, label: str, dataset: str) -> list[RunRecord]:
        return [r for r in self.records if r.name == label and r.dataset == dataset]

    def measured(self, label: str, dataset: str) -> list[float]:
        """The test accuracies of the label's runs on `dataset` that have one (a run that diverged
        in its first epoch has none): what the table's mean and spread are over."""
        return [r.test_accuracy for r in self.runs(label, dataset) if r.test_accuracy is not None]


@dataclass
class ContinualRuns:
    """The entries of one continual summary.json."""

    source: Path
    entries: list[ContinualEntry]


@dataclass
class Collection:
    """Everything reportable under `root`, and the files with a results name that held something else."""

    root: Path
    training: list[TrainingRuns]
    continual: list[ContinualRuns]
    ignored: list[Path] = field(default_factory=list)


def _settings(record: RunRecord) -> str:
    """The settings of a run that a table's numbers depend on (not its seed or data folder)."""
    return json.dumps(replace(record.config, seed=0, root=None).to_json(), sort_keys=True)


def latest_settings(records: list[RunRecord]) -> tuple[list[RunRecord], int]:
    """Keep, per (label, dataset), the runs with the settings of its last run; also the count left out.

    A run recorded twice (same label, dataset and seed: a bench rerun after the rule's defaults
    changed, which the records' settings do not show) counts once, by its last record."""
    newest = {(r.name, r.dataset, r.seed): r for r in records}
    latest = {(r.name, r.dataset): _settings(r) for r in records}
    kept = [r for r in records if newest[(r.name, r.dataset, r.seed)] is r and _settings(r) == latest[(r.name, r.dataset)]]
    return kept, len(records) - len(kept)


def mark_unfinished(records: list[RunRecord]) -> list[RunRecord]:
    """The records, an unfinished run's label ending in UNFINISHED_MARK: its numbers are not a
    final result, so it gets its own row and curve instead of joining the mean of its label."""
    return [replace(r, label=r.name + UNFINISHED_MARK) if r.state() == UNFINISHED else r for r in records]


def _first_run_files(folder: Path) -> dict[str, Path]:
    """label → the first per-run results.json of that label under a bench folder's runs/."""
    files: dict[str, Path] = {}
    for path in sorted((folder / "runs").glob(f"*/*/*/{RUN_RESULTS}")):
        files.setdefault(path.parent.parent.name, path)
    return files


def _runs(folder: Path, kind: str, records: list[RunRecord], details: dict[str, RunResults]) -> TrainingRuns:
    """One table's runs: the latest settings' records (unfinished ones marked), with each label's card."""
    kept, left_out = latest_settings(records)
    versions = next((d.versions for d in details.values() if d.versions), None)
    cards = {label: d.card for label, d in details.items()}
    return TrainingRuns(folder, kind, mark_unfinished(kept), cards, versions, left_out)


def _bench(folder: Path, records: list[RunRecord]) -> TrainingRuns:
    """A bench folder's runs, with the card and versions of each label's first per-run results.json,
    and the runs its failures.json reports failed."""
    files = _first_run_files(folder)
    labels = [label for label in dict.fromkeys(r.name for r in records) if label in files]
    runs = _runs(folder, "bench", records, {label: RunResults.from_json(read_json(files[label]), Place(files[label])) for label in labels})
    runs.failures = _failures(folder / FAILURES)
    return runs


def _failures(path: Path) -> list[RunFailure]:
    """The failed runs of a bench's failures.json, each checked ([] when there is no such file)."""
    if not path.is_file():
        return []
    payload, place = read_json(path), Place(path)
    if not isinstance(payload, list):
        place.fail("must be a list of failed runs")
    return [RunFailure.from_json(item, place.at(index)) for index, item in enumerate(payload)]


def _train_runs(folder: Path, found: list[RunResults]) -> TrainingRuns:
    """The train runs found side by side in `folder`, as one table."""
    records = [RunRecord.of(results) for results in found]
    check_table(records, folder)
    return _runs(folder, "train", records, {record.name: results for record, results in zip(records, found, strict=True)})


def _files(root: Path, name: str) -> list[Path]:
    """The regular files called `name` under root (a folder or a pipe with that name is not read)."""
    return [path for path in sorted(root.rglob(name)) if path.is_file()]


def _benches(root: Path, ignored: list[Path]) -> list[TrainingRuns]:
    """Every bench folder under root (its results.jsonl holds run records)."""
    benches = []
    for path in _files(root, BENCH_RESULTS):
        lines = read_lines(path)
        places = [Place(path, f"record {n} of {len(lines)}") for n in range(1, len(lines) + 1)]
        for line, place in zip(lines, places, strict=True):
            schema_of(line, place)
        if not any(map(RunRecord.recognises, lines)):
            ignored += [path] if lines else []  # an empty file: a bench that has not finished a run yet
            continue
        records = [RunRecord.from_json(line, place) for line, place in zip(lines, places, strict=True)]
        check_table(records, path)
        benches.append(_bench(path.parent, records))
    return benches


def _train_tables(root: Path, benches: list[Path], ignored: list[Path]) -> list[TrainingRuns]:
    """The train runs under root outside the bench folders, a table per folder of run folders."""
    loose: dict[Path, list[RunResults]] = {}
    for path in _files(root, RUN_RESULTS):
        if any(bench in path.parents for bench in benches):
            continue  # a bench's own per-run file: its record is already in results.jsonl
        payload = read_json(path)
        schema_of(payload, Place(path))
        if RunResults.recognises(payload):
            loose.setdefault(path.parent.parent, []).append(RunResults.from_json(payload, Place(path)))
        elif not ContinualResults.recognises(payload):  # a continual run's own: its summary.json is shown
            ignored.append(path)
    return [_train_runs(folder, found) for folder, found in loose.items()]


def _continual(root: Path, ignored: list[Path]) -> list[ContinualRuns]:
    """Every continual summary under root (a bench's own summary.json is recomputed, not read)."""
    continual = []
    for path in _files(root, SUMMARY):
        payload = read_json(path)
        if ContinualEntry.recognises(payload) or ContinualSummary.recognises(payload):
            continual.append(ContinualRuns(path.parent, ContinualSummary.from_json(payload, Place(path)).entries))
        elif not is_bench_summary(payload):
            ignored.append(path)
    return continual


def collect(runs_dir: str | Path) -> Collection:
    """Everything reportable under `runs_dir`, every record checked; a ConfigError if nothing is,
    a ResultsError (naming the file and field) for a file that fails its checks."""
    if not str(runs_dir).strip():
        raise ConfigError("RUNS_DIR is empty; give the --out folder of a bench, train or continual run")
    root = Path(runs_dir)
    if not root.is_dir():
        what = "a file" if root.exists() else "not a folder"
        raise ConfigError(f"{brief(str(root))} is {what}; give the --out folder of a bench, train or continual run")
    ignored: list[Path] = []
    training = _benches(root, ignored)
    training += _train_tables(root, [t.source for t in training], ignored)
    continual = _continual(root, ignored)
    if not training and not continual:
        others = f" ({len(ignored)} file(s) with those names hold something else, e.g. {ignored[0]})" if ignored else ""
        raise ConfigError(
            f"no results found under {root}{others}: expected results.jsonl (plasticity bench), results.json "
            "(plasticity train) or a continual summary.json; give the --out folder of such a run"
        )
    return Collection(root, training, continual, ignored)
