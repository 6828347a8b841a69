"""The docs tool: the only code that writes the generated sections of README.md and docs/*.md.

Every generated section sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in its doc and is
rendered from stored runs: the JSON files a command wrote into `docs/runs/<folder>/` (checkpoints, locks
and reports are not kept: .gitignore). MANIFEST lists every section: its doc, name, title (the heading
of a section not in its doc yet), kind (which renderer), its stored runs and the exact command that
makes them. The commands write runs; this tool writes docs:

    python tools/docs.py                # regenerate every section, docs/demo.png and docs/report.png
    python tools/docs.py --only NAME    # one section (with NAME demo, the two figures too)
    python tools/docs.py --check        # write nothing; exit 1 listing every section that is out of
                                        # date with its stored runs, or has none
    python tools/docs.py --list         # the manifest: each section's status and its command

Every section opens with "Produced by `COMMAND`. Regenerate with `python tools/docs.py --only NAME`."
Stored runs that are not what their command makes today (another grid, other settings, a resumed
demo's wall time) are refused in one line, as is a doc that cannot be read or written. `--check`
does not compare the figures' bytes (matplotlib and Chromium do not draw them byte for byte alike).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from plasticity.card import PlausibilityCard, cards_table
from plasticity.errors import ConfigError, PlasticityError, brief, os_reason
from plasticity.io import atomic_write, atomic_write_text
from plasticity.lab.bench import describe
from plasticity.lab.bench.markdown import section as bench_section
from plasticity.lab.bench.runner import RESULTS, SUMMARY, BenchConfig, finished_runs, run_key, stored_run_results
from plasticity.lab.cli import bench_grid, build_parser, epoch_lines
from plasticity.lab.continual import markdown as continual_markdown
from plasticity.lab.continual.cli import config_of
from plasticity.lab.continual.experiment import EXPLANATIONS
from plasticity.lab.continual.experiment import RESULTS as CONTINUAL_RESULTS
from plasticity.lab.continual.experiment import SUMMARY as CONTINUAL_SUMMARY
from plasticity.lab.demo import DemoConfig, timing_section
from plasticity.lab.report.readme import DEMO_RECORD, FIGURE, demo_figure, demo_runs, demo_section
from plasticity.results import (
    LIST,
    RUN_RESULTS,
    ContinualResults,
    ContinualSummary,
    Place,
    ResultsError,
    RunRecord,
    RunResults,
    SummaryRow,
    read_json,
)

REPO = Path(__file__).resolve().parents[1]
SECTION = re.compile(r"[A-Za-z0-9._+-]+")
SCREENSHOT = "docs/report.png"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
T = TypeVar("T", ContinualResults, ContinualSummary)


@dataclass(frozen=True)
class Entry:
    """One generated section: `name` in the doc `file` (relative to the repository's root), made by
    the renderer of `kind` from the stored runs in `runs`, which `command` makes."""

    name: str
    file: str
    title: str
    kind: str
    runs: str
    command: str

    def provenance(self) -> str:
        return f"Produced by `{self.command}`. Regenerate with `python tools/docs.py --only {self.name}`."


MNIST = "--root mnist-t10k=../shared/datasets/mnist-t10k"
THREE = "--data digits,mnist-t10k,mnist1d --seeds 3"
ALIGNMENT = f"plasticity bench --rules bp,fa,dfa,sign {THREE} {MNIST} --observe alignment,pi,omega --out docs/runs/alignment --threads 1 --quiet"
DEMO = "plasticity demo --out docs/runs/demo --quiet"
CLINC150 = (
    "plasticity continual --data clinc150 --root ../shared/datasets/clinc150 --tasks 15 --seeds 3 --select --explain 3 "
    "--out docs/runs/continual-clinc150 --quiet"
)
LOCAL = "--rules bp,workspace,pc,ff,softhebb"
LENET5 = "--model lenet5 --data mnist-t10k --root ../shared/datasets/mnist-t10k --seeds 3"

MANIFEST: tuple[Entry, ...] = (
    Entry("demo", "README.md", "What the demo shows", "demo-readme", "docs/runs/demo", DEMO),
    Entry("readme", "README.md", "Results at full length", "bench", "docs/runs/alignment", ALIGNMENT),
    Entry("alignment-rules", "docs/benchmarks.md", "Alignment rules against backprop", "bench", "docs/runs/alignment", ALIGNMENT),
    Entry(
        "cnn1d",
        "docs/benchmarks.md",
        "MNIST-1D, the reference 1-D CNN",
        "bench",
        "docs/runs/cnn1d",
        "plasticity bench --rules bp,fa,dfa,sign --model cnn1d --data mnist1d --seeds 3 --out docs/runs/cnn1d --threads 1 --quiet",
    ),
    Entry(
        "lenet5",
        "docs/benchmarks.md",
        "mnist-t10k, LeNet-5",
        "bench",
        "docs/runs/lenet5",
        f"plasticity bench --rules bp,fa,dfa,sign {LENET5} --out docs/runs/lenet5 --threads 1 --quiet",
    ),
    Entry(
        "cnn1d-local",
        "docs/benchmarks.md",
        "The workspace, predictive coding, Forward-Forward and SoftHebb on the MNIST-1D CNN",
        "bench",
        "docs/runs/cnn1d-local",
        f"plasticity bench {LOCAL} --model cnn1d --data mnist1d --seeds 3 --out docs/runs/cnn1d-local --threads 1 --quiet",
    ),
    Entry(
        "lenet5-local",
        "docs/benchmarks.md",
        "The workspace, predictive coding, Forward-Forward and SoftHebb on LeNet-5",
        "bench",
        "docs/runs/lenet5-local",
        f"plasticity bench {LOCAL} {LENET5} --out docs/runs/lenet5-local --threads 1 --quiet",
    ),
    Entry(
        "observer-speed",
        "docs/benchmarks.md",
        "Observer speed",
        "observer-speed",
        "docs/runs/observer-speed",
        "python benchmarks/observer_speed.py --out docs/runs/observer-speed/observer_speed.json",
    ),
    Entry(
        "ray-speed",
        "docs/benchmarks.md",
        "A bench on Ray against the local executor",
        "ray-speed",
        "docs/runs/ray-speed",
        "python benchmarks/ray_speed.py --out docs/runs/ray-speed/ray_speed.json",
    ),
    Entry("demo-timing", "docs/benchmarks.md", "Demo timing", "demo-timing", "docs/runs/demo", DEMO),
    Entry(
        "local-rules-2",
        "docs/benchmarks.md",
        "Predictive coding, Forward-Forward, SoftHebb against backprop",
        "bench",
        "docs/runs/local2",
        f"plasticity bench --rules bp,pc,ff,softhebb {THREE} {MNIST} --out docs/runs/local2 --threads 1 --quiet",
    ),
    Entry(
        "spiking-100",
        "docs/benchmarks.md",
        "Spiking STDP: 100 excitatory neurons",
        "suite",
        "docs/runs/spiking-100",
        "plasticity bench --suite benchmarks/spiking-100.yaml --out docs/runs/spiking-100 --threads 1 --quiet",
    ),
    Entry(
        "spiking-400",
        "docs/benchmarks.md",
        "Spiking STDP: 400 excitatory neurons",
        "suite",
        "docs/runs/spiking-400",
        "plasticity bench --suite benchmarks/spiking-400.yaml --out docs/runs/spiking-400 --threads 2 --quiet",
    ),
    Entry(
        "pc-inference-rate",
        "docs/benchmarks.md",
        "Predictive coding: inference rate on MNIST-1D, 10 seeds",
        "suite",
        "docs/runs/pc-inference-rate",
        "plasticity bench --suite benchmarks/pc-inference-rate.yaml --out docs/runs/pc-inference-rate --threads 1 --quiet",
    ),
    Entry(
        "overhead",
        "docs/benchmarks.md",
        "Overhead against minimal loops",
        "overhead",
        "docs/runs/overhead",
        "python benchmarks/overhead.py --out docs/runs/overhead/overhead.json",
    ),
    Entry(
        "instructions",
        "docs/benchmarks.md",
        "Instructions per training step",
        "instructions",
        "docs/runs/instructions",
        "python benchmarks/instructions.py --rules bp,fa,dfa,sign --out docs/runs/instructions/instructions.json",
    ),
    Entry("continual-clinc150", "docs/memory.md", "Results: clinc150", "continual", "docs/runs/continual-clinc150", CLINC150),
    Entry("explain-clinc150", "docs/memory.md", "Explanations: clinc150", "explain", "docs/runs/continual-clinc150", CLINC150),
    Entry(
        "continual-clinc150-mpnet",
        "docs/memory.md",
        "Results: clinc150 with all-mpnet-base-v2",
        "continual",
        "docs/runs/continual-clinc150-mpnet",
        "plasticity continual --data clinc150 --root ../shared/datasets/clinc150 --encoder mpnet --tasks 15 --seeds 3 --select "
        "--out docs/runs/continual-clinc150-mpnet --quiet",
    ),
    Entry(
        "memory-family",
        "docs/memory.md",
        "How far the class decision goes",
        "memory-family",
        "docs/runs/memory-family",
        "python benchmarks/memory_family.py --out docs/runs/memory-family/family.json",
    ),
    Entry(
        "memory-speed",
        "docs/memory.md",
        "Throughput",
        "memory-speed",
        "docs/runs/memory-speed",
        "python benchmarks/memory_speed.py --root ../shared/datasets/clinc150 --out docs/runs/memory-speed/memory_speed.json",
    ),
    Entry(
        "continual-digits",
        "docs/memory.md",
        "Results: digits",
        "continual",
        "docs/runs/continual-digits",
        "plasticity continual --data digits --tasks 5 --seeds 3 --select --out docs/runs/continual-digits --quiet",
    ),
    Entry(
        "continual-mnist-t10k",
        "docs/memory.md",
        "Results: mnist-t10k",
        "continual",
        "docs/runs/continual-mnist-t10k",
        "plasticity continual --data mnist-t10k --root ../shared/datasets/mnist-t10k --tasks 5 --seeds 3 --select --out docs/runs/continual-mnist-t10k --quiet",
    ),
    Entry(
        "observers-example",
        "docs/observers.md",
        "A run that logs observers",
        "train-log",
        "docs/runs/observe",
        "plasticity train --rule workspace --data digits --epochs 5 --observe pi,omega --out docs/runs/observe --threads 1 --quiet",
    ),
    Entry("cards", "docs/rules.md", "Plausibility cards", "cards", "docs/runs/cards", "plasticity card --verify --out docs/runs/cards/cards.json"),
    Entry(
        "workspace-vs-dfa",
        "docs/workspace.md",
        "Results",
        "bench",
        "docs/runs/workspace",
        f"plasticity bench --rules bp,dfa,workspace {THREE} {MNIST} --observe workspace,pi --out docs/runs/workspace --threads 1 --quiet",
    ),
    Entry(
        "ablation",
        "docs/workspace.md",
        "Ablation",
        "suite",
        "docs/runs/workspace-ablation",
        "plasticity bench --suite benchmarks/workspace-ablation.yaml --out docs/runs/workspace-ablation --threads 1 --quiet",
    ),
    Entry(
        "workspace-mirror",
        "docs/workspace.md",
        "The mirror's schedule",
        "suite",
        "docs/runs/workspace-mirror",
        "plasticity bench --suite benchmarks/workspace-mirror.yaml --out docs/runs/workspace-mirror --threads 1 --quiet",
    ),
    Entry(
        "workspace-mirror-mnist1d",
        "docs/workspace.md",
        "The mirror's schedule",
        "suite",
        "docs/runs/workspace-mirror-mnist1d",
        "plasticity bench --suite benchmarks/workspace-mirror-mnist1d.yaml --out docs/runs/workspace-mirror-mnist1d --threads 1 --quiet",
    ),
    Entry(
        "workspace-mirror-choice",
        "docs/workspace.md",
        "The mirror's schedule",
        "workspace-mirror",
        "docs/runs/workspace-mirror-choice",
        "python benchmarks/workspace_mirror.py --out docs/runs/workspace-mirror-choice/mirror.json",
    ),
    Entry(
        "instructions-workspace",
        "docs/workspace.md",
        "Cost",
        "instructions",
        "docs/runs/instructions-workspace",
        "python benchmarks/instructions.py --rules bp,workspace --out docs/runs/instructions-workspace/instructions.json",
    ),
    Entry(
        "workspace-h3",
        "docs/workspace.md",
        "H3. Competition between modules that see different inputs",
        "workspace-h3",
        "docs/runs/workspace-h3",
        "python benchmarks/workspace_h3.py --out docs/runs/workspace-h3/h3.json",
    ),
    Entry(
        "workspace-h2",
        "docs/workspace.md",
        "H2. Capacity and competition in continual learning",
        "workspace-h2",
        "docs/runs/workspace-h2",
        "python benchmarks/workspace_h2.py --out docs/runs/workspace-h2/h2.json",
    ),
    Entry(
        "workspace-h1",
        "docs/workspace.md",
        "H1. The ignition gate under label noise",
        "workspace-h1",
        "docs/runs/workspace-h1",
        "python benchmarks/workspace_h1.py --out docs/runs/workspace-h1 --quiet",
    ),
    Entry(
        "workspace-h4",
        "docs/workspace.md",
        "H4. Synergy of the packet",
        "workspace-h4",
        "docs/runs/workspace-h4",
        "python benchmarks/workspace_h4.py --runs docs/runs/workspace-h1/noise00 --out docs/runs/workspace-h4/h4.json",
    ),
)


# ------------------------------------------------------------------------------------ commands
def parse(command: str, root: Path) -> argparse.Namespace:
    """A manifest's `plasticity ...` command parsed by the CLI's own parser, with a suite file's path
    taken from `root` (where the command runs)."""
    argv = shlex.split(command)
    if argv[:1] != ["plasticity"]:
        raise ConfigError(f"{brief(command)} is not a plasticity command; only those are parsed")
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit:
        raise ConfigError(f"the manifest's command {brief(command)} does not parse (argparse said why above)") from None
    args.argv = argv[1:]
    if getattr(args, "suite", None):
        args.suite = str(root / args.suite)
    return args


def bench_config(command: str, root: Path) -> BenchConfig:
    """The grid a bench (or suite) command runs, checked as the bench checks it."""
    config, _, _ = bench_grid(parse(command, root))
    config.validate()
    return config


# ------------------------------------------------------------------------------------ stored runs
def load_bench(folder: Path) -> tuple[list[RunRecord], list[SummaryRow]]:
    """The run records (results.jsonl) and the summary rows (summary.json) of a stored bench, each
    checked: the one place this tool reads a bench folder's results."""
    path = folder / SUMMARY
    rows = Place(path).check(read_json(path), LIST)
    summary = [SummaryRow.from_json(row, Place(path, f"entry {index}")) for index, row in enumerate(rows)]
    return list(finished_runs(folder / RESULTS).values()), summary


def grid_runs(config: BenchConfig, records: list[RunRecord], summary: list[SummaryRow], folder: Path, command: str) -> list[RunRecord]:
    """The records of the command's grid, in the order its bench returns them (dataset, seed, rule),
    each under its label in the grid; a ConfigError when a run of the grid is missing or summary.json
    summarises another grid."""
    by_key = {record.key: record for record in records}
    ordered = []
    for dataset in config.datasets:
        for seed in config.seed_range:
            for label in config.rules:
                record = by_key.get(run_key(config.train_config(label, dataset, seed)))
                if record is None:
                    raise ConfigError(f"{folder} holds no run of {label} on {dataset} seed {seed} with the settings of `{command}`; rerun that command")
                ordered.append(replace(record, label=label))
    wanted = [(label, dataset, list(config.seed_range)) for dataset in config.datasets for label in config.rules]
    if [(s.label, s.dataset, s.seeds) for s in summary] != wanted:
        raise ConfigError(f"{folder / SUMMARY} summarises other runs than the grid of `{command}`; rerun that command")
    return ordered


def run_versions(folder: Path, records: list[RunRecord]) -> dict[str, str]:
    """The setup's torch and threads, from the per-run results.json of each record (values that
    differ between runs are all given, " / " between them), each found by its run key."""
    found = []
    for record in records:
        try:
            path = stored_run_results(folder, record.dataset, record.seed, record.key)
        except FileNotFoundError as error:
            raise ResultsError(f"{error}, for its record of {record.name}; rerun the command of its folder") from error
        versions = RunResults.from_json(read_json(path), Place(path)).versions
        if versions is None:
            raise ResultsError(f"{path} does not say which torch and threads ran it; rerun the command of its folder")
        found.append(versions)
    return {"torch": " / ".join(dict.fromkeys(v.torch for v in found)), "threads": " / ".join(dict.fromkeys(v.threads for v in found))}


def stored(entry: Entry, root: Path, name: str) -> Any:
    """The JSON file `name` of an entry's stored runs (checked by `plasticity.results.read_json`)."""
    return read_json(root / entry.runs / name)


def stored_record(entry: Entry, root: Path, name: str, kind: type[T]) -> T:
    """The JSON file `name` of an entry's stored runs read as `kind` (`plasticity.results`), every field checked."""
    path = root / entry.runs / name
    return kind.from_json(read_json(path), Place(path))


def benchmark_module(name: str) -> ModuleType:
    """A script of benchmarks/ (which the package does not ship), imported once for its renderer."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


# ------------------------------------------------------------------------------------ renderers
def render_bench(entry: Entry, root: Path) -> str:
    folder = root / entry.runs
    config = bench_config(entry.command, root)
    records, summary = load_bench(folder)
    ordered = grid_runs(config, records, summary, folder, entry.command)
    return bench_section(summary, {**describe.setup(config), **run_versions(folder, ordered)}, ordered)


def continual_results(entry: Entry, root: Path) -> ContinualResults:
    """The results.json of a stored continual run, checked, once its settings are seen to be the
    command's (the data folder and the embedding cache aside: they change no number)."""
    results = stored_record(entry, root, CONTINUAL_RESULTS, ContinualResults)
    wanted = config_of(parse(entry.command, root)).to_dict()
    differ = [key for key, value in wanted.items() if key not in ("root", "cache_dir") and results.config.get(key) != value]
    if differ:
        raise ConfigError(f"{root / entry.runs / CONTINUAL_RESULTS} was made with other {', '.join(differ)} than `{entry.command}`; rerun that command")
    return results


def render_continual(entry: Entry, root: Path) -> str:
    results = continual_results(entry, root)
    return continual_markdown.section(stored_record(entry, root, CONTINUAL_SUMMARY, ContinualSummary).entries, results)


def render_explain(entry: Entry, root: Path) -> str:
    continual_results(entry, root)
    return continual_markdown.explanations_section(stored(entry, root, EXPLANATIONS))


def stored_demo(entry: Entry, root: Path) -> tuple[DemoConfig, dict[str, Any], list[SummaryRow]]:
    """The demo the command runs today, and the stored demo's demo.json and summary, once they are
    seen to be that demo's (`DemoConfig`'s settings, every run of its grid)."""
    folder = root / entry.runs
    config = DemoConfig(threads=parse(entry.command, root).threads)
    record = stored(entry, root, DEMO_RECORD)
    if record["settings"] != json.loads(json.dumps(asdict(config))):
        raise ConfigError(f"{folder / DEMO_RECORD} was made with other settings than today's DemoConfig; rerun `{entry.command}`")
    records, summary = load_bench(folder)
    grid_runs(config.bench_config(), records, summary, folder, entry.command)
    return config, record, summary


def render_demo_readme(entry: Entry, root: Path) -> str:
    stored_demo(entry, root)
    return demo_section(demo_runs(root / entry.runs))


def render_demo_timing(entry: Entry, root: Path) -> str:
    config, record, summary = stored_demo(entry, root)
    if not record["fresh"]:
        raise ConfigError(f"the demo in {root / entry.runs} reused earlier runs: its wall time is no demo's cost; rerun `{entry.command}` into an empty folder")
    return timing_section(config, record, summary)


def render_train_log(entry: Entry, root: Path) -> str:
    """What `plasticity train` printed per epoch for the stored run, as a console block; the run's
    settings are checked against the command's first."""
    args = parse(entry.command, root)
    results = stored_record(entry, root, RUN_RESULTS, RunResults)
    settings = results.config
    wanted = {"rule": args.rule, "data": args.data, "epochs": args.epochs, "seed": args.seed}
    differ = [key for key, value in wanted.items() if value is not None and getattr(settings, key) != value]
    if differ:
        raise ConfigError(f"{root / entry.runs / RUN_RESULTS} was made with other {', '.join(differ)} than `{entry.command}`; rerun that command")
    return "\n".join(["```", f"$ {entry.command}", *epoch_lines(results, args.observe), "```"])


def render_cards(entry: Entry, root: Path) -> str:
    entries = stored(entry, root, "cards.json")
    return cards_table([PlausibilityCard(**e["card"]) for e in entries], [e.get("measured") for e in entries])


def render_overhead(entry: Entry, root: Path) -> str:
    measured = stored(entry, root, "overhead.json")
    return benchmark_module("overhead").markdown(measured["rows"], measured["setup"])


def render_observer_speed(entry: Entry, root: Path) -> str:
    measured = stored(entry, root, "observer_speed.json")
    module = benchmark_module("observer_speed")
    return module.markdown_table([module.Timing(**timing) for timing in measured["timings"]], measured["threads"])


def render_memory_speed(entry: Entry, root: Path) -> str:
    measured = stored(entry, root, "memory_speed.json")
    return benchmark_module("memory_speed").markdown(measured["rows"], measured["setup"], measured["skipped"])


def render_workspace_h2(entry: Entry, root: Path) -> str:
    module = benchmark_module("workspace_h2")
    return module.markdown(module.checked(stored(entry, root, "h2.json"), shlex.split(entry.command)[2:]))


@dataclass(frozen=True)
class Kind:
    """How a kind of section is rendered, and the stored file whose presence says its runs exist."""

    render: Callable[[Entry, Path], str]
    stored: str


def module_markdown(module: str, filename: str) -> Kind:
    """A kind whose section is the benchmark module's `markdown` of its one stored JSON file."""
    return Kind(lambda entry, root: benchmark_module(module).markdown(stored(entry, root, filename)), filename)


KINDS = {
    "bench": Kind(render_bench, RESULTS),
    "suite": Kind(render_bench, RESULTS),
    "continual": Kind(render_continual, CONTINUAL_RESULTS),
    "explain": Kind(render_explain, EXPLANATIONS),
    "demo-readme": Kind(render_demo_readme, DEMO_RECORD),
    "demo-timing": Kind(render_demo_timing, DEMO_RECORD),
    "cards": Kind(render_cards, "cards.json"),
    "train-log": Kind(render_train_log, RUN_RESULTS),
    "overhead": Kind(render_overhead, "overhead.json"),
    "observer-speed": Kind(render_observer_speed, "observer_speed.json"),
    "ray-speed": module_markdown("ray_speed", "ray_speed.json"),
    "instructions": module_markdown("instructions", "instructions.json"),
    "workspace-mirror": module_markdown("workspace_mirror", "mirror.json"),
    "memory-speed": Kind(render_memory_speed, "memory_speed.json"),
    "memory-family": module_markdown("memory_family", "family.json"),
    "workspace-h3": module_markdown("workspace_h3", "h3.json"),
    "workspace-h2": Kind(render_workspace_h2, "h2.json"),
    "workspace-h1": module_markdown("workspace_h1", "h1.json"),
    "workspace-h4": module_markdown("workspace_h4", "h4.json"),
}


def render(entry: Entry, root: Path) -> str:
    """The section's whole text between its markers; a PlasticityError in one line when its stored
    runs cannot give it (a stored file without a field it needs included)."""
    try:
        body = KINDS[entry.kind].render(entry, root)
    except KeyError as error:
        raise ResultsError(f"the stored runs in {root / entry.runs} lack {error}: another version of plasticity wrote them; rerun `{entry.command}`") from None
    return f"{entry.provenance()}\n\n{body}"


# ------------------------------------------------------------------------------------ figures
def draw_figures(entry: Entry, root: Path) -> list[str]:
    """The README's figures of a demo section: its learning curves (docs/demo.png) and a screenshot
    of the demo's HTML report (docs/report.png) taken by headless Chromium; what was done, in words."""
    runs = root / entry.runs
    figure = (root / entry.file).parent / FIGURE
    demo_figure(demo_runs(runs), figure)
    done = [f"drew {figure.relative_to(root)}"]
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        return [*done, f"no Chromium found ({', '.join(BROWSERS)}): {SCREENSHOT} left as it is (apt-get install -y chromium)"]
    with tempfile.TemporaryDirectory() as scratch:
        index = report_of(runs, Path(scratch), entry.runs)
        shot = Path(scratch) / "report.png"
        command = [browser, "--headless", "--no-sandbox", "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,1600", index.as_uri()]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        if finished.returncode != 0 or not shot.is_file():
            raise ConfigError(f"Chromium could not screenshot {index} (status {finished.returncode}: {brief(finished.stderr.strip(), 200)})")
        with atomic_write(root / SCREENSHOT) as handle:
            handle.write(shot.read_bytes())
    return [*done, f"took {SCREENSHOT}"]


def report_of(runs: Path, scratch: Path, name: str) -> Path:
    """The HTML report of a copy of the stored runs at `scratch`/`name`, built as `plasticity report
    NAME` builds it from `scratch` (so the page names the folder as the docs do); its index.html."""
    from plasticity.lab.report import build_report

    shutil.copytree(runs, scratch / name, ignore=shutil.ignore_patterns("*.safetensors", ".lock", "report"))
    before = Path.cwd()
    os.chdir(scratch)
    try:
        return scratch / build_report(name)
    finally:
        os.chdir(before)


# ------------------------------------------------------------------------------------ docs
def check_section(name: str) -> str:
    """`name` if it can sit in a section's markers (letters, digits and . _ + -); else a ConfigError."""
    if not isinstance(name, str) or not SECTION.fullmatch(name):
        raise ConfigError(f"section name {brief(name)} may only hold letters, digits and . _ + -")
    return name


def _pattern(name: str) -> re.Pattern[str]:
    """Section `name`: its markers, each on a line of its own (a marker quoted in prose is not one).
    An empty section (the markers on consecutive lines) matches there and then: the body is lazily
    optional, so the match can never run on to the end marker of a later section of that name."""
    check_section(name)
    start, end = re.escape(f"<!-- bench:{name} -->"), re.escape(f"<!-- /bench:{name} -->")
    return re.compile(f"^{start}\n(?:(.*?)\n)??{end}$", re.DOTALL | re.MULTILINE)


def read_doc(path: Path) -> str:
    """The doc's text ("" when there is no file yet); a ConfigError in one line when it is a folder,
    is not UTF-8 text or cannot be read."""
    try:
        folder = path.is_dir()
        text = path.read_text(encoding="utf-8") if path.exists() and not folder else ""
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text (byte {error.start}); a section is written into a markdown file") from None
    except OSError as error:
        raise ConfigError(f"cannot read {brief(str(path))} ({os_reason(error)}); give a markdown file you can read") from None
    if folder:
        raise ConfigError(f"{path} is a folder; a section is written into a markdown file (e.g. docs/benchmarks.md)")
    return text


def current(path: Path, name: str) -> str | None:
    """The text between section `name`'s markers in the doc at `path`, None when it has none."""
    found = _pattern(name).search(read_doc(path))
    return (found.group(1) or "") if found else None


def write_section(path: str | Path, name: str, body: str, title: str | None = None) -> None:
    """Replace the section `name` of the markdown file at `path` with `body`, or append it under a
    `## title` heading when the file has no such section (or no file is there yet).

    A section name that could not sit in its markers, a path that is a folder and a file that is
    not UTF-8 text are refused (ConfigError) before anything is written."""
    path = Path(path)
    pattern = _pattern(name)
    block = f"<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->"
    text = read_doc(path)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        heading = f"## {title}\n\n" if title else ""
        text = (text.rstrip("\n") + "\n\n" if text else "") + heading + block + "\n"
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise ConfigError(f"cannot write {brief(str(path))} ({os_reason(error)}); give a markdown file you can write") from None


# ------------------------------------------------------------------------------------ status
UP_TO_DATE, STALE, MISSING = "up to date", "stale", "no stored runs"


def status(entry: Entry, root: Path) -> tuple[str, str | None]:
    """(UP_TO_DATE, STALE, MISSING or "refused: WHY", the section's text when it could be rendered)."""
    if not (root / entry.runs / KINDS[entry.kind].stored).is_file():
        return MISSING, None
    try:
        text = render(entry, root)
        return (UP_TO_DATE if current(root / entry.file, entry.name) == text else STALE), text
    except PlasticityError as error:
        return f"refused: {error}", None


def regenerate(entry: Entry, root: Path) -> tuple[bool, str]:
    """Rewrite the section (and a demo section's figures) from its stored runs; (done, what happened)."""
    state, text = status(entry, root)
    if text is None:
        return False, state + (f"; make them with `{entry.command}`" if state == MISSING else "")
    try:
        if state == STALE:
            write_section(root / entry.file, entry.name, text, entry.title)
        figures = draw_figures(entry, root) if entry.kind == "demo-readme" else []
    except PlasticityError as error:
        return False, f"refused: {error}"
    return True, "; ".join(["written" if state == STALE else UP_TO_DATE, *figures])


def select(entries: tuple[Entry, ...], only: str | None) -> tuple[Entry, ...]:
    if only is None:
        return entries
    chosen = tuple(entry for entry in entries if entry.name == only)
    if not chosen:
        raise ConfigError(f"no section {brief(only)} in the manifest; known: {', '.join(entry.name for entry in entries)}")
    return chosen


def main(argv: list[str] | None = None, entries: tuple[Entry, ...] = MANIFEST, root: Path = REPO) -> int:
    """Regenerate, check or list the sections of `entries` in the docs under `root`: 0 when every
    one is (now) up to date or only listed, 1 otherwise, 2 for a bad argument."""
    parser = argparse.ArgumentParser(prog="python tools/docs.py", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="write nothing; exit 1 listing every section that is stale or has no stored runs")
    mode.add_argument("--list", action="store_true", help="print the manifest: each section's doc, kind, stored runs, status and command")
    parser.add_argument("--only", metavar="NAME", help="only the section NAME")
    args = parser.parse_args(argv)
    try:
        chosen = select(entries, args.only)
    except ConfigError as error:
        print(f"docs: error: {error}", file=sys.stderr)
        return 2
    failed = 0
    for entry in chosen:
        if args.list:
            print(f"{entry.name} ({entry.file}, {entry.kind}, stored runs {entry.runs}): {status(entry, root)[0]}\n    {entry.command}")
        elif args.check:
            state = status(entry, root)[0]
            if state != UP_TO_DATE:
                print(f"{entry.name} ({entry.file}): {state}" + (f"; make them with `{entry.command}`" if state == MISSING else ""))
                failed += 1
        else:
            done, said = regenerate(entry, root)
            print(f"{entry.name} ({entry.file}): {said}")
            failed += not done
    if args.check and not failed:
        print(f"{len(chosen)} section(s) up to date with their stored runs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
