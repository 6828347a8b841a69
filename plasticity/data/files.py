"""File helpers shared by the loaders: the cache directory, md5 sums, atomic writes.

Atomic writes (temp file in the destination folder + `os.replace`) guarantee that an
interrupted download or cache write never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from plasticity.data.errors import DataError

CACHE_ENV = "PLASTICITY_CACHE"
"""Environment variable naming the cache directory (default ~/.cache/plasticity)."""

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """`$PLASTICITY_CACHE` if set, else ~/.cache/plasticity."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "plasticity"


def md5_of(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB chunks (MNIST's 47 MB never sits in memory twice)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str) -> str:
    """Return the file's md5, or raise DataError if it is not `expected`."""
    actual = md5_of(path)
    if actual != expected:
        raise DataError(
            f"{path}: md5 is {actual}, expected {expected}. The file is damaged or a different "
            "version; delete it and download it again (download=True) or copy a good one in its place."
        )
    return actual


@contextlib.contextmanager
def atomic_write(destination: Path) -> Iterator[BinaryIO]:
    """Open a temp file next to `destination`; on clean exit, move it into place.

    If the body raises, the temp file is removed and `destination` is untouched.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)  # temp files are created 0600; cached data is not secret
        os.replace(handle.name, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        raise
