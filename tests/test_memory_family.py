"""benchmarks/memory_family.py: every rank fitted and scored, the setting chosen on val alone."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import script

from plasticity.lab.continual.embedding import Embedded, Part


@pytest.fixture(scope="module")
def family():
    with script("benchmarks/memory_family.py") as module:
        yield module


def blobs(rng: np.random.Generator, n: int) -> Part:
    centres = np.eye(3, 12) * 3
    y = np.repeat(np.arange(3), n)
    return Part((centres[y] + rng.normal(size=(len(y), 12))).astype(np.float32), y)


def test_every_rank_and_setting_is_scored_on_val_and_test(family):
    rng = np.random.default_rng(0)
    data = Embedded("blobs", ("a", "b", "c"), blobs(rng, 40), blobs(rng, 10), blobs(rng, 10), {}, "none")
    measured = family.measure(data, ranks=(0, 2), progress=False)
    assert [row["rank"] for row in measured["rows"]] == [0, 2] and measured["train"] == 120
    for row in measured["rows"]:
        assert len(row["trials"]) == len(family.grid()) and all(50 < trial["val"] <= 100 for trial in row["trials"])
        assert 0 < row["stored"] < 1
    assert measured["rows"][1]["stored"] > measured["rows"][0]["stored"]  # each direction is a stored vector
    assert "| 2 |" in family.markdown(measured)


def test_the_choice_reads_val_never_test(family):
    trial = {"own_covariance": 0.1, "shrinkage": 0.3}
    measured = {
        "encoder": "e",
        "train": 100,
        "rows": [
            {"rank": 3, "stored": 0.08, "trials": [{**trial, "val": 90.0, "test": 99.0}, {**trial, "shrinkage": 0.5, "val": 91.0, "test": 80.0}]},
            {"rank": 8, "stored": 0.12, "trials": [{**trial, "val": 92.0, "test": 85.0}]},
        ],
    }
    text = family.markdown(measured)
    assert "| 3 | α 0.1, γ 0.5 | 91.00% | 80.00% | 8.00% | yes |" in text
    assert "| 8 | α 0.1, γ 0.3 | 92.00% | 85.00% | 12.00% | no |" in text
    assert text.rstrip().endswith("Chosen on val over every rank: rank 8, val 92.00%, test 85.00%.")
