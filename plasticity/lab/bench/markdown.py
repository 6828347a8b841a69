"""The benchmark table in markdown: the rows the HTML report shares, and a bench's doc section.

The docs tool (`python tools/docs.py`) puts a section between `<!-- bench:NAME -->` and
`<!-- /bench:NAME -->` markers of a doc from a bench's stored runs; nothing here writes a file.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from plasticity.lab.bench.summary import BASELINE
from plasticity.results import RunRecord, SummaryRow

# Published results on the same data (backprop unless said), cited next to ours.
PUBLISHED = {
    "mnist1d": "Published backprop baselines on MNIST-1D (Greydanus & Kobak 2024, 4000/1000 split): "
    "logistic regression 32%, MLP 68%, CNN 94%. No bio-plausible MNIST-1D result is published.",
    "mnist-t10k": "mnist-t10k is MNIST's official 10k test set split 8000 train / 2000 test (seed 0), "
    "not the 60k/10k protocol: accuracies are lower than full-MNIST numbers.",
}


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _accuracy(row: SummaryRow, notes: Sequence[str] = ()) -> str:
    """ "97.10 ± 0.50%" over several runs; "97.10% (n = 1)" over one, which has no spread to show;
    how many runs diverged and any further `notes` in the same parentheses."""
    mean = row.test_accuracy_mean
    single = mean is not None and row.n_measured < 2
    counts = [f"{count} {what}" for count, what in ((row.diverged, "diverged"), (row.failed, "failed")) if count]
    notes = (["n = 1"] if single else []) + counts + list(notes)
    if mean is None:
        value = "—"
    elif single:
        value = f"{100 * mean:.2f}%"
    else:
        value = f"{100 * mean:.2f} ± {100 * row.test_accuracy_std:.2f}%"
    return value + (f" ({'; '.join(notes)})" if notes else "")


def _rate(values: list[float], scale: float, unit: str) -> str:
    """Mean ± sample std of a throughput, in units of `scale`; no spread over a single run."""
    mean = f"{np.mean(values) / scale:.1f}"
    if len(values) < 2:
        return f"{mean}{unit} (n = 1)"
    return f"{mean} ± {np.std(values, ddof=1) / scale:.1f}{unit}"


HEADERS = ("dataset", "rule", "test accuracy (mean ± std)", "seeds", "ratio to bp", "s / epoch", "time ratio to bp")


def summary_rows(summary: Sequence[SummaryRow], notes: Callable[[SummaryRow], list[str]] | None = None) -> list[list[str]]:
    """The cells of the benchmark table (under HEADERS), shared by markdown and the HTML report;
    `notes(row)` adds remarks to a row's accuracy cell (the report: how far unfinished runs got)."""
    return [
        [
            s.dataset,
            s.label,
            _accuracy(s, notes(s) if notes is not None else ()),
            str(s.n_seeds),
            _ratio(s.accuracy_ratio_to_bp),
            "—" if s.epoch_seconds_mean is None else f"{s.epoch_seconds_mean:.3f}",
            _ratio(s.time_ratio_to_bp) + (f" ({s.time_ratio_note})" if s.time_ratio_note else ""),
        ]
        for s in summary
    ]


def markdown_rows(headers: Sequence[str], rows: list[list[str]]) -> str:
    """`rows` under `headers` as a markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def table(summary: Sequence[SummaryRow]) -> str:
    """The benchmark table of `summary` in markdown."""
    return markdown_rows(HEADERS, summary_rows(summary))


def alignment_table(records: Sequence[RunRecord]) -> str | None:
    """Update angle to backprop per hidden layer, first epoch → last epoch, mean over seeds.

    None when the runs were made without the alignment observer.
    """
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for record in records:
        if record.rule != BASELINE and record.curve and record.curve[0].update_angle is not None:
            groups[(record.dataset, record.name)].append(record)
    if not groups:
        return None
    lines = ["| dataset | rule | update angle to bp, per hidden layer: epoch 1 → last (mean over seeds) |", "|---|---|---|"]
    for (dataset, rule), members in groups.items():
        first = np.mean([m.curve[0].update_angle[:-1] for m in members], axis=0)
        last = np.mean([m.curve[-1].update_angle[:-1] for m in members], axis=0)
        cells = ", ".join(f"layer {i + 1}: {a:.1f}° → {b:.1f}°" for i, (a, b) in enumerate(zip(first, last, strict=True)))
        lines.append(f"| {dataset} | {rule} | {cells} |")
    return "\n".join(lines)


def throughput_table(records: Sequence[RunRecord]) -> str | None:
    """Training throughput of the runs that count events (spiking rules), mean ± std over seeds.

    None when no run counted events.
    """
    groups: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for record in records:
        if record.throughput:
            groups[(record.dataset, record.name)].append(record.throughput)
    if not groups:
        return None
    lines = ["| dataset | rule | training samples / s | synaptic events / s | input spikes / s |", "|---|---|---|---|---|"]
    for (dataset, rule), rates in groups.items():
        cells = []
        for key, scale in (("samples_per_second", 1.0), ("synaptic_events_per_second", 1e6), ("input_spikes_per_second", 1e3)):
            unit = {1.0: "", 1e6: " M", 1e3: " k"}[scale]
            cells.append(_rate([r[key] for r in rates], scale, unit))
        lines.append(f"| {dataset} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section(summary: Sequence[SummaryRow], setup: dict[str, Any], records: Sequence[RunRecord] = ()) -> str:
    """A bench's doc section: the settings a reader needs, the table, the published results on its
    datasets and, when the runs measured them, throughput and alignment with backprop."""
    notes = [PUBLISHED[d] for d in dict.fromkeys(s.dataset for s in summary) if d in PUBLISHED]
    setup_line = "; ".join(f"{k}: {v}" for k, v in setup.items())
    parts = [f"Setup: {setup_line}.", "", table(summary)]
    if notes:
        parts += [""] + [f"- {n}" for n in notes]
    rates = throughput_table(records)
    if rates:
        parts += [
            "",
            "Training throughput in the last epoch (learning steps only; a synaptic event is one input spike reaching one plastic synapse):",
            "",
            rates,
        ]
    angles = alignment_table(records)
    if angles:
        parts += ["", "Alignment with backprop (90° = no descent information; Lillicrap et al. 2016 predict a fall below 90°):", "", angles]
    return "\n".join(parts)
