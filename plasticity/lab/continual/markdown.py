"""The markdown of a continual run: the table `plasticity continual` prints, and the sections of
docs/memory.md that the docs tool (`python tools/docs.py`) renders from a run's stored files.

One section per dataset (`continual-NAME`, from summary.json and results.json): the setup, the
results table, the structural memory's shape and abstention, its coarse level against the
dataset's domains (runs that measured it), the issue's targets for CLINC150 checked against the
measured numbers, the selection record; and, for a run with --explain, a section of explained
queries (`explain-NAME`, from explanations.json). Runs stored before a measure existed render as
they did then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from plasticity.lab.continual.settings import Settings
from plasticity.results import CoarseSummary, ContinualEntry, ContinualResults, PartitionSummary


@dataclass(frozen=True)
class Target:
    """A target of the structural-memory issue: what it says, the number it reads from the
    structural memory's summary entry, and the bound that number must reach."""

    what: str
    measure: Callable[[ContinualEntry], float | None]
    threshold: float
    direction: str  # "≥" or "≤"
    shown: str = "{:.4f}"  # how the measured number is printed

    def met(self, value: float | None) -> bool:
        return value is not None and (value >= self.threshold if self.direction == "≥" else value <= self.threshold)


# The targets of the structural-memory issue (part two) for CLINC150, 15 tasks.
CLINC150_TARGETS = (
    Target("final average accuracy ≥ 94.6%", lambda e: e.final_accuracy_mean, 0.946, "≥"),
    Target("out-of-scope AUROC ≥ 0.979", lambda e: e.oos_auroc, 0.979, "≥"),
    Target("stored items ≤ 10% of training samples", lambda e: e.stored_fraction, 0.10, "≤"),
    Target("learn ≥ 50,000 samples/s (in this run: one thread)", lambda e: e.learn_per_second, 50000.0, "≥", "{:,.0f}"),
    Target("predict ≥ 50,000 queries/s (in this run: one thread, with abstention)", lambda e: e.predict_per_second, 50000.0, "≥", "{:,.0f}"),
)
MPNET_AIM = Target("aim with all-mpnet-base-v2: ≥ 96.2% (BERT fine-tuned on CLINC150, Larson et al. 2019)", lambda e: e.final_accuracy_mean, 0.962, "≥")


def _pct(mean: float | None, std: float | None = None, n: int = 2) -> str:
    """A percentage, "± std" over several task orders; over one (n = 1) there is no spread to show."""
    if mean is None:
        return "—"
    if std is None:
        return f"{100 * mean:.2f}%"
    return f"{100 * mean:.2f} ± {100 * std:.2f}%" if n > 1 else f"{100 * mean:.2f}% (n = 1)"


def results_table(summary: Sequence[ContinualEntry]) -> str:
    """The summary entries of a continual run as the table `plasticity continual` prints."""
    lines = [
        "| method | final avg accuracy | avg forgetting | task-IL forgetting | OOS AUROC "
        "| at 95% in-scope precision: OOS rejected / in-scope answered | stored / train | learn / s | predict / s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        auroc = "—" if s.oos_auroc is None else f"{s.oos_auroc:.4f} ± {s.oos_auroc_std:.4f}"
        lines.append(
            f"| {s.method} | {_pct(s.final_accuracy_mean, s.final_accuracy_std, s.n_seeds)} "
            f"| {_pct(s.forgetting_mean, s.forgetting_std, s.n_seeds)} "
            f"| {_pct(s.task_il_forgetting_mean, s.task_il_forgetting_std, s.n_seeds)} "
            f"| {auroc} | {_pct(s.oos_recall_at_95_precision)} / {_pct(s.in_scope_recall_at_95_precision)} "
            f"| {_pct(s.stored_fraction)} | {s.learn_per_second:,.0f} | {s.predict_per_second:,.0f} |"
        )
    return "\n".join(lines)


def targets_table(summary: Sequence[ContinualEntry], encoder: str | None = None) -> str:
    """The issue's CLINC150 targets, each with the measured value and met / missed, and the
    comparisons with the jointly trained baselines of the same run."""
    by_method = {s.method: s for s in summary}
    structural = by_method["structural"]
    lines = ["| target | measured (structural) | verdict |", "|---|---|---|"]
    for target in (*CLINC150_TARGETS, *([MPNET_AIM] if encoder == "mpnet" else [])):
        value = target.measure(structural)
        shown = "—" if value is None else target.shown.format(value)
        lines.append(f"| {target.what} | {shown} | {'met' if target.met(value) else '**missed**'} |")
    joint = [by_method[name] for name in ("logreg", "joint") if name in by_method]
    if joint:
        best = max(joint, key=lambda s: s.final_accuracy_mean)
        reached = structural.final_accuracy_mean >= best.final_accuracy_mean
        lines.append(
            f"| aim: final accuracy ≥ the best jointly trained baseline (same run: {best.method} {100 * best.final_accuracy_mean:.2f}%) "
            f"| {100 * structural.final_accuracy_mean:.2f}% | {'met' if reached else '**missed**'} |"
        )
    if "joint" in by_method:
        floor = by_method["joint"].forgetting_mean
        below = structural.forgetting_mean <= floor
        lines.append(
            f"| average forgetting ≤ the jointly retrained head's (same run: {100 * floor:.2f}%) "
            f"| {100 * structural.forgetting_mean:.2f}% | {'met' if below else '**missed**'} |"
        )
    return "\n".join(lines)


def section(summary: Sequence[ContinualEntry], results: ContinualResults) -> str:
    """The dataset's section of docs/memory.md, from a run's summary.json and results.json
    (`plasticity.lab.continual.experiment.write_outputs`)."""
    config, info, selection = results.config, results.versions, results.selection
    settings = Settings.from_dict(results.settings)
    structural = next((s for s in summary if s.method == "structural"), None)
    encoded = results.encoding
    n_encoded = sum(r["n"] for r in encoded.values())
    compute = sum(r["compute_seconds"] for r in encoded.values())
    parts = [
        f"Setup: {config['tasks']} tasks of disjoint classes, task orders (seeds) {', '.join(map(str, range(config['seeds'])))}; "
        f"inputs: {results.encoder}; torch {info.torch}, threads {info.threads}; mean ± sample std over seeds; "
        f"{results.seconds:.0f} s in all.",
    ]
    if compute > 0:
        cached = all(r["cached"] for r in encoded.values())
        parts.append(
            f"Encoding (apart from learning): {n_encoded:,} texts took {compute:.1f} s when computed "
            f"({n_encoded / compute:,.0f} texts/s); this run {'read them from the cache' if cached else 'computed them'} "
            f"in {sum(r['seconds'] for r in encoded.values()):.1f} s."
        )
    parts += ["", results_table(summary)]
    if structural is not None:
        parts += ["", memory_line(structural, settings)]
        if structural.memory.coarse is not None:
            parts += ["", coarse_table(structural.memory.coarse, config["data"], structural.n_seeds)]
    logreg = f", logistic regression C = {settings.logreg_c:g}" if any(s.method == "logreg" for s in summary) else ""
    parts += [
        "",
        f"Baselines: backprop head {settings.head}, k-NN k = {settings.knn_k}{logreg}; "
        "replay buffer = the structural memory's stored vectors of the same seed.",
    ]
    if selection is not None:
        chosen = selection["chosen"]
        logreg = f", logistic regression C = {chosen['logreg_c']:g}" if "logreg" in selection else ""
        parts += [
            "",
            f"Hyperparameters chosen on the {selection['held_out']} (never the test split): structural {chosen['memory']} "
            f"(held-out accuracy {100 * selection['structural_held_out_accuracy']:.2f}%), head {chosen['head']}, k-NN k = {chosen['knn_k']}{logreg}; "
            "every trial is in results.json.",
        ]
    if config["data"] == "clinc150" and structural is not None and config["tasks"] == 15:
        parts += ["", "Targets of the issue (CLINC150, 15 tasks):", "", targets_table(summary, config.get("encoder"))]
    return "\n".join(parts)


def memory_line(structural: ContinualEntry, settings: Settings) -> str:
    """What the structural memory's summary entry says of its shape and, at its tolerance, of abstention."""
    memory = structural.memory
    if memory.groups_mean is None:  # a run stored before the coarse groups were measured
        shape = f"{memory.concepts_mean:.1f} concepts under {memory.topics_mean:.1f} topics on average"
    else:
        shape = f"{memory.concepts_mean:.1f} concepts under {memory.topics_mean:.1f} topics and {memory.groups_mean:.1f} coarse groups on average"
        if memory.split_classes_mean is not None and memory.extra_concepts_mean is not None:
            shape += f"; {memory.split_classes_mean:.1f} classes hold more than one concept ({memory.extra_concepts_mean:.1f} concepts beyond one per class)"
    line = f"Structural memory: {shape}; settings {settings.memory}."
    if memory.tolerance is not None and memory.in_scope_answered_mean is not None:
        line += f" At its tolerance {memory.tolerance:g} it answers {100 * memory.in_scope_answered_mean:.1f}% of in-scope test queries"
        if memory.oos_rejected_mean is not None:
            line += f" and rejects {100 * memory.oos_rejected_mean:.1f}% of out-of-scope ones"
        line += "."
    return line


def _partition_row(what: str, scores: PartitionSummary, n: int) -> str:
    spread = f" ± {scores.ari_std:.3f}" if n > 1 else ""
    return f"| {what} | {scores.groups_mean:.1f} | {scores.ari_mean:.3f}{spread} | {_pct(scores.domain_accuracy_mean, scores.domain_accuracy_std, n)} |"


def coarse_table(coarse: CoarseSummary, dataset: str, n_seeds: int | None = None) -> str:
    """The memory's coarse level against the dataset's domains, beside Ward's batch clustering
    (`plasticity.lab.continual.coarse`)."""
    n = 2 if n_seeds is None else n_seeds
    lines = [
        f"Coarse level against {dataset}'s {coarse.domains} domains (its domain map is read by this evaluation only; the memory groups "
        "classes from embeddings and labels), after the last task. Domain accuracy: the share of in-scope test queries whose "
        "predicted class (no abstention) lies in a group whose majority domain is the query's; Ward: scikit-learn's batch "
        "agglomerative clustering of the class centroids of the training embeddings, all classes at once, scored with the "
        "memory's same predictions.",
        "",
        "| partition of the classes | groups | ARI with the domains | domain accuracy |",
        "|---|---|---|---|",
        _partition_row("structural memory's coarse level (learned task by task)", coarse.memory, n),
        _partition_row(f"Ward, batch, {coarse.domains} clusters (told the number of domains)", coarse.ward_domains, n),
        _partition_row("Ward, batch, as many clusters as the memory's groups", coarse.ward_groups, n),
    ]
    if coarse.order_stability_min is not None:
        lines += [
            "",
            f"Order stability: the smallest adjusted Rand index between the coarse partitions of two task orders is {coarse.order_stability_min:.3f}.",
        ]
    return "\n".join(lines)


def explanations_section(explanations: dict[str, Any]) -> str:
    """The explained queries of a run's explanations.json, verbatim from `StructuralMemory.explain`."""
    parts = [
        "The memory after all tasks of task order 0. Its coarsest level, the topics (label-mixed groups of concepts; `StructuralMemory.topic_summary`):",
        "",
        "| topic | samples | concepts | classes | largest classes |",
        "|---|---|---|---|---|",
    ]
    for topic in explanations["topics"]:
        largest = ", ".join(f"{label} ({count})" for label, count in topic["classes"])
        parts.append(f"| #{topic['topic']} | {topic['samples']} | {topic['concepts']} | {topic['n_classes']} | {largest} |")
    parts += ["", "Randomly drawn test queries, then out-of-scope ones, as `explain` prints them:", ""]
    for example in explanations["queries"]:
        parts += [
            f"**{example['split']}[{example['index']}]** “{example['query']}” (true: {example['true_label']})",
            "",
            "```text",
            example["text"],
            "```",
            "",
        ]
    return "\n".join(parts).rstrip()
