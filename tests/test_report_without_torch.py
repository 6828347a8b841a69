"""`plasticity report` in a Python without torch: the report reads records (`plasticity.results`) and
needs neither torch nor a rule, the model builders or the trainer.

The folders are written here by today's code (tiny: one epoch, 8 hidden units), and the report is
built in a subprocess whose imports of torch, `plasticity.rules`, `plasticity.build` and
`plasticity.train` fail; the same for the folder of the unversioned format (tests/fixtures/results-v1,
see tests/test_results.py). Today's files are the fixture's format plus the schema version.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_report import check_page

from plasticity.build import TrainConfig
from plasticity.lab.bench.runner import BenchConfig, run_bench
from plasticity.lab.continual.experiment import ContinualConfig, run_continual, write_outputs
from plasticity.observe.registry import build_observers
from plasticity.train import train

FIXTURES = Path(__file__).parent / "fixtures" / "results-v1"
REFUSED = ("torch", "plasticity.rules", "plasticity.build", "plasticity.train")
SCRIPT = f"""
import sys

REFUSED = {REFUSED!r}

def refused(name):
    return any(name == top or name.startswith(top + ".") for top in REFUSED)

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if refused(name):
            raise ModuleNotFoundError(f"import of {{name}} refused: the report must not need it", name=name)
        return None

sys.meta_path.insert(0, Refuse())
from plasticity.lab.cli import main

status = main(sys.argv[1:])
loaded = sorted(name for name in sys.modules if refused(name))
if loaded:
    sys.exit(f"imported {{loaded}}")
sys.exit(status)
"""


def report_without_torch(runs: Path, out: Path) -> str:
    """Run `plasticity report RUNS --out OUT` where torch cannot be imported; its page's text."""
    done = subprocess.run([sys.executable, "-c", SCRIPT, "report", str(runs), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report: {out / 'index.html'}"
    check_page(out / "index.html")
    return (out / "index.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def today(tmp_path_factory, digits) -> Path:
    """A bench, a train and a continual folder written by today's code, with the fixture's settings."""
    root = tmp_path_factory.mktemp("today")
    bench = BenchConfig(rules=("bp", "fa"), datasets=("digits",), seeds=1, epochs=1, hidden=(8,), batch_size=128)
    run_bench(bench, root / "bench", lambda: build_observers(["pi", "omega", "alignment"]), progress=False, datasets={"digits": digits})
    train(TrainConfig(rule="sign", epochs=1, hidden=(8,), batch_size=128), digits, out_dir=root / "train" / "sign", progress=False)
    write_outputs(run_continual(ContinualConfig(data="digits", tasks=2, seeds=1, methods=("structural", "ncm")), progress=False), root / "continual")
    return root


def test_the_report_of_todays_folders_needs_no_torch(today, tmp_path):
    text = report_without_torch(today, tmp_path / "report")
    for shown in ("Rules side by side: bench", "Train runs: train", "Continual learning: continual", "Plausibility cards", "<td>fa</td>", "<td>sign</td>"):
        assert shown in text, shown
    assert "Ignored" not in text  # the continual run's results.json is known, and left out


def test_the_report_of_the_unversioned_format_needs_no_torch(tmp_path):
    text = report_without_torch(FIXTURES, tmp_path / "report")
    for shown in ("Rules side by side: bench", "Train runs: train", "<td>stdp</td>", "Continual learning: continual", "<td>structural</td>"):
        assert shown in text, shown


def keys(value: Any, path: str = "") -> list[tuple[str, list[str]]]:
    """Every object's keys, by where it sits (the first two items of each list)."""
    if isinstance(value, dict):
        return [(path, list(value))] + [pair for key, item in value.items() for pair in keys(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [pair for index, item in enumerate(value[:2]) for pair in keys(item, f"{path}[{index}]")]
    return []


# Optional keys that version 1 gained after the fixtures were written; files without them read the same.
ADDED = {
    "host",  # the machine of a bench's run (time ratios are formed per host)
    # a continual run's structural memory: its coarse groups and split classes (summary and per task order),
    # and the logistic regression's C among the settings
    "groups_mean",
    "split_classes_mean",
    "extra_concepts_mean",
    "groups",
    "coarse_groups",
    "split_classes",
    "extra_concepts",
    "logreg_c",
    "moment",  # the memory's stored items: the d rows of its second moment
    "own_covariance",  # the memory's new parameters among the stored settings (its class decision)
    "shrinkage",
}


def without_added(value: Any) -> Any:
    """`value` without the optional keys added since the fixtures (ADDED), at any depth."""
    if isinstance(value, list):
        return [without_added(item) for item in value]
    if isinstance(value, dict):
        return {key: without_added(item) for key, item in value.items() if key not in ADDED}
    return value


def unversioned(value: Any) -> Any:
    """A file's objects without their schema version (each top-level object's first key) and the
    optional keys added since (ADDED)."""
    if isinstance(value, list):
        return [unversioned(item) for item in value]
    assert next(iter(value)) == "schema" and value["schema"] == 1
    return without_added({key: item for key, item in value.items() if key != "schema"})


@pytest.mark.parametrize(
    "name",
    ["bench/results.jsonl", "bench/summary.json", "bench/runs/digits/fa", "train/sign/results.json", "continual/summary.json", "continual/results.json"],
)
def test_todays_files_are_the_unversioned_format_with_a_schema_version(today, name):
    def read(root: Path) -> Any:
        path = next((root / name).glob("*/results.json")) if name.endswith("/fa") else root / name
        text = path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()] if path.suffix == ".jsonl" else json.loads(text)

    written, before = read(today), read(FIXTURES)
    assert keys(unversioned(written)) == keys(before)
