"""The `plasticity` command line: demo, train, bench, report, card, data."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plasticity.errors import ConfigError, brief

if TYPE_CHECKING:
    from plasticity.lab.bench.runner import BenchConfig

RULE_OPTION_HELP = (
    "rule option as KEY=VALUE (repeatable), e.g. --set lr=0.003 --set optimizer=sgd; "
    "values are parsed as JSON where possible (numbers, true/false), else kept as text. "
    "See `plasticity card --rule NAME --options` for a rule's options."
)


def _csv(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(item) for item in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden widths must be integers like 256,256; got {text!r}") from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"hidden widths must be ≥ 1; got {text!r}")
    return widths


def _folder(text: str) -> str:
    """argparse type for an output folder (--out): `plasticity.io.check_output_folder`."""
    from plasticity.io import check_output_folder

    try:
        check_output_folder(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # not JSON, or a number too long to convert: the text itself
        return text


def _pairs(items: Sequence[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} must look like KEY=VALUE; got {brief(item)}")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    from plasticity.build import model_names
    from plasticity.threads import count

    parser.add_argument(
        "--model",
        choices=model_names(),
        default="mlp",
        help=(
            "network: mlp (default), cnn1d (MNIST-1D's reference 1-D CNN), lenet5 (28×28 images) or segments (one block per "
            "quarter of the input, docs/workspace.md H3); every rule but the spiking ones"
        ),
    )
    parser.add_argument("--device", default="cpu", help="where to train: cpu (default), cuda, cuda:1 (every rule but the spiking ones)")
    parser.add_argument(
        "--hidden", type=_widths, help="hidden layer widths (default: each rule's own: 256,256 for MLP rules, 256 for softhebb, 100 for the spiking ones)"
    )
    parser.add_argument("--activation", choices=("relu", "tanh"), default="tanh", help="hidden non-linearity (default: tanh)")
    parser.add_argument("--batch-size", type=count, help="mini-batch size (default: each rule's own: 64 for MLP rules, 32 for the spiking ones)")
    parser.add_argument(
        "--label-noise",
        type=float,
        default=0.0,
        metavar="P",
        help="replace each training label with probability P by a uniformly drawn class, drawn from the seed (default: 0, clean)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _observers(names: Sequence[str]) -> list:
    from plasticity.observe.registry import build_observers

    return build_observers(names)


# ------------------------------------------------------------------------------------ train
def _headline(name: str, values: Any) -> str:
    """An observer's own-named number for the epoch line (e.g. pi's `pi`, omega's `omega`), if it has one."""
    value = values.get(name) if isinstance(values, dict) else None
    return f"  {name} {value:.4g}" if isinstance(value, (int, float)) else ""


def epoch_lines(results: Any, observers: Sequence[str]) -> list[str]:
    """What `plasticity train` prints per epoch of a `RunResults`, with each observer's headline number."""
    return [
        f"epoch {entry.epoch:3d}  train loss {entry.train_loss:.4f}  "
        f"test accuracy {100 * entry.test_accuracy:.2f}%  ({entry.epoch_seconds:.2f} s)"
        + "".join(_headline(name, entry.observed.get(name)) for name in observers)
        for entry in results.epochs
    ]


def cmd_train(args: argparse.Namespace) -> int:
    """Train one run. With --out, an unfinished run of the same settings there is resumed (said on
    stderr); a finished or different one is refused unless --overwrite (`plasticity.train.train`)."""
    from plasticity.build import TrainConfig
    from plasticity.results import DIVERGED, RUN_RESULTS
    from plasticity.threads import torch_threads
    from plasticity.train import train

    config = TrainConfig(  # settings not given are None: TrainConfig.resolved gives them their defaults
        rule=args.rule,
        data=args.data,
        root=args.root,
        model=args.model,
        device=args.device,
        hidden=args.hidden,
        activation=args.activation,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        rule_options={key: _value(value) for key, value in _pairs(args.set, "--set")},
        label_noise=args.label_noise,
    )
    with torch_threads(args.threads):
        results = train(
            config,
            observers=_observers(args.observe),
            out_dir=args.out,
            progress=not args.quiet,
            resume=True if args.resume else None,
            overwrite=args.overwrite,
            on_resume=lambda epoch: print(f"plasticity: resuming after epoch {epoch} (the run in {args.out})", file=sys.stderr),
        )
    for line in epoch_lines(results, args.observe):
        print(line)
    if results.status == DIVERGED:
        print(f"plasticity: {results.message}", file=sys.stderr)
        return 1
    print(f"{args.rule} on {results.dataset.name}: test accuracy {100 * results.test_accuracy:.2f}%")
    if args.out:
        print(f"results: {Path(args.out) / RUN_RESULTS}")
    return 0


# ------------------------------------------------------------------------------------ bench
def _bench_roots(items: Sequence[str], datasets: Sequence[str]) -> dict[str, str]:
    roots: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if sep:
            if name in roots:
                raise ConfigError(f"--root gives {brief(name)} two folders; give one")
            roots[name] = path
        else:
            roots.update({dataset: item for dataset in datasets if dataset not in roots})
    return roots


def _bench_options(items: Sequence[str], rules: Sequence[str]) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    for key, value in _pairs(items, "--set"):
        rule, dot, option = key.partition(".")
        targets = [rule] if dot else list(rules)
        option = option if dot else key
        for target in targets:
            options.setdefault(target, {})[option] = _value(value)
    return options


SUITE_CONFLICTS = (
    "--rules",
    "--data",
    "--seeds",
    "--first-seed",
    "--epochs",
    "--set",
    "--root",
    "--observe",
    "--model",
    "--device",
    "--hidden",
    "--activation",
    "--batch-size",
    "--label-noise",
)


def bench_grid(args: argparse.Namespace) -> tuple[BenchConfig, list[str], str | None]:
    """(BenchConfig, observer names, output folder) of a bench's parsed arguments, from the flags or
    --suite (`args.argv`: the arguments as typed). The docs tool reads a stored bench's grid here too."""
    from plasticity.lab.bench.runner import BenchConfig

    if args.suite:
        from plasticity.lab.bench.suite import load_suite

        # argparse accepts unambiguous prefixes (--rule for --rules), so match them too.
        flags = [a.split("=")[0] for a in args.argv if a.startswith("--") and len(a.split("=")[0]) > 2]
        given = sorted({o for flag in flags for o in SUITE_CONFLICTS if o.startswith(flag)})
        if given:
            raise ConfigError(f"--suite takes the grid from {args.suite}; drop {', '.join(given)} or put it in the file")
        suite = load_suite(args.suite)
        return suite.bench_config(), suite.observe, args.out or str(Path("runs") / suite.name)
    config = BenchConfig(
        rules=args.rules,
        datasets=args.data,
        seeds=args.seeds,
        first_seed=args.first_seed,
        epochs=args.epochs,
        # None: each rule its own default widths and batch (`Rule.default_hidden`, `default_batch_size`).
        model=args.model,
        device=args.device,
        hidden=args.hidden,
        activation=args.activation,
        batch_size=args.batch_size,
        rule_options=_bench_options(args.set, args.rules),
        roots=_bench_roots(args.root, args.data),
        label_noise=args.label_noise,
    )
    return config, args.observe, args.out


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the grid (resuming what --out holds) and print its table; the docs tool writes doc sections."""
    from plasticity.lab.bench.markdown import table
    from plasticity.lab.bench.runner import run_bench
    from plasticity.lab.executor import executor_of
    from plasticity.results import BENCH_RESULTS, FAILURES, SUMMARY
    from plasticity.threads import torch_threads

    config, observe, out = bench_grid(args)
    with torch_threads(args.threads):
        _, summary = run_bench(config, out, lambda: _observers(observe), not args.quiet, executor=executor_of(args), threads=args.threads)
    print(table(summary))
    if out:
        print(f"results: {Path(out) / BENCH_RESULTS}, summary: {Path(out) / SUMMARY}")
    failed = sum(row.failed or 0 for row in summary)
    if failed:
        where = f"; their tracebacks are in {Path(out) / FAILURES}" if out else ""
        print(f"plasticity bench: {failed} run(s) failed{where}. Rerun the same command to run them again.", file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------------------------ demo
def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo into --out (resuming what it holds); its wall time is recorded in demo.json there."""
    from plasticity.lab.bench.markdown import table
    from plasticity.lab.demo import DemoConfig, run_demo

    config = DemoConfig(threads=args.threads)
    result = run_demo(config, args.out, progress=not args.quiet, started=args.started)
    print(table(result.summary))
    print(f"report: {result.report}")
    if result.continual is not None:
        print(f"structural memory: {result.continual}")
    print(f"demo wall time: {result.seconds:.1f} s" + ("" if result.fresh else " (resumed: earlier runs were reused)"))
    return 0


# ------------------------------------------------------------------------------------ report
def cmd_report(args: argparse.Namespace) -> int:
    from plasticity.lab.report import build_report

    index = build_report(args.runs_dir, args.out)
    print(f"report: {index}")
    return 0


# ------------------------------------------------------------------------------------ card
def cmd_card(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from plasticity.observe.plausibility import probe_inputs, probe_rule
    from plasticity.rules import attachable, make_config, rule_class
    from plasticity.rules import names as rule_names
    from plasticity.threads import torch_threads

    names = args.rule if args.rule is not None else (attachable() if args.model != "mlp" else rule_names())
    out: list[dict[str, Any]] = []
    for name in names:
        options = {key: _value(value) for key, value in _pairs(args.set, "--set")}
        rule = probe_rule(name, options, model=args.model)
        card = rule.card() if args.model != "mlp" else _trained_card(name, options)
        entry = {"card": card.to_dict()}
        if args.options:
            entry["options"] = asdict(make_config(name, options))
            entry["options_doc"] = (rule_class(name).config_class.__doc__ or "").strip()
            entry["options_by_dataset"] = rule_class(name).options_by_dataset
        if args.verify:
            from plasticity.observe.plausibility import measure, verify

            with torch_threads(args.threads):
                measured = measure(rule, x=probe_inputs(args.model) if args.model != "mlp" else None)
            entry["measured"] = measured.to_dict()
            entry["violations"] = verify(rule.card(), measured)  # the card of the network measured
        out.append(entry)
        if not args.json:
            print(card.to_markdown())
            if args.options:
                print("\noptions: " + ", ".join(f"{k}={v}" for k, v in entry["options"].items()))
                for dataset, own in entry["options_by_dataset"].items():
                    print(f"on {dataset} by default: " + ", ".join(f"{k}={v}" for k, v in own.items()))
            if args.verify:
                print(f"\nmeasured by perturbation{' on a small network of the same kind' if args.model == 'mlp' else ''}:")
                for key, value in entry["measured"].items():
                    print(f"  {key}: {value}")
                print("  verdict: " + _verdict(entry))
            print()
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[0], indent=2, ensure_ascii=False))
    if args.out:
        from plasticity.io import atomic_write_json

        atomic_write_json(args.out, out)
        print(f"cards: {args.out}")
    return 1 if args.verify and any(e["violations"] for e in out) else 0


def _trained_card(name: str, options: dict[str, Any]) -> Any:
    """Rule `name`'s card on the network `plasticity train --rule NAME --data digits` builds, so that
    it reads as the card a run records (a depth-dependent entry, pc's T = L−1, is that network's)."""
    from plasticity.build import TrainConfig, build_run
    from plasticity.data import load

    return build_run(TrainConfig(rule=name, rule_options=options), load("digits")).rule.card()


def _verdict(entry: dict[str, Any]) -> str:
    """What `card --verify` concludes, in words: whether the card tells the truth about the rule,
    which is not whether the rule is plausible (backprop's card holds: it declares exact weight
    transport and non-local updates, and the perturbations confirm both)."""
    if entry["violations"]:
        return "VIOLATED: " + "; ".join(entry["violations"])
    measured = entry["measured"]
    facts = [
        f"weight transport {measured['weight_transport']}" if "weight_transport" in measured else "",
        ("layer-local" if measured["layer_local"] else "not layer-local") if "layer_local" in measured else "",
    ]
    found = ", ".join(fact for fact in facts if fact)
    return (
        "card holds: the perturbations confirm what the card declares"
        + (f" ({found})" if found else "")
        + "; it says the card is true, not that the rule is plausible"
    )


# ------------------------------------------------------------------------------------ data
def cmd_data(args: argparse.Namespace) -> int:
    from plasticity.data import describe, load

    if args.action == "list":
        print(describe())
        return 0
    print(load(args.name, root=args.root, download=args.download))
    return 0


# ------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    from plasticity.data import names as data_names
    from plasticity.io import file_to_write
    from plasticity.lab.executor import add_executor_options
    from plasticity.observe.registry import names as observer_names
    from plasticity.rules import names as rule_names
    from plasticity.threads import add_threads_option, count

    parser = argparse.ArgumentParser(
        prog="plasticity",
        description="Learning without backpropagation: local learning rules benchmarked side by side with backprop.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="run every rule on digits and MNIST-1D with observers, and build the report (a few minutes)",
        description="The first thing to run: every registered rule side by side with backprop on digits and MNIST-1D "
        "(3 seeds, one network, observers ΣPI, Ω and alignment), then the HTML report. Offline; rerun to resume.",
    )
    demo.add_argument("--out", type=_folder, default="runs/demo", help="folder for the runs and the report (default: runs/demo)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads_option(demo)
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser(
        "train",
        help="train one network with one rule",
        description="Train one network (the MLP, or the spiking network for stdp and rstdp) with one learning rule.",
    )
    train.add_argument("--rule", choices=rule_names(), default="bp", help="learning rule (default: bp)")
    train.add_argument("--data", choices=data_names(), default="digits", help="dataset (default: digits)")
    train.add_argument("--root", help="folder with the dataset's files (mnist, fashion-mnist, mnist-t10k, clinc150)")
    train.add_argument("--epochs", type=count, help="training epochs (default: digits 30, mnist1d 60, mnist-t10k 20, others 20)")
    train.add_argument("--seed", type=int, default=0, help="seed for weights, feedback and batch order (default: 0)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=RULE_OPTION_HELP)
    train.add_argument("--observe", type=_csv, default=[], help=f"observers to attach, comma-separated: {', '.join(observer_names())}")
    train.add_argument(
        "--out",
        type=_folder,
        help="folder for results.json and checkpoint.safetensors; an unfinished run with the same settings there is resumed",
    )
    train.add_argument("--resume", action="store_true", help="continue the run in --out, and fail if there is none to continue")
    train.add_argument("--overwrite", action="store_true", help="start afresh in --out, replacing the run it holds")
    _add_network_options(train)
    add_threads_option(train)
    train.set_defaults(func=cmd_train)

    bench = sub.add_parser(
        "bench",
        help="run rules side by side on the same network, data and seeds",
        description="Run every rule on every dataset with seeds 0..N-1, on the same network and batch order; "
        "print a markdown table (mean ± std over seeds, ratios to bp measured in the same run) and, with --out, "
        "write every run's results (`python tools/docs.py` puts a stored bench's table into the docs).",
    )
    bench.add_argument("--rules", type=_csv, default=["bp"], help=f"rules, comma-separated: {', '.join(rule_names())}")
    bench.add_argument("--data", type=_csv, default=["digits"], help=f"datasets, comma-separated: {', '.join(data_names())}")
    bench.add_argument("--seeds", type=count, default=3, help="number of seeds: 0..N-1, or S..S+N-1 with --first-seed (default: 3)")
    bench.add_argument(
        "--first-seed", type=int, default=0, metavar="S", help="run seeds S..S+N-1 instead (default: 0), e.g. to choose settings on seeds a table does not use"
    )
    bench.add_argument("--epochs", type=count, help="epochs for every dataset (default: digits 30, mnist1d 60, mnist-t10k 20, others 20)")
    bench.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[RULE.]KEY=VALUE",
        help="rule option for every rule (KEY=VALUE) or one rule (RULE.KEY=VALUE), e.g. --set fa.lr=0.0005",
    )
    bench.add_argument("--root", action="append", default=[], metavar="[DATASET=]DIR", help="data folder, for all datasets or DATASET=DIR")
    bench.add_argument("--observe", type=_csv, default=[], help=f"observers to attach to every run: {', '.join(observer_names())}")
    bench.add_argument(
        "--suite",
        metavar="FILE.yaml",
        help="run the grid a YAML suite file defines (rules × datasets × seeds × configs; see docs/report.md) instead of "
        "--rules/--data/...; results go to --out, default runs/SUITE_NAME",
    )
    bench.add_argument("--out", type=_folder, help="folder for results.jsonl, summary.json and per-run results; rerun to resume")
    _add_network_options(bench)
    add_threads_option(bench)
    add_executor_options(bench)
    bench.set_defaults(func=cmd_bench)

    _add_report(sub)

    card = sub.add_parser(
        "card",
        help="show a rule's plausibility card",
        description="Show what a rule's weight update reads (weight transport, locality, phases, locks, global signal); "
        "--verify checks the card by perturbation on a small network.",
    )
    card.add_argument("--rule", type=_csv, help="rules, comma-separated (default: all; with --model, all that attach to it)")
    card.add_argument(
        "--model",
        choices=("mlp", "cnn1d", "lenet5"),
        default="mlp",
        help="network the card is measured on (default: a small MLP; cnn1d, lenet5: every rule but the spiking ones)",
    )
    card.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=RULE_OPTION_HELP)
    card.add_argument("--json", action="store_true", help="print JSON instead of tables")
    card.add_argument("--options", action="store_true", help="also list the rule's options and their defaults")
    card.add_argument("--verify", action="store_true", help="measure the card by perturbation; exit 1 if it does not hold")
    card.add_argument(
        "--out", type=file_to_write, metavar="FILE.json", help="also write the cards (and measurements) to this JSON file: a list, as --json prints"
    )
    add_threads_option(card)
    card.set_defaults(func=cmd_card)

    from plasticity.lab.continual.cli import add_parser as add_continual

    add_continual(sub)

    data = sub.add_parser("data", help="list or inspect datasets", description="List the registered datasets, or load one and describe it.")
    data_sub = data.add_subparsers(dest="action", required=True)
    data_sub.add_parser("list", help="list registered datasets")
    show = data_sub.add_parser("show", help="load a dataset and print its sizes")
    show.add_argument("name", choices=data_names())
    show.add_argument("--root", help="folder with the dataset's files")
    show.add_argument("--download", action="store_true", help="download missing files (md5-verified)")
    data.set_defaults(func=cmd_data)
    return parser


def _check_not_shadowed() -> None:
    """Refuse to run when `import plasticity` found another folder named `plasticity` (one beside
    the user's script, say) while this module came from the installed package: every later import
    would mix the two."""
    package = sys.modules.get("plasticity")
    location = getattr(package, "__file__", None)
    installed = Path(__file__).resolve().parents[1]  # plasticity/lab/cli.py → plasticity/
    if location is None or Path(location).resolve().parent != installed:
        found = location or ", ".join(getattr(package, "__path__", [])) or "?"
        raise ConfigError(f"'import plasticity' finds {found}, not the installed package at {installed}; rename that folder or run from another one")


def _add_report(sub: argparse._SubParsersAction) -> None:
    """The `report` command's parser."""
    report = sub.add_parser(
        "report",
        help="build the HTML report of a results folder",
        description="Build index.html with tables, learning curves, ΣPI and Ω traces, alignment angles, plausibility "
        "cards and continual-learning plots from the results in RUNS_DIR (bench, train or continual runs).",
    )
    report.add_argument("runs_dir", metavar="RUNS_DIR", help="a results folder (the --out of bench, train, demo or a continual run)")
    report.add_argument("--out", type=_folder, help="folder for index.html and its images (default: RUNS_DIR/report)")
    report.set_defaults(func=cmd_report)


def report_parser() -> argparse.ArgumentParser:
    """The parser of `plasticity report` alone: the report reads results files only, so its command
    imports neither torch nor a rule, which every other command's options name
    (tests/test_report_without_torch.py)."""
    parser = argparse.ArgumentParser(prog="plasticity")
    _add_report(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A `PlasticityError` (bad input, a file that fails its checks) ends in one
    line and status 2; Ctrl-C, at any moment from start-up on, in one line and status 130; any
    other exception is a bug and keeps its traceback."""
    from plasticity.errors import PlasticityError

    started = time.perf_counter()  # before the parser imports torch: the demo's wall time includes it
    args = None
    try:
        _check_not_shadowed()
        words = list(sys.argv[1:] if argv is None else argv)
        parser = report_parser() if words[:1] == ["report"] else build_parser()
        args = parser.parse_args(words)
        args.started = started
        args.argv = words
        return args.func(args)
    except PlasticityError as error:
        print(f"plasticity: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"plasticity: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130


def _resume_hint(args: argparse.Namespace | None) -> str:
    """How to go on after Ctrl-C: the commands that keep finished work in an output folder
    (train with --out, bench with --out or --suite, demo) resume when rerun; the others start over."""
    command = getattr(args, "command", None)
    if (command == "train" and args.out) or (command == "bench" and (args.out or args.suite)) or command == "demo":
        return "; rerun the same command to resume (finished epochs are kept in its output folder)"
    return ""


if __name__ == "__main__":
    sys.exit(main())
