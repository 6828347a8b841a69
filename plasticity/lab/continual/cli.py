"""`plasticity continual`: the class-incremental benchmark of the structural memory and its baselines.

`add_parser(subparsers)` adds the subcommand to the main CLI; `python -m plasticity.lab.continual.cli
ARGS` runs it on its own (same arguments, without the word `continual`).

It writes only where it is told: the result files with `--out DIR` and cached sentence embeddings
under `--cache-dir` (text datasets only; default <plasticity cache>/embeddings); the docs tool
(`python tools/docs.py`) writes doc sections from the result files. Every argument, `--set` values
included, is checked before any work, and a bad one ends in one line and status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plasticity.errors import PlasticityError
from plasticity.io import check_output_folder, folder_lock
from plasticity.lab.continual.protocol import METHODS
from plasticity.lab.executor import add_executor_options, executor_of
from plasticity.threads import add_threads_option, torch_threads

if TYPE_CHECKING:
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
        description="Class-incremental learning on frozen embeddings (text: all-MiniLM-L6-v2, cached; numbers: raw values). "
        "Every method gets the same embeddings, task order and sample order; results are mean ± std over task orders.",
    )
    configure(parser, data_names())
    parser.set_defaults(func=cmd_continual)
    return parser


def configure(parser: argparse.ArgumentParser, datasets: Sequence[str]) -> None:
    parser.add_argument("--data", choices=datasets, default="digits", help="dataset (default: digits)")
    parser.add_argument("--root", help="folder with the dataset's files (clinc150, mnist-t10k)")
    parser.add_argument("--tasks", type=int, default=5, help="number of tasks of disjoint classes (default: 5)")
    parser.add_argument("--seeds", type=int, default=3, help="task orders 0..N-1 (default: 3)")
    parser.add_argument("--methods", type=_csv, default=list(METHODS), help=f"comma-separated, from {', '.join(METHODS)} (default: all)")
    parser.add_argument("--select", action="store_true", help="first choose every method's hyperparameters on held-out data (val, or 20%% of train)")
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

    return ContinualConfig(
        data=args.data,
        root=args.root,
        tasks=args.tasks,
        seeds=args.seeds,
        methods=tuple(args.methods),
        select=args.select,
        memory=dict(args.set),
        explain=args.explain,
        cache_dir=args.cache_dir,
    )


def cmd_continual(args: argparse.Namespace) -> int:
    from plasticity.lab.continual.experiment import run_continual, write_outputs
    from plasticity.lab.continual.markdown import results_table

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
