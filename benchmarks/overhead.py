"""What the project's training step costs against a minimal hand-written loop of the same algorithm.

    python benchmarks/overhead.py                      # MNIST-1D MLP, one thread, CPU
    python benchmarks/overhead.py --device cuda        # the same on a GPU
    python benchmarks/overhead.py --out docs/runs/overhead/overhead.json   # the stored run of docs/benchmarks.md

For every rule, an epoch of `plasticity.train.Trainer` (the benchmark MLP and optimizer of
`plasticity train --rule R --data D --seed 0`) is timed as a whole, batch indexing included; for
the rules with a minimal loop (`benchmarks/minimal.py`: bp, fa, dfa, sign, pc) the same epoch is
timed with that loop, on a copy of the same network, the same feedback, batch order and optimizer.
Repeats are interleaved (project, minimal, next rule, …; the order of the pair alternates), and
each time is the median over the repeats. Before timing, the minimal loop's update for the first
batch is checked against the rule's (`GradientRule.directions`), in float64: the largest difference
relative to the update's own largest entry is printed, and a difference above 1e-6 fails the
command (exit 1) — the two loops must compute the same algorithm for the ratio to mean anything.

Writes only where it is told: `--out FILE.json`, from which the docs tool (`python tools/docs.py`)
renders the table of docs/benchmarks.md (`markdown`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

import minimal  # noqa: E402

from plasticity.build import TrainConfig  # noqa: E402
from plasticity.io import atomic_write_json, file_to_write  # noqa: E402
from plasticity.nets import build_mlp  # noqa: E402
from plasticity.rules.attach import GradientRule  # noqa: E402
from plasticity.rules.base import make_optimizer  # noqa: E402
from plasticity.rules.workspace import WorkspaceConfig  # noqa: E402
from plasticity.train import Trainer, batch_order  # noqa: E402

RULES = ("bp", "fa", "dfa", "sign", "pc", "workspace", "ff", "softhebb")
KINDS = ("hand", "autograd")
# The minimal loops of benchmarks/minimal.py by rule: bp is autograd itself, pc's relaxation and the
# workspace's modules are by hand.
MINIMAL = {"bp": ("hand",), "fa": KINDS, "dfa": KINDS, "sign": KINDS, "pc": ("hand",), "workspace": ("hand",)}
TOLERANCE = 1e-6
# What the minimal workspace loop holds at the rule's defaults.
WORKSPACE_DEFAULTS = ("capacity", "modules", "integration", "gate", "period", "gain", "output_teacher")


def minimal_step(rule: GradientRule, model: nn.Module, kind: str) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """The minimal loop's step of `rule` (its feedback drawn) on `model`, a copy of the rule's
    network: "hand" (backward by hand) or "autograd" (the textbook autograd version), one of
    `MINIMAL[rule.name]`."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if rule.name == "bp":
        return partial(minimal.bp_step, model)
    if rule.name == "pc":
        return partial(minimal.pc_step, layers, T=rule.T, rate=rule.config.inference_rate)
    if rule.name == "workspace":
        return minimal.WorkspaceStep(layers, [slot.weight for slot in rule.feedback[1:]], rule.seed, **workspace_options(rule.config))
    suffix = "_step" if kind == "hand" else "_autograd_step"
    if rule.name == "sign":
        return partial(getattr(minimal, "sign" + suffix), layers, scales=rule.scales_)
    feedback = [None] + [slot.weight for slot in rule.feedback[1:]]
    return partial(getattr(minimal, ("chain" if rule.name == "fa" else "dfa") + suffix), layers, feedback=feedback)


def workspace_options(config: WorkspaceConfig) -> dict[str, float]:
    """The settings `minimal.WorkspaceStep` takes. It writes out the default workspace only: a
    config that changes what the step computes is refused."""
    changed = [name for name in WORKSPACE_DEFAULTS if getattr(config, name) != getattr(WorkspaceConfig(), name)]
    if changed:
        raise ValueError(f"the minimal workspace loop writes out the default workspace; this config changes {changed}")
    return {name: getattr(config, name) for name in ("epsilon", "readout_lr", "mirror_every", "mirror_samples", "mirror_rate", "mirror_sigma")}


def copy_of(trainer: Trainer) -> nn.Module:
    """A plain copy of the trainer's MLP (same weights, no rule attached)."""
    config, data = trainer.config, trainer.data
    model = build_mlp(data.n_features, data.n_classes, config.hidden, config.activation)
    model.load_state_dict(trainer.model.state_dict())
    return model.to(trainer.device)


def difference(trainer: Trainer, kind: str, x: torch.Tensor, y: torch.Tensor) -> float:
    """Largest difference between the `kind` minimal loop's update for (x, y) and the rule's,
    relative to the update's largest entry, per tensor, computed in float64 on copies of the
    network (in float32 the two differ by rounding alone: for pc up to 2e-3, as the minimal loop
    keeps the value nodes without the rule's base-and-shift precision)."""
    rule = trainer.rule
    project = copy_of(trainer).double()
    attached = type(rule)(rule.config, seed=rule.seed).attach(project)
    expected, _ = attached.directions(project, x.double(), y)
    mine = copy_of(trainer).double()
    minimal_step(attached, mine, kind)(x.double(), y)
    got = [p.grad for p in mine.parameters()]
    return max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-300)) for a, b in zip(got, expected, strict=True))


class Minimal:
    """A minimal loop of one kind: its step, its copy of the network and its optimizer."""

    def __init__(self, trainer: Trainer, kind: str) -> None:
        self.trainer, self.model = trainer, copy_of(trainer)
        self.step = minimal_step(trainer.rule, self.model, kind)
        self.optimizer = make_optimizer(self.model.parameters(), trainer.rule.config)

    def epoch(self, epoch: int, x: torch.Tensor, y: torch.Tensor) -> None:
        device, size = self.trainer.device, self.trainer.config.batch_size
        order = batch_order(len(y), self.trainer.config.seed, epoch)
        for start in range(0, len(y), size):
            index = order[start : start + size]
            self.step(x[index].to(device), y[index].to(device))
            self.optimizer.step()


class Contender:
    """One rule, run by the project's trainer and by its minimal loops (those that exist)."""

    def __init__(self, rule: str, data: str, device: str) -> None:
        self.trainer = trainer = Trainer.from_config(TrainConfig(rule=rule, data=data, seed=0, device=device), progress=False)
        self.x, self.y = trainer.data.train.x, trainer.data.train.y
        batch = [t[: trainer.config.batch_size].to(trainer.device) for t in (self.x, self.y)]
        trainer.rule.directions(trainer.model, *batch)  # draws the rule's lazy feedback, changing nothing else
        kinds = MINIMAL.get(rule, ())
        self.differences = {kind: difference(trainer, kind, *batch) for kind in kinds}
        self.loops = {kind: Minimal(trainer, kind) for kind in kinds}
        self.times: dict[str, list[float]] = {kind: [] for kind in ("project", *kinds)}

    def _timed(self, run: Callable[[], object]) -> float:
        synchronize = torch.cuda.synchronize if self.trainer.device.type == "cuda" else (lambda: None)
        synchronize()
        began = time.perf_counter()
        run()
        synchronize()
        return time.perf_counter() - began

    def repeat(self, epoch: int) -> None:
        """One epoch of every loop; the order rotates with the epoch."""
        runs = [("project", partial(self.trainer.train_epoch, epoch))]
        runs += [(kind, partial(loop.epoch, epoch, self.x, self.y)) for kind, loop in self.loops.items()]
        shift = epoch % len(runs)
        for kind, run in runs[shift:] + runs[:shift]:
            self.times[kind].append(self._timed(run))

    def median(self, kind: str) -> float | None:
        return statistics.median(self.times[kind]) if self.times.get(kind) else None


def measure(rules: list[str], data: str, repeats: int, device: str) -> list[dict[str, object]]:
    contenders = {rule: Contender(rule, data, device) for rule in rules}
    for epoch in tqdm(range(1, repeats + 1), desc="repeats", leave=False):
        for contender in contenders.values():
            contender.repeat(epoch)
    bp = contenders["bp"].median("project") if "bp" in contenders else None
    rows = []
    for rule, contender in contenders.items():
        project = contender.median("project")
        row: dict[str, object] = {"rule": rule, "project_seconds": project, "ratio_to_bp": project / bp if bp else None}
        for kind in KINDS:
            mine = contender.median(kind)
            row[f"{kind}_seconds"] = mine
            row[f"ratio_to_{kind}"] = project / mine if mine else None
            row[f"{kind}_difference"] = contender.differences.get(kind)
        row["times"] = contender.times
        rows.append(row)
    return rows


def number(value: object, digits: str) -> str:
    return "—" if value is None else format(value, digits)


def markdown(rows: list[dict[str, object]], setup: str) -> str:
    """The table of the rows `measure` gives, with the setup they were measured in."""
    lines = [
        f'Setup: {setup}. Seconds per epoch are medians over the interleaved repeats. "by hand": the loop of '
        '`benchmarks/minimal.py` with the backward pass written out (no autograd); "autograd": the textbook autograd '
        "version (a custom Function per layer and `loss.backward()`); both on a copy of the same network with the same "
        'feedback, batch order and optimizer. "difference": the largest difference between a minimal loop\'s update '
        "for the first batch and the rule's, relative to the update's largest entry, in float64 (they compute the same "
        "algorithm).",
        "",
        "| rule | project s/epoch | by hand s/epoch | autograd s/epoch | project / by hand | project / autograd | project / bp | difference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        worst = max((d for d in (row["hand_difference"], row["autograd_difference"]) if d is not None), default=None)
        lines.append(
            f"| {row['rule']} | {number(row['project_seconds'], '.4f')} | {number(row['hand_seconds'], '.4f')} | "
            f"{number(row['autograd_seconds'], '.4f')} | {number(row['ratio_to_hand'], '.3f')} | "
            f"{number(row['ratio_to_autograd'], '.3f')} | {number(row['ratio_to_bp'], '.3f')} | {number(worst, '.1e')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", default=",".join(RULES), help=f"comma-separated (default: {','.join(RULES)}); bp gives the ratios to bp")
    parser.add_argument("--data", default="mnist1d", help="dataset of the benchmark MLP (default: mnist1d)")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats of one epoch each (default: 15)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--out", type=file_to_write, metavar="FILE.json", help="write every time and the table's numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be ≥ 1")
    rules = args.rules.split(",")
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        parser.error(f"no minimal or project loop for {unknown}; choose from {','.join(RULES)}")
    torch.set_num_threads(args.threads)
    rows = measure(rules, args.data, args.repeats, args.device)
    device = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    setup = f"{args.data}, seed 0, {args.repeats} repeats, {args.threads} thread(s), {args.device} ({device}), torch {torch.__version__}"
    print(markdown(rows, setup))
    if args.out:
        atomic_write_json(args.out, {"setup": setup, "rows": rows})
    failed = [row["rule"] for row in rows for kind in KINDS if (row[f"{kind}_difference"] or 0.0) > TOLERANCE]
    if failed:
        print(f"the minimal loop and the project's update differ by more than {TOLERANCE} for {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
