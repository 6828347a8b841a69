"""benchmarks/memory_speed.py on tiny synthetic data: every method timed on each thread count, the
table printed, the numbers written only where told, and FAISS skipped (and said so) when it is absent."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from helpers import script

TINY = ["--data", "synthetic", "--classes", "6", "--per-class", "10", "--test-per-class", "4", "--dim", "16", "--tasks", "3", "--repeats", "1"]


@pytest.fixture(scope="module")
def speed():
    with script("benchmarks/memory_speed.py") as module:
        yield module


def test_tiny_synthetic_run_writes_its_numbers_only_where_told(speed, tmp_path, capsys):
    out = tmp_path / "stored" / "speed.json"
    assert speed.main([*TINY, "--threads", "1,2", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| structural |" in table and "| nearest centroid, one fit |" in table and "learn / s, 2 threads" in table
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stored"]
    stored = json.loads(out.read_text(encoding="utf-8"))
    rows = {(row["method"], row["threads"]): row for row in stored["rows"]}
    methods = {method for method, _ in rows}
    assert {"structural", "structural, abstaining", "nearest centroid", "nearest centroid, one fit", "k-NN"} <= methods
    assert ("faiss" in methods) == (importlib.util.find_spec("faiss") is not None) and {t for _, t in rows} == {1, 2}
    structural = rows[("structural", 1)]
    assert structural["learn_per_second"] > 0 and structural["predict_per_second"] > 0 and len(structural["learn_seconds"]) == 1
    assert rows[("structural, abstaining", 1)]["learn_per_second"] is None and rows[("nearest centroid, one fit", 2)]["predict_per_second"] is None
    assert 0.0 <= structural["accuracy"] <= 1.0
    assert speed.markdown(stored["rows"], stored["setup"], stored["skipped"]).startswith("Setup: synthetic: 60 training samples in 3 tasks")
    with pytest.raises(SystemExit):
        speed.main([*TINY, "--out", str(tmp_path)])  # a folder: refused before anything is timed


def test_the_memory_predicts_on_as_many_threads_as_the_row_says(speed, monkeypatch):
    seen = []
    predict = speed.StructuralMemory.predict
    monkeypatch.setattr(speed.StructuralMemory, "predict", lambda self, X: seen.append((self.n_jobs, self.tolerance is None)) or predict(self, X))
    assert speed.main([*TINY, "--threads", "1,2"]) == 0
    assert {jobs for jobs, _ in seen} == {1, 2} and {closed for _, closed in seen} == {True, False}


def test_without_faiss_it_says_it_skipped(speed, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now raises ImportError
    assert speed.main([*TINY, "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| faiss |" not in out and "Skipped: faiss (not installed: pip install faiss-cpu)." in out
