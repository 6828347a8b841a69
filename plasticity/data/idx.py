"""Reader for gzip-compressed IDX files, the format of MNIST and Fashion-MNIST.

IDX (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte big-endian magic number
whose third byte is the element type (0x08 = unsigned byte) and fourth byte the number of
dimensions, then one big-endian uint32 per dimension, then the elements in C order. Labels
files have magic 2049 (1 dimension), images files 2051 (3 dimensions). Every field is
checked, so a damaged file fails here with its name rather than later as a strange tensor.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from plasticity.data.errors import DataError

LABELS_MAGIC = 2049
IMAGES_MAGIC = 2051
_UBYTE = 0x08


def read_idx_gz(path: Path, expected_magic: int) -> np.ndarray:
    """Decompress and parse one IDX file into a uint8 array of the dimensions it declares."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(
            f"{path}: not a complete gzip file ({error}); it is truncated or corrupt. Delete it and "
            "download it again (download=True)."
        ) from error
    return parse_idx(raw, expected_magic, path)


def parse_idx(raw: bytes, expected_magic: int, path: Path) -> np.ndarray:
    """Parse uncompressed IDX bytes; `path` is only used to name the file in errors."""
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        raise DataError(
            f"{path}: IDX magic number is {magic}, expected {expected_magic} "
            f"({'labels' if expected_magic == LABELS_MAGIC else 'images'}); is it the right file?"
        )
    n_dims = magic & 0xFF
    if (magic >> 8) & 0xFF != _UBYTE:
        raise DataError(f"{path}: IDX element type {(magic >> 8) & 0xFF:#x} is not unsigned byte (0x08)")
    header_len = 4 + 4 * n_dims
    if len(raw) < header_len:
        raise DataError(f"{path}: file ends inside the IDX header ({len(raw)} bytes)")
    dims = struct.unpack(f">{n_dims}I", raw[4:header_len])
    expected_len = header_len + math.prod(dims)
    if len(raw) != expected_len:
        raise DataError(
            f"{path}: IDX header declares dimensions {dims} ({expected_len} bytes in all) but the "
            f"file holds {len(raw)} bytes; it is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)
