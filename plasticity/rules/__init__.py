"""Learning rules, registered by name.

Every rule but the spiking ones is a PyTorch extension (`plasticity.rules.attach.GradientRule`):
it attaches to any model and delivers `.grad`. `stdp` and `rstdp` are not gradients: they change
the weights of their spiking network themselves (`plasticity.rules.spiking.SpikingRule`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError, brief
from plasticity.rules.attach import GradientRule, UnsupportedLayer
from plasticity.rules.base import RuleConfig, StepInfo
from plasticity.rules.bp import Backprop
from plasticity.rules.dfa import DirectFeedbackAlignment
from plasticity.rules.fa import FeedbackAlignment
from plasticity.rules.ff import ForwardForward
from plasticity.rules.pc import PredictiveCoding
from plasticity.rules.rstdp import RSTDP
from plasticity.rules.sign import SignSymmetry
from plasticity.rules.softhebb import SoftHebb
from plasticity.rules.spiking import SpikingRule
from plasticity.rules.stdp import STDP
from plasticity.rules.workspace import Workspace

RULES: dict[str, type[GradientRule] | type[SpikingRule]] = {
    rule.name: rule
    for rule in (
        Backprop,
        FeedbackAlignment,
        DirectFeedbackAlignment,
        SignSymmetry,
        Workspace,
        PredictiveCoding,
        ForwardForward,
        SoftHebb,
        STDP,
        RSTDP,
    )
}


def names(network: str | None = None) -> list[str]:
    """Registered rule names, backprop first; with `network` ("mlp" or "spiking"), only the
    rules that train that kind of network."""
    return [name for name, rule in RULES.items() if network is None or rule.network == network]


def rule_class(name: str) -> type[GradientRule] | type[SpikingRule]:
    if name not in RULES:
        raise ConfigError(f"unknown rule {brief(name)}; known rules: {', '.join(RULES)}")
    return RULES[name]


def make_config(name: str, overrides: dict[str, object] | None = None) -> RuleConfig:
    """The rule's default config with `overrides` (field name -> value) applied and checked."""
    config_class = rule_class(name).config_class
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(config_class.field_names())
    if unknown:
        raise ConfigError(f"rule {name!r} has no option(s) {sorted(unknown)}; its options: {config_class.field_names()}")
    config = config_class(**overrides)
    config.validate()  # checks the options' types first (`plasticity.fields.check_types`)
    return config


def options_for(name: str, dataset: str, overrides: dict[str, object] | None = None) -> dict[str, object]:
    """The options rule `name` runs with on `dataset`: its defaults for that dataset
    (`RuleFacts.options_by_dataset`), overridden by `overrides`."""
    return {**rule_class(name).options_by_dataset.get(dataset, {}), **(overrides or {})}


def build_rule(name: str, net: nn.Module, overrides: dict[str, object] | None = None, seed: int = 0) -> GradientRule | SpikingRule:
    """Rule `name` with `overrides` on `net`: attached to it (a `GradientRule`), or training it
    (a `SpikingRule` on its `SpikingNet`)."""
    cls, config = rule_class(name), make_config(name, overrides)
    if issubclass(cls, GradientRule):
        return cls(config, seed=seed).attach(net)
    return cls(net, config, seed=seed)


def attach(model: nn.Module, rule: str, seed: int = 0, exclude: Sequence[str] = (), **options: Any) -> GradientRule:
    """Attach the rule named `rule` to every Linear / Conv1d / Conv2d layer of `model`.

    The one entry point from a name: `attach(model, "dfa", seed=0, feedback_scale=2.0)`.
    `exclude` names modules to leave on exact backprop; `rule.summary()` lists what was
    converted and what was left alone, and `rule.detach()` undoes it."""
    cls = rule_class(rule)
    if not issubclass(cls, GradientRule):
        raise ConfigError(f"rule {rule!r} trains a spiking network and cannot attach to a model; attachable rules: {', '.join(attachable())}")
    return cls(make_config(rule, options), seed=seed).attach(model, exclude=exclude)


def attachable() -> list[str]:
    """Names of the rules that attach to any model."""
    return [name for name, cls in RULES.items() if issubclass(cls, GradientRule)]


__all__ = [
    "RULES",
    "GradientRule",
    "PlausibilityCard",
    "SpikingRule",
    "RuleConfig",
    "StepInfo",
    "UnsupportedLayer",
    "attach",
    "attachable",
    "build_rule",
    "make_config",
    "names",
    "options_for",
    "rule_class",
]
