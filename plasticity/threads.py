"""CPU thread counts: the project's one default, the context manager that applies it, and its CLI option (with the
argparse type of counts, `count`, that both command lines use).

`DEFAULT_THREADS = 1`: one thread per run. The benchmark networks are small, so splitting an
operation across cores gains little, while with torch's own default (one thread per core) every
operation waits for all of them, and any other work on a shared machine stalls the run many times
over. Convolutions are the exception: LeNet-5 trains faster on two threads of an idle 2-core machine
(and slower with one core busy). The measurements, with their command, are in the "Thread count"
section of docs/benchmarks.md.

The limit covers torch's intra-op threads and, through `threadpoolctl`, NumPy's BLAS (the observers'
and the structural memory's linear algebra). The `--threads` option lives here, beside the default it
shows, because both command lines use it (`plasticity.lab.cli` and `plasticity.lab.continual.cli`).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

import torch
from threadpoolctl import threadpool_limits

from plasticity.errors import brief

DEFAULT_THREADS = 1

THREADS_HELP = (
    f"torch CPU threads (default: {DEFAULT_THREADS}, one thread per run: faster for the small benchmark networks "
    "and steady when the machine is shared; see docs/benchmarks.md)"
)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` torch intra-op and BLAS threads (None: unchanged), then restore both,
    even when the block raises."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(previous)


def count(text: str) -> int:
    """argparse type for a count (threads, seeds, epochs, batch size): a whole number ≥ 1, else a
    one-line usage error."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1; got {brief(text)}")
    return number


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """Give a command `--threads N` (default `DEFAULT_THREADS`); the command runs in `torch_threads(args.threads)`."""
    parser.add_argument("--threads", type=count, default=DEFAULT_THREADS, metavar="N", help=THREADS_HELP)
