"""A whole continual experiment: embed, (select), run every method, summarise, write the files.

Output folder (`write_outputs`):

- `summary.json`: one object per method (`plasticity.results.ContinualEntry`), including the mean
  accuracy matrix and, on datasets with out-of-scope queries, the ROC (`roc`: fpr, tpr) and the
  risk–coverage curve (`risk_coverage`: coverage, risk).
- `results.json` (`plasticity.results.ContinualResults`): the configuration, settings, versions,
  encoding times, selection trials and every seed's full result (accuracy matrix, metrics,
  curves, task classes).
- `explanations.json` (with `explain` > 0): the topics of the memory of task order 0 and its
  explanations of random test and out-of-scope queries.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from plasticity.data import load
from plasticity.data import names as data_names
from plasticity.data.user import UserFiles, load_files
from plasticity.errors import ConfigError, PlasticityError, brief
from plasticity.io import atomic_write_json
from plasticity.lab.continual.coarse import Domains, domain_file, read_domains
from plasticity.lab.continual.embedding import Embedded, embed_dataset
from plasticity.lab.continual.protocol import CLASS_ORDERS, METHODS, RANDOM, Stream, check_tasks, run_dataset, summarize
from plasticity.lab.continual.selection import select
from plasticity.lab.continual.settings import CHOSEN, Settings
from plasticity.lab.executor import Executor
from plasticity.memory.encoders import DEFAULT_ENCODER, SENTENCE_MODELS
from plasticity.memory.structural import StructuralMemory, check_params, check_unknown_label
from plasticity.results import RUN_RESULTS, SUMMARY, ContinualEntry, ContinualResults, ContinualSeedResult, ContinualSummary, Place, read_json

RESULTS = RUN_RESULTS
EXPLANATIONS = "explanations.json"


@dataclass
class ContinualConfig:
    """One continual experiment on one dataset.

    memory: StructuralMemory parameters overriding the dataset's chosen settings (not
        random_state: each task order's seed is the memory's).
    class_order: "random" (a permutation of the classes per task order) or "data" (the order in which
        they first appear in the training data, every seed; `protocol.Stream.make`).
    files: a user's own dataset (`plasticity.data.user.UserFiles`) instead of a registered one;
        `data` is then the name it is reported under.
    select: choose every method's hyperparameters on held-out data first (`selection.py`).
    encoder: the sentence model of text data, a name in `plasticity.memory.encoders.SENTENCE_MODELS`;
        numeric data and embeddings take none but the default. The stored settings were chosen
        with the default, so with another one every method is selected afresh.
    explain: number of test queries (and of out-of-scope queries) to explain after the run.
    """

    data: str = "digits"
    root: str | None = None
    tasks: int = 5
    seeds: int = 3
    methods: tuple[str, ...] = METHODS
    select: bool = False
    memory: dict[str, Any] = field(default_factory=dict)
    explain: int = 0
    cache_dir: str | None = None
    files: UserFiles | None = None
    class_order: str = RANDOM
    encoder: str = DEFAULT_ENCODER

    def validate(self) -> None:
        """ConfigError for any setting that cannot run (all but tasks > classes and an encoder for a
        registered numeric dataset, which need the dataset)."""
        if self.files is not None:
            if self.root is not None:
                raise ConfigError("--root is for registered datasets; a file given as --data is read from its own path")
            self.files.validate()
        elif self.data not in data_names():
            raise ConfigError(f"unknown dataset {brief(self.data)}: give a registered one ({', '.join(data_names())}) or a file (.csv, .jsonl, .npy)")
        if self.tasks < 1:
            raise ConfigError(f"tasks must be ≥ 1; got {self.tasks}")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be ≥ 1; got {self.seeds}")
        if self.explain < 0:
            raise ConfigError(f"explain must be ≥ 0; got {self.explain}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ConfigError(f"methods must be among {', '.join(METHODS)}; got {brief(', '.join(self.methods) or 'none')}")
        if self.explain and "structural" not in self.methods:
            raise ConfigError("explain needs the structural method; add it to the methods or drop explain")
        if self.encoder not in SENTENCE_MODELS:
            raise ConfigError(f"encoder must be one of {', '.join(SENTENCE_MODELS)}; got {brief(self.encoder)}")
        if self.encoder != DEFAULT_ENCODER and self.files is not None and not self.files.texts:
            raise ConfigError(f"--encoder {self.encoder} is for texts; {brief(self.files.train)} holds embeddings, which are used as they are")
        if self.class_order not in CLASS_ORDERS:
            raise ConfigError(f"class order must be one of {', '.join(CLASS_ORDERS)}; got {brief(self.class_order)}")
        if "random_state" in self.memory:
            raise ConfigError("random_state cannot be set: each task order's seed is the memory's random_state; remove it (--seeds sets the task orders)")
        check_params(self.memory)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["methods"] = list(self.methods)
        # At their defaults, the options added later are left out: the dict of runs stored before they existed.
        for key, default in (("files", None), ("class_order", RANDOM), ("encoder", DEFAULT_ENCODER)):
            if out[key] == default:
                del out[key]
        return out


@dataclass
class ContinualRun:
    """A continual experiment's outcome: `results` per method and task order, `entries` of its
    summary (one per method)."""

    config: ContinualConfig
    data: Embedded
    settings: Settings
    selection: dict[str, Any] | None
    results: dict[str, list[ContinualSeedResult]]
    entries: list[ContinualEntry]
    explanations: dict[str, Any] | None
    seconds: float
    domains: Domains | None = None

    def record(self) -> ContinualResults:
        """What results.json holds."""
        from plasticity.train import software

        return ContinualResults(
            config=self.config.to_dict(),
            settings=self.settings.to_dict(),
            selection=self.selection,
            encoder=self.data.encoder,
            encoding=self.data.encoding,
            classes=list(self.data.classes),
            seconds=self.seconds,
            versions=software(),
            results=self.results,
            domains=self.domains.to_dict() if self.domains is not None else None,
        )


def run_continual(config: ContinualConfig, progress: bool = True, executor: Executor | None = None, threads: int | None = None) -> ContinualRun:
    """Run the experiment described by `config` (nothing is written; see `write_outputs`). The
    task orders run here, or on Ray with `threads` threads each (`protocol.run_dataset`); encoding
    and model selection run here."""
    config.validate()
    started = time.perf_counter()
    dataset = load_files(config.files, config.data) if config.files is not None else load(config.data, root=config.root, standardize=False)
    # Before encoding, which may take minutes: what only the dataset can refute. The runs label
    # classes by index, the explanations by name; an unknown label may be neither.
    check_tasks(len(dataset.classes), config.tasks)
    if config.memory.get("unknown_label") is not None:
        check_unknown_label(config.memory["unknown_label"], {*range(len(dataset.classes)), *dataset.classes})
    if config.encoder != DEFAULT_ENCODER and not isinstance(dataset.train.x, list):
        raise ConfigError(f"--encoder {config.encoder} is for text data; {config.data} is numeric and used as it is")
    # A domain map beside a registered dataset's files (CLINC150's domains.json) scores the memory's
    # coarse level; only the evaluation reads it (`coarse.py`).
    where = domain_file(config.data, config.root) if config.files is None else None
    domains = read_domains(where, dataset.classes) if where is not None else None
    data = embed_dataset(config.data, dataset, config.encoder, cache_dir=config.cache_dir, progress=progress)
    # The stored settings were chosen on the default encoder's embeddings: another's are selected afresh.
    stored = None if config.files is not None or config.encoder != DEFAULT_ENCODER else CHOSEN.get(config.data)
    settings = replace(stored or Settings(), memory={**(stored or Settings()).memory, **config.memory})
    selection = None
    # Chosen afresh on held-out data when asked, and always for data with no stored choice (a user's
    # files, another encoder's embeddings), so that no baseline runs untuned by default; explicit --set
    # values win over the selection.
    if config.select or stored is None:
        chosen, selection = select(data, config.tasks, Settings(), progress=progress)
        settings = replace(chosen, memory={**chosen.memory, **config.memory})
    results = run_dataset(data, settings, config.tasks, config.seeds, config.methods, progress, executor, threads, config.class_order, domains)
    explanations = explain_examples(data, settings, config.tasks, config.explain, class_order=config.class_order) if config.explain else None
    entries = summarize(data.name, results)
    return ContinualRun(config, data, settings, selection, results, entries, explanations, time.perf_counter() - started, domains)


def explain_examples(data: Embedded, settings: Settings, tasks: int, n: int, seed: int = 0, class_order: str = RANDOM) -> dict[str, Any]:
    """Train the memory on task order `seed` (labels are class names), then explain n random test
    queries and n out-of-scope ones: {"topics": topic_summary(), "queries": [...]}."""
    memory = StructuralMemory(**settings.memory, random_state=seed)
    stream = Stream.make(data.train.y, data.n_classes, tasks, seed, class_order)
    names = np.array(data.classes, dtype=object)
    for index in stream.samples:
        keys = [data.train.texts[k] for k in index] if data.train.texts is not None else [f"train[{k}]" for k in index]
        memory.partial_fit(data.train.x[index], names[data.train.y[index]], keys=keys)
    rng = np.random.default_rng(seed)
    chosen = [("test", data.test, i) for i in rng.choice(len(data.test.y), size=min(n, len(data.test.y)), replace=False)]
    if "test" in data.oos:
        oos = data.oos["test"]
        chosen += [("oos_test", oos, i) for i in rng.choice(len(oos.y), size=min(n, len(oos.y)), replace=False)]
    examples = []
    for split, part, i in chosen:
        explanation = memory.explain(part.x[i : i + 1])[0]
        truth = int(part.y[i])
        examples.append(
            {
                "split": split,
                "index": int(i),
                "query": part.texts[i] if part.texts is not None else f"{split}[{i}]",
                "true_label": data.classes[truth] if truth >= 0 else "out of scope",
                "explanation": explanation.to_dict(),
                "text": str(explanation),
            }
        )
    return {"topics": memory.topic_summary(), "queries": examples}


def write_outputs(run: ContinualRun, out_dir: str | Path) -> Path:
    """Write summary.json, results.json (and explanations.json) into out_dir; returns the summary's path."""
    out = Path(out_dir)
    atomic_write_json(out / SUMMARY, ContinualSummary(run.entries).to_json())
    atomic_write_json(out / RESULTS, run.record().to_json())
    if run.explanations:
        atomic_write_json(out / EXPLANATIONS, run.explanations)
    return out / SUMMARY


def continual_demo(out_dir: str | Path, progress: bool = True) -> Path:
    """The quick class-incremental run of `plasticity demo`: digits (raw pixels), 5 tasks of 2
    classes, task orders 0, 1, 2, every method; writes the `continual` command's files into
    out_dir and returns the path of its summary.json. A folder that already holds the results of
    the same configuration is reused as it is.
    """
    config = ContinualConfig(data="digits", tasks=5, seeds=3)
    out = Path(out_dir)
    if (out / SUMMARY).exists() and _stored_config(out / RESULTS) == config.to_dict():
        return out / SUMMARY
    return write_outputs(run_continual(config, progress=progress), out)


def _stored_config(path: Path) -> dict[str, Any] | None:
    """The configuration of the continual run whose results.json is at `path`; None when there is
    none, or it cannot be read (the demo then runs afresh and replaces it)."""
    try:
        return ContinualResults.from_json(read_json(path), Place(path)).config if path.exists() else None
    except PlasticityError:
        return None
