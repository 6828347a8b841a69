"""Instructions executed per training step: the project's step against the minimal loops, counted by callgrind.

    python benchmarks/instructions.py --rules bp,fa,dfa,sign   # needs valgrind; 15 processes, about 30 minutes
    python benchmarks/instructions.py --rules bp,workspace     # a rule without a minimal loop: against bp

Wall-clock ratios on a shared machine move by several per cent between runs of the same code
(`benchmarks/overhead.py`); a count of executed instructions does not. For each rule, each loop —
the project's step (`Trainer.step`) and the minimal loops of `benchmarks/minimal.py` that
`benchmarks/overhead.py` times (`MINIMAL`; a rule without one is counted alone, and against `bp`'s
step when bp is counted too) — runs in a process of its own under valgrind's callgrind:
the same set-up as the overhead benchmark (MNIST-1D MLP, seed 0, one thread), 10 warm-up steps of
every loop, then `--steps` steps of the loop counted. The count of that process minus the count of
the same script with no counted steps, divided by `--steps`, is the loop's count per step.

It is not a timing: what the processor makes of the instructions (caches, memory traffic) is not in
it, and on this benchmark the time ratios are larger than the instruction ratios. Writes only where
it is told: `--out FILE.json`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead  # noqa: E402

from plasticity.io import atomic_write_json, file_to_write  # noqa: E402

WARM_UP = 10
COUNT = re.compile(r"I\s+refs:\s+([\d,]+)")


def steps(rule: str, loop: str, n: int) -> None:
    """The counted process: set up `rule` as the overhead benchmark does, warm up every loop, run `loop` n steps."""
    torch.set_num_threads(1)
    contender = overhead.Contender(rule, "mnist1d", "cpu")
    trainer = contender.trainer
    x, y, size = trainer.data.train.x, trainer.data.train.y, trainer.config.batch_size
    batches = [(x[start : start + size], y[start : start + size]) for start in range(0, len(y) - size + 1, size)]

    def step(which: str, xb: torch.Tensor, yb: torch.Tensor) -> None:
        if which == "project":
            trainer.step(xb, yb)
        else:
            contender.loops[which].step(xb, yb)
            contender.loops[which].optimizer.step()

    for xb, yb in batches[:WARM_UP]:
        for which in ("project", *contender.loops):
            step(which, xb, yb)
    for i in range(n):
        step(loop, *batches[i % len(batches)])


def count(rule: str, loop: str, n: int) -> int:
    """Instructions callgrind counts in a process of `steps(rule, loop, n)`."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, "--worker", rule, loop, str(n)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = COUNT.findall(done.stderr)
    if done.returncode or not found:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return int(found[-1].replace(",", ""))


def measure(rules: list[str], n: int, jobs: int) -> list[dict[str, object]]:
    """Per rule: instructions per step of the project's loop and of each minimal loop, and their ratios."""
    runs = [(rule, "project", 0) for rule in rules]
    runs += [(rule, loop, n) for rule in rules for loop in ("project", *overhead.MINIMAL.get(rule, ()))]
    with ThreadPoolExecutor(jobs) as pool:
        counts = dict(zip(runs, pool.map(lambda run: count(*run), runs), strict=True))
    rows = []
    for rule in rules:
        base = counts[(rule, "project", 0)]
        per_step = {loop: (total - base) / n for (r, loop, steps_), total in counts.items() if r == rule and steps_ == n}
        project = per_step["project"]
        rows.append({"rule": rule, "per_step": per_step, **{f"ratio_to_{loop}": project / value for loop, value in per_step.items() if loop != "project"}})
    return rows


def markdown(measured: dict[str, Any]) -> str:
    """The docs' table of a stored count (`--out`)."""
    rows, n, warm_up = measured["rows"], measured["steps"], measured["warm_up"]
    lines = [
        f"Setup: callgrind; {n} counted steps after {warm_up} warm-up steps of every loop, minus the same process with "
        "none; MNIST-1D MLP 40→256→256→10 tanh, batch 64, seed 0, one thread. Instructions per training step, in millions.",
        "",
        "| rule | project | by hand | autograd | project / by hand | project / autograd | project / bp |",
        "|---|---|---|---|---|---|---|",
    ]
    bp = next((row["per_step"]["project"] for row in rows if row["rule"] == "bp"), None)
    for row in rows:
        million = {loop: value / 1e6 for loop, value in row["per_step"].items()}
        cells = [f"{million[loop]:.3f}" if loop in million else "—" for loop in ("project", "hand", "autograd")]
        cells += [format(row[key], ".3f") if key in row else "—" for key in ("ratio_to_hand", "ratio_to_autograd")]
        cells.append(format(row["per_step"]["project"] / bp, ".3f") if bp else "—")
        lines.append(f"| {row['rule']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", default="bp,fa,dfa,sign", help=f"comma-separated, of {','.join(overhead.RULES)} (default: bp,fa,dfa,sign)")
    parser.add_argument("--steps", type=int, default=210, help="counted training steps per process (default: 210)")
    parser.add_argument("--jobs", type=int, default=2, help="processes under valgrind at once (default: 2)")
    parser.add_argument("--out", type=file_to_write, metavar="FILE.json", help="write the counts to this JSON file")
    args = parser.parse_args(argv)
    rules = args.rules.split(",")
    unknown = sorted(set(rules) - set(overhead.RULES))
    if unknown:
        parser.error(f"unknown rule(s) {unknown}; choose from {','.join(overhead.RULES)}")
    if args.steps < 1 or args.jobs < 1:
        parser.error("--steps and --jobs must be ≥ 1")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed: this benchmark counts instructions with valgrind's callgrind")
    measured = {"steps": args.steps, "warm_up": WARM_UP, "rows": measure(rules, args.steps, args.jobs)}
    if args.out:  # written first: the counts took minutes
        atomic_write_json(args.out, measured)
    print(markdown(measured))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:  # a counted process (`count`): python instructions.py --worker RULE LOOP STEPS
        steps(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(main())
