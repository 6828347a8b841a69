"""H1 of the workspace's pre-registered tests (docs/workspace.md): the ignition gate under label noise.

    python benchmarks/workspace_h1.py --out docs/runs/workspace-h1      # the stored run of docs/workspace.md
    python benchmarks/workspace_h1.py --datasets digits --seeds 2 --out runs/h1   # a quick look

Each training label is replaced with probability p by a uniformly drawn class (`plasticity.data.noise`,
drawn from (seed, p), the same for every arm); test labels stay clean. For every p in {0, 0.2, 0.4}
one bench (`plasticity.lab.bench.runner.run_bench`, the runs of a seed in lockstep, a rerun skipping
finished runs) trains five arms on the benchmark MLP with seeds 0–4 and the `workspace` observer, into
OUT/noiseNN/: `bp`, `bp` on the generalized cross-entropy (`bp-gce`, q = 0.7, Zhang & Sabuncu 2018),
`dfa` with the workspace's weight mirror (`dfa-mirror`), the workspace as pre-registered (capacity 2,
the default then; gate off) and the same workspace with the ignition gate (`ws-gate`). The runs at p = 0 are the clean reference and the data
of H4 (`benchmarks/workspace_h4.py`).

Then OUT/h1.json: per dataset and p, each arm's final clean test accuracy seed by seed, the verdicts of
the pre-registered pass mark (`plasticity.lab.bench.paired`: the gate against the workspace without
it, against `bp` and against `dfa-mirror`; at p > 0 only), and whether the gate finds the wrong
labels: the flipped fraction among the training samples of the batches it rejected (recomputed from
the observer's `rejected_steps` and the epoch's batch order) over the flipped fraction among all
training samples (1: it rejects blindly). `markdown` renders it for docs/workspace.md. Writes only
under `--out`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from plasticity.data import load
from plasticity.data.noise import noisy_labels
from plasticity.io import atomic_write_json, output_folder
from plasticity.lab.bench.paired import paired_difference
from plasticity.lab.bench.runner import BenchConfig, run_bench, run_key, stored_run_results
from plasticity.observe.registry import build_observers
from plasticity.results import Place, RunResults, read_json
from plasticity.threads import torch_threads
from plasticity.train import batch_order

MIRROR = {"mirror_every": 4, "mirror_samples": 64, "mirror_rate": 0.04}
"""The workspace's weight mirror when the tests were pre-registered and run (its default until it was
made sparser for cost, docs/workspace.md "Cost"): pinned, so that the stored runs are what this reruns."""
ARMS = {
    "bp": ("bp", {}),
    "bp-gce": ("bp", {"loss": "gce", "gce_q": 0.7}),
    "dfa-mirror": ("dfa", {"mirror_rate": 0.04}),
    "workspace": ("workspace", {"capacity": 2, **MIRROR}),  # the default capacity when the tests were pre-registered
    "ws-gate": ("workspace", {"capacity": 2, **MIRROR, "gate": True}),
}
GATE, CONTROLS = "ws-gate", ("workspace", "bp", "dfa-mirror")
NOISE = (0.0, 0.2, 0.4)
DATASETS = ("digits", "mnist-t10k", "mnist1d")
ROOTS = {"mnist-t10k": "../shared/datasets/mnist-t10k"}
SUMMARY = "h1.json"


def folder_of(p: float) -> str:
    """The bench folder of noise level p under --out (noise00, noise20, noise40)."""
    return f"noise{round(100 * p):02d}"


def bench_config(p: float, datasets: list[str], seeds: int, roots: dict[str, str]) -> BenchConfig:
    """The grid of noise level p: every arm on every dataset and seed."""
    return BenchConfig(
        rules=list(ARMS),
        datasets=datasets,
        seeds=seeds,
        rule_options={label: dict(options) for label, (_, options) in ARMS.items() if options},
        roots={name: root for name, root in roots.items() if name in datasets},
        variants={label: rule for label, (rule, _) in ARMS.items() if label != rule},
        label_noise=p,
    )


def run_results(folder: Path, config: BenchConfig, dataset: str, label: str, seed: int) -> RunResults:
    """The results.json of the run of `config`'s grid cell (dataset, label, seed) in a bench folder, found by its run key."""
    path = stored_run_results(folder, dataset, seed, run_key(config.train_config(label, dataset, seed)))
    return RunResults.from_json(read_json(path), Place(path))


def gate_statistics(results: RunResults, flipped: torch.Tensor) -> dict[str, float | None]:
    """Of a gated run whose training labels were flipped where `flipped` is True: the fraction of
    steps rejected, and the flipped fraction among the rejected batches' samples over the flipped
    fraction among all training samples (None without rejections); also the fraction ignored."""
    config = results.config
    steps = rejected_steps = ignored = 0
    picked: list[int] = []
    for entry in results.epochs:
        observed = entry.observed.get("workspace") or {}
        decisions = observed.get("decisions", {})
        steps += sum(decisions.values())
        ignored += decisions.get("ignore", 0)
        rejected = observed.get("rejected_steps", [])
        rejected_steps += len(rejected)
        order = batch_order(len(flipped), config.seed, entry.epoch)
        for step in rejected:
            picked += order[step * config.batch_size : (step + 1) * config.batch_size].tolist()
    ratio = None
    if picked and bool(flipped.any()):
        ratio = float(flipped[picked].float().mean() / flipped.float().mean())
    return {
        "rejected_fraction": rejected_steps / steps if steps else None,
        "ignored_fraction": ignored / steps if steps else None,
        "flipped_ratio": ratio,
    }


def summarize(out: Path, configs: list[BenchConfig]) -> dict[str, Any]:
    """Accuracies, verdicts and gate statistics of the stored benches, one `config` per noise level
    (what h1.json holds)."""
    datasets, seeds, roots = configs[0].datasets, configs[0].seeds, configs[0].roots
    noise = [config.label_noise for config in configs]
    cells = []
    for dataset in datasets:
        data = load(dataset, root=roots.get(dataset))
        classes = data.n_classes
        for config in configs:
            p, folder = config.label_noise, out / folder_of(config.label_noise)
            accuracy = {label: [run_results(folder, config, dataset, label, s).epochs[-1].test_accuracy for s in range(seeds)] for label in ARMS}
            cell: dict[str, Any] = {"dataset": dataset, "noise": p, "accuracy": accuracy}
            if p:
                flipped = [noisy_labels(data.train.y, p, classes, s) != data.train.y for s in range(seeds)]
                cell["flipped"] = [float(f.float().mean()) for f in flipped]
                cell["gate"] = [gate_statistics(run_results(folder, config, dataset, GATE, s), flipped[s]) for s in range(seeds)]
                cell["verdicts"] = {control: paired_difference(accuracy[GATE], accuracy[control]).to_json() for control in CONTROLS}
            cells.append(cell)
    return {"seeds": seeds, "datasets": datasets, "noise": noise, "arms": {k: {"rule": r, "options": o} for k, (r, o) in ARMS.items()}, "cells": cells}


def _spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def _verdict(v: dict[str, Any]) -> str:
    se = "—" if v["se"] is None else f"{100 * v['se']:.2f}"
    return f"{100 * v['mean']:+.2f} (SE {se}): {v['verdict']}"


def markdown(measured: dict[str, Any]) -> str:
    """The tables of docs/workspace.md's H1 section."""
    arms = list(measured["arms"])
    lines = [
        f"Seeds 0–{measured['seeds'] - 1}; benchmark MLP 256×256 tanh, each dataset's default epochs; final clean test "
        "accuracy, mean ± std over seeds (%). Verdicts: the gated workspace minus the arm named, paired by seed, mean "
        "and standard error in points, judged by the pre-registered pass mark (> 2 SE).",
        "",
        "| dataset | label noise | " + " | ".join(arms) + " |",
        "|---|---|" + "---|" * len(arms),
    ]
    for cell in measured["cells"]:
        lines.append(f"| {cell['dataset']} | {cell['noise']:.1f} | " + " | ".join(_spread(cell["accuracy"][arm]) for arm in arms) + " |")
    lines += [
        "",
        "| dataset | label noise | gate − workspace | gate − bp | gate − dfa-mirror | steps ignored | steps rejected | flipped among rejected / overall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in measured["cells"]:
        if "verdicts" not in cell:
            continue
        verdicts = cell["verdicts"]
        ignored, rejected = ([g[key] for g in cell["gate"]] for key in ("ignored_fraction", "rejected_fraction"))
        ratios = [g["flipped_ratio"] for g in cell["gate"] if g["flipped_ratio"] is not None]
        ratio_text = f"{statistics.fmean(ratios):.2f} (n = {len(ratios)})" if ratios else "no rejection"
        lines.append(
            f"| {cell['dataset']} | {cell['noise']:.1f} | {_verdict(verdicts['workspace'])} | {_verdict(verdicts['bp'])} | "
            f"{_verdict(verdicts['dfa-mirror'])} | {_spread(ignored)}% | {_spread(rejected)}% | {ratio_text} |"
        )
    return "\n".join(lines) + "\n"


def _roots(items: list[str]) -> dict[str, str]:
    roots = dict(ROOTS)
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"--root must look like DATASET=FOLDER; got {item!r}")
        roots[name] = path
    return roots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder of the three benches and h1.json")
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated (default: {','.join(DATASETS)})")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N−1 (default: 5, as pre-registered)")
    parser.add_argument("--noise", default=",".join(str(p) for p in NOISE), help="label-noise levels (default: 0,0.2,0.4); 0 feeds H4")
    parser.add_argument("--epochs", type=int, help="epochs of every run (default: each dataset's own; a quick look only)")
    parser.add_argument("--root", action="append", default=[], help="DATASET=FOLDER (default: mnist-t10k=../shared/datasets/mnist-t10k)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    noise = [float(p) for p in args.noise.split(",")]
    if args.seeds < 2:
        parser.error("--seeds must be ≥ 2: the pass mark needs a standard error")
    roots = _roots(args.root)
    out = output_folder(args.out)
    configs = [bench_config(p, datasets, args.seeds, roots) for p in noise]
    for config in configs:
        config.epochs = args.epochs or config.epochs
    with torch_threads(args.threads):
        for config in configs:
            run_bench(config, out / folder_of(config.label_noise), observers=lambda: build_observers(["workspace"]), progress=not args.quiet)
    measured = summarize(out, configs)
    atomic_write_json(out / SUMMARY, measured)
    print(markdown(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
