"""Find what a report shows in a results folder, recognising each file by its content.

- a bench folder: `results.jsonl` whose lines are run records (rule, dataset, test_accuracy,
  curve); one full per-run `results.json` per label under its `runs/` gives the card,
  network and versions;
- train runs: `results.json` of `plasticity train` (config, card, epochs) outside any bench
  folder; the runs found side by side in one folder share a table;
- continual runs: `summary.json` in the format of `plasticity.report.continual`.

A bench folder rerun with other settings (more epochs, another width) keeps its older lines;
for each (label, dataset) only the runs made with the settings of the latest one are shown,
so one mean never mixes settings. How many runs were left out is reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from plasticity.bench.runner import RESULTS, run_record
from plasticity.bench.summary import summarize
from plasticity.io import read_jsonl
from plasticity.report.continual import check_entries, is_continual_summary
from plasticity.train import RESULTS as RUN_RESULTS
from plasticity.train import TrainConfig

RECORD_KEYS = {"rule", "dataset", "seed", "test_accuracy", "curve", "config"}


def label_of(record: dict[str, Any]) -> str:
    """The name a run is reported under (its rule's, unless a suite gave it a label)."""
    return record.get("label", record["rule"])


@dataclass
class TrainingRuns:
    """Runs that share one table: a bench folder, or the train runs found in one folder.

    records: run records in the bench's results.jsonl format; details: label → one full
    per-run results (card, network, versions); left_out: older runs with other settings.
    """

    source: Path
    kind: str
    records: list[dict[str, Any]]
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    left_out: int = 0

    @cached_property
    def summary(self) -> list[dict[str, Any]]:
        return summarize(self.records)

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


@dataclass
class ContinualRuns:
    """The entries of one continual summary.json (format: `plasticity.report.continual`)."""

    source: Path
    entries: list[dict[str, Any]]


@dataclass
class Collection:
    root: Path
    training: list[TrainingRuns]
    continual: list[ContinualRuns]


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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); remove it or rerun what wrote it") from None


def _bench(folder: Path, records: list[dict[str, Any]]) -> TrainingRuns:
    kept, left_out = latest_settings(records)
    details = {}
    for label in dict.fromkeys(map(label_of, kept)):
        found = sorted((folder / "runs").glob(f"*/{label}/*/{RUN_RESULTS}"))
        if found:
            details[label] = _read_json(found[0])
    return TrainingRuns(folder, "bench", kept, details, left_out)


def _train_record(results: dict[str, Any]) -> dict[str, Any]:
    config = TrainConfig(**{**results["config"], "hidden": tuple(results["config"]["hidden"])})
    return run_record(config, results)


def collect(root: str | Path) -> Collection:
    """Everything reportable under `root`; a ValueError if nothing is."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder; give the --out folder of a bench, train or continual run")
    training: list[TrainingRuns] = []
    for path in sorted(root.rglob(RESULTS)):
        records = read_jsonl(path)
        if records and all(RECORD_KEYS <= set(r) for r in records):
            training.append(_bench(path.parent, records))
    benches = [t.source for t in training]

    loose: dict[Path, list[dict[str, Any]]] = {}
    for path in sorted(root.rglob(RUN_RESULTS)):
        if any(bench in path.parents for bench in benches):
            continue  # a bench's own per-run file: its record is already in results.jsonl
        results = _read_json(path)
        if isinstance(results, dict) and {"config", "card", "epochs"} <= set(results) and results["epochs"]:
            loose.setdefault(path.parent.parent, []).append(results)
    for folder, runs in loose.items():
        records = [_train_record(results) for results in runs]
        kept, left_out = latest_settings(records)
        details = {label_of(record): results for record, results in zip(records, runs)}
        training.append(TrainingRuns(folder, "train", kept, details, left_out))

    continual = []
    for path in sorted(root.rglob("summary.json")):
        payload = _read_json(path)
        if is_continual_summary(payload):
            continual.append(ContinualRuns(path.parent, check_entries(payload, path)))

    if not training and not continual:
        raise ValueError(
            f"no results found under {root}: expected results.jsonl (plasticity bench), results.json "
            "(plasticity train) or a continual summary.json"
        )
    return Collection(root, training, continual)
