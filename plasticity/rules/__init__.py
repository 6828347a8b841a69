"""Learning rules. Every rule implements `plasticity.rules.base.Rule` and is registered here."""

from __future__ import annotations

from plasticity.nets import MLP
from plasticity.rules.base import Rule, RuleConfig, StepInfo
from plasticity.rules.bp import Backprop
from plasticity.rules.card import PlausibilityCard
from plasticity.rules.dfa import DirectFeedbackAlignment
from plasticity.rules.fa import FeedbackAlignment
from plasticity.rules.ff import ForwardForward
from plasticity.rules.pc import PredictiveCoding
from plasticity.rules.sign import SignSymmetry
from plasticity.rules.softhebb import SoftHebb
from plasticity.rules.workspace import Workspace

RULES: dict[str, type[Rule]] = {
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
    )
}


def names() -> list[str]:
    """Registered rule names, backprop first."""
    return list(RULES)


def rule_class(name: str) -> type[Rule]:
    if name not in RULES:
        raise ValueError(f"unknown rule {name!r}; known rules: {', '.join(RULES)}")
    return RULES[name]


def make_config(name: str, overrides: dict[str, object] | None = None) -> RuleConfig:
    """The rule's default config with `overrides` (field name -> value) applied and checked."""
    config_class = rule_class(name).config_class
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(config_class.field_names())
    if unknown:
        raise ValueError(f"rule {name!r} has no option(s) {sorted(unknown)}; its options: {config_class.field_names()}")
    config = config_class(**overrides)
    config.validate()
    return config


def build_rule(name: str, net: MLP, overrides: dict[str, object] | None = None, seed: int = 0) -> Rule:
    return rule_class(name)(net, make_config(name, overrides), seed=seed)


__all__ = ["RULES", "PlausibilityCard", "Rule", "RuleConfig", "StepInfo", "build_rule", "make_config", "names", "rule_class"]
