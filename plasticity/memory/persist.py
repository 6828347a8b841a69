"""Saving and loading a StructuralMemory: arrays in safetensors, everything else as JSON. No pickle.

One file: the safetensors body holds the node arrays and the exemplar vectors; its header's
metadata holds the format name, a JSON document (parameters, labels, counters, exemplar keys,
the reservoir generator's state) and the SHA-256 of that JSON and of every array's dtype, shape
and bytes. Writing goes through `plasticity.io.atomic_write`. Loading checks the format, the
digest and the shapes, so a truncated, damaged or edited file raises `MemoryFileError` naming
the file and the problem instead of yielding a subtly different memory.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays
from sklearn.utils.validation import check_is_fitted

from plasticity.io import atomic_write
from plasticity.memory.concepts import ConceptStore
from plasticity.memory.structural import StructuralMemory, _plain

FORMAT = "plasticity-structural-memory/1"


class MemoryFileError(ValueError):
    """A memory file that cannot be read back exactly (truncated, damaged, edited, or not a memory)."""


def _digest(state_json: str, arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(state_json.encode("utf-8"))
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"\n{name} {array.dtype.str} {array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_memory(memory: StructuralMemory, path: str | os.PathLike) -> None:
    """Write `memory` to `path` atomically (see the module docstring for the layout)."""
    check_is_fitted(memory, "store_")
    arrays = {f"node.{name}": value for name, value in memory.store_.state().items()}
    dim = memory.store_.dim
    arrays["exemplar.node"] = np.array(memory.exemplar_nodes_, dtype=np.int64)
    arrays["exemplar.vector"] = np.stack(memory.exemplar_vectors_) if memory.exemplar_vectors_ else np.zeros((0, dim))
    state = {
        "params": memory.get_params(),
        "dim": dim,
        "rank": memory.store_.rank,
        "n_features_in": int(memory.n_features_in_),
        "labels": [_plain(label) for label in memory.labels_.tolist()],
        "events": memory.events_,
        "n_samples_seen": int(memory.n_samples_seen_),
        "n_calls": int(memory.n_calls_),
        "exemplar_keys": list(memory.exemplar_keys_),
        "rng_state": memory.rng_state_,
    }
    try:
        state_json = json.dumps(state, sort_keys=True, ensure_ascii=False)
    except TypeError as error:
        raise ValueError(f"cannot save: a parameter or label is not JSON-serialisable ({error})") from error
    metadata = {"format": FORMAT, "state": state_json, "sha256": _digest(state_json, arrays)}
    with atomic_write(path) as handle:
        handle.write(save_arrays(arrays, metadata=metadata))


def load_memory(path: str | os.PathLike) -> StructuralMemory:
    """Read a memory written by `save_memory`; MemoryFileError if the file is not exactly that."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise MemoryFileError(f"cannot read memory file {path}: {error}") from error
    try:
        arrays = load_arrays(raw)
        header_size = int.from_bytes(raw[:8], "little")
        metadata = json.loads(raw[8 : 8 + header_size].decode("utf-8")).get("__metadata__") or {}
    except (SafetensorError, ValueError, UnicodeDecodeError) as error:
        raise MemoryFileError(f"{path} is truncated or not a safetensors file ({error}); save the memory again") from error
    if metadata.get("format") != FORMAT:
        raise MemoryFileError(f"{path} is not a structural memory file (format {metadata.get('format')!r}, expected {FORMAT!r})")
    state_json = metadata.get("state", "")
    if _digest(state_json, arrays) != metadata.get("sha256"):
        raise MemoryFileError(f"{path} has been modified or damaged: its contents do not match the SHA-256 recorded when it was saved")
    try:
        return _rebuild(json.loads(state_json), arrays)
    except (KeyError, TypeError, ValueError) as error:
        raise MemoryFileError(f"{path} has an inconsistent state ({error})") from error


def _rebuild(state: dict[str, Any], arrays: dict[str, np.ndarray]) -> StructuralMemory:
    memory = StructuralMemory(**state["params"])
    nodes = {name.removeprefix("node."): value for name, value in arrays.items() if name.startswith("node.")}
    memory.store_ = ConceptStore.from_state(state["dim"], state["rank"], nodes)
    memory.n_features_in_ = state["n_features_in"]
    memory.labels_ = np.array(state["labels"], dtype=object)
    memory.classes_ = np.array(sorted(state["labels"]))
    memory.events_ = dict(state["events"])
    memory.n_samples_seen_ = state["n_samples_seen"]
    memory.n_calls_ = state["n_calls"]
    memory.exemplar_nodes_ = arrays["exemplar.node"].tolist()
    memory.exemplar_vectors_ = list(arrays["exemplar.vector"])
    memory.exemplar_keys_ = list(state["exemplar_keys"])
    memory.rng_state_ = state["rng_state"]
    if not len(memory.exemplar_nodes_) == len(memory.exemplar_vectors_) == len(memory.exemplar_keys_):
        raise ValueError("exemplar arrays and keys differ in length")
    memory._rebuild_index()
    return memory
