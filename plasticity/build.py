"""Names become objects here, and only here: a run described by names (`TrainConfig`: rule, data,
model, widths, epochs, batch, seed, options) becomes a model, a rule and an optimizer
(`build_run`). The command line, the bench, the demo and `plasticity.train.train` all build
through this module, so the Python API and the CLI give the same run for the same settings, and
the defaults a run takes when a setting is not given live here (`DEFAULT_EPOCHS`,
`MODEL_DEFAULTS`) or in the rule's own config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from plasticity.data import DataError, Dataset
from plasticity.data.noise import check_noise
from plasticity.errors import ConfigError
from plasticity.models import build_cnn1d, build_lenet5, build_segments
from plasticity.nets import build_mlp
from plasticity.rules import make_config, options_for, rule_class
from plasticity.rules.attach import GradientRule
from plasticity.rules.base import RuleConfig, make_optimizer
from plasticity.rules.spiking import SpikingRule

# Epochs per dataset when none are given: enough for backprop to converge on each (MLP).
DEFAULT_EPOCHS = {"digits": 30, "mnist1d": 60, "mnist-t10k": 20}

# What a model trains with by default where it differs from the MLP's: the reference settings of
# the model's paper (cnn1d: Greydanus & Kobak 2024, Adam 1e-2, batches of 100, 8,000 steps =
# 200 epochs of MNIST-1D). Options given by the user win.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {},
    "cnn1d": {"epochs": {"mnist1d": 200}, "batch_size": 100, "options": {"lr": 1e-2}},
    "lenet5": {},
    "segments": {},
}


def _mlp(data: Dataset, hidden: tuple[int, ...], activation: str, seed: int, options: dict[str, Any]) -> nn.Module:
    return build_mlp(data.n_features, data.n_classes, hidden, seed=seed, **{"activation": activation, **options})


# Model builders by name: (data, widths, non-linearity, seed, options of `build_mlp`) → model; the
# conv models have fixed architectures and take neither widths, non-linearity nor options.
MODELS: dict[str, Callable[[Dataset, tuple[int, ...], str, int, dict[str, Any]], nn.Module]] = {
    "mlp": _mlp,
    "cnn1d": lambda data, hidden, activation, seed, options: build_cnn1d(data.n_features, data.n_classes, seed),
    "lenet5": lambda data, hidden, activation, seed, options: build_lenet5(data.n_features, data.n_classes, seed),
    "segments": lambda data, hidden, activation, seed, options: build_segments(data.n_features, data.n_classes, seed),
}


def model_names() -> list[str]:
    return list(MODELS)


def default_epochs(dataset: str, rule: str | None = None, model: str = "mlp") -> int:
    """Epochs on `dataset` when none are given: the rule's own default if it has one
    (`RuleFacts.epochs_by_dataset`), else the model's, else the dataset's."""
    own = rule_class(rule).epochs_by_dataset if rule is not None else {}
    by_model = MODEL_DEFAULTS[model].get("epochs", {})
    return own.get(dataset, by_model.get(dataset, DEFAULT_EPOCHS.get(dataset, 20)))


def default_batch_size(rule: str, model: str = "mlp") -> int:
    """The mini-batch size when none is given: the model's, else the rule's own."""
    return int(MODEL_DEFAULTS[model].get("batch_size", rule_class(rule).default_batch_size))


def model_options(rule: str, model: str) -> dict[str, Any]:
    """The options `model` gives `rule`: the model's defaults (`MODEL_DEFAULTS`) for the settings
    the rule leaves at the shared optimizer defaults (`RuleConfig`: a rule with a learning rate of
    its own, e.g. ff or softhebb, keeps it), then the rule's own options for the model."""
    cls = rule_class(rule)
    shared = {f.name: f.default for f in fields(RuleConfig)}
    own = {f.name: f.default for f in fields(cls.config_class)}
    by_model = {key: value for key, value in MODEL_DEFAULTS[model].get("options", {}).items() if key in shared and own.get(key) == shared[key]}
    return {**by_model, **cls.options_by_model.get(model, {})}


def run_options(rule: str, dataset: str, model: str = "mlp", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The options `rule` runs with: the model's (`model_options`), then the rule's for the
    dataset (`rules.options_for`), then `overrides`."""
    return {**model_options(rule, model), **options_for(rule, dataset, overrides)}


@dataclass
class TrainConfig:
    """One training run, by names.

    hidden, epochs, batch_size: None takes the default (`resolved`): the rule's own widths, the
    epochs of the rule, model or dataset (`default_epochs`), the batch of the model or rule
    (`default_batch_size`) — so `TrainConfig(rule="dfa", model="cnn1d", data="mnist1d")` is the
    run `plasticity train --rule dfa --model cnn1d --data mnist1d` makes.
    model: "mlp" (widths `hidden`, non-linearity `activation`), "cnn1d" or "lenet5" (fixed
        architectures: `hidden` and `activation` do not apply).
    rule_options: overrides of the rule's config (e.g. {"lr": 1e-3, "optimizer": "sgd"}).
    device: where the model, the rule's buffers and each batch live ("cpu", "cuda", "cuda:1"); the
        spiking rules run on the CPU only.
    label_noise: the probability with which each training label is replaced by a uniformly drawn
        class, drawn from the seed (`plasticity.data.noise`); 0 (the default) leaves them clean.
    """

    rule: str = "bp"
    data: str = "digits"
    root: str | None = None
    model: str = "mlp"
    hidden: tuple[int, ...] | None = None
    activation: str = "tanh"
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    rule_options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    label_noise: float = 0.0

    def resolved(self) -> TrainConfig:
        """This run with every setting left as None given its default (call `validate` first)."""
        return replace(
            self,
            hidden=tuple(self.hidden) if self.hidden is not None else rule_class(self.rule).default_hidden,
            epochs=self.epochs if self.epochs is not None else default_epochs(self.data, self.rule, self.model),
            batch_size=self.batch_size if self.batch_size is not None else default_batch_size(self.rule, self.model),
        )

    def validate(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs must be ≥ 1; got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1; got {self.batch_size}")
        try:
            check_noise(self.label_noise)
        except DataError as error:
            raise ConfigError(str(error)) from None
        if self.hidden is not None and any(int(width) < 1 for width in self.hidden):
            raise ConfigError(f"hidden widths must be ≥ 1; got {list(self.hidden)}")
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; known models: {', '.join(MODELS)}")
        attachable = issubclass(rule_class(self.rule), GradientRule)
        if self.model != "mlp" and not attachable:
            raise ConfigError(f"rule {self.rule!r} trains a spiking network; --model {self.model} takes a rule that attaches to any model")
        try:
            device = torch.device(self.device)
        except RuntimeError as error:
            raise ConfigError(f"device {self.device!r} is not a torch device: {error}") from error
        if device.type != "cpu" and not attachable:
            raise ConfigError(
                f"rule {self.rule!r} runs on the CPU only (it trains a spiking network); --device {self.device} takes a rule that attaches to any model"
            )
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {self.device!r} asked for, but this PyTorch sees no CUDA GPU")

    def rule_config(self) -> RuleConfig:
        """The rule's config this run uses (model and dataset defaults, then `rule_options`)."""
        return make_config(self.rule, run_options(self.rule, self.data, self.model, self.rule_options))

    def to_dict(self) -> dict[str, Any]:
        """The settings by name; `label_noise` only when there is some (records and run keys made
        before it existed stay valid)."""
        out = asdict(self)
        out["hidden"] = list(self.hidden) if self.hidden is not None else None
        if not self.label_noise:
            out.pop("label_noise")
        return out


@dataclass
class Run:
    """The objects of one run: what `plasticity.train.Trainer` takes."""

    model: nn.Module
    rule: GradientRule | SpikingRule
    optimizer: torch.optim.Optimizer | None  # None: the rule changes the weights itself (spiking rules)


def build_model(
    name: str,
    data: Dataset,
    hidden: tuple[int, ...] = (256, 256),
    activation: str = "tanh",
    seed: int = 0,
    mlp_options: dict[str, Any] | None = None,
) -> nn.Module:
    """Model `name` for `data`, initialised from `seed`; `mlp_options` (a rule's `mlp_options`)
    go to `build_mlp` and override `activation` (the conv models take none)."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name](data, tuple(hidden), activation, seed, mlp_options or {})


def build_run(config: TrainConfig, data: Dataset) -> Run:
    """The model, rule and optimizer of `config` on `data`, all from `config.seed`.

    A `GradientRule` attaches to the model (the benchmark MLP with the rule's `mlp_options`, or
    a conv model), and the optimizer is made here over `rule.trained(model)` from the rule
    config's optimizer settings; a spiking rule builds its own network (`build_net`) and needs
    no optimizer."""
    config.validate()
    config = config.resolved()
    cls, rule_config = rule_class(config.rule), config.rule_config()
    if issubclass(cls, GradientRule):
        model = build_model(config.model, data, config.hidden, config.activation, config.seed, cls.mlp_options(rule_config))
        rule = cls(rule_config, seed=config.seed).attach(model.to(config.device))
        rule.to(config.device)
        return Run(model, rule, make_optimizer(rule.trained(model), rule_config))
    net = cls.build_net(rule_config, data, tuple(config.hidden), config.activation, config.seed)
    rule = cls(net, rule_config, seed=config.seed)
    return Run(net, rule, None)
