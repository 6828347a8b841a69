"""The files a run writes, as typed records: one schema for every writer and every reader.

Writers build records and write `record.to_json()`; readers (the report, a resumed bench or
train run, the continual demo) read with `Record.from_json(payload, place)`, which checks every
field: anything wrong ends in a `ResultsError` naming the file, the record and the field, so a
bad file never reaches the plotting code as a traceback or as a silently wrong page. The JSON
keys of these files are the records' field names, declared here. This module imports no torch
and no rule: the report reads results without them.

Versions. Every top-level object (a run's results.json, each line of a bench's results.jsonl,
each entry of a summary.json, a continual run's results.json) is written with `"schema":
SCHEMA_VERSION` as its first key. An object without one was written before versions were
recorded and reads as version 1, the format it has. An object of a newer version than this
plasticity reads is refused with a message naming the file and the plasticity it needs. A change
to a record's format raises SCHEMA_VERSION, and `from_json` goes on reading the older versions.

Fields, in the order written (`?`: may be absent; `| null`: may be null; `(x)`: its value when
absent). Fractions (accuracies, rates) are in [0, 1], never percentages; seconds are wall time.

results.json of `plasticity train`, and of each run of a bench (`RunResults`):
    schema, run_id? (ties the file to its checkpoints), config (`RunSettings`), rule? (the rule's
    own description: name, seed, options, converted layers), card (a plausibility card,
    `plasticity.card`), seed?, dataset? (`DatasetFacts`: name, n_train, n_test, n_features,
    n_classes, source | null; present whenever an epoch counts events), network? (`Network`:
    class, parameters, sizes?, activation?), versions? (`Versions`: plasticity?, python?, torch,
    numpy?, platform?, threads), status ("running", "completed" or "diverged"), message? (why a
    run diverged), test_accuracy | null (after the last epoch), epoch_seconds | null (median over
    the epochs), epochs (`EpochRecord`s in increasing order: epoch, train_loss, test_loss,
    test_accuracy, epoch_seconds (the learning steps only), counters? {event: count}, then each
    observer's numbers under its name: alignment {update_angle, feedback_angle: a number per
    layer, ...}, pi {pi | null, ...}, omega {omega | null, ...}, any other observer's object).
config (`RunSettings`, `plasticity.build.TrainConfig` resolved; an unknown key is refused):
    rule, data, root | null (null), model ("mlp"), hidden, activation, epochs, batch_size, seed,
    rule_options ({}), device ("cpu").
a line of a bench's results.jsonl (`RunRecord`): schema, rule, label? (the rule), dataset, seed,
    test_accuracy | null, epoch_seconds | null, status? ("completed"), epochs? (epoch entries of
    the run), key? (its settings hashed: a rerun skips the runs whose key it finds; every line a
    bench writes has one), config (`RunSettings`), curve (`CurvePoint`s in increasing order:
    epoch, train_loss, test_accuracy, epoch_seconds?, update_angle?, feedback_angle?, pi? | null,
    omega? | null: absent where the observer did not run or measured nothing), throughput? | null
    ({samples_per_second, <event>_per_second}: rules that count events).
an entry of a bench's summary.json (`SummaryRow`, one per label and dataset): schema, rule,
    label, dataset, n_seeds, seeds, test_accuracy_mean | null, test_accuracy_std | null (sample
    std), n_measured (runs with an accuracy), epoch_seconds_mean | null, epoch_seconds_std | null,
    diverged (runs), accuracy_ratio_to_bp | null, time_ratio_to_bp | null.
an entry of a continual summary.json (`ContinualEntry`, one per method and dataset; a file of
    another program may hold only method, dataset and final_accuracy_mean, and other keys, which
    are ignored): schema, method, dataset, n_seeds?, seeds? (n_seeds of them), tasks? | null (a
    name, or a list of class names, per task), final_accuracy_mean | null (mean over tasks of the
    accuracy after the last task); then numbers that may each be absent or null: final_accuracy_std,
    forgetting_mean (average forgetting, Chaudhry et al. 2018, in [-1, 1]), forgetting_std,
    backward_transfer_mean (Lopez-Paz & Ranzato 2017, in [-1, 1]), backward_transfer_std,
    task_il_forgetting_mean, task_il_forgetting_std, oos_auroc (out-of-scope detection),
    oos_auroc_std, oos_recall_at_95_precision, in_scope_recall_at_95_precision, stored_fraction
    (vectors kept per training example: above 1 for a method that keeps every example and more),
    stored_fraction_std, stored_vectors, stored_vectors_std, learn_per_second,
    learn_per_second_std, predict_per_second, predict_per_second_std; accuracy_matrix? (T×T:
    [i][j] = accuracy on task j after training tasks 0..i, mean over seeds), roc? {fpr, tpr}
    (`Roc`: out-of-scope = positive), risk_coverage? {coverage, risk} (`RiskCoverage`), and for
    the structural memory (`MemorySummary`) concepts_mean, topics_mean, tolerance | null,
    in_scope_answered_mean?, oos_rejected_mean?, groups_mean? (groups of its coarse level),
    split_classes_mean? (classes with more than one concept), extra_concepts_mean? (concepts −
    classes), coarse? (`CoarseSummary`, datasets with a domain map: domains (their number),
    memory, ward_domains, ward_groups (each `PartitionSummary`: groups_mean, ari_mean, ari_std,
    domain_accuracy_mean, domain_accuracy_std), order_stability_min | null (the smallest
    adjusted Rand index between the coarse partitions of two task orders; null for one order)).
    Files written before a field existed lack it.
results.json of a continual run (`ContinualResults`): schema, config, settings, selection | null,
    encoder, encoding, classes, seconds, versions (`Versions`), results {method: one
    `ContinualSeedResult` per task order: accuracy (T×T), final_average_accuracy,
    average_forgetting | null, backward_transfer | null, task_il_accuracy (T×T),
    task_il_forgetting | null, stored_vectors, stored_fraction, learn_seconds, learn_per_second,
    predict_per_second, oos? (`OosScores`: auroc, oos_recall | null, in_scope_recall | null),
    roc?, risk_coverage, structure? (`MemoryStructure`: topics, concepts, stored {nodes,
    directions, exemplars, total}, events {event: count}, tolerance | null, in_scope_answered?,
    oos_rejected?, groups?, coarse_groups? (the coarse partition: lists of class indices),
    split_classes?, extra_concepts?, coarse? (`CoarseScores`: domains, memory, ward_domains,
    ward_groups, each `PartitionScore`: groups, ari, domain_accuracy)), seed, tasks (the classes
    of each task), replay_budget?}, domains? ({file, names}: the domain map the coarse level was
    scored against).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar, NoReturn, Self, TypeVar

from plasticity import __version__
from plasticity.card import PlausibilityCard
from plasticity.errors import FileCheckError, PlasticityError, brief, os_reason
from plasticity.io import read_jsonl

SCHEMA = "schema"
SCHEMA_VERSION = 1
"""The version of the records below; files without one are version 1."""

RUN_RESULTS = "results.json"  # a run's RunResults (a continual run's ContinualResults)
BENCH_RESULTS = "results.jsonl"  # a bench's RunRecords, one a line
SUMMARY = "summary.json"  # a bench's SummaryRows, or a continual run's ContinualEntries
FAILURES = "failures.json"  # a bench's RunFailures (only while some run failed)

RUNNING, COMPLETED, DIVERGED = "running", "completed", "diverged"  # how a run stands or ended
UNFINISHED = "unfinished"  # a run that stopped before its last epoch (`RunRecord.state`)

MAX_BYTES = 256 * 2**20
"""Largest results file a report reads. A run record of 60 epochs with every observer takes
about 15 kB, so a suite of 5,000 runs writes about 75 MiB; a file several times bigger is not
one plasticity wrote, and parsing it would only fill memory (Python objects take several times
the file's size)."""
FIX = "fix or remove the file, or rerun the command that wrote it"
NAME_LENGTH = 100  # characters of a rule, dataset, label or method name
# What one table may hold, so that its figures stay a few hundred panels and lines at most (a
# figure has a panel per dataset and layer, a line per label): several times any real bench.
MAX_LAYERS = 12  # values per layer list (update and feedback angles; lenet5 has 5 layers)
MAX_DATASETS = 8  # datasets in one table (the registry has 6)
MAX_LABELS = 100  # labels in one table
# What one continual summary may hold, so that its figures stay small (a heat map per entry, a
# cell per pair of tasks); several times what a continual run writes.
MAX_ENTRIES = 24
MAX_TASKS = 30

# Observers whose numbers the records read from an epoch entry, by their names.
ALIGNMENT, PI, OMEGA = "alignment", "pi", "omega"
ANGLES = ("update_angle", "feedback_angle")  # the alignment observer's per-layer angles

T = TypeVar("T")


class ResultsError(FileCheckError):
    """A results file (results.jsonl, results.json, summary.json) that cannot be read: unreadable,
    too big, not UTF-8 JSON, of a newer schema, or with a field missing or of the wrong type."""


# ------------------------------------------------------------------------------------ values
@dataclass(frozen=True)
class Kind:
    """A JSON value a field may hold, and the words a message uses for it."""

    words: str
    test: Callable[[Any], bool]

    def read(self, value: Any, place: Place) -> Any:
        return place.check(value, self)

    def write(self, value: Any) -> Any:
        return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return _number(value) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


NAME = Kind(f"a non-empty string of at most {NAME_LENGTH} characters", lambda v: isinstance(v, str) and 0 < len(v) <= NAME_LENGTH)
TEXT = Kind("a string", lambda v: isinstance(v, str))
INDEX = Kind("a whole number ≥ 0", lambda v: _whole(v) and v >= 0)
COUNT = Kind("a whole number ≥ 1", lambda v: _whole(v) and v >= 1)
COUNTS = Kind("a list of whole numbers ≥ 1", lambda v: isinstance(v, list) and all(COUNT.test(x) for x in v))
INDICES = Kind("a list of whole numbers ≥ 0", lambda v: isinstance(v, list) and all(INDEX.test(x) for x in v))
NUMBER = Kind("a number", _number)
LAYERS = Kind(f"a list of at most {MAX_LAYERS} numbers, one per layer", lambda v: isinstance(v, list) and all(map(_number, v)) and len(v) <= MAX_LAYERS)
LOSS = Kind("a number ≥ 0", lambda v: _number(v) and v >= 0)
SECONDS = Kind("a finite number > 0", lambda v: _finite(v) and v > 0)
FRACTION = Kind("a fraction in [0, 1]", lambda v: _finite(v) and 0 <= v <= 1)
FRACTIONS = Kind("a list of fractions in [0, 1]", lambda v: isinstance(v, list) and all(FRACTION.test(x) for x in v))
SHARE = Kind("a finite number ≥ 0", lambda v: _finite(v) and v >= 0)
CHANGE = Kind("a number in [-1, 1]", lambda v: _finite(v) and -1 <= v <= 1)
OBJECT = Kind("an object", lambda v: isinstance(v, dict))
LIST = Kind("a list", lambda v: isinstance(v, list))
TASK = Kind("a task name (a string, or a list of class names)", lambda v: isinstance(v, (str, list)))


@dataclass(frozen=True)
class Place:
    """Where a value sits, for messages: its file, the record in it, and the field's path."""

    file: Path
    record: str = ""
    path: str = ""

    def at(self, key: str | int) -> Place:
        step = f"[{key}]" if isinstance(key, int) else f".{key}" if self.path else key
        return Place(self.file, self.record, self.path + step)

    def where(self) -> str:
        """ "record 2 of 3, field `curve[0].epoch`", or "the file"."""
        return ", ".join(part for part in (self.record, f"field `{self.path}`" if self.path else "") if part) or "the file"

    def fail(self, problem: str) -> NoReturn:
        raise ResultsError(f"{self.file}: {self.where()} {problem}; {FIX}")

    def check(self, value: Any, kind: Kind, null: bool = False) -> Any:
        """`value` if it is of `kind` (or None when `null`); else a ResultsError naming this place."""
        if (value is None and null) or kind.test(value):
            return value
        self.fail(f"must be {kind.words}{' or null' if null else ''}; got {brief(value)}")

    def field(self, record: dict[str, Any], key: str, kind: Kind, null: bool = False) -> Any:
        """record[key], checked against `kind`; a ResultsError when it is missing."""
        if key not in record:
            self.at(key).fail("is missing")
        return self.at(key).check(record[key], kind, null)


# ------------------------------------------------------------------------------------ files
def load(path: Path, parse: Callable[[Path], T]) -> T:
    """`parse(path)` after checking the file's size; every way reading can fail (too big, not
    UTF-8, not JSON, nested too deeply for the parser, unreadable) is a ResultsError naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ResultsError(
                f"{path} holds {size / 2**20:.0f} MiB, more than a results file can ({MAX_BYTES // 2**20} MiB); "
                "it was not written by plasticity: move it out of the results folder"
            )
        return parse(path)
    except PlasticityError:
        raise
    except UnicodeDecodeError as error:
        raise ResultsError(f"{path}: byte {error.start} is not UTF-8 text; {FIX}") from None
    except RecursionError:
        raise ResultsError(f"{path}: JSON nested too deeply to read (results nest a few levels); {FIX}") from None
    except json.JSONDecodeError as error:
        raise ResultsError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); {FIX}") from None
    except ValueError as error:  # a number with more digits than Python converts
        raise ResultsError(f"{path}: {error}; {FIX}") from None
    except OSError as error:
        raise ResultsError(f"{path} cannot be read ({os_reason(error)}); check its permissions") from None


def read_json(path: Path) -> Any:
    """The JSON value in `path` (checked by `load`)."""
    return load(path, lambda p: json.loads(p.read_text(encoding="utf-8")))


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of `path`, one a line (`plasticity.io.read_jsonl`: a torn last line is
    dropped, any other line that holds no object is a FileCheckError naming it), after `load`'s checks."""
    return load(path, read_jsonl)


def schema_of(payload: Any, place: Place) -> int:
    """The schema version of a file's top-level object (1 when it names none: written before
    versions were recorded); a ResultsError that names the plasticity to read it with when it is
    newer than this one reads."""
    if not isinstance(payload, dict) or SCHEMA not in payload:
        return 1
    version = place.field(payload, SCHEMA, COUNT)
    if version > SCHEMA_VERSION:
        software = payload.get("versions")
        wrote = software.get("plasticity") if isinstance(software, dict) else None
        needed = f"plasticity {brief(wrote, 40)} (which wrote it) or newer" if isinstance(wrote, str) else "a newer plasticity"
        raise ResultsError(
            f"{place.file}: {place.where()} is in results schema {version}, newer than plasticity {__version__} reads "
            f"(schema {SCHEMA_VERSION} at most); read it with {needed}: pip install --upgrade plasticity"
        )
    return version


# ------------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class Nested:
    """A field that holds a record of its own."""

    record: type[Record]
    words: ClassVar[str] = "an object"

    def read(self, value: Any, place: Place) -> Any:
        return self.record.from_json(value, place)

    def write(self, value: Any) -> Any:
        return value.to_json()


@dataclass(frozen=True)
class ListOf:
    """A field that holds a list of values of one shape."""

    item: Kind | Nested | ListOf
    words: ClassVar[str] = "a list"

    def read(self, value: Any, place: Place) -> list[Any]:
        place.check(value, LIST)
        return [self.item.read(item, place.at(index)) for index, item in enumerate(value)]

    def write(self, value: list[Any]) -> list[Any]:
        return [self.item.write(item) for item in value]


@dataclass(frozen=True)
class MapOf:
    """A field that holds an object whose values have one shape (keys are the writer's names)."""

    item: Kind | Nested | ListOf
    words: ClassVar[str] = "an object"

    def read(self, value: Any, place: Place) -> dict[str, Any]:
        place.check(value, OBJECT)
        return {key: self.item.read(item, place.at(key)) for key, item in value.items()}

    def write(self, value: dict[str, Any]) -> dict[str, Any]:
        return {key: self.item.write(item) for key, item in value.items()}


class CardShape:
    """A field that holds a plausibility card (`plasticity.card`), checked by the card itself."""

    words = "an object"

    def read(self, value: Any, place: Place) -> PlausibilityCard:
        place.check(value, OBJECT)
        try:
            return PlausibilityCard(**value)
        except (TypeError, ValueError) as error:
            place.fail(f"is not a plausibility card ({brief(str(error), 200)})")

    def write(self, value: PlausibilityCard) -> dict[str, Any]:
        return value.to_dict()


CARD = CardShape()
Shape = Kind | Nested | ListOf | MapOf | CardShape
SPEC = "results.spec"  # the key of a field's Spec in its metadata


@dataclass(frozen=True)
class Spec:
    """How a field is read and written. key: its JSON key (default: the field's name); required:
    a missing key is an error (else the field takes its default); null: the value may be null;
    omit: a None value is not written at all; flat: a nested record whose fields sit in this
    record's own object; rest: the field holds every key no other field names."""

    shape: Shape
    key: str | None = None
    required: bool = True
    null: bool = False
    omit: bool = False
    flat: bool = False
    rest: bool = False

    def read(self, value: Any, place: Place) -> Any:
        if value is None and self.null:
            return None
        if isinstance(self.shape, Kind):
            return place.check(value, self.shape, self.null)  # its message says "or null" where null is allowed
        return self.shape.read(value, place)


def needed(shape: Shape, *, null: bool = False, key: str | None = None) -> Any:
    """A field every object of its record holds."""
    return field(metadata={SPEC: Spec(shape, key, null=null)})


def optional(shape: Shape, *, default: Any = None, factory: Callable[[], Any] | None = None, null: bool = False, omit: bool = False) -> Any:
    """A field an object may lack (it then takes `default`, or `factory()`)."""
    spec = Spec(shape, required=False, null=null, omit=omit)
    return field(default_factory=factory, metadata={SPEC: spec}) if factory else field(default=default, metadata={SPEC: spec})


def flat(record: type[Record]) -> Any:
    """A nested record written into its parent's object (present when any of its keys is)."""
    return field(default=None, metadata={SPEC: Spec(Nested(record), required=False, omit=True, flat=True)})


def rest() -> Any:
    """The keys of an object that no other field of its record names, as they were."""
    return field(default_factory=dict, metadata={SPEC: Spec(OBJECT, required=False, rest=True)})


@cache
def _declared(record: type[Record]) -> tuple[tuple[str, str, Spec], ...]:
    """(field name, JSON key, Spec) of each field of a record class, in order."""
    return tuple((item.name, item.metadata[SPEC].key or item.name, item.metadata[SPEC]) for item in fields(record))


class Record:
    """A record of a results file, a frozen dataclass whose fields declare their JSON values
    (`needed`, `optional`, `flat`, `rest`); `to_json` and `from_json` follow the declarations."""

    versioned: ClassVar[bool] = False
    """A file's top-level object: written with its schema version, read only up to this one's."""
    closed: ClassVar[bool] = False
    """An unknown key is refused (else ignored)."""
    marks: ClassVar[frozenset[str]] = frozenset()
    """Keys that mark a JSON object as this record (`recognises`)."""

    @classmethod
    def recognises(cls, payload: Any) -> bool:
        """Whether `payload` is an object that holds one of this record's marks."""
        return isinstance(payload, dict) and not cls.marks.isdisjoint(payload)

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object its file holds."""
        out: dict[str, Any] = {SCHEMA: SCHEMA_VERSION} if self.versioned else {}
        for name, key, spec in _declared(type(self)):
            value = getattr(self, name)
            if spec.rest:
                out.update(value)
            elif spec.flat:
                out.update(value.to_json() if value is not None else {})
            elif value is not None or not spec.omit:
                out[key] = None if value is None else spec.shape.write(value)
        return out

    @classmethod
    def from_json(cls, payload: Any, place: Place) -> Self:
        """The record in `payload`, every field checked (`Spec`, then `check`); a ResultsError
        naming `place` and the field otherwise."""
        place.check(payload, OBJECT)
        if cls.versioned:
            schema_of(payload, place)
        values: dict[str, Any] = {}
        known = {SCHEMA} if cls.versioned else set()
        for name, key, spec in _declared(cls):
            if spec.flat:
                keys = {inner for _, inner, _ in _declared(spec.shape.record)}
                known |= keys
                if not keys.isdisjoint(payload):
                    values[name] = spec.shape.record.from_json({k: v for k, v in payload.items() if k in keys}, place)
            elif not spec.rest:
                known.add(key)
                if key in payload:
                    values[name] = spec.read(payload[key], place.at(key))
                elif spec.required:
                    place.at(key).fail("is missing")
        unknown = {key: value for key, value in payload.items() if key not in known}
        spare = [name for name, _, spec in _declared(cls) if spec.rest]
        if spare:
            values[spare[0]] = unknown
        elif unknown and cls.closed:
            place.fail(f"has unknown key(s) {brief(sorted(unknown))}: it was written by another version of plasticity")
        record = cls(**values)
        record.check(place)
        return record

    def check(self, place: Place) -> None:
        """What a record's fields must satisfy together (nothing, unless a record says so)."""


def _in_order(epochs: list[int], place: Place) -> None:
    """Epoch numbers strictly increasing, each once; else a ResultsError at `place`."""
    if any(a >= b for a, b in pairwise(epochs)):
        place.fail(f"must list epochs in increasing order, each once; got epochs {brief(epochs)}")


# ------------------------------------------------------------------------------------ a training run
@dataclass(frozen=True, kw_only=True)
class RunSettings(Record):
    """A run's settings (`config`): `plasticity.build.TrainConfig` resolved, field for field."""

    closed: ClassVar[bool] = True

    rule: str = needed(NAME)
    data: str = needed(NAME)
    root: str | None = optional(TEXT, null=True)
    model: str = optional(NAME, default="mlp")
    hidden: list[int] = needed(COUNTS)
    activation: str = needed(NAME)
    epochs: int = needed(COUNT)
    batch_size: int = needed(COUNT)
    seed: int = needed(INDEX)
    rule_options: dict[str, Any] = optional(OBJECT, factory=dict)
    device: str = optional(NAME, default="cpu")
    label_noise: float | None = optional(FRACTION, omit=True)


@dataclass(frozen=True, kw_only=True)
class DatasetFacts(Record):
    """What a run's results say of its dataset."""

    name: str = needed(NAME)
    n_train: int = needed(COUNT)
    n_test: int = needed(COUNT)
    n_features: int = needed(COUNT)
    n_classes: int = needed(COUNT)
    source: str | None = needed(TEXT, null=True)


@dataclass(frozen=True, kw_only=True)
class Network(Record):
    """What a run's results say of its network: its class and size; the MLP's widths and
    non-linearity, a spiking network's sizes."""

    kind: str = needed(TEXT, key="class")
    parameters: int = needed(INDEX)
    sizes: list[int] | None = optional(COUNTS, omit=True)
    activation: str | None = optional(NAME, omit=True)


@dataclass(frozen=True, kw_only=True)
class Versions(Record):
    """The software a run ran on (`threads`: torch's CPU threads)."""

    plasticity: str | None = optional(TEXT, omit=True)
    python: str | None = optional(TEXT, omit=True)
    torch: str = needed(TEXT)
    numpy: str | None = optional(TEXT, omit=True)
    platform: str | None = optional(TEXT, omit=True)
    threads: str = needed(TEXT)


@dataclass(frozen=True, kw_only=True)
class EpochRecord(Record):
    """One epoch of a run (`plasticity.train.Trainer.run_epoch`); `observed` holds each
    observer's numbers under its name, as the observer gave them."""

    epoch: int = needed(COUNT)
    train_loss: float = needed(LOSS)
    test_loss: float = needed(LOSS)
    test_accuracy: float = needed(FRACTION)
    epoch_seconds: float = needed(SECONDS)
    counters: dict[str, float] | None = optional(MapOf(NUMBER), omit=True)
    observed: dict[str, Any] = rest()

    def check(self, place: Place) -> None:
        """The observers' numbers that curves are drawn from: per-layer angles, ΣPI and Ω."""
        if ALIGNMENT in self.observed:
            alignment = place.at(ALIGNMENT).check(self.observed[ALIGNMENT], OBJECT)
            for key in ANGLES:
                place.at(ALIGNMENT).field(alignment, key, LAYERS)
        for name in (PI, OMEGA):
            if name in self.observed:
                place.at(name).field(place.at(name).check(self.observed[name], OBJECT), name, NUMBER, null=True)

    def angles(self, which: int) -> list[float] | None:
        """The alignment observer's per-layer angles (`ANGLES[which]`), if it ran."""
        return self.observed[ALIGNMENT][ANGLES[which]] if ALIGNMENT in self.observed else None

    def headline(self, name: str) -> float | None:
        """The number an observer names after itself (ΣPI's `pi`, Ω's `omega`), if it ran."""
        return self.observed[name][name] if name in self.observed else None


@dataclass(frozen=True, kw_only=True)
class RunResults(Record):
    """A run's results.json (`plasticity.train.Trainer.record`)."""

    versioned: ClassVar[bool] = True
    marks: ClassVar[frozenset[str]] = frozenset({"card", "epochs"})  # a continual run's results.json has neither

    run_id: str | None = optional(TEXT, omit=True)
    config: RunSettings = needed(Nested(RunSettings))
    rule: dict[str, Any] | None = optional(OBJECT, omit=True)
    card: PlausibilityCard = needed(CARD)
    seed: int | None = optional(INDEX, omit=True)
    dataset: DatasetFacts | None = optional(Nested(DatasetFacts), omit=True)
    network: Network | None = optional(Nested(Network), omit=True)
    versions: Versions | None = optional(Nested(Versions), omit=True)
    status: str = needed(NAME)
    message: str | None = optional(TEXT, omit=True)
    test_accuracy: float | None = needed(FRACTION, null=True)
    epoch_seconds: float | None = needed(SECONDS, null=True)
    epochs: list[EpochRecord] = needed(ListOf(Nested(EpochRecord)))

    def check(self, place: Place) -> None:
        _in_order([e.epoch for e in self.epochs], place.at("epochs"))
        if self.epochs and self.epochs[-1].counters is not None and self.dataset is None:
            place.at("dataset").fail("is missing (event rates divide the counts by its n_train)")

    def throughput(self) -> dict[str, float] | None:
        """Training samples per second and, for rules that count events, events per second, in the
        last epoch's learning steps (None for rules without event counters)."""
        last = self.epochs[-1] if self.epochs else None
        if last is None or last.counters is None:
            return None
        rates = {"samples_per_second": self.dataset.n_train / last.epoch_seconds}
        rates.update({f"{key}_per_second": value / last.epoch_seconds for key, value in last.counters.items()})
        return rates


# ------------------------------------------------------------------------------------ a bench
@dataclass(frozen=True, kw_only=True)
class CurvePoint(Record):
    """The numbers of one epoch a report draws: loss, accuracy and the observers' headline values."""

    epoch: int = needed(COUNT)
    train_loss: float = needed(LOSS)
    test_accuracy: float = needed(FRACTION)
    epoch_seconds: float | None = optional(SECONDS, omit=True)
    update_angle: list[float] | None = optional(LAYERS, omit=True)
    feedback_angle: list[float] | None = optional(LAYERS, omit=True)
    pi: float | None = optional(NUMBER, null=True, omit=True)
    omega: float | None = optional(NUMBER, null=True, omit=True)

    @classmethod
    def of(cls, epoch: EpochRecord) -> CurvePoint:
        """The point of an epoch entry (an observer that measured nothing, a null ΣPI say, gives no value)."""
        return cls(
            epoch=epoch.epoch,
            train_loss=epoch.train_loss,
            test_accuracy=epoch.test_accuracy,
            epoch_seconds=epoch.epoch_seconds,
            update_angle=epoch.angles(0),
            feedback_angle=epoch.angles(1),
            pi=epoch.headline(PI),
            omega=epoch.headline(OMEGA),
        )

    def observers(self) -> list[str]:
        """The observers this point has numbers of."""
        values = {ALIGNMENT: self.update_angle, PI: self.pi, OMEGA: self.omega}
        return [name for name, value in values.items() if value is not None]


@dataclass(frozen=True, kw_only=True)
class RunRecord(Record):
    """A line of a bench's results.jsonl: one run, with its settings and curve."""

    versioned: ClassVar[bool] = True
    marks: ClassVar[frozenset[str]] = frozenset({"rule", "dataset", "seed", "test_accuracy", "curve", "config"})

    rule: str = needed(NAME)
    label: str | None = optional(NAME, omit=True)
    dataset: str = needed(NAME)
    seed: int = needed(INDEX)
    test_accuracy: float | None = needed(FRACTION, null=True)
    epoch_seconds: float | None = needed(SECONDS, null=True)
    status: str = optional(NAME, default=COMPLETED)
    epochs: int | None = optional(INDEX, omit=True)
    key: str | None = optional(TEXT, omit=True)
    config: RunSettings = needed(Nested(RunSettings))
    curve: list[CurvePoint] = needed(ListOf(Nested(CurvePoint)))
    throughput: dict[str, float] | None = optional(MapOf(NUMBER), null=True)
    host: str | None = optional(TEXT, omit=True)

    def check(self, place: Place) -> None:
        _in_order([p.epoch for p in self.curve], place.at("curve"))

    @classmethod
    def of(cls, results: RunResults, label: str | None = None, key: str | None = None, host: str | None = None) -> RunRecord:
        """A run's record from its results; `label` (default: the rule's name) names it in
        summaries, `key` (a bench's `run_key`) identifies its settings, `host` is the machine it
        ran on (time ratios are formed between runs of one host)."""
        config = results.config
        return cls(
            rule=config.rule,
            label=label or config.rule,
            dataset=config.data,
            seed=config.seed,
            test_accuracy=results.test_accuracy,
            epoch_seconds=results.epoch_seconds,
            status=results.status,
            epochs=len(results.epochs),
            key=key,
            config=config,
            curve=[CurvePoint.of(epoch) for epoch in results.epochs],
            throughput=results.throughput(),
            host=host,
        )

    @property
    def name(self) -> str:
        """The name the run is reported under (its rule's, unless a bench gave it a label)."""
        return self.label or self.rule

    @property
    def epochs_done(self) -> int:
        """The last epoch the run has numbers for (0 if none)."""
        return self.curve[-1].epoch if self.curve else 0

    def state(self) -> str:
        """How the run ended: DIVERGED, UNFINISHED (stopped before the epochs its config asks for,
        or still running) or COMPLETED."""
        if self.status == DIVERGED:
            return DIVERGED
        if self.status != COMPLETED or self.epochs_done < self.config.epochs:
            return UNFINISHED
        return COMPLETED


def check_table(records: list[RunRecord], source: Path) -> None:
    """Records that share a table (a bench folder, or train runs side by side) within what a
    report draws: MAX_DATASETS datasets and MAX_LABELS labels."""
    for what, values, most in (("datasets", {r.dataset for r in records}, MAX_DATASETS), ("labels", {r.name for r in records}, MAX_LABELS)):
        if len(values) > most:
            raise ResultsError(f"{source}: runs of {len(values)} {what} in one table, more than a report draws ({most}); split them into several folders")


@dataclass(frozen=True, kw_only=True)
class SummaryRow(Record):
    """An entry of a bench's summary.json: one label on one dataset, over its seeds."""

    versioned: ClassVar[bool] = True
    marks: ClassVar[frozenset[str]] = frozenset({"label"})

    rule: str = needed(NAME)
    label: str = needed(NAME)
    dataset: str = needed(NAME)
    n_seeds: int = needed(COUNT)
    seeds: list[int] = needed(INDICES)
    test_accuracy_mean: float | None = needed(FRACTION, null=True)
    test_accuracy_std: float | None = needed(SHARE, null=True)
    n_measured: int = needed(INDEX)
    epoch_seconds_mean: float | None = needed(SECONDS, null=True)
    epoch_seconds_std: float | None = needed(SHARE, null=True)
    diverged: int = needed(INDEX)
    accuracy_ratio_to_bp: float | None = needed(SHARE, null=True)
    time_ratio_to_bp: float | None = needed(SHARE, null=True)
    time_ratio_note: str | None = optional(TEXT, omit=True)
    failed: int | None = optional(COUNT, omit=True)


@dataclass(frozen=True, kw_only=True)
class RunFailure(Record):
    """An entry of a bench's failures.json: a run that raised, or whose Ray worker died past its
    retries; a rerun of the bench runs it again."""

    versioned: ClassVar[bool] = True
    marks: ClassVar[frozenset[str]] = frozenset({"error", "traceback"})

    rule: str = needed(NAME)
    label: str = needed(NAME)
    dataset: str = needed(NAME)
    seed: int = needed(INDEX)
    key: str = needed(TEXT)
    host: str | None = optional(TEXT, omit=True)
    error: str = needed(TEXT)
    traceback: str = needed(TEXT)


def is_bench_summary(payload: Any) -> bool:
    """A bench's summary.json: a list of SummaryRows (a report recomputes it from the runs)."""
    return isinstance(payload, list) and all(SummaryRow.recognises(entry) for entry in payload)


# ------------------------------------------------------------------------------------ a continual run
@dataclass(frozen=True, kw_only=True)
class Curve(Record):
    """Two lists of fractions of equal length ≥ 2: a curve, `axes` naming x and y."""

    axes: ClassVar[tuple[str, str]]

    def points(self) -> tuple[list[float], list[float]]:
        """(x, y)."""
        x, y = self.axes
        return getattr(self, x), getattr(self, y)

    def check(self, place: Place) -> None:
        (x, y), (xs, ys) = self.axes, self.points()
        if len(xs) != len(ys) or len(xs) < 2:
            place.fail(f"must hold `{x}` and `{y}` of equal length ≥ 2; got lengths {len(xs)} and {len(ys)}")


@dataclass(frozen=True, kw_only=True)
class Roc(Curve):
    """An abstention ROC: out-of-scope inputs are the positives."""

    axes: ClassVar[tuple[str, str]] = ("fpr", "tpr")
    fpr: list[float] = needed(FRACTIONS)
    tpr: list[float] = needed(FRACTIONS)


@dataclass(frozen=True, kw_only=True)
class RiskCoverage(Curve):
    """Error rate among the inputs answered (risk) against the fraction answered (coverage)."""

    axes: ClassVar[tuple[str, str]] = ("coverage", "risk")
    coverage: list[float] = needed(FRACTIONS)
    risk: list[float] = needed(FRACTIONS)


def _square(matrix: list[list[float]] | None, place: Place) -> None:
    """A non-empty square matrix of at most MAX_TASKS rows, when there is one."""
    if matrix is None:
        return
    if not matrix or any(len(row) != len(matrix) for row in matrix):
        place.fail(f"must be a non-empty square (tasks × tasks) matrix; got rows of lengths {brief([len(r) for r in matrix])}")
    if len(matrix) > MAX_TASKS:
        place.fail(f"must have at most {MAX_TASKS} tasks; got {len(matrix)}")


MATRIX = ListOf(FRACTIONS)


@dataclass(frozen=True, kw_only=True)
class PartitionSummary(Record):
    """A partition of the classes against the dataset's domains, over the task orders (means and
    sample spreads of `PartitionScore`)."""

    groups_mean: float = needed(SHARE)
    ari_mean: float = needed(CHANGE)
    ari_std: float = needed(SHARE)
    domain_accuracy_mean: float = needed(FRACTION)
    domain_accuracy_std: float = needed(SHARE)


@dataclass(frozen=True, kw_only=True)
class CoarseSummary(Record):
    """The memory's coarse level against the dataset's domains, and the batch Ward baselines
    (`plasticity.lab.continual.coarse`), over the task orders."""

    domains: int = needed(COUNT)
    memory: PartitionSummary = needed(Nested(PartitionSummary))
    ward_domains: PartitionSummary = needed(Nested(PartitionSummary))
    ward_groups: PartitionSummary = needed(Nested(PartitionSummary))
    order_stability_min: float | None = needed(CHANGE, null=True)


@dataclass(frozen=True, kw_only=True)
class MemorySummary(Record):
    """What a continual summary says of the structural memory, over its task orders."""

    concepts_mean: float = needed(SHARE)
    topics_mean: float = needed(SHARE)
    tolerance: float | None = needed(NUMBER, null=True)
    in_scope_answered_mean: float | None = optional(FRACTION, omit=True)
    oos_rejected_mean: float | None = optional(FRACTION, omit=True)
    groups_mean: float | None = optional(SHARE, omit=True)
    split_classes_mean: float | None = optional(SHARE, omit=True)
    extra_concepts_mean: float | None = optional(SHARE, omit=True)
    coarse: CoarseSummary | None = optional(Nested(CoarseSummary), omit=True)


@dataclass(frozen=True, kw_only=True)
class ContinualEntry(Record):
    """An entry of a continual summary.json: one method on one dataset, over its task orders."""

    versioned: ClassVar[bool] = True
    marks: ClassVar[frozenset[str]] = frozenset({"method"})

    method: str = needed(NAME)
    dataset: str = needed(NAME)
    n_seeds: int | None = optional(COUNT, omit=True)
    seeds: list[int] | None = optional(INDICES, omit=True)
    tasks: list[Any] | None = optional(ListOf(TASK), null=True, omit=True)
    final_accuracy_mean: float | None = needed(FRACTION, null=True)
    final_accuracy_std: float | None = optional(FRACTION, null=True)
    forgetting_mean: float | None = optional(CHANGE, null=True)
    forgetting_std: float | None = optional(FRACTION, null=True)
    backward_transfer_mean: float | None = optional(CHANGE, null=True)
    backward_transfer_std: float | None = optional(SHARE, null=True)
    task_il_forgetting_mean: float | None = optional(CHANGE, null=True)
    task_il_forgetting_std: float | None = optional(SHARE, null=True)
    oos_auroc: float | None = optional(FRACTION, null=True)
    oos_auroc_std: float | None = optional(SHARE, null=True)
    oos_recall_at_95_precision: float | None = optional(FRACTION, null=True)
    in_scope_recall_at_95_precision: float | None = optional(FRACTION, null=True)
    stored_fraction: float | None = optional(SHARE, null=True)
    stored_fraction_std: float | None = optional(SHARE, null=True)
    stored_vectors: float | None = optional(SHARE, null=True)
    stored_vectors_std: float | None = optional(SHARE, null=True)
    learn_per_second: float | None = optional(SHARE, null=True)
    learn_per_second_std: float | None = optional(SHARE, null=True)
    predict_per_second: float | None = optional(SHARE, null=True)
    predict_per_second_std: float | None = optional(SHARE, null=True)
    accuracy_matrix: list[list[float]] | None = optional(MATRIX, omit=True)
    roc: Roc | None = optional(Nested(Roc), omit=True)
    risk_coverage: RiskCoverage | None = optional(Nested(RiskCoverage), omit=True)
    memory: MemorySummary | None = flat(MemorySummary)

    def check(self, place: Place) -> None:
        if self.n_seeds is not None and self.seeds is not None and len(self.seeds) != self.n_seeds:
            place.at("seeds").fail(f"must list `n_seeds` ({self.n_seeds}) seeds; got {brief(self.seeds)}")
        _square(self.accuracy_matrix, place.at("accuracy_matrix"))
        if self.accuracy_matrix is not None and self.tasks is not None and len(self.tasks) != len(self.accuracy_matrix):
            place.at("tasks").fail(f"must name one task per row of `accuracy_matrix` ({len(self.accuracy_matrix)}); got {len(self.tasks)}")

    def task_names(self) -> list[str]:
        """Axis labels for the accuracy matrix: the entry's task names, else "task 1", "task 2", ..."""
        tasks = self.tasks or [f"task {i + 1}" for i in range(len(self.accuracy_matrix or ()))]
        return [",".join(map(str, task)) if isinstance(task, list) else str(task) for task in tasks]


def _entry_name(index: int, entry: Any) -> str:
    """ "entry 2 ('memory' on 'digits')", or "entry 2" when it names neither."""
    named = isinstance(entry, dict) and ("method" in entry or "dataset" in entry)
    return f"entry {index}" + (f" ({brief(entry.get('method'))} on {brief(entry.get('dataset'))})" if named else "")


@dataclass(frozen=True)
class ContinualSummary:
    """A continual summary.json: a list of ContinualEntries, one per (method, dataset)."""

    entries: list[ContinualEntry]

    @staticmethod
    def recognises(payload: Any) -> bool:
        """A list in which some object names a `method` (a bench's summary names a `label` instead)."""
        return isinstance(payload, list) and any(ContinualEntry.recognises(entry) for entry in payload)

    @classmethod
    def from_json(cls, payload: Any, place: Place) -> ContinualSummary:
        """Every entry checked; errors name the file, the entry and the key."""
        if ContinualEntry.recognises(payload):
            place.fail("must be a list of entries, one per (method, dataset); got one object")
        place.check(payload, LIST)
        if len(payload) > MAX_ENTRIES:
            raise ResultsError(f"{place.file}: {len(payload)} entries, more than a report draws ({MAX_ENTRIES}); split them into several files")
        entries: list[ContinualEntry] = []
        for index, item in enumerate(payload):
            entry_place = Place(place.file, _entry_name(index, item))
            entry = ContinualEntry.from_json(item, entry_place)
            twin = next((i for i, e in enumerate(entries) if (e.method, e.dataset) == (entry.method, entry.dataset)), None)
            if twin is not None:
                entry_place.fail(f"repeats the method and dataset of entry {twin}: one entry per (method, dataset)")
            entries.append(entry)
        return cls(entries)

    def to_json(self) -> list[dict[str, Any]]:
        return [entry.to_json() for entry in self.entries]


@dataclass(frozen=True, kw_only=True)
class OosScores(Record):
    """Out-of-scope detection (`plasticity.lab.continual.metrics.oos_metrics`)."""

    auroc: float = needed(FRACTION)
    oos_recall: float | None = needed(FRACTION, null=True)
    in_scope_recall: float | None = needed(FRACTION, null=True)


@dataclass(frozen=True, kw_only=True)
class PartitionScore(Record):
    """A partition of the classes into groups against the dataset's domains, after one task order:
    its number of groups, the adjusted Rand index with the domains, and the domain accuracy of the
    memory's class predictions mapped through it (`plasticity.lab.continual.coarse`)."""

    groups: int = needed(COUNT)
    ari: float = needed(CHANGE)
    domain_accuracy: float = needed(FRACTION)


@dataclass(frozen=True, kw_only=True)
class CoarseScores(Record):
    """The memory's coarse level after one task order against the `domains` of the dataset's
    domain map, and Ward's batch clustering of the class centroids told the number of domains
    (`ward_domains`) or the memory's number of groups (`ward_groups`)."""

    domains: int = needed(COUNT)
    memory: PartitionScore = needed(Nested(PartitionScore))
    ward_domains: PartitionScore = needed(Nested(PartitionScore))
    ward_groups: PartitionScore = needed(Nested(PartitionScore))


@dataclass(frozen=True, kw_only=True)
class MemoryStructure(Record):
    """The structural memory after one task order: its size, events and abstention."""

    topics: int = needed(INDEX)
    concepts: int = needed(INDEX)
    stored: dict[str, int] = needed(MapOf(INDEX))  # vectors kept: nodes, directions, exemplars, total
    events: dict[str, int] = needed(MapOf(INDEX))
    tolerance: float | None = needed(NUMBER, null=True)
    in_scope_answered: float | None = optional(FRACTION, omit=True)
    oos_rejected: float | None = optional(FRACTION, omit=True)
    groups: int | None = optional(INDEX, omit=True)
    coarse_groups: list[list[int]] | None = optional(ListOf(INDICES), omit=True)
    split_classes: int | None = optional(INDEX, omit=True)
    extra_concepts: int | None = optional(INDEX, omit=True)
    coarse: CoarseScores | None = optional(Nested(CoarseScores), omit=True)


@dataclass(frozen=True, kw_only=True)
class ContinualSeedResult(Record):
    """One method on one task order (`plasticity.lab.continual.protocol.run_method`)."""

    accuracy: list[list[float]] = needed(MATRIX)
    final_average_accuracy: float = needed(FRACTION)
    average_forgetting: float | None = needed(CHANGE, null=True)
    backward_transfer: float | None = needed(CHANGE, null=True)
    task_il_accuracy: list[list[float]] = needed(MATRIX)
    task_il_forgetting: float | None = needed(CHANGE, null=True)
    stored_vectors: int = needed(INDEX)
    stored_fraction: float = needed(SHARE)
    learn_seconds: float = needed(SHARE)
    learn_per_second: float = needed(SHARE)
    predict_per_second: float = needed(SHARE)
    oos: OosScores | None = optional(Nested(OosScores), omit=True)
    roc: Roc | None = optional(Nested(Roc), omit=True)
    risk_coverage: RiskCoverage = needed(Nested(RiskCoverage))
    structure: MemoryStructure | None = optional(Nested(MemoryStructure), omit=True)
    seed: int = needed(INDEX)
    tasks: list[list[int]] = needed(ListOf(INDICES))
    replay_budget: int | None = optional(INDEX, omit=True)

    def check(self, place: Place) -> None:
        _square(self.accuracy, place.at("accuracy"))
        _square(self.task_il_accuracy, place.at("task_il_accuracy"))


@dataclass(frozen=True, kw_only=True)
class ContinualResults(Record):
    """A continual run's results.json (`plasticity.lab.continual.experiment.write_outputs`): its
    configuration, settings, selection trials, encoding and every task order's full result."""

    versioned: ClassVar[bool] = True
    marks: ClassVar[frozenset[str]] = frozenset({"encoder", "encoding"})

    config: dict[str, Any] = needed(OBJECT)
    settings: dict[str, Any] = needed(OBJECT)
    selection: dict[str, Any] | None = needed(OBJECT, null=True)
    encoder: str = needed(TEXT)
    encoding: dict[str, Any] = needed(OBJECT)
    classes: list[Any] = needed(LIST)
    seconds: float = needed(SHARE)
    versions: Versions = needed(Nested(Versions))
    results: dict[str, list[ContinualSeedResult]] = needed(MapOf(ListOf(Nested(ContinualSeedResult))))
    domains: dict[str, Any] | None = optional(OBJECT, omit=True)
