"""Which weight-mirror schedule the workspace's default takes: the rule of docs/workspace.md, applied to stored runs.

    python benchmarks/workspace_mirror.py --out docs/runs/workspace-mirror-choice/mirror.json

Reads the two suites of schedules (`benchmarks/workspace-mirror.yaml`, seeds 10–14 on digits,
mnist-t10k and MNIST-1D; `benchmarks/workspace-mirror-mnist1d.yaml`, seeds 15–24 on MNIST-1D) and the
ablation (`benchmarks/workspace-ablation.yaml`, seeds 0–2, the default beside `ws-mirror4`, the
former schedule). For every schedule `ws-*` of the suites, the paired difference of final test
accuracy from the former default `ws-e4-n64`, seed by seed, per dataset
(`plasticity.lab.bench.paired.paired_difference`), and the mirror's work per training step (samples
through the noisy pass: mirror_samples / mirror_every). The rule, written into
workspace-mirror-mnist1d.yaml before it ran: the default is the schedule of least work whose mean
MNIST-1D difference over seeds 10–24 is ≥ −0.2 point. Then the same comparison on the tables' seeds
0–2 (the ablation) and pooled over all of them. Writes only where it is told (`--out`); `markdown`
renders the JSON for docs/workspace.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from plasticity.io import atomic_write_json, file_to_write
from plasticity.lab.bench.paired import paired_difference
from plasticity.lab.bench.runner import RESULTS, finished_runs
from plasticity.rules import make_config

FORMER = "ws-e4-n64"
TOLERANCE = 0.2
"""How far (points) below the former default a schedule's mean MNIST-1D accuracy may be."""
SUITES = ("docs/runs/workspace-mirror", "docs/runs/workspace-mirror-mnist1d")
ABLATION = "docs/runs/workspace-ablation"
DFA = ("dfa-e8-n16", "dfa-e4-n64")


def accuracies(folders: list[str]) -> tuple[dict[tuple[str, str], dict[int, float]], dict[str, Any]]:
    """({(label, dataset): {seed: test accuracy in points}}, {label: resolved rule config}) of the
    completed runs in the bench folders."""
    found: dict[tuple[str, str], dict[int, float]] = {}
    configs = {}
    for folder in folders:
        for record in finished_runs(Path(folder) / RESULTS).values():
            if record.test_accuracy is None or record.label is None:
                continue
            found.setdefault((record.label, record.dataset), {})[record.seed] = 100 * record.test_accuracy
            configs[record.label] = make_config(record.rule, record.config.rule_options)
    return found, configs


def work(config: Any) -> float:
    """The weight mirror's samples per training step."""
    return config.mirror_samples / config.mirror_every


def paired(found: dict[tuple[str, str], dict[int, float]], on: str, off: str, dataset: str) -> dict[str, Any]:
    """`on` against `off` on `dataset`, over the seeds both have."""
    seeds = sorted(set(found[(on, dataset)]) & set(found[(off, dataset)]))
    verdict = paired_difference([found[(on, dataset)][s] for s in seeds], [found[(off, dataset)][s] for s in seeds])
    return {"seeds": seeds, **verdict.to_json()}


def measure(suites: list[str], ablation: str) -> dict[str, Any]:
    found, configs = accuracies(suites)
    schedules = sorted({label for label, _ in found if label.startswith("ws-") and label != FORMER})
    datasets = sorted({dataset for label, dataset in found if label == FORMER})
    rows = [{"schedule": s, "work": work(configs[s]), **{d: paired(found, s, FORMER, d) for d in datasets}} for s in schedules]
    passing = [row for row in rows if row["mnist1d"]["mean"] >= -TOLERANCE]
    chosen = min(passing, key=lambda row: row["work"])["schedule"] if passing else None
    if chosen is None or configs[chosen] != make_config("workspace", {}):
        raise SystemExit(f"the rule chooses {chosen}, which is not the workspace's default: the tables' seeds hold no runs of it")
    table, _ = accuracies([ablation])
    on_table = paired(table, "workspace", "ws-mirror4", "mnist1d")
    pooled = {**found, ("chosen", "mnist1d"): {**found[(chosen, "mnist1d")], **table[("workspace", "mnist1d")]}}
    pooled[("former", "mnist1d")] = {**found[(FORMER, "mnist1d")], **table[("ws-mirror4", "mnist1d")]}
    return {
        "former": FORMER,
        "former_work": work(configs[FORMER]),
        "tolerance": TOLERANCE,
        "rows": rows,
        "chosen": chosen,
        "dfa": paired(found, *DFA, "mnist1d"),
        "tables_seeds": on_table,
        "pooled": paired(pooled, "chosen", "former", "mnist1d"),
    }


def cell(value: dict[str, Any]) -> str:
    return f"{value['mean']:+.2f} ± {2 * value['se']:.2f} (n = {value['n']})"


def markdown(measured: dict[str, Any]) -> str:
    """The docs' table of a stored choice (`--out`)."""
    datasets = [key for key in measured["rows"][0] if key not in ("schedule", "work")]
    lines = [
        f"Final test accuracy of each schedule minus that of the former default `{measured['former']}` (mirror work "
        f"{measured['former_work']:g} samples per step), paired by seed: mean ± 2 SE in points, over the suites' seeds. "
        f"Rule: the least work whose MNIST-1D mean is ≥ −{measured['tolerance']:g}.",
        "",
        "| schedule | mirror work (samples per step) | " + " | ".join(datasets) + " | passes |",
        "|---|---|" + "---|" * len(datasets) + "---|",
    ]
    for row in measured["rows"]:
        passes = "yes" if row["mnist1d"]["mean"] >= -measured["tolerance"] else "no"
        lines.append(f"| {row['schedule']} | {row['work']:g} | " + " | ".join(cell(row[d]) for d in datasets) + f" | {passes} |")
    lines += [
        "",
        f"Chosen: **{measured['chosen']}**. `dfa` with the sparsest mirror against the former one on MNIST-1D: "
        f"{cell(measured['dfa'])}. The chosen schedule (the default) against the former on the tables' seeds "
        f"{measured['tables_seeds']['seeds'][0]}–{measured['tables_seeds']['seeds'][-1]} (the ablation's `workspace` and "
        f"`ws-mirror4`): {cell(measured['tables_seeds'])}; pooled over every seed of both: {cell(measured['pooled'])}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", default=",".join(SUITES), help=f"comma-separated bench folders of the schedules (default: {','.join(SUITES)})")
    parser.add_argument("--ablation", default=ABLATION, help=f"bench folder with `workspace` and `ws-mirror4` on the tables' seeds (default: {ABLATION})")
    parser.add_argument("--out", type=file_to_write, metavar="FILE.json", help="write the choice to this JSON file")
    args = parser.parse_args(argv)
    measured = measure(args.suites.split(","), args.ablation)
    if args.out:
        atomic_write_json(args.out, measured)
    print(markdown(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
