"""Build the HTML report of a results folder: tables, figures and plausibility cards.

`build_report(RUNS_DIR)` collects every bench, train and continual result under RUNS_DIR
(`plasticity.lab.report.collect`), draws the figures those results have numbers for, and writes
`index.html` with the PNGs next to it (default folder: RUNS_DIR/report). Nothing is computed
that the results do not hold, apart from means, spreads and ratios over their seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plasticity.io import atomic_write_text, check_output_folder, output_folder
from plasticity.lab.bench.markdown import HEADERS, summary_rows
from plasticity.lab.report import page
from plasticity.lab.report.collect import Collection, ContinualRuns, TrainingRuns, collect
from plasticity.lab.report.continual_plots import continual_figures
from plasticity.lab.report.training_plots import training_figures
from plasticity.results import SummaryRow

INDEX = "index.html"

RUN_ENDS = {
    "hollow": "Hollow dots: unfinished runs, stopped before their last epoch (not a final result).",
    "dashed": "Dashed: unfinished runs, stopped before their last epoch (not a final result).",
    "diverged": 'A legend entry "(k of n diverged)" marks runs that diverged: their curves end early, and later epochs average the other seeds.',
}
TRAINING_CAPTIONS = {
    "accuracy": "Test accuracy after the last epoch. Dots: mean over seeds; bars: sample standard deviation over seeds "
    "(no bar for a single run: one seed has no spread).",
    "curves": "Test accuracy after each epoch. Line: mean over seeds; band: lowest to highest seed.",
    "loss": "Training loss (mean cross-entropy of the epoch's mini-batches, log scale). Line: mean over seeds; band: lowest to highest seed.",
    "pi": "ΣPI (Predictive Integrity): mean over the epoch's steps of exp(−cost), where cost grows with the error ε "
    "relative to the output uncertainty τ and with the size S of the update; 1 is a confident, correct, gentle step. "
    "Within one rule, ΣPI across epochs tracks its loss, confidence and step size. Across rules it is not a like-for-like "
    "measure: ε and τ are read from the outputs the rule learned from, but S is the norm of whatever direction each rule "
    "hands its optimizer (backprop's gradient for bp, a rule's own pseudo-gradient or Hebbian term otherwise, at the "
    "rule's own scale), so a higher ΣPI can mean smaller update vectors rather than better predictions. Compare rules by "
    "accuracy and loss. Definition: docs/observers.md.",
    "omega": "Synergy Ω: Gaussian O-information (nats) of sampled units of the last hidden layer on a fixed probe batch, "
    "measured after each epoch; Ω < 0 means synergy dominates redundancy. Definition: docs/observers.md.",
    "alignment": "Angle between each rule's weight update and backprop's gradient on the same batch and weights, one panel "
    "per hidden layer numbered from the input (dotted: 90°, no descent information): how each rule carries the error into "
    "its hidden layers. Not shown: bp (0° by definition) and each rule's output layer, the last layer of its own network, "
    "which learns from the output error in every rule (its angle, near 0° for most rules, is in the runs' records); a rule "
    "with fewer hidden layers draws no line in the later panels.",
    "feedback": "Angle between each fixed feedback matrix and the forward weights it stands in for (docs/observers.md), "
    "one panel per matrix. Rules without feedback matrices draw no line.",
}
CURVE_STYLES = (
    " Each method has its own line style and markers, drawn widest first so that coinciding curves stay visible; "
    "the legend names the methods whose curves coincide."
)
CONTINUAL_CAPTIONS = {
    "matrix": "Accuracy matrix: cell (i, j) is the accuracy (%) on task j after training tasks 1..i. "
    "Forgetting shows as a column fading below its diagonal; titles give the final average accuracy and the average "
    "forgetting (Chaudhry et al. 2018) of the matrix shown.",
    "roc": "Abstention ROC: out-of-scope inputs are the positives; the dotted diagonal is chance." + CURVE_STYLES,
    "risk_coverage": "Risk–coverage: error rate among the inputs the method answers, against the fraction it answers, "
    "as it abstains on more of them." + CURVE_STYLES,
}


def training_caption(name: str, runs: TrainingRuns) -> str:
    """The caption of figure `name`, saying how unfinished and diverged runs are drawn when there are any."""
    notes = [RUN_ENDS["hollow" if name == "accuracy" else "dashed"]] if runs.unfinished else []
    if name != "accuracy" and any(s.diverged for s in runs.summary):
        notes.append(RUN_ENDS["diverged"])
    return " ".join([TRAINING_CAPTIONS[name], *notes])


def _values(values: list[Any]) -> str:
    return " / ".join(str(v) for v in dict.fromkeys(values))


def settings_text(runs: TrainingRuns) -> str:
    """One sentence with the settings every number of the table depends on, read from the runs."""
    configs = [r.config for r in runs.records]
    epochs = ", ".join(f"{d} {_values([r.config.epochs for r in runs.records if r.dataset == d])}" for d in runs.datasets)
    seeds = sorted({r.seed for r in runs.records})
    observed = sorted({name for r in runs.records for p in r.curve for name in p.observers()})
    versions = runs.versions
    models = {c.model for c in configs}
    widths = _values(["×".join(map(str, c.hidden)) for c in configs])
    network = f"MLP with hidden layers {widths}, {_values([c.activation for c in configs])}"
    parts = [
        network if models == {"mlp"} else "model " + ", ".join(sorted(models)),
        f"batch {_values([c.batch_size for c in configs])}",
        f"epochs: {epochs}",
        f"seeds {', '.join(map(str, seeds))}",
        f"observers: {', '.join(observed) or 'none'}",
    ]
    if versions:
        parts.append(f"torch {versions.torch} with {versions.threads} CPU thread(s)")
    return "Settings: " + "; ".join(parts) + ". For a given seed every rule starts from the same weights and sees the same batches."


def _cards(runs: TrainingRuns) -> str | None:
    cards = runs.cards
    if not cards:
        return None
    rows = [[key] + [card.rows()[index][1] for card in cards.values()] for index, (key, _) in enumerate(next(iter(cards.values())).rows())]
    return page.subsection(
        "Plausibility cards",
        [
            page.paragraph("What each rule's weight update reads, as declared by the rule; `plasticity card --verify` checks it by perturbation."),
            page.table([""] + list(cards), rows, wide=len(cards) > 4),
        ],
    )


def _place(source: Path, root: Path) -> str:
    """Where results came from, relative to the report's root folder when inside it."""
    if source == root:
        return str(root)
    return str(source.relative_to(root)) if root in source.parents else str(source)


def table_rows(runs: TrainingRuns) -> list[list[str]]:
    """The rows of the runs' table (under HEADERS): `summary_rows`, noting how far the runs of an
    unfinished row got."""

    def progress(row: SummaryRow) -> list[str]:
        if row.label not in runs.unfinished:
            return []
        members = runs.runs(row.label, row.dataset)
        done = sorted({r.epochs_done for r in members})
        span = str(done[0]) if len(done) == 1 else f"{done[0]}–{done[-1]}"
        return [f"after {span} of {members[0].config.epochs} epochs"]

    return summary_rows(runs.summary, progress)


def training_section(runs: TrainingRuns, out: Path, anchor: str, root: Path) -> tuple[str, str, str]:
    heading = ("Rules side by side: " if runs.kind == "bench" else "Train runs: ") + _place(runs.source, root)
    figures = training_figures(runs, out, anchor)
    parts = [page.paragraph(settings_text(runs))]
    if runs.left_out:
        parts.append(page.paragraph(f"{runs.left_out} older run(s) in this folder were made with other settings and are not shown.", note=True))
    parts.append(page.table(HEADERS, table_rows(runs), numeric=(2, 3, 4, 5, 6)))
    note = "Ratios to bp compare means measured in the same runs; time is the median wall time of an epoch's learning steps."
    if runs.unfinished:
        note += (
            " Rows labelled unfinished hold runs that stopped before their last epoch (interrupted, or still running): "
            "their numbers are not final results and have no ratio to bp."
        )
    parts.append(page.paragraph(note, note=True))
    if runs.failures:
        failed = "; ".join(
            f"{f.label} on {f.dataset}, seed {f.seed}{f' (host {f.host})' if f.host else ''}: {f.error.splitlines()[0] if f.error else ''}"
            for f in runs.failures
        )
        parts.append(
            page.paragraph(
                f"{len(runs.failures)} run(s) failed on Ray and are counted as failed in the table; a rerun of the bench runs them again. "
                f"{failed}. Their tracebacks are in `failures.json`.",
                note=True,
            )
        )
    parts += [page.figure(path.name, training_caption(name, runs)) for name, path in figures.items()]
    cards = _cards(runs)
    if cards:
        parts.append(cards)
    return anchor, heading, page.section(anchor, heading, parts)


def _percent(mean: float | None, std: float | None, n_seeds: int | None) -> str:
    """mean ± std in percent; without the spread when there is none to show (no std, or one seed)."""
    if mean is None:
        return "—"
    if n_seeds == 1:
        return f"{100 * mean:.2f}% (n = 1)"
    return f"{100 * mean:.2f}%" if std is None else f"{100 * mean:.2f} ± {100 * std:.2f}%"


def _number(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def continual_section(runs: ContinualRuns, out: Path, anchor: str, root: Path) -> tuple[str, str, str]:
    heading = "Continual learning: " + _place(runs.source, root)
    headers = ["method", "dataset", "final accuracy", "forgetting", "backward transfer", "OOS AUROC", "stored fraction", "seeds"]
    rows = [
        [
            e.method,
            e.dataset,
            _percent(e.final_accuracy_mean, e.final_accuracy_std, e.n_seeds),
            _percent(e.forgetting_mean, e.forgetting_std, e.n_seeds),
            _number(e.backward_transfer_mean),
            _number(e.oos_auroc),
            _number(e.stored_fraction),
            "—" if e.n_seeds is None else str(e.n_seeds),
        ]
        for e in runs.entries
    ]
    figures = continual_figures(runs.entries, out, anchor)
    parts = [page.table(headers, rows, numeric=(2, 3, 4, 5, 6, 7))]
    parts += [page.figure(path.name, CONTINUAL_CAPTIONS[name]) for name, path in figures.items()]
    return anchor, heading, page.section(anchor, heading, parts)


def render(collection: Collection, out: Path, command: str) -> str:
    """The report page for `collection`, drawing its figures into `out`."""
    sections = [training_section(runs, out, f"training-{i}", collection.root) for i, runs in enumerate(collection.training, 1)]
    sections += [continual_section(runs, out, f"continual-{i}", collection.root) for i, runs in enumerate(collection.continual, 1)]
    intro = [
        page.paragraph(
            f"Built by `{command}` from the results under {collection.root}: every number is read from the runs' own files "
            "(results.jsonl, results.json, summary.json), with seeds; rerun the command to rebuild it."
        )
    ]
    if collection.ignored:
        names = ", ".join(_place(path, collection.root) for path in collection.ignored)
        intro.append(page.paragraph(f"Ignored, as they hold no results in a format plasticity writes: {names}.", note=True))
    return page.page(f"plasticity report: {collection.root.resolve().name}", intro, sections)


def build_report(runs_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the report of `runs_dir` to `out_dir` (default runs_dir/report); returns index.html's path.

    Every result is read and checked before anything is written, and only `out_dir` is written."""
    if out_dir is not None:
        check_output_folder(out_dir)
    collection = collect(runs_dir)
    out = output_folder(out_dir if out_dir is not None else collection.root / "report")
    command = f"plasticity report {runs_dir}" + (f" --out {out_dir}" if out_dir is not None else "")
    html = render(collection, out, command)
    atomic_write_text(out / INDEX, html)
    return out / INDEX
