"""Hypothesis H2 of docs/workspace.md: does the workspace's limited capacity make it forget less?

    python benchmarks/workspace_h2.py --out docs/runs/workspace-h2/h2.json   # the stored run of docs/workspace.md
    python benchmarks/workspace_h2.py --streams split-digits --seeds 2       # a quick look, nothing written

Measures, on three continual streams, how much each arm forgets and what it still knows at the end,
as pre-registered in docs/workspace.md ("Pre-registered tests", H2; nothing here changes it):

- **split-digits**, **split-mnist-t10k** (class-incremental): 5 tasks of 2 classes; the class order
  is `numpy.random.default_rng(seed).permutation(10)` cut in 5 (`plasticity.lab.continual.protocol.
  task_classes`, the order `plasticity continual` uses); each task is all training samples of its
  classes, trained for the dataset's default epochs ÷ 5, at least 2 (`plasticity.build.
  DEFAULT_EPOCHS`: digits 30 → 6, mnist-t10k 20 → 4). No replay, and the full 10-way output head
  throughout: a task is scored by the plain argmax over all 10 classes (no task mask).
- **permuted-mnist1d** (domain-incremental): 5 tasks, all 10 classes in each; task t's inputs are
  MNIST-1D's 40 inputs reordered by a fixed permutation, the 5 permutations drawn in turn from
  `numpy.random.default_rng([seed, 2])`. Every task is permuted, task 1 included (it is not the
  identity): the MLP does not see input order, so an identity first task would be no easier. 12
  epochs per task.

The net is the benchmark MLP (256×256 tanh) that `plasticity.train.Trainer.from_config` makes for
`TrainConfig(rule, data, seed, batch_size=64, rule_options)`: model, rule and Adam optimizer exactly
as the benches make them. One optimizer is kept across the tasks (its moments carry over), as are
the rule's own state (feedback maps, readouts). The batches of the run's k-th epoch, counted over the
whole stream, follow `plasticity.train.batch_order(n, seed, k)` over the task's samples, so every arm
sees the same batches for a seed. One step is the trainer's (`Trainer.step`: the rule's loss, its
backward pass, and the optimizer stepped only where the rule applies the step).

After each task every task's test samples are scored (with the rule's `logits`, as the trainer
scores), giving a 5×5 accuracy matrix a[i][j] per (stream, arm, seed); from it
`plasticity.observe.forgetting` gives the final average accuracy and the average forgetting.

Arms: `bp`; `dfa-mirror` (dfa with `mirror_rate` 0.04: the workspace's mirror then, `MIRROR`); `workspace` (capacity 2,
the default when the tests were pre-registered); `workspace-capacity-3` (every module admitted on this net: two hidden readouts and the
output). Verdicts (`plasticity.lab.bench.paired.paired_difference`, paired by seed): capacity 2
against capacity 3, and that workspace against `bp` and against `dfa-mirror`, each on
forgetting (lower is better) and on final average accuracy. H2's prediction holds on a stream when
capacity 2 forgets less by the pass mark and its final accuracy is not worse by the pass mark.

Writes only where it is told: `--out FILE.json` (every accuracy matrix, the summary and the
verdicts), from which the docs tool (`python tools/docs.py --only workspace-h2`) renders the section
of docs/workspace.md (`markdown`).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from plasticity.build import DEFAULT_EPOCHS, TrainConfig
from plasticity.data import Dataset, load
from plasticity.errors import ConfigError
from plasticity.io import atomic_write_json, file_to_write
from plasticity.lab.bench.paired import HARMFUL, INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, paired_difference
from plasticity.lab.continual.protocol import task_classes
from plasticity.observe.forgetting import forgetting_report
from plasticity.threads import count, torch_threads
from plasticity.train import Trainer, batch_order, evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace_h1 import MIRROR  # noqa: E402  the mirror as pre-registered, pinned for every hypothesis

TASKS = 5
BATCH = 64
PERMUTED_EPOCHS = 12
PERMUTATIONS = 2
"""The second word of the permutations' generator seed, [seed, 2]."""
ROOT = "../shared/datasets/mnist-t10k"
"""mnist-t10k's folder, relative to the repository's root."""

# stream → (dataset, kind)
STREAMS = {"split-digits": ("digits", "split"), "split-mnist-t10k": ("mnist-t10k", "split"), "permuted-mnist1d": ("mnist1d", "permuted")}
# arm → (rule, options); the label is what the tables show.
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "bp": ("bp", {}),
    "dfa-mirror": ("dfa", {"mirror_rate": 0.04}),
    "workspace": ("workspace", {"capacity": 2, **MIRROR}),  # the default capacity when the tests were pre-registered
    "workspace-capacity-3": ("workspace", {"capacity": 3, **MIRROR}),
}
COMPONENT = ("workspace", "workspace-capacity-3")
"""H2's component: limited capacity (on) against every module admitted (off)."""
CONTROLS = ("bp", "dfa-mirror")
METRICS = (("average_forgetting", False), ("final_average_accuracy", True))
"""(metric, higher is better)."""


@dataclass(frozen=True)
class Task:
    """One task of a stream: its training and test samples, and what defines it (its classes or its permutation)."""

    defined_by: list[int]
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def split_tasks(data: Dataset, seed: int, tasks: int = TASKS) -> list[Task]:
    """Class-incremental tasks: the classes permuted by the seed and cut in `tasks` groups; each task
    holds every training and test sample of its classes."""
    out = []
    for group in task_classes(data.n_classes, tasks, seed):
        train = torch.isin(data.train.y, torch.as_tensor(group))
        test = torch.isin(data.test.y, torch.as_tensor(group))
        out.append(Task(sorted(int(c) for c in group), data.train.x[train], data.train.y[train], data.test.x[test], data.test.y[test]))
    return out


def permuted_tasks(data: Dataset, seed: int, tasks: int = TASKS) -> list[Task]:
    """Domain-incremental tasks: every sample, its inputs reordered by the task's permutation (every
    task permuted, the first included), drawn from `default_rng([seed, PERMUTATIONS])`."""
    rng = np.random.default_rng([seed, PERMUTATIONS])
    out = []
    for _ in range(tasks):
        order = rng.permutation(data.n_features)
        index = torch.as_tensor(order)
        out.append(Task(order.tolist(), data.train.x[:, index], data.train.y, data.test.x[:, index], data.test.y))
    return out


def make_tasks(stream: str, data: Dataset, seed: int) -> list[Task]:
    return (split_tasks if STREAMS[stream][1] == "split" else permuted_tasks)(data, seed)


def epochs_per_task(stream: str) -> int:
    """The pre-registered epochs per task: the dataset's default ÷ 5 (at least 2) for a split stream, 12 for the permuted one."""
    dataset, kind = STREAMS[stream]
    return max(2, DEFAULT_EPOCHS[dataset] // TASKS) if kind == "split" else PERMUTED_EPOCHS


def run_one(stream: str, data: Dataset, arm: str, seed: int, tasks: list[Task], epochs: int) -> dict[str, Any]:
    """Train one arm on the stream's tasks in turn; its accuracy matrix and metrics."""
    rule_name, options = ARMS[arm]
    trainer = Trainer.from_config(TrainConfig(rule=rule_name, data=data.name, seed=seed, batch_size=BATCH, rule_options=dict(options)), data, progress=False)
    scores: Callable[[torch.Tensor], torch.Tensor] = partial(trainer.rule.logits, trainer.model)
    accuracy, withheld, epoch, began = [], 0, 0, time.perf_counter()
    for number, task in enumerate(tasks, start=1):
        for _ in range(epochs):
            epoch += 1
            order = batch_order(len(task.train_y), seed, epoch)
            losses = []
            for start in range(0, len(order), BATCH):
                index = order[start : start + BATCH]
                info = trainer.step(task.train_x[index], task.train_y[index])
                withheld += not info.applied
                losses.append(info.loss)
            if not bool(torch.isfinite(torch.stack(losses)).all()):
                raise RuntimeError(f"{arm} on {stream}, seed {seed}: the training loss became non-finite in task {number}, epoch {epoch}")
        accuracy.append([evaluate(scores, t.test_x, t.test_y)[0] for t in tasks])
    report = forgetting_report(accuracy)
    return {
        "stream": stream,
        "arm": arm,
        "seed": seed,
        "accuracy": report.accuracy,
        "final_average_accuracy": report.final_average_accuracy,
        "average_forgetting": report.average_forgetting,
        "backward_transfer": report.backward_transfer,
        "withheld_steps": withheld,
        "seconds": time.perf_counter() - began,
    }


def mean_std(values: list[float]) -> dict[str, float | None]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None}


def summarise(runs: list[dict[str, Any]], streams: list[str], arms: list[str]) -> list[dict[str, Any]]:
    """Mean ± std (ddof = 1) over seeds of each metric, per (stream, arm)."""
    rows = []
    for stream in streams:
        for arm in arms:
            mine = [r for r in runs if r["stream"] == stream and r["arm"] == arm]
            rows.append({"stream": stream, "arm": arm, "seeds": len(mine), **{m: mean_std([r[m] for r in mine]) for m, _ in METRICS}})
    return rows


def judge(runs: list[dict[str, Any]], streams: list[str], arms: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The paired verdicts (the component against capacity 3, and against each control present),
    and H2's verdict per stream where both capacity arms ran."""
    on = COMPONENT[0]
    pairs = [(on, off) for off in (COMPONENT[1], *CONTROLS) if on in arms and off in arms]
    verdicts, h2 = [], []
    for stream in streams:
        by = {(r["arm"], r["seed"]): r for r in runs if r["stream"] == stream}
        seeds = sorted({r["seed"] for r in runs if r["stream"] == stream})
        found = {}
        for a, b in pairs:
            for metric, higher in METRICS:
                result = paired_difference([by[(a, s)][metric] for s in seeds], [by[(b, s)][metric] for s in seeds], higher)
                found[(b, metric)] = result.verdict
                verdicts.append({"stream": stream, "on": a, "off": b, "metric": metric, **result.to_json()})
        if (COMPONENT[1], METRICS[0][0]) in found:
            h2.append({"stream": stream, "verdict": h2_verdict(found[(COMPONENT[1], METRICS[0][0])], found[(COMPONENT[1], METRICS[1][0])])})
    return verdicts, h2


def h2_verdict(forgetting: str, accuracy: str) -> str:
    """H2 on one stream from the two verdicts of capacity 2 against 3: "supported" when it forgets
    less by the pass mark and its accuracy is not worse by it; "harmful" when it does worse on one
    metric by the pass mark and better on neither; "inconclusive" with fewer than 2 seeds; otherwise
    "not supported"."""
    verdicts = (forgetting, accuracy)
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE
    if forgetting == SUPPORTED and accuracy != HARMFUL:
        return SUPPORTED
    return HARMFUL if HARMFUL in verdicts and SUPPORTED not in verdicts else NOT_SUPPORTED


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """What the numbers depend on (the data folder and the progress bar do not)."""
    return {"streams": args.streams, "arms": args.arms, "seeds": args.seeds, "epochs": args.epochs, "threads": args.threads}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every (stream, seed, arm) run in turn, then the summary and the verdicts."""
    runs, tasks_of = [], {}
    bar = tqdm(total=len(args.streams) * args.seeds * len(args.arms), desc="runs", unit="run", disable=args.quiet)
    for stream in args.streams:
        dataset = STREAMS[stream][0]
        data = load(dataset, root=args.root if dataset == "mnist-t10k" else None)
        epochs = args.epochs or epochs_per_task(stream)
        tasks_of[stream] = {"epochs_per_task": epochs, "defined_by": {}}
        for seed in range(args.seeds):
            tasks = make_tasks(stream, data, seed)
            tasks_of[stream]["defined_by"][str(seed)] = [t.defined_by for t in tasks]
            for arm in args.arms:
                bar.set_postfix_str(f"{stream} seed {seed} {arm}")
                runs.append(run_one(stream, data, arm, seed, tasks, epochs))
                bar.update()
    bar.close()
    verdicts, h2 = judge(runs, args.streams, args.arms)
    processor = platform.processor() or platform.machine()
    setup = (
        f"benchmark MLP 256×256 tanh, batch {BATCH}, each rule's Adam defaults, one optimizer across the tasks, {TASKS} tasks, "
        f"seeds 0–{args.seeds - 1}, {args.threads} thread(s), CPU ({processor}), torch {torch.__version__}"
    )
    return {
        "settings": settings(args),
        "setup": setup,
        "arms": {arm: {"rule": ARMS[arm][0], "options": ARMS[arm][1]} for arm in args.arms},
        "tasks": tasks_of,
        "runs": runs,
        "summary": summarise(runs, args.streams, args.arms),
        "verdicts": verdicts,
        "h2": h2,
    }


# ------------------------------------------------------------------------------------ the docs' table
STREAM_WORDS = {
    "split-digits": "class-incremental split digits",
    "split-mnist-t10k": "class-incremental split mnist-t10k",
    "permuted-mnist1d": "domain-incremental permuted MNIST-1D",
}
METRIC_WORDS = {"average_forgetting": "forgetting", "final_average_accuracy": "final accuracy"}


def _percent(cell: dict[str, float | None]) -> str:
    std = "" if cell["std"] is None else f" ± {100 * cell['std']:.1f}"
    return f"{100 * cell['mean']:.1f}{std}"


def markdown(measured: dict[str, Any]) -> str:
    """The section of docs/workspace.md from a measurement (as written to --out)."""
    tasks = measured["tasks"]
    lines = [
        f"Setup: {measured['setup']}. Epochs per task: "
        + ", ".join(f"{stream} {tasks[stream]['epochs_per_task']}" for stream in measured["settings"]["streams"])
        + ". Split streams: 5 tasks of 2 classes in an order drawn from the seed, scored by the full 10-way head (no task "
        "mask), no replay; permuted MNIST-1D: 5 tasks of all 10 classes, each a permutation of the 40 inputs drawn from the "
        "seed, the first task permuted too. The optimizer (its Adam moments) and the rule's state are kept across the "
        "tasks. Figures in % over the seeds, mean ± std; forgetting is Chaudhry et al.'s average forgetting (lower is better); "
        '"at the end": the last row of the accuracy matrix, on the last task and averaged over the earlier ones. '
        "Verdicts: the paired difference (on − off, oriented so that > 0 is an improvement) against twice its standard "
        "error, n = seeds. The class order and the permutations of every seed, and every 5×5 accuracy matrix, are in "
        "the stored run.",
    ]
    for stream in measured["settings"]["streams"]:
        head = "| arm | final average accuracy | average forgetting | at the end: last task | at the end: earlier tasks |"
        lines += ["", f"**{STREAM_WORDS[stream]}**", "", head]
        lines.append("|---|---:|---:|---:|---:|")
        for row in (r for r in measured["summary"] if r["stream"] == stream):
            last_rows = [r["accuracy"][-1] for r in measured["runs"] if r["stream"] == stream and r["arm"] == row["arm"]]
            last, earlier = mean_std([a[-1] for a in last_rows]), mean_std([float(np.mean(a[:-1])) for a in last_rows])
            cells = [_percent(row["final_average_accuracy"]), _percent(row["average_forgetting"]), _percent(last), _percent(earlier)]
            lines.append(f"| {row['arm']} | {' | '.join(cells)} |")
        verdicts = [v for v in measured["verdicts"] if v["stream"] == stream]
        if verdicts:
            lines += ["", "| comparison | metric | improvement (points) | 2·SE | verdict |", "|---|---|---:|---:|---|"]
            for v in verdicts:
                mark = "—" if v["se"] is None else f"{200 * v['se']:.2f}"
                lines.append(f"| {v['on']} vs {v['off']} | {METRIC_WORDS[v['metric']]} | {100 * v['mean']:+.2f} | {mark} | {v['verdict']} |")
    if measured["h2"]:
        lines += ["", "H2 (capacity 2 forgets less than capacity 3 by the pass mark, at no loss of final accuracy beyond it): "]
        lines[-1] += "; ".join(f"{h['stream']} **{h['verdict']}**" for h in measured["h2"]) + "."
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    def names(known: dict[str, Any]) -> Callable[[str], list[str]]:
        def parse(text: str) -> list[str]:
            chosen = text.split(",")
            unknown = [name for name in chosen if name not in known]
            if unknown or len(set(chosen)) != len(chosen):
                raise argparse.ArgumentTypeError(f"expected distinct names among {','.join(known)}; got {text!r}")
            return chosen

        return parse

    out = argparse.ArgumentParser(
        prog="python benchmarks/workspace_h2.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    out.add_argument("--streams", type=names(STREAMS), default=list(STREAMS), help=f"comma-separated (default: {','.join(STREAMS)})")
    out.add_argument("--arms", type=names(ARMS), default=list(ARMS), help=f"comma-separated (default: {','.join(ARMS)})")
    out.add_argument("--seeds", type=count, default=5, help="seeds 0..N−1 (default: 5)")
    out.add_argument("--epochs", type=count, help="epochs per task for every stream (default: the pre-registered ones; any other is a deviation)")
    out.add_argument("--threads", type=count, default=1, help="torch CPU threads (default: 1)")
    out.add_argument("--root", default=ROOT, help=f"mnist-t10k's folder (default: {ROOT}, from the repository's root)")
    out.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    out.add_argument("--out", type=file_to_write, metavar="FILE.json", help="write every accuracy matrix, the summary and the verdicts to this JSON file")
    return out


def checked(measured: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    """`measured` once its settings are seen to be those the command line `argv` asks for (ConfigError otherwise)."""
    wanted = settings(parser().parse_args(argv))
    if measured.get("settings") != wanted:
        raise ConfigError(f"the stored run was made with {measured.get('settings')}, not {wanted}; rerun its command")
    return measured


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.root == ROOT:  # the default is relative to the repository's root, wherever the command runs
        args.root = str(Path(__file__).resolve().parents[1] / ROOT)
    with torch_threads(args.threads):
        measured = measure(args)
    if not args.quiet:
        print(markdown(measured))
    if args.out:
        atomic_write_json(args.out, measured)
    return 0


if __name__ == "__main__":
    sys.exit(main())
