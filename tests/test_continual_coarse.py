"""The continual run's new measures: the memory's coarse level against a domain map (and Ward's batch
baseline), its split classes, and the jointly trained logistic regression; all on tiny data made here."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from plasticity.data import Dataset, Split
from plasticity.errors import ConfigError
from plasticity.lab.continual import embedding, experiment, markdown
from plasticity.lab.continual.baselines import JointLogisticRegression
from plasticity.lab.continual.cli import main
from plasticity.lab.continual.coarse import (
    Domains,
    domain_accuracy,
    domain_file,
    group_domains,
    order_stability,
    partition_ari,
    read_domains,
    ward_partition,
)
from plasticity.lab.continual.embedding import Embedded, Part
from plasticity.lab.continual.experiment import ContinualConfig, run_continual
from plasticity.lab.continual.protocol import METHODS, run_dataset, summarize
from plasticity.lab.continual.selection import LOGREG_GRID, select
from plasticity.lab.continual.settings import CHOSEN, Settings
from plasticity.results import ContinualResults, ContinualSummary, MemoryStructure, Place

CLASSES = ("a1", "a2", "a3", "b1", "b2", "b3")
DOMAIN_MAP = {"alpha": ["a1", "a2", "a3"], "beta": ["b1", "b2", "b3"]}


CENTRES = np.eye(8)[[0, 0, 0, 1, 1, 1]] + 0.15 * np.eye(8)[[2, 3, 4, 5, 6, 7]]
"""Six classes in two well-separated domains of three, in 8 dimensions."""


def clustered(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples of the six classes around CENTRES (unit rows)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(6), n_per_class)
    x = CENTRES[y] + 0.06 * rng.standard_normal((len(y), 8))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def tiny_embedded() -> Embedded:
    (xtr, ytr), (xte, yte) = clustered(30, 0), clustered(10, 1)
    return Embedded("tiny", CLASSES, Part(xtr, ytr), Part(xte, yte), None, {}, "made in the test")


def domains() -> Domains:
    return Domains(("alpha", "beta"), np.array([0, 0, 0, 1, 1, 1]))


# --------------------------------------------------------------------------- the measures
def test_domain_map_is_read_and_checked(tmp_path):
    path = tmp_path / "domains.json"
    path.write_text(json.dumps(DOMAIN_MAP))
    read = read_domains(path, CLASSES)
    assert read.names == ("alpha", "beta") and read.of_class.tolist() == [0, 0, 0, 1, 1, 1]
    for bad, message in [
        ({"alpha": ["a1", "a2", "a3", "b1", "b2"]}, "in no domain"),
        ({**DOMAIN_MAP, "gamma": ["a1"]}, "more than one domain"),
        ({**DOMAIN_MAP, "gamma": ["zz"]}, "not a class"),
        ({"alpha": "a1"}, "must list class names"),
        ([], "non-empty JSON object"),
    ]:
        path.write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=message):
            read_domains(path, CLASSES)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not UTF-8 JSON"):
        read_domains(path, CLASSES)
    assert domain_file("digits", tmp_path) is None  # only datasets that have domains look for a map
    assert domain_file("clinc150", tmp_path) == path and domain_file("clinc150", tmp_path / "elsewhere") is None


def test_ari_domain_accuracy_and_their_tie_rule():
    d = domains()
    assert partition_ari([[0, 1, 2], [3, 4, 5]], d.of_class) == pytest.approx(1.0)
    assert partition_ari([[0, 3], [1, 4], [2, 5]], d.of_class) < 0.0  # every group across the domains
    # A tie (one class of each domain) goes to the domain first in the file: alpha.
    groups = [[0, 3], [1, 2], [4, 5]]
    assert group_domains(groups, d).tolist() == [0, 0, 1]
    truth = np.array([0, 3, 1, 4])
    predicted = np.array([0, 3, 2, 5])  # class 3 predicted right, but its group's domain is alpha
    assert domain_accuracy(predicted, truth, groups, d) == pytest.approx(3 / 4)
    # A wrong class in the right domain's group still counts: the measure is of domains, not classes.
    assert domain_accuracy(np.array([1, 4]), np.array([2, 5]), [[0, 1, 2], [3, 4, 5]], d) == 1.0


def test_order_stability_and_ward():
    assert order_stability([[[0, 1], [2, 3]]]) is None  # one task order: nothing to compare
    assert order_stability([[[0, 1], [2, 3]], [[2, 3], [1, 0]]]) == pytest.approx(1.0)  # same partition, other order
    assert order_stability([[[0, 1], [2, 3]], [[0, 1], [2, 3]], [[0, 2], [1, 3]]]) < 0.0  # the smallest pair
    centroids = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [9.0, 0.0]])
    assert ward_partition(centroids, 3) == [[0, 1], [2, 3], [4]]
    assert ward_partition(centroids, 10) == [[0], [1], [2], [3], [4]]  # more clusters than rows: one each


# --------------------------------------------------------------------------- in the protocol
def test_the_protocol_scores_the_coarse_level_and_the_summary_and_markdown_carry_it():
    data, settings = tiny_embedded(), Settings(memory={"rank": 2, "beam": None})
    results = run_dataset(data, settings, tasks=3, seeds=2, methods=("structural", "logreg"), progress=False, domains=domains())
    structure = results["structural"][0].structure
    assert sorted(c for group in structure.coarse_groups for c in group) == list(range(6)) and structure.groups == len(structure.coarse_groups)
    assert structure.coarse_groups == [[0, 1, 2], [3, 4, 5]]  # these domains are far apart: the memory finds them
    assert structure.split_classes >= 0 and structure.extra_concepts >= structure.split_classes
    scores = structure.coarse
    assert scores.domains == 2 and scores.memory.ari == pytest.approx(1.0) and scores.memory.domain_accuracy == 1.0
    assert scores.ward_domains.groups == 2 and scores.ward_domains.ari == pytest.approx(1.0) and scores.ward_groups.groups == scores.memory.groups
    [entry, logreg] = summarize("tiny", results)
    assert logreg.memory is None and entry.memory.groups_mean == 2.0 and entry.memory.split_classes_mean is not None
    coarse = entry.memory.coarse
    assert coarse.order_stability_min == pytest.approx(1.0) and coarse.memory.ari_mean == pytest.approx(1.0) and coarse.memory.ari_std == 0.0
    again = ContinualSummary.from_json([entry.to_json()], Place("summary.json")).entries[0]  # the file round trip
    assert again.memory.coarse == coarse and again.memory.extra_concepts_mean == entry.memory.extra_concepts_mean
    assert MemoryStructure.from_json(structure.to_json(), Place("results.json")) == structure
    table = markdown.coarse_table(coarse, "tiny", 2)
    assert "| structural memory's coarse level (learned task by task) | 2.0 | 1.000 ± 0.000 | 100.00 ± 0.00% |" in table
    assert "told the number of domains" in table and "is 1.000." in table
    line = markdown.memory_line(entry, settings)
    assert line.startswith("Structural memory: 6.0 concepts under ") and " topics and 2.0 coarse groups on average; " in line


def test_without_a_domain_map_nothing_is_scored():
    results = run_dataset(tiny_embedded(), Settings(memory={"rank": 2}), tasks=2, seeds=1, methods=("structural",), progress=False)
    structure = results["structural"][0].structure
    assert structure.coarse is None and structure.groups is not None and "coarse" not in structure.to_json()
    entry = summarize("tiny", results)[0]
    assert entry.memory.coarse is None and "coarse" not in entry.to_json()


def test_old_summaries_render_as_they_did():
    """A structural entry stored before groups and splits were measured keeps its old line and no table."""
    data, settings = tiny_embedded(), Settings(memory={"rank": 2})
    entry = summarize("tiny", run_dataset(data, settings, tasks=2, seeds=1, methods=("structural",), progress=False))[0]
    payload = {k: v for k, v in entry.to_json().items() if k not in ("groups_mean", "split_classes_mean", "extra_concepts_mean", "coarse")}
    old = ContinualSummary.from_json([payload], Place("summary.json")).entries[0]
    assert markdown.memory_line(old, settings).startswith(f"Structural memory: 6.0 concepts under {old.memory.topics_mean:.1f} topics on average; settings")
    assert Settings.from_dict({k: v for k, v in settings.to_dict().items() if k != "logreg_c"}) == settings  # settings stored before logreg


# --------------------------------------------------------------------------- logistic regression
def test_logreg_is_retrained_on_everything_seen_and_scored_like_the_joint_head():
    data = tiny_embedded()
    model = JointLogisticRegression(6, C=10.0)
    first = np.isin(data.train.y, [0])  # one class: nothing to tell apart yet
    model.learn_task(data.train.x[first], data.train.y[first])
    assert model.predict(data.test.x).tolist() == [0] * len(data.test.y) and np.all(model.in_scope_score(data.test.x) == 1.0)
    second = np.isin(data.train.y, [3])  # two classes: the binary model
    model.learn_task(data.train.x[second], data.train.y[second])
    assert set(model.predict(data.test.x).tolist()) == {0, 3}
    rest = np.isin(data.train.y, [1, 2, 4, 5])
    model.learn_task(data.train.x[rest], data.train.y[rest])
    scores = model.scores(data.test.x)
    assert scores.shape == (len(data.test.y), 6) and (model.predict(data.test.x) == data.test.y).mean() > 0.9
    assert model.stored_vectors() == 6 + len(data.train.y)  # a weight row per class + every sample
    confidence = model.in_scope_score(data.test.x)
    assert np.all((confidence > 1 / 6) & (confidence <= 1.0))
    unseen = JointLogisticRegression(6)
    unseen.learn_task(data.train.x[np.isin(data.train.y, [0, 1, 2])], data.train.y[np.isin(data.train.y, [0, 1, 2])])
    assert np.all(np.isneginf(unseen.scores(data.test.x)[:, 3:]))  # closed set over the classes seen


def test_logreg_in_the_protocol_and_its_selection():
    assert "logreg" in METHODS
    data = tiny_embedded()
    [entry] = summarize("tiny", run_dataset(data, Settings(logreg_c=10.0), tasks=3, seeds=1, methods=("logreg",), progress=False))
    assert entry.method == "logreg" and entry.final_accuracy_mean > 0.9 and entry.stored_fraction > 1.0 and entry.task_il_forgetting_mean is not None
    chosen, record = select(data, 3, Settings(), progress=False)
    assert [t["C"] for t in record["logreg"]] == list(LOGREG_GRID) and chosen.logreg_c in LOGREG_GRID
    best = max(t["held_out_accuracy"] for t in record["logreg"])
    assert chosen.logreg_c == next(t["C"] for t in record["logreg"] if t["held_out_accuracy"] == best)  # ties: the smaller C
    assert record["chosen"]["logreg_c"] == chosen.logreg_c
    assert all(settings.logreg_c in LOGREG_GRID for settings in CHOSEN.values())


# --------------------------------------------------------------------------- the whole command
class Stub:
    """A sentence model for texts "<class> <i>": the class's clustered vector (no semantics, offline)."""

    def __init__(self, model=None, progress=True):
        self.centres = dict(zip(CLASSES, CENTRES, strict=True))

    @property
    def identity(self):
        return "stub"

    def encode(self, texts):
        noise = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8) / 255.0 - 0.5 for t in texts]
        return np.stack([self.centres[t.split()[0]] + 0.2 * n for t, n in zip(texts, noise, strict=True)]).astype(np.float32)


def fake_clinc150() -> Dataset:
    def split(n: int, offset: int) -> Split:
        texts = [f"{name} {offset + i}" for name in CLASSES for i in range(n)]
        return Split(texts, torch.arange(6).repeat_interleave(n))

    return Dataset("clinc150", split(20, 0), split(5, 100), None, CLASSES, (), "test")


def test_the_command_reads_the_domain_map_beside_the_data_and_writes_the_coarse_level(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiment, "load", lambda name, root=None, standardize=True: fake_clinc150())
    monkeypatch.setattr(embedding, "SentenceEncoder", Stub)
    data = tmp_path / "data"
    data.mkdir()
    (data / "domains.json").write_text(json.dumps(DOMAIN_MAP))
    argv = ["--data", "clinc150", "--root", str(data), "--tasks", "3", "--seeds", "2", "--methods", "structural,logreg", "--set", "rank=2"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| logreg |" in printed and "| structural memory's coarse level (learned task by task) | 2.0 | 1.000 ± 0.000 |" in printed
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    structural = next(e for e in summary if e["method"] == "structural")
    assert structural["coarse"]["domains"] == 2 and structural["coarse"]["memory"]["ari_mean"] == pytest.approx(1.0)
    assert {"groups_mean", "split_classes_mean", "extra_concepts_mean"} <= set(structural)
    results = ContinualResults.from_json(json.loads((tmp_path / "out" / "results.json").read_text()), Place("results.json"))
    assert results.domains["names"] == ["alpha", "beta"] and results.settings["logreg_c"] == CHOSEN["clinc150"].logreg_c
    entries = ContinualSummary.from_json(summary, Place("summary.json")).entries
    section = markdown.section(entries, results)
    assert "Coarse level against clinc150's 2 domains" in section and "| logreg |" in section and "logistic regression C = 10;" in section
    (data / "domains.json").write_text(json.dumps({"alpha": ["a1"]}))
    assert main(argv) == 2  # refused in one line, before anything is encoded or learned
    assert "in no domain" in capsys.readouterr().err
    (data / "domains.json").unlink()  # no map: nothing scored, nothing printed
    config = ContinualConfig(data="clinc150", root=str(data), tasks=3, seeds=1, methods=("structural",), memory={"rank": 2}, cache_dir=str(tmp_path / "cache"))
    run = run_continual(config, progress=False)
    assert run.domains is None and run.entries[0].memory.coarse is None and "domains" not in run.record().to_json()
