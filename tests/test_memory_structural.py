"""StructuralMemory: scikit-learn's estimator checks, the append-only property, abstention,
granularity, structural events, explanations and determinism."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from plasticity.errors import ConfigError
from plasticity.memory import StructuralMemory
from plasticity.memory.concepts import NO_LABEL

ABSTAINING = StructuralMemory(tolerance=1.5)  # abstains on some training samples of 10 checks' data
CONTRACT = "predict must equal argmax(decision_function) on training data; an abstention is by definition neither"
ESTIMATORS = [
    StructuralMemory(),
    StructuralMemory(tolerance=4.0, unknown_label="unknown"),  # abstention on, a string label: nothing else changes
    ABSTAINING,
    StructuralMemory(random_state=None),
    StructuralMemory(random_state=np.random.RandomState(0)),
]


def abstention_contract(estimator) -> dict[str, str]:
    """The three checks that compare predict with the decision function (or with the one class)
    on the training data fail, strictly, only where a training sample is abstained on."""
    names = ("check_classifiers_train", "check_classifiers_classes", "check_classifiers_one_label")
    return dict.fromkeys(names, CONTRACT) if estimator is ABSTAINING else {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=abstention_contract, xfail_strict=True)
def test_scikit_learn_estimator_checks(estimator, check):
    # Every check runs (the two that need pandas or SCIPY_ARRAY_API skip themselves). With
    # abstention on, every check passes where its data is not abstained on, and where it is
    # (tolerance 1.5: pickling, pipelines, dtypes, sample order and subsets all meet abstentions)
    # only the three that require a closed-set predict fail, as they must.
    check(estimator)


def blobs(n_classes: int = 6, per_class: int = 40, dim: int = 16, seed: int = 0, spread: float = 0.15):
    """Well separated Gaussian classes on the unit sphere's neighbourhood."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_classes), per_class)
    X = centres[y] + spread * rng.normal(size=(len(y), dim)) / np.sqrt(dim)
    order = rng.permutation(len(y))
    return X[order], y[order], centres


def class_incremental(memory: StructuralMemory, X: np.ndarray, y: np.ndarray, tasks: list[list[int]]):
    for task in tasks:
        mask = np.isin(y, task)
        memory.partial_fit(X[mask], y[mask])
        yield task


def concept_snapshot(memory: StructuralMemory) -> dict[int, dict[str, np.ndarray]]:
    store = memory.store_
    return {
        node: {name: np.array(getattr(store, name)[node]) for name in ("parent", "depth", "label", "created", "count", "mean", "basis", "energy", "scatter")}
        for node in range(store.size)
        if store.label[node] != NO_LABEL
    }


def test_earlier_concepts_and_paths_survive_later_tasks():
    X, y, centres = blobs()
    memory = StructuralMemory(rank=2, topic_threshold=0.5, beam=2, evolution_threshold=0.2)
    tasks = [[0, 1], [2, 3], [4, 5]]
    stream = class_incremental(memory, X, y, tasks)
    next(stream)
    first = concept_snapshot(memory)
    paths = {node: memory.store_.ancestors(node) for node in first}
    first_predictions = memory.predict(centres[:2])
    for _ in stream:
        pass
    assert memory.n_concepts_ > len(first)  # later tasks added concepts
    after = concept_snapshot(memory)
    for node, stats in first.items():  # same node id, same parent, same statistics: nothing rewritten
        for name, value in stats.items():
            np.testing.assert_array_equal(after[node][name], value, err_msg=f"concept {node}: {name} changed")
        assert memory.store_.ancestors(node) == paths[node]
    # ... and still reachable: the old classes' centres are still matched to their old concepts
    path = memory.decision_path(centres[:2]).toarray().astype(bool)
    for row in range(len(first_predictions)):
        matched = [n for n in np.flatnonzero(path[row]) if memory.store_.label[n] != NO_LABEL]
        assert matched and all(n in first for n in matched)
    assert list(memory.predict(centres[:2])) == list(first_predictions) == [0, 1]


def test_abstains_outside_every_concept_and_only_there():
    X, y, centres = blobs()
    memory = StructuralMemory(rank=2, tolerance=3.0, unknown_label=-1).fit(X, y)
    far = -centres[:3] * 3.0  # opposite side of the sphere: no concept there
    assert (memory.predict(far) == -1).all()
    assert (memory.predict(X) != -1).mean() > 0.95
    scores_in, scores_out = memory.abstention_score(X), memory.abstention_score(far)
    assert scores_out.min() > memory.tolerance > np.median(scores_in)
    assert (memory.set_params(tolerance=None).predict(far) != -1).all()  # None never abstains
    named = StructuralMemory(rank=2, tolerance=3.0, unknown_label="unknown").fit(X, y)
    predicted = named.predict(far)
    assert predicted.dtype == object and set(predicted) == {"unknown"}


def test_abstention_score_grows_with_distance():
    X, y, centres = blobs()
    memory = StructuralMemory(rank=2, normalize=False).fit(X, y)  # the path leaves the unit sphere
    rng = np.random.default_rng(1)
    direction = rng.normal(size=centres.shape[1])
    direction -= (direction @ centres[0]) * centres[0]
    direction /= np.linalg.norm(direction)
    path = np.stack([centres[0] + t * direction for t in (0.0, 0.3, 0.6, 1.2)])
    assert np.all(np.diff(memory.abstention_score(path)) > 0)


def test_predict_and_abstention_agree_with_their_definitions():
    """predict takes the class of the best concept without building the decision matrix: it must equal
    the argmax of decision_function (classes arriving unsorted, several concepts per class, with and
    without the covariance model, at granularity 1 too); the abstention score, computed from the
    same product as the decisions, must equal min_ℓ δ_ℓ/ρ_ℓ worked out from the stored statistics."""
    X, y, _ = blobs(n_classes=5, per_class=50, spread=0.6, seed=3)
    labels = np.array(["e", "b", "d", "a", "c"])[y]
    memory = StructuralMemory(rank=2, evolution_threshold=0.05, min_support=5)
    for group in (["e", "b"], ["d", "a", "c"]):
        mask = np.isin(labels, group)
        memory.partial_fit(X[mask], labels[mask])
    assert memory.n_concepts_ > 5  # some classes hold sub-concepts
    assert (memory.predict(X) == labels).mean() > 0.9  # the string labels, not their order of arrival
    queries = blobs(n_classes=5, per_class=20, spread=0.9, seed=4)[0]
    for own in (0.2, None):
        memory.set_params(own_covariance=own, granularity=None)
        np.testing.assert_array_equal(memory.predict(queries), memory.classes_[memory.decision_function(queries).argmax(axis=1)])
        groups = memory.set_params(granularity=1)._group_labels()
        np.testing.assert_array_equal(memory.predict(queries), groups[memory.decision_function(queries).argmax(axis=1)])
    store, concepts = memory.store_, memory._tables["concepts"]
    Xn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    residual = store.residual_scatter(concepts)
    pooled = residual.sum() / store.count[concepts].sum()
    radius = np.sqrt((residual + 1000.0 * pooled) / (store.count[concepts] + 1000.0))
    expected = (np.sqrt(store.residual_distance2(Xn, concepts)) / radius).min(axis=1)
    np.testing.assert_allclose(memory.abstention_score(queries), expected, rtol=1e-9)


def test_scoring_on_several_threads_gives_the_same_answers():
    """n_jobs scores the same chunks of 1,024 queries in parallel, one BLAS thread each: every answer
    is bit-identical to scoring them one after the other on one BLAS thread."""
    X, y, _ = blobs(n_classes=5, per_class=50, spread=0.6, seed=3)
    memory = StructuralMemory(rank=2, tolerance=1.5).fit(X, y)
    queries = np.random.default_rng(5).normal(size=(2500, X.shape[1]))  # three chunks, the last one short
    with threadpool_limits(limits=1, user_api="blas"):
        answers = [(memory.decision_function(queries), memory.abstention_score(queries), memory.predict(queries), memory.predict_proba(queries))]
    for jobs in (2, -1):
        memory.set_params(n_jobs=jobs)
        answers.append((memory.decision_function(queries), memory.abstention_score(queries), memory.predict(queries), memory.predict_proba(queries)))
    for other in answers[1:]:
        for a, b in zip(answers[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ConfigError, match="n_jobs"):
            memory.set_params(n_jobs=bad).predict(queries[:3])


def grouped_blobs(seed: int = 0):
    """Three groups of three classes: class centres near their group's centre, groups far apart."""
    rng = np.random.default_rng(seed)
    groups = rng.normal(size=(3, 16))
    centres = np.repeat(groups / np.linalg.norm(groups, axis=1, keepdims=True), 3, axis=0) + 0.25 * rng.normal(size=(9, 16)) / 4.0
    y = np.repeat(np.arange(9), 40)
    X = centres[y] + 0.3 * rng.normal(size=(len(y), 16)) / 4.0
    return X, y


def test_the_coarse_level_finds_groups_of_classes_whatever_the_order():
    X, y = grouped_blobs()
    partitions = []
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(9)
        memory = StructuralMemory(rank=2)
        for _ in class_incremental(memory, X, y, [list(order[i : i + 3]) for i in (0, 3, 6)]):
            pass
        partitions.append(memory.coarse_groups())
    assert partitions[0] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert partitions[1] == partitions[0] and partitions[2] == partitions[0]  # the same partition for every order


def test_coarse_threshold_sets_the_granularity():
    X, y = grouped_blobs()
    memory = StructuralMemory(rank=2).fit(X, y)
    assert memory.set_params(coarse_threshold=0.0).coarse_groups() == [[k] for k in range(9)]
    assert memory.set_params(coarse_threshold=1e9).coarse_groups() == [list(range(9))]


def test_coarser_granularity_predicts_the_groups_largest_class():
    X, y = grouped_blobs()
    keep = ~((y == 4) & (np.arange(len(y)) % 2 == 0))  # class 4 has fewer samples than 3 and 5
    memory = StructuralMemory(rank=2).fit(X[keep], y[keep])
    coarse = memory.set_params(granularity=1).predict(X)
    fine = memory.set_params(granularity=None).predict(X)
    assert (fine == y).mean() > 0.95
    expected = np.array([0, 0, 0, 3, 3, 3, 6, 6, 6])[fine]  # ties go to the first class of the group
    assert np.array_equal(coarse, expected)


def test_minimal_evolution_threshold_gates_new_concepts():
    rng = np.random.default_rng(0)
    modes = np.eye(8)[:2]  # one class made of two far-apart modes
    X = np.concatenate([modes[i % 2] + 0.02 * rng.normal(size=8) for i in range(60)]).reshape(60, 8)
    y = np.zeros(60, dtype=int)
    split = StructuralMemory(rank=0, evolution_threshold=0.3, min_support=5).fit(X, y)
    assert split.n_concepts_ == 2 and split.events_["new_concept"] == 2
    child = int(np.flatnonzero(split.store_.depth[: split.store_.size] == 3)[0])
    assert split.store_.parent[child] == 2  # the sub-concept hangs under the concept it refines
    kept = StructuralMemory(rank=0, evolution_threshold=3.0, min_support=5).fit(X, y)
    assert kept.n_concepts_ == 1 and kept.events_["leftover"] == 0
    assert split.events_["absorb"] == kept.events_["absorb"] == 60


def test_learning_in_blocks_keeps_the_statistics_of_learning_one_at_a_time():
    X, y, _ = blobs()
    one = StructuralMemory(rank=0, evolution_threshold=10.0, batch_size=1).fit(X, y)
    block = StructuralMemory(rank=0, evolution_threshold=10.0, batch_size=64).fit(X, y)
    # With every sample absorbed by its class's one concept, blocks change nothing but rounding.
    assert one.store_.size == block.store_.size and one.events_ == block.events_
    for name in ("count", "hist", "parent", "label"):
        np.testing.assert_array_equal(getattr(one.store_, name)[: one.store_.size], getattr(block.store_, name)[: block.store_.size])
    for name in ("mean", "scatter", "moment"):
        np.testing.assert_allclose(getattr(one.store_, name), getattr(block.store_, name), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(one.decision_function(X), block.decision_function(X), rtol=1e-9, atol=1e-9)
    # With subspaces, a block's columns are folded BLOCK at a time, as one-at-a-time's are: the
    # scatter matrix is the same, the truncations fall at other points, the answers are the same here.
    one, block = (StructuralMemory(rank=2, batch_size=size).fit(X, y) for size in (1, 1024))
    np.testing.assert_allclose(one.store_.scatter, block.store_.scatter, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(one.predict(X), block.predict(X))


def test_class_decisions_follow_the_covariance_model():
    """own_covariance=α decides by the Gaussian log-likelihood of Σ_ℓ = A + α U diag(e/n) Uᵀ,
    computed here directly (dense inverse and log-determinant) from the stored statistics."""
    X, y, _ = blobs(per_class=60)
    memory = StructuralMemory(rank=2, own_covariance=0.3, shrinkage=0.2).fit(X, y)
    store, concepts = memory.store_, memory._tables["concepts"]
    within = store.within(concepts)
    A = 0.7 * (0.8 * within + 0.2 * np.trace(within) / 16 * np.eye(16))
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    expected = np.full((len(X), len(memory.classes_)), -np.inf)
    for concept in concepts:
        U, e, n = store.basis[concept], store.energy[concept], store.count[concept]
        sigma = A + 0.3 * U.T @ np.diag(e / n) @ U
        deviation = Xn - store.mean[concept]
        score = -(np.einsum("nd,de,ne->n", deviation, np.linalg.inv(sigma), deviation) + np.linalg.slogdet(sigma)[1] - np.linalg.slogdet(A)[1])
        column = list(memory.classes_).index(memory.labels_[store.label[concept]])
        expected[:, column] = np.maximum(expected[:, column], score)
    np.testing.assert_allclose(memory.decision_function(X), expected, rtol=1e-8, atol=1e-8)
    assert (memory.predict(X) == y).mean() > 0.95
    residual = memory.set_params(own_covariance=None).decision_function(X)  # the subspace distance δ²
    index = {label: i for i, label in enumerate(memory.labels_)}
    nearest = [store.residual_distance2(Xn, np.array(memory._by_label[index[c]])).min(axis=1) for c in memory.classes_]
    np.testing.assert_allclose(residual, -np.stack(nearest, axis=1), atol=1e-10)


def test_new_classes_may_arrive_in_any_call():
    X, y, _ = blobs()
    memory = StructuralMemory(rank=2)
    memory.partial_fit(X[y == 3], y[y == 3])
    memory.partial_fit(X[y < 3], y[y < 3], classes=[0, 1, 2, 7])
    assert list(memory.classes_) == [0, 1, 2, 3, 7]
    proba = memory.predict_proba(X[y < 4])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba[:, 4] == 0).all()  # declared but never seen: no concept, no probability
    assert (memory.predict(X[y < 4]) == y[y < 4]).mean() > 0.95


def test_explain_gives_path_distances_and_exemplars():
    X, y, _ = blobs()
    keys = [f"sample {i}" for i in range(len(X))]
    memory = StructuralMemory(rank=2, tolerance=3.0, n_exemplars=2).fit(X, y, keys=keys)
    [explanation] = memory.explain(X[:1])
    assert explanation.prediction == memory.predict(X[:1])[0]
    kinds = [step.kind for step in explanation.path]
    assert kinds[0] == "root" and kinds[1] == "topic" and kinds[-1] == "concept"
    assert explanation.path[-1].labels[0][0] == explanation.prediction
    assert explanation.exemplars and all(e.key in keys and e.label == explanation.prediction for e in explanation.exemplars)
    assert [e.distance for e in explanation.exemplars] == sorted(e.distance for e in explanation.exemplars)
    assert explanation.runner_up is not None and explanation.runner_up[0] != explanation.prediction
    text = str(explanation)
    assert "predicts" in text and "exemplar" in text and "runner-up" in text
    assert explanation.to_dict()["path"][0]["kind"] == "root"


def test_learning_is_deterministic_and_reservoirs_follow_the_seed():
    X, y, _ = blobs()
    a = StructuralMemory(rank=2, n_exemplars=2, random_state=1).fit(X, y)
    b = StructuralMemory(rank=2, n_exemplars=2, random_state=1).fit(X, y)
    for name in ("mean", "basis", "energy", "scatter", "count", "parent", "hist"):
        np.testing.assert_array_equal(getattr(a.store_, name)[: a.store_.size], getattr(b.store_, name)[: b.store_.size])
    assert a.exemplar_keys_ == b.exemplar_keys_ and a.events_ == b.events_
    c = StructuralMemory(rank=2, n_exemplars=2, random_state=2).fit(X, y)
    assert c.exemplar_keys_ != a.exemplar_keys_  # only the reservoirs depend on the seed
    np.testing.assert_array_equal(c.predict(X), a.predict(X))


def test_bad_parameters_and_inputs_are_refused_clearly():
    X, y, _ = blobs()
    with pytest.raises(ValueError, match="evolution_threshold"):
        StructuralMemory(evolution_threshold=0).fit(X, y)
    with pytest.raises(ValueError, match="beam"):
        StructuralMemory(beam=0).fit(X, y)
    memory = StructuralMemory().fit(X, y)
    with pytest.raises(ValueError, match="expecting 16 features"):
        memory.predict(X[:, :5])
    with pytest.raises(ValueError, match="keys"):
        StructuralMemory().fit(X, y, keys=["a"])
    with pytest.raises(ValueError, match="NaN|infinity"):
        memory.partial_fit(np.full((2, 16), np.nan), [0, 1])


def test_stored_items_count_nodes_directions_and_exemplars():
    X, y, _ = blobs()
    memory = StructuralMemory(rank=2, n_exemplars=3).fit(X, y)
    items = memory.stored_items()
    assert items["nodes"] == memory.store_.size == 1 + memory.n_topics_ + memory.n_concepts_
    assert items["exemplars"] == 3 * memory.n_concepts_
    assert items["directions"] == 2 * memory.n_concepts_
    # The symmetric 16 × 16 second moment has 136 distinct entries: 8.5 vectors of 16, counted as 9.
    assert items["moment"] == 9 and memory.store_.packed_moment().size == 136
    assert items["total"] == items["nodes"] + items["directions"] + items["exemplars"] + items["moment"]
    assert sum(memory.concept_counts().values()) == memory.n_concepts_


def test_the_docs_example_runs_and_prints_what_it_says(capsys):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "memory.md").read_text(encoding="utf-8")
    example = doc.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(example, "docs/memory.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("[0 1 2] [-1 -1 -1]") and "predicts 0" in out and "exemplar" in out
