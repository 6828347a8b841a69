"""What every rule shares: the optimizer settings (`RuleConfig`), what a training step reports
(`StepInfo`), the benchmark optimizer (`make_optimizer`) and the facts the trainer and the bench
read from a rule's class (`RuleFacts`).

The rules themselves are of two kinds: PyTorch extensions that attach to any model and deliver
`.grad` (`plasticity.rules.attach.GradientRule`: every rule but the spiking ones), and rules that
are not gradients and change their spiking network's weights themselves
(`plasticity.rules.spiking.SpikingRule`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch

from plasticity.errors import ConfigError, brief
from plasticity.fields import check_types

OPTIMIZERS = ("sgd", "adam")


@dataclass
class StepInfo:
    """What one training step reports to observers.

    It costs nothing that the step did not already compute: the loss stays a tensor on the
    model's device (reading it, `float(info.loss)`, waits for the step to finish on a GPU; the
    trainer reads the epoch's losses once, at its end), the update norm is computed only
    when an observer asks for it (`Observer.reads_update_norm`), and a rule may give extras
    that are computed when first read (`Extras`).

    loss: the batch-mean cross-entropy of the forward pass the rule learned from, a detached
        0-dim tensor.
    logits: that forward pass's output (detached), shape (batch, classes).
    update_norm: global L2 norm over all parameters of the update direction the rule handed
        to its optimizer (the gradient for `bp`; the rule's own direction for local rules),
        before the optimizer's learning rate, momentum or Adam scaling; NaN unless an observer
        reads it.
    extras: rule-specific numbers (broadcast sizes, winners, ...): a dict, or `Extras` whose
        costly entries are computed when first read; `dict(info.extras)` is JSON-serialisable.
    applied: whether the optimizer is to be stepped. False when the rule withholds plasticity
        this step (an ignition gate closed, or between two rhythmic broadcasts): then no weight
        moves at all, not even by the optimizer's momentum.
    """

    loss: torch.Tensor
    logits: torch.Tensor
    update_norm: float = math.nan
    extras: Mapping[str, Any] = field(default_factory=dict)
    applied: bool = True


class Extras(Mapping[str, Any]):
    """Step extras whose `later` entries are computed when first read (then kept): a report
    that no observer reads costs nothing. `dict(extras)` reads them all."""

    def __init__(self, now: dict[str, Any], later: dict[str, Callable[[], Any]]) -> None:
        self._values, self._later = dict(now), dict(later)

    def __getitem__(self, key: str) -> Any:
        if key not in self._values and key in self._later:
            self._values[key] = self._later.pop(key)()
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._values, *self._later])

    def __len__(self) -> int:
        return len(self._values) + len(self._later)


LATER = "added later"
"""Metadata key of a config field that enters a run's key only when set (`keyed_options`)."""


@dataclass
class RuleConfig:
    """Optimizer settings shared by every rule.

    lr: learning rate. optimizer: "adam" (Kingma & Ba 2015) or "sgd" (with `momentum`).
    weight_decay: L2 decay applied by the optimizer (it reads the synapse's own weight).
    """

    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0

    def validate(self) -> None:
        check_types(self)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive finite number; got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}; got {brief(self.optimizer)}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1); got {self.momentum}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be ≥ 0; got {self.weight_decay}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def keyed_options(config: Any) -> dict[str, Any]:
    """The options of a rule's config (a dataclass) that identify its runs
    (`plasticity.lab.bench.runner.run_key`): every field, defaults included, but a field added after
    runs were stored (marked `metadata={LATER: True}`) only when it differs from its default, so
    that those runs keep their keys."""
    return {f.name: getattr(config, f.name) for f in fields(config) if not (f.metadata.get(LATER) and getattr(config, f.name) == f.default)}


def make_optimizer(params: Iterable[torch.Tensor], config: RuleConfig) -> torch.optim.Optimizer:
    """The benchmark optimizer of `config` over `params`: Adam (Kingma & Ba 2015) or SGD with
    momentum, with the config's learning rate and weight decay."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


class RuleFacts:
    """What the trainer and the bench read from a rule's class, whichever kind of rule it is."""

    name: ClassVar[str]
    config_class: ClassVar[type[RuleConfig]] = RuleConfig
    # The kind of network the rule trains: "mlp" (any model: the rule attaches to it; the benchmark
    # MLP by default) or "spiking" (`plasticity.spiking.SpikingNet`).
    network: ClassVar[str] = "mlp"
    # Keys of StepInfo.extras that the trainer sums over each epoch (event counts for throughput).
    counters: ClassVar[tuple[str, ...]] = ()
    # Default epochs per dataset where they differ from the trainer's (`build.default_epochs`).
    epochs_by_dataset: ClassVar[dict[str, int]] = {}
    # The network width(s) and mini-batch size `plasticity train` uses when none are given.
    default_hidden: ClassVar[tuple[int, ...]] = (256, 256)
    default_batch_size: ClassVar[int] = 64
    # Default options per dataset where they differ from the config's defaults; options the user
    # gives override them (`rules.options_for`).
    options_by_dataset: ClassVar[dict[str, dict[str, Any]]] = {}
    # Default options per model (`build.MODELS` names) where they differ from the config's
    # defaults; the rule's options per dataset and the user's override them (`build.run_options`).
    options_by_model: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def checked_config(cls, config: Any, options: dict[str, Any]) -> Any:
        """The rule's config: `config`, or one made from `options` (its fields as keywords),
        validated."""
        if config is not None and options:
            raise TypeError("give either a config or options as keywords, not both")
        config = config if config is not None else cls.config_class(**options)
        if not isinstance(config, cls.config_class):
            raise TypeError(f"{cls.__name__} needs a {cls.config_class.__name__}, got {type(config).__name__}")
        config.validate()
        return config

    @classmethod
    def hidden_activity(cls, config: RuleConfig, activation: str) -> str:
        """What the hidden layers pass on, in words, in a network of non-linearity `activation`
        (for the benchmark's setup line). Default: the network's own non-linearity."""
        return activation

    @classmethod
    def mlp_options(cls, config: RuleConfig) -> dict[str, Any]:
        """Options of `plasticity.nets.build_mlp` for the benchmark MLP this rule trains, where
        they differ from the run's (e.g. SoftHebb's triangle activity). Default: none."""
        return {}
