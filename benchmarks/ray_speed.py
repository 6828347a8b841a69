"""Wall time of one bench on the local executor against the same bench on Ray, on this machine.

`python benchmarks/ray_speed.py --out FILE.json` runs, `--repeats` times (interleaved, the order
alternating every repeat so that drifts of the machine's speed hit both alike):

    plasticity bench --rules bp,fa,dfa,sign --data mnist1d --seeds 4 --threads 1 --out TMP --quiet
    the same with --executor ray --cpus-per-run 1

each as a fresh command in a new output folder (Python's and Ray's start-up included: a local Ray
instance is started by the command and stopped at its end). It reports the median wall time of each
executor, their ratio in each repeat and its median (target: Ray ≤ 0.7× local), Ray's start-up alone (`ray.init()` and
`ray.shutdown()` in a fresh Python, median over the repeats), and whether every run's test accuracy
is the same under both executors. The docs tool (`python tools/docs.py`) renders the table of
docs/benchmarks.md from the JSON (`markdown`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET = 0.7
GRID = ["--rules", "bp,fa,dfa,sign", "--data", "mnist1d", "--seeds", "4", "--threads", "1", "--quiet"]
RAY = ["--executor", "ray", "--cpus-per-run", "1"]
CLI = [sys.executable, "-c", "import sys; from plasticity.lab.cli import main; sys.exit(main(sys.argv[1:]))"]
STARTUP = "import ray; ray.init(include_dashboard=False, logging_level='ERROR'); ray.shutdown()"


def _wall(command: list[str]) -> float:
    """Seconds the command takes, start to exit; a failed command stops the benchmark with its output."""
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def _accuracies(folder: Path) -> dict[str, float]:
    """Test accuracy of every run of a bench folder, by label and seed."""
    lines = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    return {f"{line['label']} seed {line['seed']}": line["test_accuracy"] for line in lines}


def benchmark(repeats: int) -> dict[str, Any]:
    """Interleaved walls of both executors, Ray's start-up, and the accuracies of every repeat."""
    import ray
    import torch

    import plasticity

    walls: list[dict[str, float]] = []
    startups: list[float] = []
    accuracies: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(repeats):
            order = ["local", "ray"] if repeat % 2 == 0 else ["ray", "local"]
            wall, seen = {}, {}
            for executor in order:
                out = Path(scratch) / f"{executor}-{repeat}"
                wall[executor] = _wall([*CLI, "bench", *GRID, *(RAY if executor == "ray" else []), "--out", str(out)])
                seen[executor] = _accuracies(out)
                print(f"repeat {repeat + 1}/{repeats}: {executor} {wall[executor]:.1f} s", file=sys.stderr)
            walls.append(wall)
            accuracies.append(seen)
            startups.append(_wall([sys.executable, "-c", STARTUP]))
    reference = accuracies[0]["local"]
    return {
        "setup": {
            "local": "plasticity bench " + " ".join(GRID),
            "ray": "plasticity bench " + " ".join(GRID + RAY),
            "cpus": os.cpu_count(),
            "repeats": repeats,
            "versions": {"plasticity": plasticity.__version__, "torch": torch.__version__, "ray": ray.__version__, "python": sys.version.split()[0]},
        },
        "walls": walls,
        "ray_startup_seconds": startups,
        "runs": len(reference),
        "accuracies_equal": all(seen[executor] == reference for seen in accuracies for executor in seen),
        "accuracy": reference,
    }


def _each(walls: list[dict[str, float]], executor: str) -> str:
    return ", ".join(f"{wall[executor]:.1f}" for wall in walls)


def markdown(measured: dict[str, Any]) -> str:
    """The docs' table of a stored measurement."""
    setup, walls = measured["setup"], measured["walls"]
    local = statistics.median(w["local"] for w in walls)
    remote = statistics.median(w["ray"] for w in walls)
    ratios = [w["ray"] / w["local"] for w in walls]  # paired: the two commands of one repeat ran back to back
    ratio = statistics.median(ratios)
    lines = [
        f"Setup: {setup['cpus']} CPUs; {setup['repeats']} repeats, interleaved; plasticity {setup['versions']['plasticity']}, "
        f"torch {setup['versions']['torch']}, Ray {setup['versions']['ray']}, Python {setup['versions']['python']}.",
        "",
        "| executor | command | wall time, median (s) | each repeat (s) |",
        "|---|---|---:|---|",
        f"| local | `{setup['local']}` | {local:.1f} | {_each(walls, 'local')} |",
        f"| ray | `{setup['ray']}` | {remote:.1f} | {_each(walls, 'ray')} |",
        "",
        f"- Ray / local, per repeat: {', '.join(f'{r:.2f}' for r in ratios)}; median {ratio:.2f}, worst {max(ratios):.2f}.",
        f"- Target: Ray ≤ {TARGET}× local, Ray's start-up included (median of the per-repeat ratios): "
        f"**{'met' if ratio <= TARGET else 'missed'}** ({ratio:.2f}×; the worst repeat {'meets it too' if max(ratios) <= TARGET else 'does not'}).",
        f"- Ray's start-up alone (`ray.init()` then `ray.shutdown()` in a fresh Python): {statistics.median(measured['ray_startup_seconds']):.1f} s, median.",
        f"- Test accuracies: {'identical' if measured['accuracies_equal'] else 'NOT identical'} under both executors in every repeat "
        f"({measured['runs']} runs each).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """`python benchmarks/ray_speed.py [--repeats N] [--out FILE.json]`."""
    import argparse

    from plasticity.io import atomic_write_json, file_to_write

    parser = argparse.ArgumentParser(prog="python benchmarks/ray_speed.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each command (default: 3)")
    parser.add_argument("--out", type=file_to_write, metavar="FILE.json", help="also write the measurement to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be ≥ 1")
    measured = benchmark(args.repeats)
    print(markdown(measured))
    if args.out:
        atomic_write_json(args.out, measured)


if __name__ == "__main__":
    main()
