"""H3 of docs/workspace.md: competition between modules that see different inputs.

    python benchmarks/workspace_h3.py --out docs/runs/workspace-h3/h3.json   # the pre-registered protocol
    python benchmarks/workspace_h3.py --seeds 1 --epochs 1 --arms bp,workspace  # a quick look

The network is `plasticity.models.build_segments` (`--model segments`): MNIST-1D's 40 inputs cut into 4
segments of 10, each read by its own hidden block (Linear 10 → 64, tanh), the logits the sum of one
Linear(64 → 10) per block (one output layer on the concatenated blocks, split by block). Each block's output
is the input of its own layer, so the workspace rule sees 5 modules: the 4 blocks (in segment order) and the
output. During training only, the second segment (inputs 10–19, zero-based index 1) is replaced by N(0, 1)
noise, drawn once per training sample from `numpy.random.default_rng([seed, 1])` and kept for every epoch;
the test inputs and every label are left intact (`noisy_dataset`, a new Dataset: the loaded one is not
changed).

Arms (`ARMS`), each on seeds 0 … `--seeds` − 1 (same initial weights, batch order and noise per seed across
the arms), MNIST-1D's default 60 epochs, batch 64, every other setting the rule's default:

- `bp`; `dfa-mirror`: dfa with `mirror_rate = 0.04`;
- `workspace`: the workspace as pre-registered, capacity 2 of the 5 modules (the default then);
- `workspace-all`: the workspace with capacity 5 (every module admitted for every sample).

Measured per run: the final clean test accuracy, and per epoch the `workspace` observer's winners (per module,
the fraction of samples that admitted it). The noisy block's share of the admissions is its winners divided by
the sum of the winners over the modules (each sample makes `capacity` admissions), against its even share 1/5;
with capacity 5 every module is admitted for every sample, so that arm's share is 1/5 by construction.

Verdicts (`plasticity.lab.bench.paired.paired_difference`, the pre-registered pass mark: the mean paired
difference over seeds against twice its standard error): accuracy of `workspace` against `workspace-all` (the
component under test), and against `bp` and `dfa-mirror`; and the noisy block's share under `workspace`
against `workspace-all`'s 1/5 (lower is better), for the prediction's second half.

Writes only where it is told: `--out FILE.json` (per arm and seed the accuracy and the per-epoch winners, and
the verdicts), from which the docs tool (`python tools/docs.py --only workspace-h3`) renders the section of
docs/workspace.md (`markdown`).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from plasticity.build import TrainConfig
from plasticity.data import Dataset, Split, load
from plasticity.io import atomic_write_json, file_to_write
from plasticity.lab.bench.paired import paired_difference
from plasticity.observe.workspace import WorkspaceMonitor
from plasticity.train import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace_h1 import MIRROR  # noqa: E402  the mirror as pre-registered, pinned for every hypothesis

DATA = "mnist1d"
MODEL = "segments"
SEGMENTS = 4  # build_segments' default
NOISY = 1  # the pre-registration's "segment 2": the second segment, inputs 10-19
EVEN_SHARE = 1.0 / (SEGMENTS + 1)  # 4 hidden modules and the output
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "bp": ("bp", {}),
    "dfa-mirror": ("dfa", {"mirror_rate": 0.04}),
    "workspace": ("workspace", {"capacity": 2, **MIRROR}),  # the default capacity when the tests were pre-registered
    "workspace-all": ("workspace", {"capacity": SEGMENTS + 1, **MIRROR}),
}
# (arm on, arm off): the accuracy verdicts, the component under test first.
COMPARISONS = (("workspace", "workspace-all"), ("workspace", "bp"), ("workspace", "dfa-mirror"))


def noisy_dataset(data: Dataset, seed: int, segment: int = NOISY, segments: int = SEGMENTS) -> Dataset:
    """`data` with training inputs `segment` (of `segments` equal, contiguous segments) replaced by N(0, 1)
    noise from `numpy.random.default_rng([seed, segment])`, one draw per training sample; the test and
    validation splits and every label are the loaded ones. A new Dataset: `data` is not changed."""
    n_features = data.n_features
    if n_features % segments or not 0 <= segment < segments:
        raise ValueError(f"segment {segment} of {segments} equal segments of {n_features} features does not exist")
    size = n_features // segments
    x = data.train.x.clone()
    noise = np.random.default_rng([seed, segment]).standard_normal((len(x), size), dtype=np.float32)
    x[:, segment * size : (segment + 1) * size] = torch.from_numpy(noise)
    source = f"{data.source}; training inputs {segment * size}-{(segment + 1) * size - 1} replaced by N(0, 1) noise (seed {seed})"
    return dataclasses.replace(data, train=Split(x, data.train.y), source=source)


def run_one(arm: str, seed: int, data: Dataset, epochs: int | None) -> dict[str, Any]:
    """One run of `arm` on the noisy training data of `seed`: its final test accuracy and, per epoch, the test
    accuracy and (workspace arms) the winners per module."""
    rule, options = ARMS[arm]
    config = TrainConfig(rule=rule, data=DATA, model=MODEL, epochs=epochs, seed=seed, rule_options=dict(options))
    trainer = Trainer.from_config(config, data=noisy_dataset(data, seed), observers=[WorkspaceMonitor()], progress=False)
    results = trainer.fit()
    return {
        "arm": arm,
        "seed": seed,
        "status": results.status,
        "test_accuracy": results.test_accuracy,
        "epochs": [{"epoch": e.epoch, "test_accuracy": e.test_accuracy, "winners": (e.observed.get("workspace") or {}).get("winners")} for e in results.epochs],
        "settings": {"epochs": trainer.config.epochs, "batch_size": trainer.config.batch_size, "rule_options": dict(options)},
    }


def noisy_share(winners: list[float], segment: int = NOISY) -> float:
    """The noisy block's module's fraction of all admissions: its winners over the sum of the winners."""
    return winners[segment] / sum(winners)


def shares(run: dict[str, Any]) -> tuple[float, float] | None:
    """(the noisy block's share in the last epoch, its mean over the epochs) of a workspace run; None else."""
    per_epoch = [noisy_share(e["winners"]) for e in run["epochs"] if e["winners"]]
    return (per_epoch[-1], statistics.fmean(per_epoch)) if per_epoch else None


def verdicts(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The paired verdicts among the arms present (seeds paired in order)."""
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for run in runs:
        by.setdefault(run["arm"], {})[run["seed"]] = run
    out = []
    for on, off in COMPARISONS:
        if on in by and off in by:
            seeds = sorted(set(by[on]) & set(by[off]))
            result = paired_difference([by[on][s]["test_accuracy"] for s in seeds], [by[off][s]["test_accuracy"] for s in seeds])
            out.append({"metric": "test accuracy", "on": on, "off": off, "seeds": seeds, **result.to_json()})
    if "workspace" in by and "workspace-all" in by:
        seeds = sorted(set(by["workspace"]) & set(by["workspace-all"]))
        for which, index in (("last epoch", 0), ("mean over epochs", 1)):
            on = [shares(by["workspace"][s])[index] for s in seeds]
            off = [shares(by["workspace-all"][s])[index] for s in seeds]
            result = paired_difference(on, off, higher_is_better=False)
            out.append({"metric": f"noisy share, {which}", "on": "workspace", "off": "workspace-all", "seeds": seeds, **result.to_json()})
    return out


def measure(arms: list[str], seeds: int, epochs: int | None, data: Dataset) -> dict[str, Any]:
    jobs = [(arm, seed) for arm in arms for seed in range(seeds)]
    runs = [run_one(arm, seed, data, epochs) for arm, seed in tqdm(jobs, desc="runs", unit="run")]
    return {"runs": runs, "verdicts": verdicts(runs)}


def _mean_std(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    if not values:
        return "—"
    mean = statistics.fmean(values) * scale
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}"


def markdown(measured: dict[str, Any]) -> str:
    """The section of docs/workspace.md (H3) from what `--out` holds: a table per arm, the verdicts."""
    setup, runs = measured["setup"], measured["runs"]
    arms = list(dict.fromkeys(run["arm"] for run in runs))
    lines = [
        f"Setup: {setup['description']}. Mean ± standard deviation over seeds {', '.join(str(s) for s in setup['seeds'])}. "
        f"\"Noisy share\": the noisy block's module's winners over the sum of the winners of the 5 modules (even share "
        f"{EVEN_SHARE:.2f}); capacity 5 admits every module for every sample, so its share is {EVEN_SHARE:.2f} by construction.",
        "",
        "| arm | rule options | test accuracy (%) | noisy share, last epoch | noisy share, mean over epochs "
        "| winners per module, last epoch (blocks 0–3, output) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for arm in arms:
        mine = [run for run in runs if run["arm"] == arm]
        accuracy = _mean_std([run["test_accuracy"] for run in mine], 100.0)
        found = [shares(run) for run in mine]
        found = [s for s in found if s is not None]
        last, mean = (_mean_std([s[i] for s in found], digits=3) for i in (0, 1))
        winners = [run["epochs"][-1]["winners"] for run in mine if run["epochs"] and run["epochs"][-1]["winners"]]
        per_module = ", ".join(f"{v:.2f}" for v in np.mean(winners, axis=0)) if winners else "—"
        options = ", ".join(f"{k} = {v}" for k, v in mine[0]["settings"]["rule_options"].items()) or "defaults"
        lines.append(f"| {arm} | {options} | {accuracy} | {last} | {mean} | {per_module} |")
    lines += ["", "| metric | arm on, against off | mean paired improvement | 2 × SE | verdict |", "|---|---|---:|---:|---|"]
    for v in measured["verdicts"]:
        percent = v["metric"] == "test accuracy"
        scale, unit, digits = (100.0, " points", 2) if percent else (1.0, "", 3)
        se = "—" if v["se"] is None else f"{2 * v['se'] * scale:.{digits}f}"
        lines.append(f"| {v['metric']} | {v['on']} against {v['off']} | {v['mean'] * scale:+.{digits}f}{unit} | {se} | {v['verdict']} |")
    lines += [
        "",
        "Improvement: on − off for the accuracy, off − on for the noisy share (lower is the predicted direction), "
        'paired by seed; "supported" when it exceeds twice its standard error (`plasticity.lab.bench.paired`), '
        '"harmful" when it is below minus that. For the share it is the share\'s distance below 1/5.',
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 … N−1 (default: 5)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default: MNIST-1D's, 60)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated (default: {','.join(ARMS)})")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--out", type=file_to_write, metavar="FILE.json", help="write every run and the verdicts to this JSON file")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.threads < 1 or (args.epochs is not None and args.epochs < 1):
        parser.error("--seeds, --epochs and --threads must be ≥ 1")
    arms = args.arms.split(",")
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or len(set(arms)) != len(arms):
        parser.error(f"--arms takes distinct names among {','.join(ARMS)}; got {args.arms}")
    torch.set_num_threads(args.threads)
    data = load(DATA)
    measured = measure(arms, args.seeds, args.epochs, data)
    first = measured["runs"][0]["settings"]
    cpu = platform.processor() or platform.machine()
    size = data.n_features // SEGMENTS
    measured["setup"] = {
        "description": (
            f"{DATA}, model {MODEL} ({SEGMENTS} blocks of {size} → 64 tanh, summed heads), training inputs {NOISY * size}–{NOISY * size + size - 1} "
            f"(segment index {NOISY}) replaced by N(0, 1) noise, {first['epochs']} epochs, batch {first['batch_size']}, "
            f"{args.threads} thread(s), cpu ({cpu}), torch {torch.__version__}"
        ),
        "seeds": list(range(args.seeds)),
        "epochs": first["epochs"],
        "arms": arms,
        "threads": args.threads,
        "torch": torch.__version__,
    }
    print(markdown(measured))
    if args.out:
        atomic_write_json(args.out, measured)
    return 0


if __name__ == "__main__":
    sys.exit(main())
