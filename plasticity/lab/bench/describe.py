"""A bench's settings in words, for the setup line of its doc section (`python tools/docs.py`) and
the demo's: networks, epochs, batch sizes and per-dataset option defaults, each given once when
the rules share it and per rule where they differ."""

from __future__ import annotations

from plasticity.build import model_options
from plasticity.lab.bench.runner import BenchConfig
from plasticity.rules import make_config, rule_class

MODEL_WORDS = {
    "cnn1d": "cnn1d: MNIST-1D's reference CNN (3 × Conv1d 25 channels, kernels 5/3/3, stride 2, ReLU; Linear 125→10; Greydanus & Kobak 2024)",
    "lenet5": "lenet5: Conv2d 6@5×5 pad 2, ReLU, max-pool 2, Conv2d 16@5×5, ReLU, max-pool 2, Linear 400→120→84→10 with ReLU (BioTorch's LeNet-5)",
}


def _grouped(values: dict[str, str]) -> str:
    """ "v" when every label has the same value, else "v1 (a, b) / v2 (c)"."""
    groups: dict[str, list[str]] = {}
    for label, value in values.items():
        groups.setdefault(value, []).append(label)
    if len(groups) == 1:
        return next(iter(groups))
    return " / ".join(f"{value} ({', '.join(labels)})" for value, labels in groups.items())


def network(config: BenchConfig) -> str:
    """ "MLP 256×256 tanh", or per rule, e.g. "MLP 256×256 tanh (bp) / MLP 256 RMS-normalised triangle (softhebb)"."""
    if config.model != "mlp":
        return MODEL_WORDS[config.model]
    described = {}
    for label in config.rules:
        rule, hidden = config.rule_of(label), config.hidden_for(label)
        if rule_class(rule).network == "spiking":
            described[label] = f"spiking (Diehl & Cook 2015), {hidden[0]} excitatory LIF neurons"
        else:
            activity = rule_class(rule).hidden_activity(make_config(rule, config.rule_options.get(label)), config.activation)
            described[label] = f"MLP {'×'.join(map(str, hidden))} {activity}"
    return _grouped(described)


def batch(config: BenchConfig) -> str:
    """ "64", or per rule where the rules' batch sizes differ."""
    return _grouped({label: str(config.batch_size_for(label)) for label in config.rules})


def epochs(config: BenchConfig, dataset: str) -> str:
    """ "digits 30", or per rule where the rules' defaults differ ("digits: bp 30, stdp 1")."""
    counts = {label: config.epochs_for(dataset, label) for label in config.rules}
    if len(set(counts.values())) == 1:
        return f"{dataset} {next(iter(counts.values()))}"
    return f"{dataset}: " + ", ".join(f"{label} {n}" for label, n in counts.items())


def dataset_defaults(config: BenchConfig) -> dict[str, str]:
    """{"dataset defaults": "digits: stdp, rstdp max_rate_hz 250.0"} for the rules of the bench
    that run with defaults of their own on one of its datasets (`Rule.options_by_dataset`), or {}."""
    described = []
    for dataset in config.datasets:
        by_options: dict[str, list[str]] = {}
        for label in config.rules:
            own = rule_class(config.rule_of(label)).options_by_dataset.get(dataset, {})
            given = config.rule_options.get(label, {})
            options = " ".join(f"{key} {value}" for key, value in own.items() if key not in given)
            if options:
                by_options.setdefault(options, []).append(label)
        described += [f"{dataset}: {', '.join(labels)} {options}" for options, labels in by_options.items()]
    return {"dataset defaults": " / ".join(described)} if described else {}


def model_defaults(config: BenchConfig) -> dict[str, str]:
    """{"model defaults": "lr 0.01 (bp, fa) / init_norm None (softhebb)"}: the options the bench's
    model gives its rules and the user did not set (`plasticity.build.model_options`), or {}."""
    by_options: dict[str, list[str]] = {}
    for label in config.rules:
        given = config.rule_options.get(label, {})
        options = " ".join(f"{key} {value}" for key, value in model_options(config.rule_of(label), config.model).items() if key not in given)
        if options:
            by_options.setdefault(options, []).append(label)
    described = [f"{options} ({', '.join(labels)})" for options, labels in by_options.items()]
    return {"model defaults": " / ".join(described)} if described else {}


def setup(config: BenchConfig) -> dict[str, str]:
    """The settings line of a bench table, without the software versions."""
    seeds = {"seeds": f"{config.seed_range[0]}–{config.seed_range[-1]}"} if config.first_seed else {}
    return {
        **seeds,
        "network": network(config),
        "epochs": ", ".join(epochs(config, dataset) for dataset in config.datasets),
        "batch": batch(config),
        **dataset_defaults(config),
        **model_defaults(config),
    }
