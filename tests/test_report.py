"""The HTML report: well-formed, offline, every image a real PNG; bench, train and continual results."""

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from plasticity.io import append_jsonl, read_jsonl
from plasticity.lab.bench.runner import RESULTS, BenchConfig, run_bench
from plasticity.lab.cli import main
from plasticity.lab.report import build_report
from plasticity.lab.report.collect import collect
from plasticity.observe.registry import build_observers
from plasticity.threads import torch_threads

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "area", "base", "wbr"}


class Checker(HTMLParser):
    """Records unbalanced tags, image sources and every URL-valued attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        self.urls += [attrs[key] for key in ("src", "href") if key in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def check_page(index: Path) -> Checker:
    """Assert the page is well formed, self-contained and that every image is a non-empty PNG."""
    text = index.read_text(encoding="utf-8")
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert text.startswith("<!DOCTYPE html>")
    assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
    assert "http://" not in text and "https://" not in text and "url(" not in text
    assert "<script" not in text and "<link" not in text
    assert all(not url.startswith(("http:", "https:", "//", "file:")) for url in checker.urls)
    for src in checker.images:
        image = index.parent / src
        assert image.is_file() and image.stat().st_size > 0, src
        assert image.read_bytes()[:8] == PNG_SIGNATURE, src
    return checker


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory, digits):
    out = tmp_path_factory.mktemp("bench")
    config = BenchConfig(rules=("bp", "fa"), datasets=("digits",), seeds=2, epochs=2, hidden=(16,), batch_size=128)
    with torch_threads(1):
        run_bench(config, out, lambda: build_observers(["pi", "omega", "alignment"]), progress=False, datasets={"digits": digits})
    return out


def test_bench_report_is_complete_and_offline(bench_dir, tmp_path):
    index = build_report(bench_dir, tmp_path / "report")
    checker = check_page(index)
    names = {Path(src).name.split("-", 2)[-1] for src in checker.images}
    assert names == {"accuracy.png", "curves.png", "loss.png", "pi.png", "omega.png", "alignment.png", "feedback.png"}
    text = index.read_text(encoding="utf-8")
    assert "<td>bp</td>" in text and "<td>fa</td>" in text and "ratio to bp" in text
    assert "Plausibility cards" in text and "random" in text  # fa's weight transport, from its run's card


def test_report_shows_train_runs_and_only_latest_settings(bench_dir, tmp_path):
    runs = tmp_path / "runs"
    assert main(["train", "--rule", "sign", "--epochs", "1", "--hidden", "8", "--out", str(runs / "sign"), "--quiet"]) == 0
    index = build_report(runs)
    check_page(index)
    text = index.read_text(encoding="utf-8")
    assert "Train runs" in text and "<td>sign</td>" in text

    # A bench folder rerun with other settings keeps the older lines; the report shows the newest only.
    bench = tmp_path / "bench"
    bench.mkdir()
    records = read_jsonl(bench_dir / RESULTS)
    for record in records:
        append_jsonl(bench / RESULTS, record)
    append_jsonl(bench / RESULTS, {**records[0], "key": "x", "config": {**records[0]["config"], "hidden": [32]}})
    (found,) = collect(bench).training
    assert found.left_out == 2  # bp's two seeds with 16 hidden units
    assert [r.config.hidden for r in found.runs("bp", "digits")] == [[32]]

    # The same run recorded again with the same settings (rerun after a rule's defaults changed):
    # only its last record counts.
    append_jsonl(bench / RESULTS, {**records[-1], "key": "y", "test_accuracy": 0.5})
    (found,) = collect(bench).training
    rerun = [r for r in found.runs(records[-1]["label"], records[-1]["dataset"]) if r.seed == records[-1]["seed"]]
    assert [r.test_accuracy for r in rerun] == [0.5] and found.left_out == 3


CONTINUAL = [
    {
        "method": "memory",
        "dataset": "digits",
        "n_seeds": 3,
        "seeds": [0, 1, 2],
        "tasks": [[0, 1], [2, 3], [4, 5]],
        "final_accuracy_mean": 0.9,
        "final_accuracy_std": 0.01,
        "forgetting_mean": 0.02,
        "backward_transfer_mean": -0.01,
        "oos_auroc": 0.81,
        "stored_fraction": 0.25,
        "accuracy_matrix": [[0.99, 0.0, 0.0], [0.97, 0.96, 0.0], [0.96, 0.95, 0.79]],
        "roc": {"fpr": [0.0, 0.1, 0.5, 1.0], "tpr": [0.0, 0.5, 0.9, 1.0]},
        "risk_coverage": {"coverage": [0.2, 0.6, 1.0], "risk": [0.01, 0.04, 0.1]},
    },
    {
        "method": "bp-finetune",
        "dataset": "digits",
        "final_accuracy_mean": 0.3,
        "forgetting_mean": 0.7,
        "accuracy_matrix": [[0.99, 0.0, 0.0], [0.1, 0.98, 0.0], [0.0, 0.0, 0.97]],
    },
]


def test_continual_summary_renders_matrix_and_abstention_curves(tmp_path):
    (tmp_path / "continual").mkdir()
    (tmp_path / "continual" / "summary.json").write_text(json.dumps(CONTINUAL))
    index = build_report(tmp_path)
    checker = check_page(index)
    assert {Path(src).name for src in checker.images} == {
        "continual-1-matrix.png",
        "continual-1-roc.png",
        "continual-1-risk-coverage.png",
    }
    text = index.read_text(encoding="utf-8")
    assert "Continual learning" in text and "90.00 ± 1.00%" in text and "0.810" in text and "bp-finetune" in text


def test_bad_inputs_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no results found"):
        build_report(tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        build_report(tmp_path / "missing")
    broken = [{**CONTINUAL[0], "accuracy_matrix": [[90.0, 0.0], [80.0, 95.0]]}]
    (tmp_path / "summary.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"summary.json: entry 0 \('memory' on 'digits'\).*fractions"):
        build_report(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps([{"method": "memory", "dataset": "digits", "final_accuracy_mean": 0.5, "roc": {"fpr": [0, 1]}}]))
    with pytest.raises(ValueError, match="field `roc.tpr` is missing"):
        build_report(tmp_path)


def test_runs_that_diverged_at_once_do_not_break_the_report(bench_dir, tmp_path):
    records = read_jsonl(bench_dir / RESULTS)
    for record in records:
        diverged = record["rule"] == "fa" and record["seed"] == 0
        append_jsonl(
            tmp_path / RESULTS,
            {**record, "status": "diverged", "test_accuracy": None, "epoch_seconds": None, "curve": []} if diverged else record,
        )
    text = build_report(tmp_path).read_text(encoding="utf-8")
    (fa,) = [s for s in collect(tmp_path).training[0].summary if s.rule == "fa"]
    assert fa.diverged == 1 and fa.n_seeds == 2
    assert "% (n = 1; 1 diverged)" in text  # one seed left with an accuracy: no spread
