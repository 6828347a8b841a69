"""Checkpoints as safetensors: tensors only, never pickled objects, and never trusted unchecked.

A checkpoint holds the network's parameters, the rule's own tensors (feedback matrices), the
optimizer's state (null for a run without one: the spiking rules change weights themselves) and
a JSON header (format, epoch, config, a `tie` to the run's other files). Nested optimizer state
is flattened: tensors go into the safetensors body under a path-like key; everything else is
kept in the JSON header, with each tensor replaced by {"__tensor__": key} (dicts and tuples are
tagged too, so integer keys and tuples come back as they were).

The header's `checksum` is a SHA-256 over every other header field and every tensor (name,
dtype, shape and bytes), so a flipped weight byte or an edited epoch, setting or learning rate
is refused (`read_checkpoint`) before anything is loaded. Format 1 had no checksum: such files
are refused with a message that says how to start afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from plasticity.errors import FileCheckError, brief
from plasticity.io import atomic_write

FORMAT = "plasticity-checkpoint/2"
UNCHECKED_FORMATS = ("plasticity-checkpoint/1",)  # older formats, without a checksum
START_AFRESH = "start afresh with --overwrite (plasticity train; overwrite=True in Python), or use another --out"


class CheckpointError(FileCheckError):
    """A checkpoint that cannot be read, fails its checksum, or does not fit the run."""


def _flatten(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().clone().contiguous()
        return {"__tensor__": key}
    if isinstance(value, dict):
        return {"__dict__": [[k, _flatten(v, f"{key}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_flatten(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_flatten(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]
    return value


def _unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict) and "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if isinstance(value, dict) and "__dict__" in value:
        return {k: _unflatten(v, tensors) for k, v in value["__dict__"]}
    if isinstance(value, dict) and "__tuple__" in value:
        return tuple(_unflatten(v, tensors) for v in value["__tuple__"])
    if isinstance(value, list):
        return [_unflatten(v, tensors) for v in value]
    return value


def _rule_state(rule: Any) -> dict[str, torch.Tensor]:
    """A rule's tensors: `state_dict()` of a rule that is an `nn.Module`, else `rule_state()`."""
    return rule.state_dict() if isinstance(rule, torch.nn.Module) else rule.rule_state()


def checksum(header: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the header's fields (all but `checksum` itself) and every tensor's name,
    dtype, shape and bytes, in name order: what `save_checkpoint` stores and `read_checkpoint`
    recomputes."""
    digest = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != "checksum"}, sort_keys=True).encode())
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(json.dumps([key, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return "sha256:" + digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike,
    net: torch.nn.Module,
    rule: Any,
    optimizer: torch.optim.Optimizer | None,
    epoch: int,
    config: dict[str, Any],
    tie: dict[str, str] | None = None,
) -> Path:
    """Write the network, rule and optimizer state (if any) after `epoch` to `path` atomically,
    with a checksum. `tie`: what ties the checkpoint to the run's other files (the trainer stores
    its run id and a digest of the results written before it), returned by `read_checkpoint`."""
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in net.state_dict().items():
        tensors[f"net.{name}"] = tensor.detach().clone().contiguous()
    for name, tensor in _rule_state(rule).items():
        tensors[f"rule.{name}"] = tensor.detach().clone().contiguous()
    state = None if optimizer is None else _flatten(optimizer.state_dict(), "optim", tensors)
    header = {
        "format": FORMAT,
        "epoch": str(epoch),
        "config": json.dumps(config),
        "optimizer": json.dumps(state),
        "tie": json.dumps(tie or {}),
    }
    header["checksum"] = checksum(header, tensors)
    with atomic_write(path) as handle:
        handle.write(save(tensors, metadata=header))
    return Path(path)


@dataclass
class Checkpoint:
    """A checkpoint read from disk whose checksum holds; `restore` puts its tensors in place."""

    path: Path
    epoch: int
    config: dict[str, Any]
    tie: dict[str, str]
    optimizer_state: Any  # the flattened optimizer state (None: the run had no optimizer)
    tensors: dict[str, torch.Tensor]

    def restore(self, net: torch.nn.Module, rule: Any, optimizer: torch.optim.Optimizer | None) -> None:
        """Load the network, rule and optimizer (if any) in place."""
        try:
            net.load_state_dict({key[4:]: value for key, value in self.tensors.items() if key.startswith("net.")})
            rule_state = {key[5:]: value for key, value in self.tensors.items() if key.startswith("rule.")}
            if isinstance(rule, torch.nn.Module):
                rule.load_state_dict(rule_state)
            else:
                rule.load_rule_state(rule_state)
            if (self.optimizer_state is None) != (optimizer is None):
                raise ValueError("it holds no optimizer state" if optimizer is not None else "it holds optimizer state, and this run has no optimizer")
            if optimizer is not None:
                optimizer.load_state_dict(_unflatten(self.optimizer_state, self.tensors))
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CheckpointError(f"checkpoint {self.path} does not fit this network and rule ({brief(first, 200)}); {START_AFRESH}") from error


def _header(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The raw header and tensors of a safetensors file; CheckpointError if it cannot be read."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = getattr(error, "strerror", None) or brief(str(error), 120)
        raise CheckpointError(f"cannot read checkpoint {path} ({reason}): it is damaged or not a checkpoint; {START_AFRESH}") from None
    return header, tensors


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """The checkpoint at `path`, checked: its format, and its checksum over header and tensors.
    Nothing is loaded into a model here, so a caller can compare `config` with its own first."""
    path = Path(path)
    header, tensors = _header(path)
    found = header.get("format")
    if found in UNCHECKED_FORMATS:
        raise CheckpointError(f"{path} is a checkpoint of an older version ({found}) that carries no checksum; {START_AFRESH}")
    if found != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file (format {brief(found)}); {START_AFRESH}")
    if header.get("checksum") != checksum(header, tensors):
        raise CheckpointError(f"{path} fails its checksum: a weight or a header field (epoch, settings) changed after it was written; {START_AFRESH}")
    try:
        epoch, config, tie = int(header["epoch"]), json.loads(header["config"]), json.loads(header["tie"])
        state = json.loads(header["optimizer"])
    except (KeyError, ValueError, RecursionError) as error:  # a checksum recomputed after forging the header
        raise CheckpointError(f"{path} has a malformed header ({brief(str(error), 120)}); {START_AFRESH}") from None
    if epoch < 0 or not isinstance(config, dict) or not isinstance(tie, dict):
        raise CheckpointError(f"{path} has a malformed header (epoch {epoch}, config and tie must be objects); {START_AFRESH}")
    return Checkpoint(path, epoch, config, tie, state, tensors)


def load_checkpoint(path: str | os.PathLike, net: torch.nn.Module, rule: Any, optimizer: torch.optim.Optimizer | None) -> tuple[int, dict[str, Any]]:
    """Check the checkpoint at `path`, restore `net`, `rule` and `optimizer` (if any) in place;
    returns (epoch, config) saved with it."""
    checkpoint = read_checkpoint(path)
    checkpoint.restore(net, rule, optimizer)
    return checkpoint.epoch, checkpoint.config
