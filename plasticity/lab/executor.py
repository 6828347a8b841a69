"""Where the harness's independent runs execute: here, one after another (`local`), or as Ray tasks
(`ray`) on this machine or a cluster.

Ray (Moritz et al. 2018, "Ray: a distributed framework for emerging AI applications", OSDI) is an
optional extra (`pip install -e ".[ray]"`); nothing imports it unless `--executor ray` is asked for.
With Ray, every run is one task that needs `cpus_per_run` CPUs and `gpus_per_run` GPUs; Ray places
the tasks on whatever nodes have them free. Without an address a local Ray instance is started for
the command (and stopped after it); with one (`ray start --head` prints it) the tasks go to that
cluster. A task whose worker dies (a node lost, a process killed) is retried `retries` times by Ray;
an error the run raises itself is not retried, and comes back to the driver as a `Failed` with its
traceback. The driver alone writes results: tasks return what they computed and write nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from plasticity.errors import ConfigError, PlasticityError, brief

LOCAL, RAY = "local", "ray"
EXECUTORS = (LOCAL, RAY)
DEFAULT_RETRIES = 2  # Ray's reruns of a task whose worker died (not of a run that raised)
MISSING_RAY = '--executor ray needs Ray, an optional extra: pip install -e ".[ray]" (or pip install ray)'


def host() -> str:
    """The name of the machine this process runs on, recorded with each run: time ratios are
    formed only between runs of one host (`plasticity.lab.bench.summary`)."""
    return socket.gethostname()


@dataclass(frozen=True)
class Executor:
    """How a grid's runs execute.

    kind: "local" (this process, one run after another) or "ray" (a Ray task per run).
    address: the Ray cluster to join (`ray start --head` prints it; "auto" finds one started on
        this machine); None starts a local Ray instance for the command.
    cpus_per_run, gpus_per_run: what Ray reserves for each run (a run trains with the command's
        `--threads` torch threads; give the same number of CPUs).
    retries: how many times Ray reruns a task whose worker died.
    """

    kind: str = LOCAL
    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    retries: int = DEFAULT_RETRIES

    def validate(self, device: str = "cpu") -> None:
        """ConfigError for settings that cannot run; `device` is where the runs train."""
        if self.kind not in EXECUTORS:
            raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}; got {brief(self.kind)}")
        if self.cpus_per_run <= 0 or self.gpus_per_run < 0 or self.retries < 0:
            raise ConfigError(f"cpus per run must be > 0, GPUs per run ≥ 0 and retries ≥ 0; got {self.cpus_per_run}, {self.gpus_per_run}, {self.retries}")
        if self.kind == LOCAL and self != Executor():  # a Ray option given without Ray
            raise ConfigError("--address, --cpus-per-run, --gpus-per-run and --retries are Ray's: add --executor ray, or drop them")
        if self.kind == RAY and device.startswith("cuda") and not self.gpus_per_run:
            raise ConfigError(
                "--device cuda on Ray needs --gpus-per-run (e.g. 1, or 0.5 to put two runs on one GPU): Ray hides GPUs from tasks that reserve none"
            )

    @property
    def remote(self) -> bool:
        return self.kind == RAY


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """Give a command `--executor`, `--address`, `--cpus-per-run`, `--gpus-per-run` and `--retries`
    (read back with `executor_of`)."""
    group = parser.add_argument_group("executor (where the runs execute)")
    group.add_argument("--executor", choices=EXECUTORS, default=LOCAL, help="local: here, one run after another (default); ray: a Ray task per run")
    group.add_argument("--address", help="Ray cluster address (from `ray start --head`; default: start a local Ray instance on this machine)")
    default = Executor()
    cpus, gpus = "CPUs Ray reserves for each run (default: 1; give --threads N too)", "GPUs Ray reserves for each run (default: 0; fractions share a GPU)"
    group.add_argument("--cpus-per-run", type=float, default=default.cpus_per_run, metavar="N", help=cpus)
    group.add_argument("--gpus-per-run", type=float, default=default.gpus_per_run, metavar="F", help=gpus)
    group.add_argument("--retries", type=int, default=default.retries, metavar="N", help=f"reruns of a task whose Ray worker died (default: {default.retries})")


def executor_of(args: argparse.Namespace) -> Executor:
    """The executor parsed arguments ask for."""
    return Executor(args.executor, args.address, args.cpus_per_run, args.gpus_per_run, args.retries)


class RemoteError(PlasticityError):
    """Runs that failed on Ray, for a command that cannot go on without them (the message holds
    their errors and tracebacks)."""


@dataclass(frozen=True)
class Failed:
    """A run that raised (or whose worker died for good): what, and the traceback."""

    error: str
    traceback: str


def guarded(task: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """(host, task(*args)), or (host, Failed) when the task raises: a task's error is a result
    the driver records, not an exception that would stop the sweep."""
    where = host()
    try:
        return where, task(*args)
    except Exception as error:  # any error of a run is reported with its traceback
        return where, Failed(f"{type(error).__name__}: {error}", traceback.format_exc())


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ConfigError(MISSING_RAY) from error
    return ray


@contextlib.contextmanager
def ray_session(executor: Executor) -> Iterator[Any]:
    """The `ray` module, connected: to the running instance when this process already has one, else
    to `executor.address`, else to a local instance started here and stopped on leaving."""
    ray = _import_ray()
    # No usage report to Ray's servers unless the user opts in: a sweep runs offline (CI, clusters without internet).
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        yield ray
        return
    try:
        ray.init(address=executor.address, include_dashboard=False, logging_level="ERROR", log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {executor.address!r}" if executor.address else "a local Ray instance"
        raise ConfigError(f"could not start or join {where}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from error
    try:
        yield ray
    finally:
        ray.shutdown()


def run_tasks(ray: Any, executor: Executor, task: Callable[..., Any], jobs: Sequence[tuple[Any, tuple[Any, ...]]]) -> Iterator[tuple[Any, str | None, Any]]:
    """Submit `task(*args)` for every (key, args) of `jobs` and yield (key, host, result or Failed)
    as each finishes, in the order they finish. Leaving early (an interruption) cancels what is
    still queued or running."""
    remote = ray.remote(num_cpus=executor.cpus_per_run, num_gpus=executor.gpus_per_run, max_retries=executor.retries, retry_exceptions=False)(guarded)
    pending = {remote.remote(task, *args): key for key, args in jobs}
    try:
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            key = pending.pop(ready)
            try:
                where, result = ray.get(ready)
            except ray.exceptions.RayError as error:  # the worker died past its retries, or the task was lost
                first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                yield key, None, Failed(f"{type(error).__name__}: {first}", str(error))
                continue
            yield key, where, result
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
