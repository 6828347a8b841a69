"""Finding a dataset's files in the places the user may have put them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plasticity.data.errors import DataError
from plasticity.errors import brief, os_reason


def check_folder(path: Any, what: str) -> Path:
    """`path` as a Path if it is a folder or does not exist (the loaders then list where they
    looked); a DataError if it is a file or cannot name a folder (a name too long, a NUL byte)."""
    try:
        folder = Path(path).expanduser()
        os.stat(folder)
    except FileNotFoundError:
        return folder
    except (OSError, TypeError, ValueError) as error:
        raise DataError(f"{what} {brief(path if isinstance(path, str) else str(path))} cannot be used ({os_reason(error)}); give a folder") from None
    if not folder.is_dir():
        raise DataError(f"{what} {folder} is a file, not a folder; give the folder that holds the dataset's files")
    return folder


def find_dir(file_names: Sequence[str], candidates: Sequence[Path]) -> Path | None:
    """The first candidate directory that holds every one of `file_names`, else None."""
    for directory in candidates:
        if all((directory / name).is_file() for name in file_names):
            return directory
    return None


def missing_files_error(dataset: str, file_names: Sequence[str], candidates: Sequence[Path], how: str) -> DataError:
    """A one-line DataError naming where we looked, what we expected and how to obtain the files."""
    looked = ", ".join(f"{directory}" + ("" if directory.is_dir() else " (does not exist)") for directory in candidates)
    return DataError(f"{dataset}: files not found; looked in {looked} for {', '.join(file_names)}. {how}")
