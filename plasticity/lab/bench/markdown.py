"""The benchmark table in markdown, and in-place replacement of a marked section of a doc.

A bench writes its table between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` markers, so
several benches (and hand-written prose around them) share one `docs/benchmarks.md`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from plasticity.errors import ConfigError, brief, os_reason
from plasticity.io import atomic_write_text

SECTION = re.compile(r"[A-Za-z0-9._+-]+")

# Published results on the same data (backprop unless said), cited next to ours.
PUBLISHED = {
    "mnist1d": "Published backprop baselines on MNIST-1D (Greydanus & Kobak 2024, 4000/1000 split): "
    "logistic regression 32%, MLP 68%, CNN 94%. No bio-plausible MNIST-1D result is published.",
    "mnist-t10k": "mnist-t10k is MNIST's official 10k test set split 8000 train / 2000 test (seed 0), "
    "not the 60k/10k protocol: accuracies are lower than full-MNIST numbers.",
}


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _accuracy(entry: dict[str, Any], notes: Sequence[str] = ()) -> str:
    """ "97.10 ± 0.50%" over several runs; "97.10% (n = 1)" over one, which has no spread to show;
    how many runs diverged and any further `notes` in the same parentheses."""
    mean = entry["test_accuracy_mean"]
    single = mean is not None and entry.get("n_measured", entry["n_seeds"]) < 2
    notes = (["n = 1"] if single else []) + ([f"{entry['diverged']} diverged"] if entry.get("diverged") else []) + list(notes)
    if mean is None:
        value = "—"
    elif single:
        value = f"{100 * mean:.2f}%"
    else:
        value = f"{100 * mean:.2f} ± {100 * entry['test_accuracy_std']:.2f}%"
    return value + (f" ({'; '.join(notes)})" if notes else "")


def _rate(values: list[float], scale: float, unit: str) -> str:
    """Mean ± sample std of a throughput, in units of `scale`; no spread over a single run."""
    mean = f"{np.mean(values) / scale:.1f}"
    if len(values) < 2:
        return f"{mean}{unit} (n = 1)"
    return f"{mean} ± {np.std(values, ddof=1) / scale:.1f}{unit}"


HEADERS = ("dataset", "rule", "test accuracy (mean ± std)", "seeds", "ratio to bp", "s / epoch", "time ratio to bp")


def summary_rows(summary: list[dict[str, Any]], notes: Callable[[dict[str, Any]], list[str]] | None = None) -> list[list[str]]:
    """The cells of the benchmark table (under HEADERS), shared by markdown and the HTML report;
    `notes(entry)` adds remarks to an entry's accuracy cell (the report: how far unfinished runs got)."""
    rows = []
    for s in summary:
        rows.append(
            [
                s["dataset"],
                s.get("label", s["rule"]),
                _accuracy(s, notes(s) if notes is not None else ()),
                str(s["n_seeds"]),
                _ratio(s["accuracy_ratio_to_bp"]),
                "—" if s["epoch_seconds_mean"] is None else f"{s['epoch_seconds_mean']:.3f}",
                _ratio(s["time_ratio_to_bp"]),
            ]
        )
    return rows


def markdown_rows(headers: Sequence[str], rows: list[list[str]]) -> str:
    """`rows` under `headers` as a markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def table(summary: list[dict[str, Any]]) -> str:
    """The benchmark table of `summary` in markdown."""
    return markdown_rows(HEADERS, summary_rows(summary))


def alignment_table(records: list[dict[str, Any]]) -> str | None:
    """Update angle to backprop per hidden layer, first epoch → last epoch, mean over seeds.

    None when the runs were made without the alignment observer.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["rule"] != "bp" and record["curve"] and "update_angle" in record["curve"][0]:
            groups[(record["dataset"], record.get("label", record["rule"]))].append(record)
    if not groups:
        return None
    lines = ["| dataset | rule | update angle to bp, per hidden layer: epoch 1 → last (mean over seeds) |", "|---|---|---|"]
    for (dataset, rule), members in groups.items():
        first = np.mean([m["curve"][0]["update_angle"][:-1] for m in members], axis=0)
        last = np.mean([m["curve"][-1]["update_angle"][:-1] for m in members], axis=0)
        cells = ", ".join(f"layer {i + 1}: {a:.1f}° → {b:.1f}°" for i, (a, b) in enumerate(zip(first, last, strict=True)))
        lines.append(f"| {dataset} | {rule} | {cells} |")
    return "\n".join(lines)


def throughput_table(records: list[dict[str, Any]]) -> str | None:
    """Training throughput of the runs that count events (spiking rules), mean ± std over seeds.

    None when no run counted events.
    """
    groups: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for record in records:
        if record.get("throughput"):
            groups[(record["dataset"], record.get("label", record["rule"]))].append(record["throughput"])
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


def section(summary: list[dict[str, Any]], command: str, setup: dict[str, Any], records: list[dict[str, Any]] = ()) -> str:
    """The table with the command that produced it and the settings a reader needs."""
    notes = [PUBLISHED[d] for d in dict.fromkeys(s["dataset"] for s in summary) if d in PUBLISHED]
    setup_line = "; ".join(f"{k}: {v}" for k, v in setup.items())
    parts = [f"Produced by `{command}`.", "", f"Setup: {setup_line}.", "", table(summary)]
    if notes:
        parts += [""] + [f"- {n}" for n in notes]
    rates = throughput_table(list(records))
    if rates:
        parts += [
            "",
            "Training throughput in the last epoch (learning steps only; a synaptic event is one input spike reaching one plastic synapse):",
            "",
            rates,
        ]
    angles = alignment_table(list(records))
    if angles:
        parts += ["", "Alignment with backprop (90° = no descent information; Lillicrap et al. 2016 predict a fall below 90°):", "", angles]
    return "\n".join(parts)


def check_section(name: str) -> str:
    """`name` if it can sit in a section's markers (letters, digits and . _ + -); else a ConfigError,
    which a command can raise before its work rather than after it."""
    if not isinstance(name, str) or not SECTION.fullmatch(name):
        raise ConfigError(f"section name {brief(name)} may only hold letters, digits and . _ + -")
    return name


def write_section(path: str | Path, name: str, body: str, title: str | None = None) -> None:
    """Replace (or append) the section `name` of the markdown file at `path`.

    A path that is a folder or a file that is not UTF-8 text, and a section name that could not
    sit in its markers, are refused (ConfigError) before anything is written."""
    path = Path(path)
    check_section(name)
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body}\n{end}"
    text = _read_doc(path)
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        heading = f"\n## {title}\n\n" if title else "\n"
        text = text.rstrip("\n") + "\n" + heading + block + "\n"
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise ConfigError(f"cannot write {brief(str(path))} ({os_reason(error)}); give a markdown file you can write") from None


def _read_doc(path: Path) -> str:
    """The markdown file's text, or a new document's heading when there is no file yet."""
    try:
        folder = path.is_dir()
        text = path.read_text(encoding="utf-8") if path.exists() and not folder else "# Benchmarks\n"
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text (byte {error.start}); a section is written into a markdown file") from None
    except OSError as error:
        raise ConfigError(f"cannot read {brief(str(path))} ({os_reason(error)}); give a markdown file you can read") from None
    if folder:
        raise ConfigError(f"{path} is a folder; a section is written into a markdown file (e.g. docs/benchmarks.md)")
    return text
