"""Activities of any model, recorded and clamped by forward hooks on its layers.

For a model whose blocks are its Linear / Conv1d / Conv2d layers (`layers(model)`), `record`
returns a `Trace` in the MLP's convention: h[l] is layer l's input, a[l] its output, and h[L]
the model's output. `clamp` pins every layer's input and output to a reference trace while the
current weights stay in the graph (reference + value − value.detach(), the straight-through
substitution), so the plausibility probes can ask what a layer's update reads
with every activity held fixed, on any model. The hooks are put in front of any others
(`prepend=True`): a rule attached to the model sees the pinned activities.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import nn

from plasticity.nets import Trace
from plasticity.rules.attach import LEARNABLE, inferring


def layers(model: nn.Module) -> list[nn.Module]:
    """The model's Linear / Conv1d / Conv2d layers, in module order."""
    return [module for module in model.modules() if isinstance(module, LEARNABLE)]


@torch.no_grad()
def record(model: nn.Module, blocks: Sequence[nn.Module], x: torch.Tensor) -> Trace:
    """One forward pass of `x`, with every block's input and output recorded (detached copies)."""
    inputs: dict[int, torch.Tensor] = {}
    outputs: dict[int, torch.Tensor] = {}

    def keep_input(index: int, module: nn.Module, args: tuple[Any, ...]) -> None:
        inputs.setdefault(index, args[0].detach().clone())

    def keep_output(index: int, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        outputs.setdefault(index, output.detach().clone())

    handles = []
    for index, block in enumerate(blocks):
        handles.append(block.register_forward_pre_hook(partial(keep_input, index)))
        handles.append(block.register_forward_hook(partial(keep_output, index)))
    try:
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    missing = [index for index in range(len(blocks)) if index not in inputs]
    if missing:
        raise ValueError(f"layers {missing} did not run in the forward pass; record needs every block to run once")
    return Trace([inputs[i] for i in range(len(blocks))] + [out.detach().clone()], [outputs[i] for i in range(len(blocks))])


def _pin(value: torch.Tensor, reference: torch.Tensor, what: str) -> torch.Tensor:
    rows, passes = len(reference), len(value) // max(len(reference), 1)
    if passes > 1 and len(value) == passes * rows:  # P passes in one forward (Forward-Forward's labels): each is pinned
        reference = reference.repeat(passes, *[1] * (reference.dim() - 1))
    if reference.shape != value.shape:
        raise ValueError(f"clamped {what} has shape {tuple(reference.shape)}, expected {tuple(value.shape)}")
    return reference + (value - value.detach()) if value.requires_grad else reference


@contextmanager
def clamp(blocks: Sequence[nn.Module], reference: Trace) -> Iterator[None]:
    """Within the block, every block's input and output are the reference trace's, except in the
    runs of a relaxation on its value nodes (`plasticity.rules.attach.inferring`): a clamp pins
    the forward pass, and the relaxation starts from it."""
    reference = reference.detach()

    def pin_input(index: int, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if inferring(module):  # a relaxation's run on its value nodes, not the forward pass
            return None
        return (_pin(args[0], reference.h[index], f"input of layer {index}"), *args[1:])

    def pin_output(index: int, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
        if inferring(module):
            return None
        return _pin(output, reference.a[index], f"output of layer {index}")

    handles = []
    for index, block in enumerate(blocks):
        handles.append(block.register_forward_pre_hook(partial(pin_input, index), prepend=True))
        handles.append(block.register_forward_hook(partial(pin_output, index), prepend=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def activities(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Per-sample activities [input, each hidden block's output, the output], flattened to
    (batch, units): the inputs of the model's Linear / Conv layers, then its output."""
    return [t.flatten(1) for t in record(model, layers(model), x).h]
