"""The markdown of a continual run: the table `plasticity continual` prints, and the sections of
docs/memory.md that the docs tool (`python tools/docs.py`) renders from a run's stored files.

One section per dataset (`continual-NAME`, from summary.json and results.json): the setup, the
results table, the structural memory's shape and abstention, the issue's targets for CLINC150
checked against the measured numbers, the selection record; and, for a run with --explain, a
section of explained queries (`explain-NAME`, from explanations.json).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from plasticity.lab.continual.settings import Settings
from plasticity.results import ContinualEntry, ContinualResults


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


# The targets of the structural-memory issue for CLINC150 (15 tasks).
CLINC150_TARGETS = (
    Target("final average accuracy ≥ 93.0%", lambda e: e.final_accuracy_mean, 0.930, "≥"),
    Target("stretch: final average accuracy ≥ 95.0%", lambda e: e.final_accuracy_mean, 0.950, "≥"),
    Target("average forgetting ≤ 1 point", lambda e: e.forgetting_mean, 0.010, "≤"),
    Target("out-of-scope AUROC ≥ 0.966", lambda e: e.oos_auroc, 0.966, "≥"),
    Target("stored items ≤ 25% of training samples", lambda e: e.stored_fraction, 0.25, "≤"),
    Target("learn ≥ 5,000 samples/s", lambda e: e.learn_per_second, 5000.0, "≥", "{:,.0f}"),
    Target("predict ≥ 20,000 queries/s (batched)", lambda e: e.predict_per_second, 20000.0, "≥", "{:,.0f}"),
)


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


def targets_table(summary: Sequence[ContinualEntry]) -> str:
    """The issue's CLINC150 targets, each with the measured value and met / missed."""
    by_method = {s.method: s for s in summary}
    structural = by_method["structural"]
    lines = ["| target | measured (structural) | verdict |", "|---|---|---|"]
    for target in CLINC150_TARGETS:
        value = target.measure(structural)
        shown = "—" if value is None else target.shown.format(value)
        lines.append(f"| {target.what} | {shown} | {'met' if target.met(value) else '**missed**'} |")
    for baseline in ("ncm", "knn"):
        if baseline in by_method:
            other = by_method[baseline].final_accuracy_mean
            above = structural.final_accuracy_mean > other
            lines.append(
                f"| above {baseline} (same run: {100 * other:.2f}%) | {100 * structural.final_accuracy_mean:.2f}% | {'met' if above else '**missed**'} |"
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
    parts += [
        "",
        f"Baselines: backprop head {settings.head}, k-NN k = {settings.knn_k}; replay buffer = the structural memory's stored vectors of the same seed.",
    ]
    if selection is not None:
        chosen = selection["chosen"]
        parts += [
            "",
            f"Hyperparameters chosen on the {selection['held_out']} (never the test split): structural {chosen['memory']} "
            f"(held-out accuracy {100 * selection['structural_held_out_accuracy']:.2f}%), head {chosen['head']}, k-NN k = {chosen['knn_k']}; "
            "every trial is in results.json.",
        ]
    if config["data"] == "clinc150" and structural is not None and config["tasks"] == 15:
        parts += ["", "Targets of the issue (CLINC150, 15 tasks):", "", targets_table(summary)]
    return "\n".join(parts)


def memory_line(structural: ContinualEntry, settings: Settings) -> str:
    """What the structural memory's summary entry says of its shape and, at its tolerance, of abstention."""
    memory = structural.memory
    line = f"Structural memory: {memory.concepts_mean:.1f} concepts under {memory.topics_mean:.1f} topics on average; settings {settings.memory}."
    if memory.tolerance is not None and memory.in_scope_answered_mean is not None:
        line += f" At its tolerance {memory.tolerance:g} it answers {100 * memory.in_scope_answered_mean:.1f}% of in-scope test queries"
        if memory.oos_rejected_mean is not None:
            line += f" and rejects {100 * memory.oos_rejected_mean:.1f}% of out-of-scope ones"
        line += "."
    return line


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
