"""The structural-memory file format: arrays in safetensors, everything else as JSON. No pickle.

One file: the safetensors body holds the arrays; its header's metadata holds the format name, a
JSON document (the state) and the SHA-256 of that JSON and of every array's dtype, shape and
bytes. Writing goes through `plasticity.io.atomic_write`. Reading checks the format and the digest,
so a truncated, damaged or edited file raises `MemoryFileError` naming the file.

A digest only proves that the file is what some writer wrote: a forger can recompute it. This
module therefore knows the format and nothing else; what the state must contain (a tree whose
parents come before their children, counts that add up, finite statistics, valid parameters) is
checked by `StructuralMemory.load` and `ConceptStore.from_state`, which call it. So persistence
does not import the estimator back.
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

from plasticity.errors import ConfigError, FileCheckError
from plasticity.io import atomic_write

FORMAT = "plasticity-structural-memory/3"
UPGRADABLE = "plasticity-structural-memory/2"
"""Format 2 stored the d × d second moment whole; format 3 stores its upper triangle, row by row
(the matrix is symmetric). A format-2 file is read as the format-3 file it would be."""


class MemoryFileError(FileCheckError):
    """A memory file that cannot be read back exactly (truncated, damaged, edited, or not a memory)."""


def _digest(state_json: str, arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(state_json.encode("utf-8"))
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"\n{name} {array.dtype.str} {array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _json_scalar(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold (json.dumps calls this for what it cannot write)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r} is not a number or a string")


def write_memory_file(path: str | os.PathLike, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write `state` (JSON-serialisable) and `arrays` to `path` atomically, with their SHA-256."""
    arrays = {name: np.ascontiguousarray(array) for name, array in arrays.items()}  # the file holds C order
    try:
        state_json = json.dumps(state, sort_keys=True, ensure_ascii=False, default=_json_scalar)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"cannot save the memory to {path}: {error}; parameters and labels must be numbers or strings") from error
    metadata = {"format": FORMAT, "state": state_json, "sha256": _digest(state_json, arrays)}
    with atomic_write(path) as handle:
        handle.write(save_arrays(arrays, metadata=metadata))


def read_memory_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(state, arrays) exactly as `write_memory_file` wrote them; MemoryFileError naming the file otherwise."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise MemoryFileError(f"cannot read memory file {path}: {error}") from error
    try:
        arrays = load_arrays(raw)  # checks the header first: a JSON object of tensors and string metadata
        header_size = int.from_bytes(raw[:8], "little")
        metadata = json.loads(raw[8 : 8 + header_size].decode("utf-8")).get("__metadata__") or {}
    except (SafetensorError, ValueError, UnicodeDecodeError) as error:
        raise MemoryFileError(f"{path} is truncated or not a safetensors file ({error}); save the memory again") from error
    found = metadata.get("format")
    if isinstance(found, str) and found.startswith(FORMAT.split("/")[0] + "/") and found not in (FORMAT, UPGRADABLE):
        raise MemoryFileError(
            f"{path} holds a structural memory in format {found!r}, written by another version of plasticity; "
            f"this one reads {FORMAT!r} and {UPGRADABLE!r} (format 2 added the second moment that the class decisions use): fit the memory again"
        )
    if found not in (FORMAT, UPGRADABLE):
        raise MemoryFileError(f"{path} is not a structural memory file (format {metadata.get('format')!r}, expected {FORMAT!r})")
    state_json = metadata.get("state", "")
    if _digest(state_json, arrays) != metadata.get("sha256"):
        raise MemoryFileError(f"{path} has been modified or damaged: its contents do not match the SHA-256 recorded when it was saved")
    try:
        state = json.loads(state_json)
    except (ValueError, RecursionError) as error:  # RecursionError: JSON nested too deeply to parse
        raise MemoryFileError(f"{path} holds a state that is not readable JSON ({type(error).__name__}); save the memory again") from error
    if not isinstance(state, dict):
        raise MemoryFileError(f"{path} holds a state that is a JSON {type(state).__name__}, not an object; save the memory again")
    moment = arrays.get("root.moment")
    if found == UPGRADABLE and moment is not None and moment.ndim == 2 and moment.shape[0] == moment.shape[1]:
        arrays["root.moment"] = moment[np.triu_indices(moment.shape[0])]
    return state, arrays
