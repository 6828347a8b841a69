"""Helpers shared by tests: one learning step of any rule."""

from __future__ import annotations

import torch

from plasticity.rules.attach import GradientRule
from plasticity.rules.base import StepInfo, make_optimizer


class Learner:
    """Steps any rule on its network: for an attached rule, the plain PyTorch loop with the
    benchmark optimizer of its config; otherwise `Rule.step`."""

    def __init__(self, rule, net):
        self.rule, self.net = rule, net
        self.optimizer = make_optimizer(net.parameters(), rule.config) if isinstance(rule, GradientRule) else rule.optimizer

    def step(self, x: torch.Tensor, y: torch.Tensor) -> StepInfo:
        if not isinstance(self.rule, GradientRule):
            return self.rule.step(self.net, x, y)
        self.optimizer.zero_grad()
        logits = self.net(x)
        loss = self.rule.objective(logits, y)
        loss.backward()
        norm = float(torch.nn.utils.get_total_norm([p.grad for p in self.net.parameters()]))
        self.optimizer.step()
        return StepInfo(loss=loss.item(), logits=logits.detach(), update_norm=norm)
