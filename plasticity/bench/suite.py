"""User-defined benchmark suites: a YAML file naming rules × datasets × seeds × configurations.

A suite is a bench written down, so it can be versioned, shared and rerun (`plasticity bench
--suite FILE.yaml`). Example:

    name: fa-learning-rates        # optional; default: the file's name without .yaml
    datasets: [digits, mnist1d]    # required
    seeds: 3                       # seeds 0..2 (default 3)
    epochs: {digits: 20}           # one number, or per dataset (others: their default)
    hidden: [256, 256]             # default: each rule's own (256×256 for MLP rules)
    activation: tanh               # tanh | relu (default tanh)
    batch_size: 64                 # default: each rule's own (64 for MLP rules)
    observe: [alignment, pi]       # observers on every run (default none)
    roots: {mnist-t10k: ../shared/datasets/mnist-t10k}   # data folders (default none)
    runs:                          # required: a rule name, or {rule, label, options}
      - bp
      - rule: fa
        label: fa-lr1e-3           # needed when one rule runs with several configurations
        options: {lr: 0.001}
      - {rule: fa, label: fa-lr3e-4, options: {lr: 0.0003}}

Every problem is reported before anything runs, with the file and the offending key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plasticity.bench.runner import LABEL, BenchConfig
from plasticity.nets import ACTIVATIONS
from plasticity.observe.registry import build_observers

KEYS = ("name", "datasets", "seeds", "epochs", "hidden", "activation", "batch_size", "observe", "roots", "runs")
RUN_KEYS = ("rule", "label", "options")


class SuiteError(ValueError):
    """A suite file that cannot be read or does not follow the schema above."""


@dataclass
class SuiteRun:
    """One column of the grid: a registered rule, its options, and the label it is reported under."""

    rule: str
    label: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Suite:
    """A parsed suite file; `bench_config()` turns it into the grid `run_bench` runs."""

    name: str
    datasets: list[str]
    runs: list[SuiteRun]
    seeds: int = 3
    epochs: int | dict[str, int] | None = None
    hidden: tuple[int, ...] | None = None
    activation: str = "tanh"
    batch_size: int | None = None
    observe: list[str] = field(default_factory=list)
    roots: dict[str, str] = field(default_factory=dict)

    def bench_config(self) -> BenchConfig:
        return BenchConfig(
            rules=[run.label for run in self.runs],
            datasets=list(self.datasets),
            seeds=self.seeds,
            epochs=self.epochs,
            hidden=self.hidden,
            activation=self.activation,
            batch_size=self.batch_size,
            rule_options={run.label: dict(run.options) for run in self.runs if run.options},
            roots=dict(self.roots),
            variants={run.label: run.rule for run in self.runs if run.label != run.rule},
        )


def _names(value: Any, what: str) -> list[str]:
    """A list of names, written either as a YAML list or as one comma-separated string."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",")]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise SuiteError(f"`{what}` must be a non-empty list of names; got {value!r}")
    return value


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SuiteError(f"`{what}` must be a whole number ≥ 1; got {value!r}")
    return value


def _epochs(value: Any) -> int | dict[str, int] | None:
    if value is None or isinstance(value, int):
        return None if value is None else _positive_int(value, "epochs")
    if isinstance(value, Mapping):
        return {str(dataset): _positive_int(n, f"epochs.{dataset}") for dataset, n in value.items()}
    raise SuiteError(f"`epochs` must be a number or a mapping dataset → number; got {value!r}")


def _run(entry: Any, index: int) -> SuiteRun:
    if isinstance(entry, str):
        return SuiteRun(rule=entry, label=entry)
    if not isinstance(entry, Mapping) or "rule" not in entry:
        raise SuiteError(f"`runs[{index}]` must be a rule name or a mapping with a `rule`; got {entry!r}")
    unknown = sorted(set(entry) - set(RUN_KEYS))
    if unknown:
        raise SuiteError(f"`runs[{index}]` has unknown key(s) {unknown}; allowed: {', '.join(RUN_KEYS)}")
    options = entry.get("options") or {}
    if not isinstance(options, Mapping):
        raise SuiteError(f"`runs[{index}].options` must be a mapping option → value; got {options!r}")
    rule = str(entry["rule"])
    return SuiteRun(rule=rule, label=str(entry.get("label") or rule), options=dict(options))


def parse_suite(spec: Any, name: str) -> Suite:
    """Check a suite's contents (already parsed from YAML) and return it; `name` if it has none."""
    if not isinstance(spec, Mapping):
        raise SuiteError(f"a suite must be a mapping of settings (datasets, runs, ...); got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise SuiteError(f"unknown key(s) {unknown}; allowed: {', '.join(KEYS)}")
    for required in ("datasets", "runs"):
        if required not in spec:
            raise SuiteError(f"missing `{required}`")
    runs = spec["runs"]
    if not isinstance(runs, list) or not runs:
        raise SuiteError(f"`runs` must be a non-empty list; got {runs!r}")
    hidden = spec.get("hidden")
    hidden = [hidden] if isinstance(hidden, int) else hidden
    if hidden is not None and (not isinstance(hidden, list) or not hidden):
        raise SuiteError(f"`hidden` must be a list of layer widths like [256, 256]; got {hidden!r}")
    roots = spec.get("roots") or {}
    if not isinstance(roots, Mapping):
        raise SuiteError(f"`roots` must be a mapping dataset → folder; got {roots!r}")
    activation = spec.get("activation", "tanh")
    if activation not in ACTIVATIONS:
        raise SuiteError(f"`activation` must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    observe = _names(spec["observe"], "observe") if spec.get("observe") else []
    try:
        build_observers(observe)
    except ValueError as error:
        raise SuiteError(f"`observe`: {error}") from None
    name = str(spec.get("name") or name)
    if not LABEL.fullmatch(name):
        raise SuiteError(f"`name` may only hold letters, digits and . _ + - (it names the results folder); got {name!r}")
    return Suite(
        name=name,
        datasets=_names(spec["datasets"], "datasets"),
        runs=[_run(entry, index) for index, entry in enumerate(runs)],
        seeds=_positive_int(spec.get("seeds", 3), "seeds"),
        epochs=_epochs(spec.get("epochs")),
        hidden=tuple(_positive_int(width, "hidden") for width in hidden) if hidden is not None else None,
        activation=activation,
        batch_size=_positive_int(spec["batch_size"], "batch_size") if "batch_size" in spec else None,
        observe=observe,
        roots={str(dataset): str(folder) for dataset, folder in roots.items()},
    )


def load_suite(path: str | Path) -> Suite:
    """Read and check a suite file; every error names the file and what is wrong in it."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"suite file {path} does not exist") from None
    except yaml.YAMLError as error:
        raise SuiteError(f"suite file {path} is not valid YAML: {error}") from None
    try:
        suite = parse_suite(spec, path.stem)
        suite.bench_config().validate()
    except ValueError as error:
        raise SuiteError(f"suite file {path}: {error}") from None
    return suite
