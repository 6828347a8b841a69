"""The options `load` hands to every loader, gathered in one frozen config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LoadOptions:
    """What the caller asked for; each loader uses the fields that apply to it.

    root: folder holding the dataset's files (None: look in the cache directory).
    cache_dir: where downloads and generated data are kept.
    download: fetch missing files from the mirrors (otherwise a missing file is an error).
    standardize: subtract the training set's scalar mean and divide by its scalar std.
    flatten: give images as (n, features) rather than (n, channels, height, width).
    mirrors: base URLs replacing the dataset's default mirrors, tried in order.
    """

    root: Path | None
    cache_dir: Path
    download: bool = False
    standardize: bool = True
    flatten: bool = True
    mirrors: tuple[str, ...] | None = None
