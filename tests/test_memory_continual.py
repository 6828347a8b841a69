"""The class-incremental protocol: metrics, task orders, the `continual` command's files, the
demo hook, and the text path on CLINC150 (with a stub sentence model)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from plasticity.lab.continual import markdown
from plasticity.lab.continual.cli import main
from plasticity.lab.continual.embedding import embed
from plasticity.lab.continual.experiment import ContinualConfig, continual_demo, explain_examples
from plasticity.lab.continual.metrics import oos_metrics, risk_coverage, roc_points
from plasticity.lab.continual.protocol import Stream, run_dataset, summarize, task_classes
from plasticity.lab.continual.settings import Settings
from plasticity.memory.encoders import SentenceEncoder
from plasticity.results import ContinualEntry, ContinualResults, ContinualSummary, Place

CLINC_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "clinc150"
needs_clinc = pytest.mark.skipif(not (CLINC_DIR / "data_full.json").exists(), reason=f"CLINC150 not present at {CLINC_DIR}")
REQUIRED = (
    "method",
    "dataset",
    "final_accuracy_mean",
    "final_accuracy_std",
    "forgetting_mean",
    "oos_auroc",
    "stored_fraction",
    "learn_per_second",
    "predict_per_second",
)


def test_oos_metrics_on_a_worked_example():
    metrics = oos_metrics(np.array([0.9, 0.8, 0.7, 0.6]), np.array([0.65, 0.1]))
    assert metrics["auroc"] == pytest.approx(7 / 8)
    # lowest threshold with in-scope precision ≥ 0.95 is 0.7: 3 of 4 in-scope answered, both OOS rejected
    assert metrics["in_scope_recall"] == pytest.approx(0.75) and metrics["oos_recall"] == pytest.approx(1.0)
    assert oos_metrics(np.array([0.1]), np.array([0.9]))["oos_recall"] is None  # precision 0.95 is out of reach
    roc = roc_points(np.array([0.9, 0.8]), np.array([0.1]))
    assert len(roc["fpr"]) == 101 and roc["tpr"][0] == 1.0


def test_risk_coverage_answers_the_most_confident_first():
    curve = risk_coverage(np.array([3.0, 2.0, 1.0, 0.0]), np.array([True, False, True, True]))
    risk = dict(zip(np.round(curve["coverage"], 2), curve["risk"], strict=True))
    assert risk[0.25] == 0.0 and risk[0.5] == 0.5 and risk[1.0] == 0.25


def test_task_orders_partition_the_classes_and_depend_on_the_seed():
    groups = task_classes(10, 5, seed=0)
    assert sorted(np.concatenate(groups).tolist()) == list(range(10)) and all(len(g) == 2 for g in groups)
    assert [g.tolist() for g in task_classes(10, 5, 0)] == [g.tolist() for g in groups]
    assert [g.tolist() for g in task_classes(10, 5, 1)] != [g.tolist() for g in groups]
    with pytest.raises(ValueError, match="tasks"):
        task_classes(10, 11, 0)
    stream = Stream.make(np.repeat(np.arange(10), 3), 10, 5, seed=0)
    assert sorted(np.concatenate(stream.samples).tolist()) == list(range(30))


def test_continual_command_writes_summary_results_and_explanations(tmp_path, capsys):
    argv = [
        "--data",
        "digits",
        "--tasks",
        "5",
        "--seeds",
        "2",
        "--methods",
        "structural,finetune,replay,ncm",
        "--set",
        "rank=4",
        "--out",
        str(tmp_path / "run"),
        "--explain",
        "1",
        "--quiet",
    ]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [s["method"] for s in summary] == ["structural", "finetune", "replay", "ncm"]
    for entry in summary:
        assert all(key in entry for key in REQUIRED) and entry["oos_auroc"] is None and entry["dataset"] == "digits"
        assert 0 <= entry["final_accuracy_mean"] <= 1 and 0 <= entry["forgetting_mean"] <= 1
        assert len(entry["accuracy_matrix"]) == 5 and entry["n_seeds"] == 2
    by = {s["method"]: s for s in summary}
    assert by["structural"]["final_accuracy_mean"] > 0.9 > by["finetune"]["final_accuracy_mean"]
    assert by["structural"]["forgetting_mean"] < 0.05 < by["finetune"]["forgetting_mean"]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["settings"]["memory"]["rank"] == 4
    replay = results["results"]["replay"][0]
    assert replay["replay_budget"] == results["results"]["structural"][0]["stored_vectors"]
    assert "| structural |" in capsys.readouterr().out
    entries = ContinualSummary.from_json(summary, Place(tmp_path / "run" / "summary.json")).entries  # what the report reads
    record = ContinualResults.from_json(results, Place(tmp_path / "run" / "results.json"))
    section = markdown.section(entries, record)  # what the docs tool renders from the stored files
    assert "Setup: 5 tasks of disjoint classes, task orders (seeds) 0, 1;" in section and "| structural |" in section
    assert "Structural memory: " in section and " concepts under " in section
    explanations = json.loads((tmp_path / "run" / "explanations.json").read_text())
    assert "| topic | samples |" in markdown.explanations_section(explanations)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing but --out


def test_the_clinc150_targets_show_each_measured_number_and_its_verdict():
    def entry(method: str, accuracy: float, **numbers: float | None) -> ContinualEntry:
        return ContinualEntry(method=method, dataset="clinc150", final_accuracy_mean=accuracy, **numbers)

    structural = entry("structural", 0.947, forgetting_mean=0.02, oos_auroc=0.97, stored_fraction=0.3, learn_per_second=60000.0, predict_per_second=19000.0)
    table = markdown.targets_table([structural, entry("joint", 0.95, forgetting_mean=0.018), entry("logreg", 0.956), entry("ncm", 0.99)])
    lines = table.splitlines()
    assert "| final average accuracy ≥ 94.6% | 0.9470 | met |" in lines
    assert "| out-of-scope AUROC ≥ 0.979 | 0.9700 | **missed** |" in lines
    assert "| stored items ≤ 10% of training samples | 0.3000 | **missed** |" in lines
    assert "| learn ≥ 50,000 samples/s (in this run: one thread) | 60,000 | met |" in lines
    assert "| predict ≥ 50,000 queries/s (in this run: one thread, with abstention) | 19,000 | **missed** |" in lines
    # the aim is the best jointly trained baseline of the run (ncm is not one), the forgetting floor the joint head's
    assert "| aim: final accuracy ≥ the best jointly trained baseline (same run: logreg 95.60%) | 94.70% | **missed** |" in lines
    assert "| average forgetting ≤ the jointly retrained head's (same run: 1.80%) | 2.00% | **missed** |" in lines
    assert "mpnet" not in table
    with_mpnet = markdown.targets_table([structural], encoder="mpnet").splitlines()
    assert "| aim with all-mpnet-base-v2: ≥ 96.2% (BERT fine-tuned on CLINC150, Larson et al. 2019) | 0.9470 | **missed** |" in with_mpnet


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="methods"):
        ContinualConfig(methods=("structural", "svm")).validate()
    assert main(["--data", "digits", "--tasks", "11", "--quiet"]) == 2


def test_demo_hook_reuses_a_finished_run(tmp_path):
    config = ContinualConfig(data="digits", tasks=5, seeds=3)
    stored = {"config": config.to_dict(), "settings": {}, "selection": None, "encoder": "x", "encoding": {}, "classes": [], "seconds": 1.0}
    (tmp_path / "results.json").write_text(json.dumps({**stored, "versions": {"torch": "2", "threads": "1"}, "results": {}}))
    (tmp_path / "summary.json").write_text("[]")
    assert continual_demo(tmp_path) == tmp_path / "summary.json"  # returned at once, nothing rerun
    assert (tmp_path / "summary.json").read_text() == "[]"


class HashModel:
    """A stand-in sentence model: 16 numbers per text from its SHA-256 (no semantics, all offline)."""

    def encode(self, texts, batch_size=32, show_progress_bar=None, convert_to_numpy=True):
        return np.stack([np.frombuffer(hashlib.sha256(t.encode()).digest()[:16], dtype=np.uint8) for t in texts]).astype(np.float32)


@needs_clinc
def test_clinc150_text_path_with_out_of_scope_metrics(tmp_path):
    data = embed("clinc150", CLINC_DIR, encoder=SentenceEncoder(HashModel(), name="hash-16", progress=False), cache_dir=tmp_path)
    assert data.train.x.shape == (15000, 16) and set(data.oos) == {"val", "test"} and data.train.texts is not None
    assert not data.encoding["train"]["cached"]
    settings = Settings(memory={"rank": 2, "beam": None})
    results = run_dataset(data, settings, tasks=3, seeds=1, methods=("structural", "ncm"), progress=False)
    summary = summarize("clinc150", results)
    for entry in summary:
        assert 0.0 <= entry.oos_auroc <= 1.0 and len(entry.roc.fpr) == 101 and len(entry.accuracy_matrix) == 3
    explained = explain_examples(data, settings, tasks=3, n=1)
    [example, oos] = explained["queries"]
    assert sum(topic["samples"] for topic in explained["topics"]) == 15000
    assert oos["split"] == "oos_test" and oos["true_label"] == "out of scope"
    assert example["query"] == data.test.texts[example["index"]]
    assert all(e["key"] in set(data.train.texts) for e in example["explanation"]["exemplars"])
    again = embed("clinc150", CLINC_DIR, encoder=SentenceEncoder(HashModel(), name="hash-16", progress=False), cache_dir=tmp_path)
    assert again.encoding["train"]["cached"]


def test_one_task_order_shows_no_spread():
    from plasticity.lab.continual.experiment import ContinualConfig, run_continual
    from plasticity.lab.continual.markdown import results_table

    run = run_continual(ContinualConfig(data="digits", tasks=2, seeds=1, methods=("ncm",)), progress=False)
    table = results_table(run.entries)
    assert "(n = 1)" in table and "±" not in table.split("\n", 2)[2]


def test_the_report_takes_what_continual_writes(tmp_path):
    """Every method's summary entry passes the report's checks, the joint head's included (it keeps
    every training example and more, so its stored fraction is above 1)."""
    from plasticity.lab.report import build_report

    assert main(["--data", "digits", "--tasks", "2", "--seeds", "1", "--methods", "joint,structural", "--out", str(tmp_path), "--quiet"]) == 0
    assert build_report(tmp_path, tmp_path / "report").is_file()
