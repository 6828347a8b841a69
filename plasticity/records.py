"""Read a results file and check every field that the report, or a rerun of a bench, reads.

Neither a report nor a resumed bench trusts what it finds in a results folder: each file is size-checked and parsed here
(`load`), and each kind of record has one function that checks it (`check_run_record` for a
line of a bench's results.jsonl, `check_train_results` for the results.json of
`plasticity train`, `check_details` for the card and versions the report takes from a bench's
per-run results.json; the continual summary has `plasticity.lab.report.continual.check_entries`). Anything
wrong ends in a `ResultsError` naming the file, the record and the field, so a bad file never
reaches the plotting code as a traceback or as a silently wrong page.

How a run ended (`run_state`) is read from its record too: "diverged" when its status says
so, "unfinished" when it stopped before the epochs its config asks for (interrupted, or still
running), else "completed".
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from itertools import pairwise
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from plasticity.build import TrainConfig
from plasticity.errors import FileCheckError, PlasticityError, brief, os_reason
from plasticity.io import read_jsonl
from plasticity.rules.card import PlausibilityCard

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
TRAIN_CONFIG_KEYS = frozenset(f.name for f in fields(TrainConfig))

T = TypeVar("T")


class ResultsError(FileCheckError):
    """A results file (results.jsonl, results.json, summary.json) the report cannot show:
    unreadable, too big, not UTF-8 JSON, or a field missing or of the wrong type."""


@dataclass(frozen=True)
class Kind:
    """A type a field must have, and the words a message uses for it."""

    words: str
    test: Callable[[Any], bool]


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
NUMBERS = Kind("a list of numbers", lambda v: isinstance(v, list) and all(map(_number, v)))
LAYERS = Kind(f"a list of at most {MAX_LAYERS} numbers, one per layer", lambda v: NUMBERS.test(v) and len(v) <= MAX_LAYERS)
LOSS = Kind("a number ≥ 0", lambda v: _number(v) and v >= 0)
SECONDS = Kind("a finite number > 0", lambda v: _finite(v) and v > 0)
FRACTION = Kind("a fraction in [0, 1]", lambda v: _finite(v) and 0 <= v <= 1)
SHARE = Kind("a finite number ≥ 0", lambda v: _finite(v) and v >= 0)
CHANGE = Kind("a number in [-1, 1]", lambda v: _finite(v) and -1 <= v <= 1)
OBJECT = Kind("an object", lambda v: isinstance(v, dict))
LIST = Kind("a list", lambda v: isinstance(v, list))


@dataclass(frozen=True)
class Place:
    """Where a value sits, for messages: its file, the record in it, and the field's path."""

    file: Path
    record: str = ""
    path: str = ""

    def at(self, key: str | int) -> Place:
        step = f"[{key}]" if isinstance(key, int) else f".{key}" if self.path else key
        return Place(self.file, self.record, self.path + step)

    def fail(self, problem: str) -> NoReturn:
        where = ", ".join(part for part in (self.record, f"field `{self.path}`" if self.path else "") if part)
        raise ResultsError(f"{self.file}: {where or 'the file'} {problem}; {FIX}")

    def check(self, value: Any, kind: Kind, null: bool = False) -> Any:
        """`value` if it is of `kind` (or None when `null`); else a ResultsError naming this place."""
        if (value is None and null) or kind.test(value):
            return value
        self.fail(f"must be {kind.words}{' or null' if null else ''}; got {brief(value)}")

    def field(self, record: dict[str, Any], key: str, kind: Kind, required: bool = True, null: bool = False) -> Any:
        """record[key], checked against `kind`; None when it is absent and not `required`."""
        if key not in record:
            if required:
                self.at(key).fail("is missing")
            return None
        return self.at(key).check(record[key], kind, null)


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


def run_state(record: dict[str, Any]) -> str:
    """How a checked run record ended: "diverged", "unfinished" (stopped before the epochs its
    config asks for, or still running) or "completed"."""
    if record.get("status") == "diverged":
        return "diverged"
    if record.get("status", "completed") != "completed" or epochs_done(record) < record["config"]["epochs"]:
        return "unfinished"
    return "completed"


def epochs_done(record: dict[str, Any]) -> int:
    """The last epoch a checked run record has numbers for (0 if none)."""
    return record["curve"][-1]["epoch"] if record["curve"] else 0


def _check_settings(config: Any, place: Place) -> dict[str, Any]:
    """The settings of a run that the report reads (the settings line, how far a run got)."""
    place.check(config, OBJECT)
    place.field(config, "activation", NAME)
    place.field(config, "model", NAME, required=False)
    place.field(config, "hidden", COUNTS)
    place.field(config, "epochs", COUNT)
    place.field(config, "batch_size", COUNT)
    return config


def _check_epochs(points: list[Any], place: Place, check: Callable[[Any, Place], None]) -> None:
    """Each point checked by `check`, and their epoch numbers strictly increasing."""
    for index, point in enumerate(points):
        check(point, place.at(index))
    numbers = [point["epoch"] for point in points]
    if any(a >= b for a, b in pairwise(numbers)):
        place.fail(f"must list epochs in increasing order, each once; got epochs {brief(numbers)}")


def _check_point(point: Any, place: Place) -> None:
    """One point of a record's curve (`plasticity.lab.bench.runner.curve_point`)."""
    place.check(point, OBJECT)
    place.field(point, "epoch", COUNT)
    place.field(point, "train_loss", LOSS)
    place.field(point, "test_accuracy", FRACTION)
    for key in ("pi", "omega"):
        place.field(point, key, NUMBER, required=False, null=True)
    for key in ("update_angle", "feedback_angle"):
        place.field(point, key, LAYERS, required=False)


def check_run_record(record: Any, place: Place) -> dict[str, Any]:
    """A line of a bench's results.jsonl (`plasticity.lab.bench.runner.run_record`), every field the
    report reads checked; returns it."""
    place.check(record, OBJECT)
    for key in ("rule", "dataset"):
        place.field(record, key, NAME)
    place.field(record, "label", NAME, required=False)
    place.field(record, "status", NAME, required=False)
    place.field(record, "seed", INDEX)
    place.field(record, "test_accuracy", FRACTION, null=True)
    place.field(record, "epoch_seconds", SECONDS, null=True)
    _check_settings(place.field(record, "config", OBJECT), place.at("config"))
    _check_epochs(place.field(record, "curve", LIST), place.at("curve"), _check_point)
    return record


def check_table(records: list[dict[str, Any]], source: Path) -> None:
    """The checked records that share a table (a bench folder, or train runs side by side) within
    what a report draws: MAX_DATASETS datasets and MAX_LABELS labels."""
    for what, key, most in (("datasets", "dataset", MAX_DATASETS), ("labels", "label", MAX_LABELS)):
        count = len({r.get(key, r["rule"]) for r in records})
        if count > most:
            raise ResultsError(f"{source}: runs of {count} {what} in one table, more than a report draws ({most}); split them into several folders")


def _check_epoch(epoch: Any, place: Place) -> None:
    """One entry of a train run's `epochs` (`plasticity.train.Trainer.run_epoch`)."""
    place.check(epoch, OBJECT)
    place.field(epoch, "epoch", COUNT)
    place.field(epoch, "train_loss", LOSS)
    place.field(epoch, "test_accuracy", FRACTION)
    place.field(epoch, "epoch_seconds", SECONDS)
    counters = place.field(epoch, "counters", OBJECT, required=False) or {}
    for key in counters:
        place.at("counters").field(counters, key, NUMBER)
    alignment = place.field(epoch, "alignment", OBJECT, required=False)
    if alignment is not None:
        for key in ("update_angle", "feedback_angle"):
            place.at("alignment").field(alignment, key, LAYERS)
    for key in ("pi", "omega"):
        observed = place.field(epoch, key, OBJECT, required=False)
        if observed is not None:
            place.at(key).field(observed, key, NUMBER, null=True)


@dataclass(frozen=True)
class Details:
    """What a report shows of a run besides its numbers: its plausibility card, and the software
    it ran on (None when its results.json does not say)."""

    card: PlausibilityCard
    versions: dict[str, str] | None


def check_details(results: Any, place: Place) -> Details:
    """The card and versions of a run's results.json (a bench's per-run file, or a train run's)."""
    place.check(results, OBJECT)
    card = place.field(results, "card", OBJECT)
    try:
        made = PlausibilityCard(**card)
    except (TypeError, ValueError) as error:
        place.at("card").fail(f"is not a plausibility card ({brief(str(error), 200)})")
    versions = place.field(results, "versions", OBJECT, required=False)
    if versions is not None:
        for key in ("torch", "threads"):
            place.at("versions").field(versions, key, TEXT)
    return Details(made, versions)


def check_train_results(results: Any, place: Place) -> Details:
    """The results.json of `plasticity train` (`plasticity.train.Trainer.results`), every field
    the report and `run_record` read checked; returns its details."""
    details = check_details(results, place)
    config = _check_settings(place.field(results, "config", OBJECT), place.at("config"))
    unknown = sorted(set(config) - TRAIN_CONFIG_KEYS)
    if unknown:
        place.at("config").fail(f"has unknown key(s) {brief(unknown)}: it was written by another version of plasticity")
    for key in ("rule", "data"):
        place.at("config").field(config, key, NAME)
    place.at("config").field(config, "seed", INDEX)
    place.at("config").field(config, "rule_options", OBJECT, required=False)
    place.field(results, "status", NAME)
    place.field(results, "test_accuracy", FRACTION, null=True)
    place.field(results, "epoch_seconds", SECONDS, null=True)
    epochs = place.field(results, "epochs", LIST)
    _check_epochs(epochs, place.at("epochs"), _check_epoch)
    if epochs and "counters" in epochs[-1]:  # run_record's throughput divides them by the training set's size
        dataset = place.field(results, "dataset", OBJECT)
        place.at("dataset").field(dataset, "n_train", COUNT)
    return details
