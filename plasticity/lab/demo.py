"""`plasticity demo`: every MLP rule, side by side with backprop, and the report, in minutes.

What a new user runs first, offline and with bundled or generated data only: every rule in
`plasticity.rules.names("mlp")` (every rule that trains the MLP; the spiking ones have their own
benchmark) on digits and MNIST-1D with 3 seeds on one network, with the ΣPI, Ω and alignment
observers; then the structural memory's class-incremental run on digits
(`plasticity.lab.continual.experiment.continual_demo`, into `<out>/continual`); then the HTML report. It reuses `run_bench`, so a rerun
with the same folder skips finished runs and resumes a half-finished one.

The budget: the whole demo must stay within 3 minutes on 2 CPU cores as rules are added.
`DemoConfig` holds every setting that costs time (epochs per dataset, width, batch size) so the
budget can be re-tuned in one place. Every demo records its wall time, the settings that produced
it and the machine in `<out>/demo.json`; the docs tool renders the timing section of
docs/benchmarks.md from a fresh demo's record (`timing_section`).

"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from plasticity.io import atomic_write_json
from plasticity.lab.bench import describe
from plasticity.lab.bench.markdown import table
from plasticity.lab.bench.runner import BenchConfig, run_bench
from plasticity.lab.continual.experiment import continual_demo
from plasticity.lab.report import build_report
from plasticity.lab.report.readme import DEMO_RECORD
from plasticity.observe.registry import build_observers
from plasticity.results import SummaryRow
from plasticity.rules import names as rule_names
from plasticity.threads import DEFAULT_THREADS, torch_threads
from plasticity.train import software

BUDGET_SECONDS = 180.0


@dataclass
class DemoConfig:
    """The demo's grid: the full bench's networks (each rule's default widths and batch: MLP 256×256
    tanh, batch 64, for all but SoftHebb's single layer) with fewer epochs.

    The full bench trains digits 30 and MNIST-1D 60 epochs; the demo stops at 6 and 10, where the
    rules' order is already plain, so that every rule (some cost several times backprop per epoch)
    fits the 3-minute budget. `plasticity bench` runs the full length.
    """

    datasets: tuple[str, ...] = ("digits", "mnist1d")
    epochs: dict[str, int] = field(default_factory=lambda: {"digits": 6, "mnist1d": 10})
    seeds: int = 3
    hidden: tuple[int, ...] | None = None
    """None: each rule's own default (`BenchConfig.hidden`); likewise `batch_size`."""
    activation: str = "tanh"
    batch_size: int | None = None
    observers: tuple[str, ...] = ("pi", "omega", "alignment")
    rules: tuple[str, ...] | None = None
    """None: every registered rule, so new rules join the demo without a change here."""
    threads: int | None = DEFAULT_THREADS
    """torch and BLAS threads during the demo (None: leave torch's default, one per core); the
    project's default and why: `plasticity.threads`."""

    def bench_config(self) -> BenchConfig:
        return BenchConfig(
            rules=list(self.rules or rule_names("mlp")),
            datasets=list(self.datasets),
            seeds=self.seeds,
            epochs=dict(self.epochs),
            hidden=tuple(self.hidden) if self.hidden is not None else None,
            activation=self.activation,
            batch_size=self.batch_size,
        )

    def describe(self) -> str:
        bench = self.bench_config()
        epochs = ", ".join(f"{d} ({bench.epochs_for(d)} epochs)" for d in bench.datasets)
        return (
            f"rules {', '.join(bench.rules)} on {epochs}, seeds 0..{self.seeds - 1}; "
            f"{describe.network(bench)}, batch {describe.batch(bench)}; "
            f"observers {', '.join(self.observers) or 'none'}; torch threads {self.threads or 'default'}"
        )


@dataclass
class DemoResult:
    summary: list[SummaryRow]
    report: Path
    continual: Path | None
    seconds: float
    fresh: bool
    """True when the output folder held no runs before: only then is `seconds` the demo's cost."""


def is_empty(out_dir: str | Path) -> bool:
    """True when `out_dir` holds nothing yet: only then does a demo's wall time measure a whole demo."""
    out = Path(out_dir)
    return not out.exists() or not any(out.iterdir())


def _load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def run_demo(
    config: DemoConfig | None = None,
    out_dir: str | Path = "runs/demo",
    progress: bool = True,
    started: float | None = None,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Run the demo into `out_dir` and build its report; `started` (perf_counter) dates the wall time.

    `out_dir`/demo.json records the wall time, whether the folder was fresh, the settings, the
    machine's CPU count and its 1-minute load average at the start and at the end (None where
    unknown: on a shared machine other work slows the demo down, and the record should say so)."""
    config = config or DemoConfig()
    started = time.perf_counter() if started is None else started
    out = Path(out_dir)
    fresh = is_empty(out)
    load_before = _load()
    say(f"plasticity demo: {config.describe()} → {out}")

    with torch_threads(config.threads):
        _, summary = run_bench(config.bench_config(), out, lambda: build_observers(config.observers), progress=progress)
        say("structural memory: class-incremental run on digits")
        continual = continual_demo(out / "continual", progress=progress)

    say(f"building the report in {out / 'report'}")
    report = build_report(out)
    seconds = time.perf_counter() - started
    load_after = _load()
    load = (load_before, load_after) if load_before is not None and load_after is not None else None
    record = {"settings": asdict(config), "rules": list(config.bench_config().rules), "wall_seconds": seconds, "fresh": fresh}
    atomic_write_json(out / DEMO_RECORD, {**record, "cpus": os.cpu_count(), "load_average": load, "versions": software().to_json()})
    return DemoResult(summary, report, continual, seconds, fresh)


def timing_section(config: DemoConfig, record: dict[str, Any], summary: Sequence[SummaryRow]) -> str:
    """The docs/benchmarks.md section recording what the demo of `config` cost, from its demo.json
    `record` and its summary.json; only a fresh demo's record (`record["fresh"]`) measures that."""
    info, seconds = record["versions"], record["wall_seconds"]
    within = "within" if seconds <= BUDGET_SECONDS else "OVER"
    machine = f"{info['platform']}, {record['cpus']} CPUs, torch {info['torch']}"
    if record["load_average"] is not None:
        start, end = record["load_average"]
        machine += f"; 1-minute load average {start:.2f} at the start and {end:.2f} at the end (other work on the machine)"
    return "\n".join(
        [
            f"Wall time: **{seconds:.1f} s** ({within} the {BUDGET_SECONDS:.0f} s budget), from the command's start into an empty "
            "output folder (including importing torch, loading and generating data, every run, the memory run if present, and the report).",
            "",
            f"Settings: {config.describe()}.",
            "",
            f"Machine: {machine}.",
            "",
            table(summary),
        ]
    )
