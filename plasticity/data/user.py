"""A user's own labelled files as a `Dataset`: texts with labels (CSV or JSON lines), or precomputed
embeddings (`.npy`) with a labels file.

    files = UserFiles(train="intents.csv", test="intents-test.csv", oos="unrelated.csv")
    dataset = load_files(files)          # text: embed it before learning (plasticity.memory.encoders)

Formats, chosen by the file's suffix:

- `.csv`: a header row naming the columns; the text in `text_column` (default "text") and the
  label in `label_column` (default "label"); other columns are ignored. Read with Python's `csv`
  module (quoted fields may hold commas and newlines), UTF-8.
- `.jsonl`: one JSON object per line with the same two keys; blank lines are skipped; a label may
  be a string or a whole number.
- `.npy`: a 2-D array of finite numbers (n samples × d features), read without pickles; its labels
  come from a separate file (`labels`, `test_labels`, `val_labels`): a `.npy` 1-D array of whole
  numbers or strings, or a `.txt` file with one label per line.

The classes are the training labels, sorted (as numbers when every label is a whole number, else
as text); a test or validation label the training file does not have is refused. Without a test
file, a stratified `test_fraction` of the training samples is held out (`random_state=seed`). The
out-of-scope file (`oos`), optional, holds queries that belong to no class (their labels, if any,
are ignored): the memory should abstain on them. Every problem is a `DataError` naming the file, and
the line or field, in one line.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plasticity.data.dataset import OUT_OF_SCOPE, Dataset, Split
from plasticity.data.errors import DataError
from plasticity.errors import brief

TEXTS = (".csv", ".jsonl")
EMBEDDINGS = ".npy"
LABELS = (".npy", ".txt")
MAX_BYTES = 4 << 30
"""The largest file read (4 GiB): a bound on what a mistyped path can make the loader swallow."""
MAX_TEXT = 100_000
"""The longest text accepted, in characters (sentence encoders read a few hundred tokens)."""


@dataclass(frozen=True)
class UserFiles:
    """A dataset in a user's files: `train` (required), and optionally `test`, `val` and `oos`
    (out-of-scope queries), all texts (.csv, .jsonl) or all embeddings (.npy, each in-scope one
    with its labels file). See the module's docstring for the formats."""

    train: str
    test: str | None = None
    val: str | None = None
    oos: str | None = None
    labels: str | None = None
    test_labels: str | None = None
    val_labels: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    test_fraction: float = 0.2
    seed: int = 0

    @property
    def texts(self) -> bool:
        """Whether the files hold texts (else embeddings)."""
        return Path(self.train).suffix.lower() in TEXTS

    def validate(self) -> None:
        """DataError for a file that is missing, of an unknown kind, or paired with the wrong
        options, before anything is read."""
        splits = {"train": self.train, "test": self.test, "val": self.val, "oos": self.oos}
        for split, path in splits.items():
            if path is not None:
                _check_file(path, TEXTS + (EMBEDDINGS,), f"the {split} file")
        kinds = {split: Path(path).suffix.lower() in TEXTS for split, path in splits.items() if path is not None}
        if len(set(kinds.values())) > 1:
            raise DataError(f"the files mix texts (.csv, .jsonl) and embeddings (.npy): {brief(kinds)}; give all of one kind")
        pairs = {"labels": ("train", self.labels), "test_labels": ("test", self.test_labels), "val_labels": ("val", self.val_labels)}
        for option, (split, labels) in pairs.items():
            data = splits[split]
            if self.texts and labels is not None:
                raise DataError(f"{option} is for embeddings (.npy); the labels of texts are the column {self.label_column!r} of the {split} file")
            if not self.texts and data is not None and labels is None:
                flag = "--" + option.replace("_", "-")
                raise DataError(f"the {split} file {data} holds embeddings: give its labels file too ({option}, {flag} on the command line: .npy or .txt)")
            if labels is not None and data is None:
                raise DataError(f"{option} is given but there is no {split} file")
            if labels is not None:
                _check_file(labels, LABELS, f"the labels file of {split}")
        if not 0 < self.test_fraction < 1:
            raise DataError(f"the test fraction must be between 0 and 1; got {self.test_fraction}")
        for column in (self.text_column, self.label_column):
            if not column:
                raise DataError("column names must not be empty")


def _check_file(path: str, suffixes: tuple[str, ...], what: str) -> None:
    file = Path(path)
    if file.suffix.lower() not in suffixes:
        raise DataError(f"{what} {brief(str(path))} has no known suffix; give one of {', '.join(suffixes)}")
    if not file.is_file():
        raise DataError(f"{what} {brief(str(path))} does not exist or is not a file")
    if file.stat().st_size > MAX_BYTES:
        raise DataError(f"{what} {path} is larger than {MAX_BYTES >> 30} GiB; split it")


# ------------------------------------------------------------------------------------ reading
def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: the text must be a non-empty string; got {brief(value)}")
    if len(value) > MAX_TEXT:
        raise DataError(f"{where}: a text of {len(value):,} characters, more than {MAX_TEXT:,}")
    return value


def _label(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: the label must be a non-empty string or a whole number; got {brief(value)}")
    return str(value).strip()


def read_texts(path: str, text_column: str, label_column: str | None) -> tuple[list[str], list[str] | None]:
    """(texts, labels) of a .csv or .jsonl file; labels None when `label_column` is None (out-of-scope)."""
    file = Path(path)
    rows = _csv_rows(file) if file.suffix.lower() == ".csv" else _jsonl_rows(file)
    texts: list[str] = []
    labels: list[str] = []
    for where, row in rows:
        for column in (text_column, label_column):
            if column is not None and column not in row:
                raise DataError(f"{where}: no {column!r} field (it has {brief(sorted(row))}); name the columns with --text-column / --label-column")
        texts.append(_text(row[text_column], f"{where}, {text_column!r}"))
        if label_column is not None:
            labels.append(_label(row[label_column], f"{where}, {label_column!r}"))
    if not texts:
        raise DataError(f"{path} holds no samples")
    return texts, (labels if label_column is not None else None)


def _csv_rows(file: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                raise DataError(f"{file}: no header row; the first line must name the columns")
            rows = []
            for row in reader:
                if None in row:
                    raise DataError(f"{file}, line {reader.line_num}: more fields than the header names")
                rows.append((f"{file}, line {reader.line_num}", {key: value for key, value in row.items() if value is not None}))
            return rows
    except UnicodeDecodeError as error:
        raise DataError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise DataError(f"{file}: not a readable CSV file ({error})") from None


def _jsonl_rows(file: Path) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{file}, line {number}: not JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{file}, line {number}: a JSON object is needed; got {brief(row)}")
        rows.append((f"{file}, line {number}", row))
    return rows


def read_embeddings(path: str) -> np.ndarray:
    """A .npy file's (n, d) array of finite numbers, as float32."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not a .npy array without pickled objects ({str(error).splitlines()[0]})") from None
    if array.ndim != 2 or 0 in array.shape:
        raise DataError(f"{path}: embeddings must be a 2-D array (samples × features); got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"{path}: embeddings must be numbers; got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise DataError(f"{path}: embeddings must be finite; row {int(np.nonzero(~np.isfinite(array).all(axis=1))[0][0])} is not")
    return array


def read_labels(path: str) -> list[str]:
    """The labels of an embeddings file: a 1-D .npy of whole numbers or strings, or a .txt, one a line."""
    if Path(path).suffix.lower() == ".txt":
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        return [_label(line, f"{path}, line {number}") for number, line in enumerate(lines, start=1)]
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not a .npy array without pickled objects ({str(error).splitlines()[0]})") from None
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.str_)):
        raise DataError(f"{path}: labels must be a 1-D array of whole numbers or strings; got {array.dtype} of shape {array.shape}")
    return [_label(value.item(), f"{path}, item {index}") for index, value in enumerate(array)]


# ------------------------------------------------------------------------------------ a dataset
def _classes(labels: list[str]) -> tuple[str, ...]:
    """The distinct labels, sorted as numbers when they all are whole numbers, else as text."""
    distinct = set(labels)
    numeric = all(label.lstrip("-").isdigit() for label in distinct)
    return tuple(sorted(distinct, key=int if numeric else str))


def _part(files: UserFiles, data: str, labels_file: str | None) -> tuple[Any, list[str]]:
    """(inputs, labels) of one in-scope file: texts, or embeddings with their labels file."""
    if files.texts:
        texts, labels = read_texts(data, files.text_column, files.label_column)
        return texts, labels or []
    x = read_embeddings(data)
    labels = read_labels(labels_file) if labels_file is not None else []
    if len(labels) != len(x):
        raise DataError(f"{data} holds {len(x)} samples but its labels file {labels_file} holds {len(labels)} labels")
    return x, labels


def _split(inputs: Any, labels: list[str], classes: tuple[str, ...], where: str) -> Split:
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({label for label in labels if label not in index})
    if unknown:
        raise DataError(f"{where}: label(s) {brief(unknown)} are not among the training labels")
    y = torch.tensor([index[label] for label in labels], dtype=torch.int64)
    return Split(inputs if isinstance(inputs, list) else torch.from_numpy(inputs), y)


def _take(inputs: Any, index: np.ndarray) -> Any:
    return [inputs[i] for i in index] if isinstance(inputs, list) else inputs[index]


def load_files(files: UserFiles, name: str | None = None) -> Dataset:
    """The Dataset in `files` (checked first, `UserFiles.validate`); `name` defaults to the training
    file's name without its suffix."""
    files.validate()
    inputs, labels = _part(files, files.train, files.labels)
    classes = _classes(labels)
    if len(classes) < 2:
        raise DataError(f"{files.train}: at least 2 classes are needed; the labels hold {len(classes)}")
    if files.test is not None:
        train = _split(inputs, labels, classes, files.train)
        test = _split(*_part(files, files.test, files.test_labels), classes, files.test)
    else:
        train, test = _held_out(files, inputs, labels, classes)
    val = _split(*_part(files, files.val, files.val_labels), classes, files.val) if files.val is not None else None
    extra = {}
    if files.oos is not None:
        oos = read_texts(files.oos, files.text_column, None)[0] if files.texts else read_embeddings(files.oos)
        extra["oos_test"] = Split(oos if isinstance(oos, list) else torch.from_numpy(oos), torch.full((len(oos),), OUT_OF_SCOPE, dtype=torch.int64))
    shape = () if files.texts else (int(train.x.shape[1]),)
    return Dataset(
        name=name or Path(files.train).stem,
        train=train,
        test=test,
        val=val,
        classes=classes,
        input_shape=shape,
        source=f"user files: {', '.join(p for p in (files.train, files.test, files.val, files.oos) if p)}",
        extra=extra,
    )


def _held_out(files: UserFiles, inputs: Any, labels: list[str], classes: tuple[str, ...]) -> tuple[Split, Split]:
    """(train, test): a stratified `test_fraction` of the training file held out as test."""
    from sklearn.model_selection import train_test_split

    counts = {name: labels.count(name) for name in classes}
    fewest = min(counts, key=counts.__getitem__)
    n_test = math.ceil(files.test_fraction * len(labels))
    if counts[fewest] < 2 or n_test < len(classes) or len(labels) - n_test < len(classes):
        raise DataError(
            f"{files.train}: too few samples to hold out a stratified test split ({len(labels)} samples, {len(classes)} classes, "
            f"class {fewest!r} has {counts[fewest]}); give a test file"
        )
    index = np.arange(len(labels))
    fit, test = train_test_split(index, test_size=files.test_fraction, stratify=labels, random_state=files.seed)
    fit, test = np.sort(fit), np.sort(test)
    return (
        _split(_take(inputs, fit), [labels[i] for i in fit], classes, files.train),
        _split(_take(inputs, test), [labels[i] for i in test], classes, f"{files.train} (held out)"),
    )
