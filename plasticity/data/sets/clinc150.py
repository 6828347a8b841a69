"""CLINC150: intent classification with out-of-scope queries (text).

Larson et al., "An Evaluation Dataset for Intent Classification and Out-of-Scope
Prediction", EMNLP 2019; https://github.com/clinc/oos-eval (CC BY 3.0). We read the "full"
variant, `data_full.json`: {split: [[text, intent], ...]} with in-scope splits train (15000),
val (3000), test (4500) over 150 intents, and out-of-scope splits oos_train (100),
oos_val (100), oos_test (1000) whose intent is "oos".

x is the list of query strings; classes are the 150 in-scope intents sorted by name and y
indexes into them. The out-of-scope splits go to `Dataset.extra` with y = -1. The json's
md5 is computed and recorded, not checked against a constant (we know of no officially
published checksum); the file's structure is validated instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from plasticity.data.dataset import OUT_OF_SCOPE, Dataset, Split
from plasticity.data.errors import DataError
from plasticity.data.files import md5_of
from plasticity.data.locate import find_dir, missing_files_error
from plasticity.data.options import LoadOptions
from plasticity.errors import brief, os_reason

FILE_NAME = "data_full.json"
IN_SCOPE_SPLITS = ("train", "val", "test")
OOS_SPLITS = ("oos_train", "oos_val", "oos_test")
OOS_INTENT = "oos"
_URL = "https://github.com/clinc/oos-eval/raw/master/data/data_full.json"
MAX_BYTES = 64 << 20
"""The largest data_full.json read: 64 MiB, about 25 times the official file (2.5 MB)."""


def load_clinc150(options: LoadOptions) -> Dataset:
    """CLINC150 (full): train/val/test over 150 intents, plus oos_* splits in `extra`."""
    candidates = [options.root] if options.root else [options.cache_dir / "clinc150"]
    directory = find_dir([FILE_NAME], candidates)
    if directory is None:
        raise missing_files_error("clinc150", [FILE_NAME], candidates, f"Download it from {_URL} into one of those folders or pass root=DIR (--root DIR).")
    path = directory / FILE_NAME
    raw = _read_json(path)
    if not raw["train"]:
        raise DataError(f"{path}: the train split is empty; replace the file with a fresh copy from {_URL}")
    classes = tuple(sorted({intent for _, intent in raw["train"]}))
    if OOS_INTENT in classes:
        raise DataError(f"{path}: the train split holds {OOS_INTENT!r} queries; in-scope splits must not")
    index = {intent: i for i, intent in enumerate(classes)}
    splits = {name: _in_scope_split(path, name, raw[name], index) for name in IN_SCOPE_SPLITS}
    extra = {name: _oos_split(path, name, raw[name]) for name in OOS_SPLITS}
    return Dataset(
        name="clinc150",
        train=splits["train"],
        test=splits["test"],
        val=splits["val"],
        classes=classes,
        input_shape=(),
        source=f"CLINC150 (Larson et al., EMNLP 2019), data_full.json from {directory}",
        checksums={FILE_NAME: md5_of(path)},
        extra=extra,
    )


def _read_json(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Parse the file and check it is {split: [[text, intent], ...]} with every split present.

    A file over MAX_BYTES is refused unread, a nesting too deep for the parser and a key given
    twice in one object (JSON keeps the last silently) are refused as invalid."""
    try:
        size = path.stat().st_size
        content = path.read_bytes() if size <= MAX_BYTES else None
    except OSError as error:
        raise DataError(f"{path} cannot be read ({os_reason(error)}); make it readable or pass another root") from None
    if content is None:
        raise DataError(f"{path}: {size} bytes, more than the {MAX_BYTES} a CLINC150 file may hold here; replace it with a fresh copy from {_URL}")
    try:
        raw = json.loads(content.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, _RepeatedKey) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise DataError(f"{path}: not valid JSON ({reason}); replace it with a fresh copy from {_URL}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object of splits, found {type(raw).__name__}")
    missing = [name for name in (*IN_SCOPE_SPLITS, *OOS_SPLITS) if name not in raw]
    if missing:
        raise DataError(f"{path}: missing split(s) {', '.join(missing)}; is this CLINC150's data_full.json?")
    for name in (*IN_SCOPE_SPLITS, *OOS_SPLITS):
        rows = raw[name]
        if not isinstance(rows, list):
            raise DataError(f"{path}: split {name!r} should be a list of [text, intent] pairs")
        for i, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == 2 and all(isinstance(part, str) for part in row)):
                raise DataError(f"{path}: {name}[{i}] should be a [text, intent] pair of strings, found {brief(row)}")
    return raw


class _RepeatedKey(ValueError):
    """A key given twice in one JSON object."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object's pairs as a dict, refusing a key given twice rather than keeping the last."""
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _RepeatedKey(f"key {brief(key)} is given twice in one object")
        result[key] = value
    return result


def _in_scope_split(path: Path, name: str, rows: list[tuple[str, str]], index: dict[str, int]) -> Split:
    """Texts and class indices; every intent must be one seen in train."""
    unknown = sorted({intent for _, intent in rows} - index.keys())
    if unknown:
        raise DataError(f"{path}: split {name!r} has intent(s) not in train: {', '.join(intent[:80] for intent in unknown[:5])}")
    return Split([text for text, _ in rows], torch.tensor([index[intent] for _, intent in rows], dtype=torch.int64))


def _oos_split(path: Path, name: str, rows: list[tuple[str, str]]) -> Split:
    """Out-of-scope texts, all labelled OUT_OF_SCOPE."""
    if any(intent != OOS_INTENT for _, intent in rows):
        raise DataError(f"{path}: split {name!r} should hold only {OOS_INTENT!r} queries")
    return Split([text for text, _ in rows], torch.full((len(rows),), OUT_OF_SCOPE, dtype=torch.int64))
