"""Checkpoints as safetensors: tensors only, never pickled objects.

A checkpoint holds the network's parameters, the rule's own tensors (feedback matrices), the
optimizer's state (null for a run without one: the spiking rules change weights themselves) and
a JSON header (format, epoch, config). Nested optimizer state is flattened: tensors go into the
safetensors body under a path-like key; everything else is kept in the JSON header, with each
tensor replaced by {"__tensor__": key} (dicts and tuples are tagged too, so integer keys and
tuples come back as they were).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from plasticity.io import atomic_write

FORMAT = "plasticity-checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint that cannot be read or does not fit the run."""


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


def save_checkpoint(
    path: str | os.PathLike, net: torch.nn.Module, rule: Any, optimizer: torch.optim.Optimizer | None, epoch: int, config: dict[str, Any]
) -> Path:
    """Write the network, rule and optimizer state (if any) after `epoch` to `path` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in net.state_dict().items():
        tensors[f"net.{name}"] = tensor.detach().clone().contiguous()
    for name, tensor in _rule_state(rule).items():
        tensors[f"rule.{name}"] = tensor.detach().clone().contiguous()
    state = None if optimizer is None else _flatten(optimizer.state_dict(), "optim", tensors)
    header = {"format": FORMAT, "epoch": str(epoch), "config": json.dumps(config), "optimizer": json.dumps(state)}
    with atomic_write(path) as handle:
        handle.write(save(tensors, metadata=header))
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike, net: torch.nn.Module, rule: Any, optimizer: torch.optim.Optimizer | None
) -> tuple[int, dict[str, Any]]:
    """Restore `net`, `rule` and `optimizer` (if any) in place; returns (epoch, config) saved with the checkpoint."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file (format {header.get('format')!r})")
    try:
        net_state = {key[4:]: value for key, value in tensors.items() if key.startswith("net.")}
        net.load_state_dict(net_state)
        rule_state = {key[5:]: value for key, value in tensors.items() if key.startswith("rule.")}
        if isinstance(rule, torch.nn.Module):
            rule.load_state_dict(rule_state)
        else:
            rule.load_rule_state(rule_state)
        state = json.loads(header["optimizer"])
        if (state is None) != (optimizer is None):
            raise ValueError("it holds no optimizer state" if state is None else "it holds optimizer state, and this run has no optimizer")
        if optimizer is not None:
            optimizer.load_state_dict(_unflatten(state, tensors))
        return int(header["epoch"]), json.loads(header["config"])
    except (KeyError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} does not fit this network and rule: {error}") from error
