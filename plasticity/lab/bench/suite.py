"""User-defined benchmark suites: a YAML file naming rules × datasets × seeds × configurations.

A suite is a bench written down, so it can be versioned, shared and rerun (`plasticity bench
--suite FILE.yaml`). Example:

    name: fa-learning-rates        # optional; default: the file's name without .yaml
    datasets: [digits, mnist1d]    # required
    seeds: 3                       # seeds 0..2 (default 3)
    first_seed: 10                 # seeds 10..12 instead (default 0), e.g. to choose settings off a table's seeds
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

Every problem is reported before anything runs, in one line with the file and the offending key.
The file is read with YAML's safe loader, bounded: at most MAX_BYTES, at most MAX_DEPTH levels of
nesting, no anchors or aliases (`&a`, `*a`: an "alias bomb" expands a few lines into billions of
nodes) and no key given twice in a mapping (YAML would keep the last one silently).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plasticity.errors import ConfigError, PlasticityError, brief, os_reason
from plasticity.lab.bench.runner import LABEL, LABEL_RULE, BenchConfig, check_count, check_name
from plasticity.nets import ACTIVATIONS
from plasticity.observe.registry import build_observers

KEYS = ("name", "datasets", "seeds", "first_seed", "epochs", "hidden", "activation", "batch_size", "observe", "roots", "runs")
RUN_KEYS = ("rule", "label", "options")
MAX_BYTES = 1 << 20
"""The largest suite file read (1 MiB; the project's suites are under 2 kB)."""
NAME_LENGTH = 64
"""The longest dataset or observer name accepted (the registered ones are short)."""
MAX_DEPTH = 16
"""The deepest nesting of lists and mappings accepted (a suite needs 4: runs → entry → options → value)."""


class SuiteError(ConfigError):
    """A suite file that cannot be read or does not follow the schema above."""


class _SuiteLoader(yaml.SafeLoader):
    """YAML's safe loader with the bounds above: no anchor or alias, no nesting deeper than
    MAX_DEPTH, no key given twice in one mapping; each refused with its line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise SuiteError(f"line {event.start_mark.line + 1}: anchors and aliases (&name, *name) are not allowed in a suite; write each value out")
        if self.depth >= MAX_DEPTH:
            raise SuiteError(f"line {event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels; a suite needs at most 4")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) < len(node.value):
            keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
            line, repeated = next((node.value[i][0].start_mark.line + 1, key) for i, key in enumerate(keys) if key in keys[:i])
            raise SuiteError(f"line {line}: key {brief(repeated)} is given twice; give each setting once")
        return mapping


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
    first_seed: int = 0
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
            first_seed=self.first_seed,
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
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and 0 < len(item) <= NAME_LENGTH for item in value):
        raise SuiteError(f"`{what}` must be a non-empty list of names (each at most {NAME_LENGTH} characters); got {brief(value)}")
    return value


def _epochs(value: Any) -> int | dict[str, int] | None:
    if value is None or isinstance(value, int):
        return None if value is None else check_count(value, "`epochs`")
    if isinstance(value, Mapping):
        return {str(dataset): check_count(n, f"`epochs.{dataset}`") for dataset, n in value.items()}
    raise SuiteError(f"`epochs` must be a number or a mapping dataset → number; got {brief(value)}")


def _run(entry: Any, index: int) -> SuiteRun:
    if isinstance(entry, str):
        return SuiteRun(rule=entry, label=check_name(entry, f"`runs[{index}]`"))
    if not isinstance(entry, Mapping) or "rule" not in entry:
        raise SuiteError(f"`runs[{index}]` must be a rule name or a mapping with a `rule`; got {brief(entry)}")
    unknown = sorted(set(entry) - set(RUN_KEYS), key=str)
    if unknown:
        raise SuiteError(f"`runs[{index}]` has unknown key(s) {brief(unknown)}; allowed: {', '.join(RUN_KEYS)}")
    options = entry.get("options") or {}
    if not isinstance(options, Mapping):
        raise SuiteError(f"`runs[{index}].options` must be a mapping option → value; got {brief(options)}")
    rule = check_name(entry["rule"], f"`runs[{index}].rule`")
    label = check_name(entry.get("label") or rule, f"`runs[{index}].label`")
    return SuiteRun(rule=rule, label=label, options=dict(options))


def parse_suite(spec: Any, name: str) -> Suite:
    """Check a suite's contents (already parsed from YAML) and return it; `name` if it has none."""
    if spec is None:
        raise SuiteError("the file is empty; a suite is a mapping of settings (datasets, runs, ...)")
    if not isinstance(spec, Mapping):
        raise SuiteError(f"a suite must be a mapping of settings (datasets, runs, ...); got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(KEYS), key=str)
    if unknown:
        raise SuiteError(f"unknown key(s) {brief(unknown)}; allowed: {', '.join(KEYS)}")
    for required in ("datasets", "runs"):
        if required not in spec:
            raise SuiteError(f"missing `{required}`")
    runs = spec["runs"]
    if not isinstance(runs, list) or not runs:
        raise SuiteError(f"`runs` must be a non-empty list; got {brief(runs)}")
    hidden = spec.get("hidden")
    hidden = [hidden] if isinstance(hidden, int) else hidden
    if hidden is not None and (not isinstance(hidden, list) or not hidden):
        raise SuiteError(f"`hidden` must be a list of layer widths like [256, 256]; got {brief(hidden)}")
    roots = spec.get("roots") or {}
    if not isinstance(roots, Mapping) or not all(isinstance(folder, str) for folder in roots.values()):
        raise SuiteError(f"`roots` must be a mapping dataset → folder; got {brief(roots)}")
    activation = spec.get("activation", "tanh")
    if activation not in ACTIVATIONS:
        raise SuiteError(f"`activation` must be one of {', '.join(ACTIVATIONS)}; got {brief(activation)}")
    observe = _names(spec["observe"], "observe") if spec.get("observe") else []
    try:
        build_observers(observe)
    except ConfigError as error:
        raise SuiteError(f"`observe`: {error}") from None
    given = spec.get("name")
    name = given or name
    if not isinstance(name, str) or not LABEL.fullmatch(name):
        source = "" if given else " (from the file's name: set `name` in the file)"
        raise SuiteError(f"`name` must be {LABEL_RULE} (it names the results folder); got {brief(name)}{source}")
    return Suite(
        name=name,
        datasets=_names(spec["datasets"], "datasets"),
        runs=[_run(entry, index) for index, entry in enumerate(runs)],
        seeds=check_count(spec.get("seeds", 3), "`seeds`"),
        first_seed=check_count(spec.get("first_seed", 0), "`first_seed`", least=0),
        epochs=_epochs(spec.get("epochs")),
        hidden=tuple(check_count(width, "`hidden`") for width in hidden) if hidden is not None else None,
        activation=activation,
        batch_size=check_count(spec["batch_size"], "`batch_size`") if "batch_size" in spec else None,
        observe=observe,
        roots={str(dataset): str(folder) for dataset, folder in roots.items()},
    )


def load_suite(path: str | Path) -> Suite:
    """Read and check a suite file; every error is one line naming the file and what is wrong in it."""
    path = Path(path)
    try:
        suite = parse_suite(_read_yaml(path), path.stem)
        suite.bench_config().validate()
    except PlasticityError as error:
        raise SuiteError(f"suite file {_shown(path)}: {error}") from None
    return suite


def _read_yaml(path: Path) -> Any:
    """The YAML document of a suite file: a regular file of at most MAX_BYTES of UTF-8, read with
    the bounded loader."""
    try:
        regular = path.is_file()  # False for a folder, a device, a pipe, and a name with a NUL byte
        if regular:
            with open(path, "rb") as handle:
                content = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise SuiteError(f"cannot be read ({os_reason(error)})") from None
    if not regular:
        raise SuiteError("is a folder or a device, not a file; give a YAML file" if path.exists() else "does not exist")
    if len(content) > MAX_BYTES:
        raise SuiteError(f"is larger than {MAX_BYTES} bytes; a suite is a few lines of YAML")
    try:
        return yaml.load(content.decode("utf-8"), Loader=_SuiteLoader)
    except UnicodeDecodeError as error:
        raise SuiteError(f"is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except yaml.YAMLError as error:
        raise SuiteError(f"is not valid YAML: {_problem(error)}") from None


def _problem(error: yaml.YAMLError) -> str:
    """A YAML error in one line: what went wrong and where (PyYAML's own text spans several)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        context = f"{error.context}: " if error.context else ""
        text = f"{context}{error.problem} (line {error.problem_mark.line + 1}, column {error.problem_mark.column + 1})"
    else:
        text = " ".join(str(error).split())
    return text if len(text) <= 200 else f"{text[:199]}…"


def _shown(path: Path) -> str:
    """The path as given, cut short when it is too long to be a usable one (a message stays short)."""
    text = str(path)
    return text if len(text) <= 4096 else brief(text)
