"""`plasticity continual`: the class-incremental benchmark of the structural memory and its baselines.

`add_parser(subparsers)` adds the subcommand to the main CLI; `python -m plasticity.lab.continual.cli
ARGS` runs it on its own (same arguments, without the word `continual`).

It writes only where it is told: the result files with `--out DIR` and cached sentence embeddings
under `--cache-dir` (text datasets only; default <plasticity cache>/embeddings), and with `--encoder
mpnet` its model, reassembled once under <plasticity cache>/models; the docs tool
(`python tools/docs.py`) writes doc sections from the result files. Every argument, `--set` values
included, is checked before any work (what needs the dataset, such as more tasks than classes or an
--encoder for numeric data, once it is loaded and before anything is encoded), and a bad one ends in
one line and status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plasticity.errors import ConfigError, PlasticityError, brief
from plasticity.io import check_output_folder, folder_lock
from plasticity.lab.continual.protocol import CLASS_ORDERS, METHODS
from plasticity.lab.executor import add_executor_options, executor_of
from plasticity.threads import add_threads_option, torch_threads

if TYPE_CHECKING:
    from plasticity.data.user import UserFiles
    from plasticity.lab.continual.experiment import ContinualConfig


def _csv(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value.strip()


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `continual` to an argparse subparsers object and return its parser."""
    from plasticity.data import names as data_names

    parser = subparsers.add_parser(
        "continual",
        help="class-incremental benchmark: structural memory vs backprop heads, NCM and k-NN",
        description="Class-incremental learning on frozen embeddings (text: all-MiniLM-L6-v2 or --encoder mpnet, cached; numbers: raw values). "
        "Every method gets the same embeddings, task order and sample order; results are mean ± std over task orders.",
    )
    configure(parser, data_names())
    parser.set_defaults(func=cmd_continual)
    return parser


def configure(parser: argparse.ArgumentParser, datasets: Sequence[str]) -> None:
    from plasticity.data.user import UserFiles  # its defaults are the options' defaults
    from plasticity.memory.encoders import DEFAULT_ENCODER, SENTENCE_MODELS

    parser.add_argument(
        "--data",
        default="digits",
        metavar="NAME|FILE",
        help=f"a registered dataset ({', '.join(datasets)}; default: digits) or your own training file: texts with labels "
        "(.csv with a header, .jsonl) or embeddings (.npy, with --labels); see docs/memory.md",
    )
    parser.add_argument("--root", help="folder with the dataset's files (clinc150, mnist-t10k)")
    files = parser.add_argument_group("your own files (with --data FILE)")
    files.add_argument("--test", metavar="FILE", help="test file, of the same kind as --data (default: a stratified --test-fraction of it)")
    files.add_argument("--val", metavar="FILE", help="validation file, for --select (default: 20%% of the training file)")
    files.add_argument("--oos", metavar="FILE", help="out-of-scope queries (no class of the data): texts, or embeddings without labels")
    files.add_argument("--labels", metavar="FILE", help="labels of a .npy --data: a .npy of whole numbers or strings, or a .txt, one a line")
    files.add_argument("--test-labels", metavar="FILE", help="labels of a .npy --test")
    files.add_argument("--val-labels", metavar="FILE", help="labels of a .npy --val")
    files.add_argument("--text-column", help=f"column (CSV) or key (JSON lines) of the texts (default: {UserFiles.text_column})")
    files.add_argument("--label-column", help=f"column or key of the labels (default: {UserFiles.label_column})")
    files.add_argument("--test-fraction", type=float, help=f"share of --data held out as test without --test (default: {UserFiles.test_fraction})")
    parser.add_argument(
        "--encoder",
        choices=list(SENTENCE_MODELS),
        default=DEFAULT_ENCODER,
        help=f"sentence model of text data (default: {DEFAULT_ENCODER}, all-MiniLM-L6-v2; mpnet: all-mpnet-base-v2, whose five "
        "weight packages are installed apart, see docs/memory.md); settings are then selected afresh; numeric data takes none",
    )
    parser.add_argument("--tasks", type=int, default=5, help="number of tasks of disjoint classes (default: 5)")
    parser.add_argument("--seeds", type=int, default=3, help="task orders 0..N-1 (default: 3)")
    parser.add_argument(
        "--class-order",
        choices=CLASS_ORDERS,
        default="random",
        help="random: the classes permuted per seed (default); data: in the order they first appear in the training data, "
        "the same for every seed (the seed still orders the samples)",
    )
    parser.add_argument("--methods", type=_csv, default=list(METHODS), help=f"comma-separated, from {', '.join(METHODS)} (default: all)")
    parser.add_argument(
        "--select",
        action="store_true",
        help="first choose every method's hyperparameters on held-out data (val, or 20%% of train); "
        "always done for data without stored choices (your own files, mnist1d, the MNIST family, any --encoder but the default)",
    )
    parser.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="StructuralMemory parameter, e.g. --set rank=8 --set tolerance=null (repeatable; values are JSON where possible, else text)",
    )
    parser.add_argument("--explain", type=int, default=0, metavar="N", help="explain N random test (and N out-of-scope) queries")
    parser.add_argument("--out", help="folder for summary.json, results.json (and explanations.json)")
    parser.add_argument("--cache-dir", help="embedding cache folder (default: <plasticity cache>/embeddings)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads_option(parser)
    add_executor_options(parser)


def check_paths(args: argparse.Namespace) -> None:
    """ConfigError unless --out and --cache-dir can be folders (run before any work)."""
    for option, value in (("--out", args.out), ("--cache-dir", args.cache_dir)):
        if value is not None:
            check_output_folder(value, option)


def config_of(args: argparse.Namespace) -> ContinualConfig:
    """The experiment that parsed arguments ask for, unchecked; the docs tool reads a stored run's here too."""
    from plasticity.lab.continual.experiment import ContinualConfig

    files = user_files(args)
    return ContinualConfig(
        data=Path(args.data).stem if files is not None else args.data,
        files=files,
        root=args.root,
        tasks=args.tasks,
        seeds=args.seeds,
        methods=tuple(args.methods),
        select=args.select,
        class_order=args.class_order,
        encoder=args.encoder,
        memory=dict(args.set),
        explain=args.explain,
        cache_dir=args.cache_dir,
    )


FILE_OPTIONS = ("test", "val", "oos", "labels", "test_labels", "val_labels", "text_column", "label_column", "test_fraction")


def user_files(args: argparse.Namespace) -> UserFiles | None:
    """The user's files that --data FILE and its options name; None for a registered dataset
    (ConfigError when file options come with one)."""
    from plasticity.data import names as data_names
    from plasticity.data.user import EMBEDDINGS, TEXTS, UserFiles

    given = [f"--{o.replace('_', '-')}" for o in FILE_OPTIONS if getattr(args, o) is not None]
    if args.data in data_names():
        if given:
            raise ConfigError(f"{', '.join(given)} are for your own files (--data FILE); {args.data} is a registered dataset")
        return None
    if Path(args.data).suffix.lower() not in (*TEXTS, EMBEDDINGS):
        raise ConfigError(f"unknown dataset {brief(args.data)}: give a registered one ({', '.join(data_names())}) or a file (.csv, .jsonl, .npy)")
    options = {o: getattr(args, o) for o in FILE_OPTIONS if getattr(args, o) is not None}  # the rest: UserFiles' defaults
    return UserFiles(train=args.data, **options)


def cmd_continual(args: argparse.Namespace) -> int:
    from plasticity.lab.continual.experiment import run_continual, write_outputs
    from plasticity.lab.continual.markdown import coarse_table, results_table

    config = config_of(args)
    config.validate()
    executor = executor_of(args)
    executor.validate()
    check_paths(args)
    # The outputs too: results.json records the thread count. The lock keeps two commands from
    # writing into one --out at once (the second stops before any work).
    with torch_threads(args.threads), folder_lock(args.out) if args.out else contextlib.nullcontext():
        try:
            run = run_continual(config, not args.quiet, executor, args.threads)
        except ImportError as error:  # the text extra is missing: say what to install, not a traceback
            print(f"plasticity continual: error: {error}", file=sys.stderr)
            return 2
        print(results_table(run.entries))
        for entry in run.entries:  # the structural memory's coarse level, on data with a domain map
            if entry.memory is not None and entry.memory.coarse is not None:
                print(f"\n{coarse_table(entry.memory.coarse, entry.dataset, entry.n_seeds)}")
        if args.out:
            path = write_outputs(run, args.out)
            print(f"summary: {path}, results: {Path(args.out) / 'results.json'}")
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m plasticity.lab.continual.cli ARGS`: the continual command on its own."""
    from plasticity.data import names as data_names

    parser = argparse.ArgumentParser(prog="plasticity continual", description="Class-incremental benchmark of the structural memory.")
    configure(parser, data_names())
    args = parser.parse_args(argv)
    try:
        return cmd_continual(args)
    except PlasticityError as error:  # a user's error, in one line; anything else is a bug and keeps its traceback
        print(f"plasticity continual: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("plasticity continual: interrupted; no file is left half-written (each is written atomically)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
