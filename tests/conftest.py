"""Shared fixtures: tiny data and networks, so the whole suite runs in minutes on 2 cores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Property tests draw the same examples on every run (a red CI is then a bug, never a draw); run
# `pytest --hypothesis-profile=explore` to search with fresh random examples.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("deterministic")

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _threads() -> None:
    # One thread: on a shared 2-core machine two threads per process oversubscribe the cores.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    from plasticity.data import load

    return load("digits")
