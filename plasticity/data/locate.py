"""Finding a dataset's files in the places the user may have put them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from plasticity.data.errors import DataError


def find_dir(file_names: Sequence[str], candidates: Sequence[Path]) -> Path | None:
    """The first candidate directory that holds every one of `file_names`, else None."""
    for directory in candidates:
        if all((directory / name).is_file() for name in file_names):
            return directory
    return None


def missing_files_error(dataset: str, file_names: Sequence[str], candidates: Sequence[Path], how: str) -> DataError:
    """A DataError listing where we looked, what we expected and how to obtain the files."""
    looked = "\n".join(f"  {directory}" + ("" if directory.is_dir() else " (does not exist)") for directory in candidates)
    expected = "\n".join(f"  {name}" for name in file_names)
    return DataError(f"{dataset}: files not found. Looked in:\n{looked}\nExpected files:\n{expected}\n{how}")
