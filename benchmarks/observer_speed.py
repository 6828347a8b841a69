"""Timing of the synergy estimators against their speed targets.

`python benchmarks/observer_speed.py` times, with torch and NumPy's BLAS limited to 2 threads
(the estimators' linear algebra runs in NumPy; `plasticity.threads.torch_threads`):
- O-information of 64 units from 10,000 samples (target < 1 s);
- full 2×2 ΦID (16 atoms) of a pair of univariate series of 10,000 time points (< 1 s);
- the same ΦID for a pair of 2-dimensional series (< 1 s);
and prints a markdown table of the median wall time over repeats (after one warm-up call); with
`--out FILE.json` it also writes the timings, from which the docs tool (`python tools/docs.py`)
renders the table of docs/benchmarks.md (`markdown_table`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from plasticity.observe.synergy import gaussian_o_information, gaussian_phiid_mmi
from plasticity.threads import torch_threads

TARGET_SECONDS = 1.0
THREADS = 2


@dataclass(frozen=True)
class Timing:
    case: str
    median_seconds: float
    repeats: int
    target_seconds: float = TARGET_SECONDS

    @property
    def passed(self) -> bool:
        return self.median_seconds < self.target_seconds


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call allocations and lazy library initialisation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _var1(steps: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """A coupled linear process z_{t+1} = A z_t + noise with 2·dim components, so the ΦID
    has non-trivial atoms (the estimators' cost does not depend on the values)."""
    a = 0.5 * torch.eye(2 * dim, dtype=torch.float64) + 0.2 * torch.ones(2 * dim, 2 * dim, dtype=torch.float64) / dim
    noise = torch.randn(steps, 2 * dim, generator=generator, dtype=torch.float64)
    z = torch.zeros_like(noise)
    for t in range(1, steps):
        z[t] = a @ z[t - 1] + noise[t]
    return z


def benchmark(repeats: int = 7, threads: int = THREADS, seed: int = 0) -> list[Timing]:
    """Median seconds of each speed case; restores the thread counts afterwards."""
    with torch_threads(threads):
        generator = torch.Generator().manual_seed(seed)
        mixing = torch.randn(64, 64, generator=generator, dtype=torch.float64)
        units = torch.randn(10_000, 64, generator=generator, dtype=torch.float64) @ mixing
        uni, multi = _var1(10_000, 1, generator), _var1(10_000, 2, generator)
        cases: list[tuple[str, Callable[[], object]]] = [
            ("O-information, 64 units × 10,000 samples", lambda: gaussian_o_information(units)),
            ("ΦID 2×2, univariate X, Y, 10,000 time points", lambda: gaussian_phiid_mmi(uni[:, 0], uni[:, 1])),
            ("ΦID 2×2, 2-dim X, Y, 10,000 time points", lambda: gaussian_phiid_mmi(multi[:, :2], multi[:, 2:])),
        ]
        return [Timing(name, _median_seconds(fn, repeats), repeats) for name, fn in cases]


def markdown_table(timings: list[Timing], threads: int) -> str:
    rows = [
        f"| case | median (ms), {threads} threads | target | ok |",
        "|---|---:|---:|:---:|",
    ]
    for t in timings:
        rows.append(f"| {t.case} | {1000 * t.median_seconds:.1f} | < {t.target_seconds:g} s | {'yes' if t.passed else 'no'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """`python benchmarks/observer_speed.py [--out FILE.json]`."""
    import argparse

    from plasticity.io import atomic_write_json, file_to_write

    parser = argparse.ArgumentParser(prog="python benchmarks/observer_speed.py", description=__doc__)
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per case (default: 7)")
    parser.add_argument("--out", type=file_to_write, metavar="FILE.json", help="also write the timings to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be ≥ 1")
    timings = benchmark(repeats=args.repeats)
    print(markdown_table(timings, THREADS))
    if args.out:
        atomic_write_json(args.out, {"threads": THREADS, "timings": [asdict(t) for t in timings]})


if __name__ == "__main__":
    main()
