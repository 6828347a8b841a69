"""H4 of the workspace's pre-registered tests (docs/workspace.md): is a more synergistic packet followed
by more learning?

    python benchmarks/workspace_h4.py --runs docs/runs/workspace-h1/noise00 --out docs/runs/workspace-h4/h4.json

It trains nothing: it reads the clean (p = 0) runs of H1 (`benchmarks/workspace_h1.py`), the pre-registered
workspace on every dataset and seed with the `workspace` observer. Per epoch e of a run, s_e is the
observer's Gaussian PID synergy (minimum-mutual-information redundancy) of the two most admitted
modules' errors about the label, and d_e = loss_e − loss_{e+1} the drop of the test loss over the next
epoch. Per dataset, Spearman's ρ between s and d over every (seed, epoch) pair, and a two-sided
permutation test: s is shuffled within each seed (10,000 permutations, seeded), and
p = (1 + #{|ρ_perm| ≥ |ρ|}) / (1 + permutations). Pre-registered prediction: ρ > 0 with p < 0.05.

A caution the docs repeat: both s_e and d_e trend over training (synergy changes as the readouts
learn; the loss drops less and less), so a correlation over epochs can come from the common trend
alone. Shuffling within a seed keeps each seed's set of values but breaks the trend, so a trend
shared by s and d shows up as a significant ρ. Two checks that were not pre-registered remove the
trend: ρ on first differences (Δs_e against Δd_e, descriptive), and ρ within epochs — at each epoch
the seeds are ranked by s and by d, and the ranks, centred per epoch, are correlated over all
epochs — with its own permutation test (s shuffled across the seeds of each epoch): a seed whose
packet is more synergistic than the other seeds' at the same epoch, does its loss drop more?
Writes only `--out`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from plasticity.io import atomic_write_json, file_to_write
from plasticity.lab.bench.runner import RESULTS, finished_runs, stored_run_results
from plasticity.results import Place, RunResults, read_json

ARM = "workspace"
PERMUTATIONS = 10_000


def series(results: RunResults) -> tuple[np.ndarray, np.ndarray]:
    """(s_e, d_e) for e = 1 … E−1 of one run: synergy at epoch e, test-loss drop from e to e+1."""
    synergy, loss = [], []
    for entry in results.epochs:
        observed = (entry.observed.get("workspace") or {}).get("synergy")
        if observed is None:
            raise ValueError(f"epoch {entry.epoch} of a {results.config.rule} run has no synergy: run it with the workspace observer")
        synergy.append(observed["synergy"])
        loss.append(entry.test_loss)
    return np.asarray(synergy[:-1]), np.asarray(loss[:-1]) - np.asarray(loss[1:])


def trend(runs: list[RunResults]) -> dict[str, float | int]:
    """The trend the correlation can ride on, over the seeds' mean per epoch: the synergy at the first
    and the last epoch, and the epoch of the lowest test loss (after it, the loss rises)."""
    synergy = np.mean([[e.observed["workspace"]["synergy"]["synergy"] for e in r.epochs] for r in runs], axis=0)
    loss = np.mean([[e.test_loss for e in r.epochs] for r in runs], axis=0)
    return {"synergy_first": float(synergy[0]), "synergy_last": float(synergy[-1]), "lowest_loss_epoch": int(loss.argmin()) + 1, "epochs": len(loss)}


def spearman(s: np.ndarray, d: np.ndarray) -> float:
    """Spearman's ρ: the correlation of the ranks (ties share their mean rank); NaN when either
    side has fewer than two distinct values."""
    a, b = rankdata(s), rankdata(d)
    a, b = a - a.mean(), b - b.mean()
    scale = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b) / scale if scale > 0 else float("nan")


def centred_ranks(groups: list[tuple[np.ndarray, np.ndarray]], within: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per group, the centred ranks of s and of d: ranked over all groups pooled (Spearman's ρ
    over every pair), or inside each group (`within`: the groups' levels, and any trend between
    them, left out)."""
    if within:
        return [rankdata(g[0]) - (len(g[0]) + 1) / 2 for g in groups], [rankdata(g[1]) - (len(g[1]) + 1) / 2 for g in groups]
    bounds = np.cumsum([0] + [len(g[0]) for g in groups])
    ranked = [rankdata(np.concatenate([g[k] for g in groups])) for k in (0, 1)]
    ranked = [r - r.mean() for r in ranked]
    return ([r[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)] for r in ranked)  # type: ignore[return-value]


def permutation_test(groups: list[tuple[np.ndarray, np.ndarray]], permutations: int, seed: int, within: bool = False) -> tuple[float, float]:
    """(ρ, two-sided p) with s shuffled inside each group. ρ is the correlation of the centred ranks
    (`centred_ranks`); shuffling s inside a group shuffles its ranks there, so every permutation's ρ
    is Σ_g perm(a_g)·b_g over the same norms."""
    a, b = centred_ranks(groups, within)
    scale = float(np.sqrt(sum(x @ x for x in a) * sum(y @ y for y in b)))
    if scale == 0:
        return float("nan"), 1.0
    observed = sum(float(x @ y) for x, y in zip(a, b, strict=True)) / scale
    rng = np.random.default_rng(seed)
    shuffled = np.zeros(permutations)
    for x, y in zip(a, b, strict=True):
        order = np.argsort(rng.random((permutations, len(x))), axis=1)
        shuffled += x[order] @ y
    exceed = int(np.sum(np.abs(shuffled / scale) >= abs(observed) - 1e-12))
    return observed, (1 + exceed) / (1 + permutations)


def analyse(runs: Path, permutations: int = PERMUTATIONS) -> dict[str, Any]:
    """Per dataset of the bench folder `runs`: the pairs, ρ, p and the first-difference ρ."""
    by_dataset: dict[str, list[tuple[int, RunResults]]] = {}
    for record in finished_runs(runs / RESULTS).values():
        if record.label == ARM:
            path = stored_run_results(runs, record.dataset, record.seed, record.key)
            by_dataset.setdefault(record.dataset, []).append((record.seed, RunResults.from_json(read_json(path), Place(path))))
    if not by_dataset:
        raise FileNotFoundError(f"{runs} holds no {ARM} run: run benchmarks/workspace_h1.py first")
    rows = []
    for dataset, found in sorted(by_dataset.items()):
        groups = [series(results) for _, results in sorted(found, key=lambda pair: pair[0])]
        rho, p = permutation_test(groups, permutations, seed=0)
        differenced = [(np.diff(s), np.diff(d)) for s, d in groups]
        by_epoch = [(np.array([s[e] for s, _ in groups]), np.array([d[e] for _, d in groups])) for e in range(min(len(s) for s, _ in groups))]
        rho_within, p_within = permutation_test(by_epoch, permutations, seed=0, within=True)
        rows.append(
            {
                "dataset": dataset,
                "seeds": sorted(seed for seed, _ in found),
                "pairs": sum(len(s) for s, _ in groups),
                "rho": rho,
                "p": p,
                "rho_within_epochs": rho_within,
                "p_within_epochs": p_within,
                "rho_differences": spearman(np.concatenate([g[0] for g in differenced]), np.concatenate([g[1] for g in differenced])),
                "synergy_range": [float(min(s.min() for s, _ in groups)), float(max(s.max() for s, _ in groups))],
                "pass": bool(rho > 0 and p < 0.05),
                **trend([results for _, results in found]),
            }
        )
    return {"arm": ARM, "permutations": permutations, "rows": rows}


def markdown(measured: dict[str, Any]) -> str:
    """The table of docs/workspace.md's H4 section."""
    lines = [
        f"The workspace's clean runs of H1 (capacity 2, gate off; {measured['permutations']:,} permutations within seeds). "
        "ρ: Spearman between the epoch's synergy and the next epoch's drop in test loss; Δ: the same on first "
        "differences; ρ within epochs: the seeds ranked against each other at each epoch, with its own permutation "
        "test (both remove the common trend over training; not pre-registered).",
        "",
        "| dataset | seeds | (seed, epoch) pairs | synergy range (nats) | ρ | p (two-sided) | prediction (ρ > 0, p < 0.05) | ρ on Δ | ρ within epochs | p |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in measured["rows"]:
        low, high = row["synergy_range"]
        lines.append(
            f"| {row['dataset']} | {len(row['seeds'])} | {row['pairs']} | {low:.3f}–{high:.3f} | {row['rho']:+.3f} | "
            f"{row['p']:.4f} | {'met' if row['pass'] else 'not met'} | {row['rho_differences']:+.3f} | "
            f"{row['rho_within_epochs']:+.3f} | {row['p_within_epochs']:.4f} |"
        )
    lines += [
        "",
        "The trend over training (means over the seeds per epoch):",
        "",
        "| dataset | synergy, first epoch (nats) | synergy, last epoch (nats) | lowest test loss at epoch | of |",
        "|---|---|---|---|---|",
    ]
    for row in measured["rows"]:
        lines.append(f"| {row['dataset']} | {row['synergy_first']:.2f} | {row['synergy_last']:.2f} | {row['lowest_loss_epoch']} | {row['epochs']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", required=True, help="the clean bench folder of H1 (OUT/noise00 of benchmarks/workspace_h1.py)")
    parser.add_argument("--out", type=file_to_write, metavar="FILE.json", help="write the analysis to this JSON file")
    parser.add_argument("--permutations", type=int, default=PERMUTATIONS, help=f"permutations of the test (default: {PERMUTATIONS:,})")
    args = parser.parse_args(argv)
    if args.permutations < 1:
        parser.error("--permutations must be ≥ 1")
    measured = analyse(Path(args.runs), args.permutations)
    print(markdown(measured))
    if args.out:
        atomic_write_json(args.out, measured)
    return 0


if __name__ == "__main__":
    sys.exit(main())
