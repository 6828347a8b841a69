"""Learning rules. Every rule implements `plasticity.rules.base.Rule` and is registered here."""

from __future__ import annotations

from dataclasses import fields

from plasticity.data import Dataset
from plasticity.nets import MLP
from plasticity.rules.base import Rule, RuleConfig, StepInfo
from plasticity.rules.bp import Backprop
from plasticity.rules.card import PlausibilityCard
from plasticity.rules.dfa import DirectFeedbackAlignment
from plasticity.rules.fa import FeedbackAlignment
from plasticity.rules.ff import ForwardForward
from plasticity.rules.pc import PredictiveCoding
from plasticity.rules.rstdp import RSTDP
from plasticity.rules.sign import SignSymmetry
from plasticity.rules.softhebb import SoftHebb
from plasticity.rules.stdp import STDP
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
        STDP,
        RSTDP,
    )
}


def names(network: str | None = None) -> list[str]:
    """Registered rule names, backprop first; with `network` ("mlp" or "spiking"), only the
    rules that train that kind of network."""
    return [name for name, rule in RULES.items() if network is None or rule.network == network]


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
    # A whole number given for a float option (`--set max_rate_hz=250` parses as an int) is
    # made a float, so that tensors built from it get a float dtype.
    floats = {f.name for f in fields(config_class) if f.type in ("float", float)}
    overrides = {key: float(value) if key in floats and type(value) is int else value for key, value in overrides.items()}
    config = config_class(**overrides)
    config.validate()
    return config


def options_for(name: str, dataset: str, overrides: dict[str, object] | None = None) -> dict[str, object]:
    """The options rule `name` runs with on `dataset`: its defaults for that dataset
    (`Rule.options_by_dataset`), overridden by `overrides`."""
    return {**rule_class(name).options_by_dataset.get(dataset, {}), **(overrides or {})}


def build_rule(name: str, net: MLP, overrides: dict[str, object] | None = None, seed: int = 0) -> Rule:
    return rule_class(name)(net, make_config(name, overrides), seed=seed)


def build_for_data(
    name: str, data: Dataset, hidden: tuple[int, ...], activation: str, seed: int, overrides: dict[str, object] | None = None
) -> Rule:
    """The rule `name` with the network it trains on `data` (`Rule.build_net`), both from `seed`;
    `overrides` apply on top of the rule's defaults for the dataset (`options_for`)."""
    config = make_config(name, options_for(name, data.name, overrides))
    cls = rule_class(name)
    return cls(cls.build_net(config, data, hidden, activation, seed), config, seed=seed)


__all__ = ["RULES", "PlausibilityCard", "Rule", "RuleConfig", "StepInfo", "build_for_data", "build_rule", "make_config", "names", "options_for", "rule_class"]
