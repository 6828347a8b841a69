"""Helpers shared by tests: one learning step of any rule; a script of the repository imported as a module."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import torch

from plasticity.rules.attach import GradientRule
from plasticity.rules.base import StepInfo, make_optimizer


class Learner:
    """Steps any rule on its network: for an attached rule, the plain PyTorch loop with the
    benchmark optimizer of its config (`optimizer.step()` only when the step is applied);
    otherwise the rule's own `step`."""

    def __init__(self, rule, net):
        self.rule, self.net = rule, net
        self.optimizer = make_optimizer(rule.trained(net), rule.config) if isinstance(rule, GradientRule) else None

    def step(self, x: torch.Tensor, y: torch.Tensor) -> StepInfo:
        if not isinstance(self.rule, GradientRule):
            return self.rule.step(self.net, x, y)
        self.optimizer.zero_grad()
        loss, info = self.rule.loss_and_info(self.net, x, y)
        loss.backward()
        info.update_norm = float(torch.nn.utils.get_total_norm([p.grad for p in self.rule.trained(self.net) if p.grad is not None]))
        if info.applied:
            self.optimizer.step()
        return info


def train_steps(rule, model, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer, steps: int) -> list[tuple[float, StepInfo]]:
    """`steps` steps of the plain loop on one batch with the given optimizer: each step's
    (value of the rule's loss, info)."""
    out = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss, info = rule.loss_and_info(model, x, y)
        loss.backward()
        if info.applied:
            optimizer.step()
        out.append((loss.item(), info))
    return out


REPO = Path(__file__).resolve().parent.parent


@contextmanager
def script(path: str, name: str | None = None) -> Iterator[ModuleType]:
    """The repository's script `path` (e.g. "benchmarks/overhead.py") imported as a module, registered
    in sys.modules while in use (dataclasses look their module up there) and with its folder on
    sys.path (a benchmark may import its neighbours); both undone afterwards."""
    file = REPO / path
    name = name or file.stem
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(file.parent))
        del sys.modules[name]
