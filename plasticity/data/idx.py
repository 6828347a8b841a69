"""Reader for gzip-compressed IDX files, the format of MNIST and Fashion-MNIST.

IDX (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte big-endian magic number
whose third byte is the element type (0x08 = unsigned byte) and fourth byte the number of
dimensions, then one big-endian uint32 per dimension, then the elements in C order. Labels
files have magic 2049 (1 dimension), images files 2051 (3 dimensions). Every field is
checked, so a damaged file fails here with its name rather than later as a strange tensor.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from plasticity.data.errors import DataError

LABELS_MAGIC = 2049
IMAGES_MAGIC = 2051
_UBYTE = 0x08
MAX_BYTES = 1 << 30
"""The most elements (bytes) an IDX file may declare: 1 GiB, twenty times MNIST's largest file.
A header that claims more is refused before its body is read, so a corrupt or hostile file
never fills the memory."""


def read_idx_gz(path: Path, expected_magic: int) -> np.ndarray:
    """Decompress and parse one IDX file into a uint8 array of the dimensions it declares.

    The body is read only up to the size the header declares (and one byte more, to see that
    the file ends there), so what is decompressed never exceeds MAX_BYTES."""
    try:
        with gzip.open(path, "rb") as handle:
            return _read_idx(handle, expected_magic, path)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(f"{path}: not a complete gzip file ({error}); it is truncated or corrupt. Delete it and download it again (download=True).") from error


def parse_idx(raw: bytes, expected_magic: int, path: Path) -> np.ndarray:
    """Parse uncompressed IDX bytes; `path` is only used to name the file in errors."""
    return _read_idx(io.BytesIO(raw), expected_magic, path)


def _read_idx(stream: BinaryIO, expected_magic: int, path: Path) -> np.ndarray:
    """The array an IDX stream holds, after checking its header and that its size is the declared one."""
    dims = _read_header(stream, expected_magic, path)
    header_len = 4 + 4 * len(dims)
    size = math.prod(dims)
    if size > MAX_BYTES:
        raise DataError(
            f"{path}: IDX header declares dimensions {dims}, {size} bytes, more than the {MAX_BYTES} an IDX file may "
            "hold here; it is corrupt or not a dataset file"
        )
    body = stream.read(size + 1)
    if len(body) != size:
        held = f"{header_len + len(body)} bytes" if len(body) < size else "more"
        raise DataError(
            f"{path}: IDX header declares dimensions {dims} ({header_len + size} bytes in all) but the file holds {held}; it is truncated or corrupt"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _read_header(stream: BinaryIO, expected_magic: int, path: Path) -> tuple[int, ...]:
    """The dimensions an IDX header declares, once its magic number is the expected one."""
    head = stream.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: {len(head)} bytes is too short for an IDX header")
    (magic,) = struct.unpack(">I", head)
    if magic != expected_magic:
        raise DataError(
            f"{path}: IDX magic number is {magic}, expected {expected_magic} "
            f"({'labels' if expected_magic == LABELS_MAGIC else 'images'}); is it the right file?"
        )
    n_dims = magic & 0xFF
    if (magic >> 8) & 0xFF != _UBYTE:
        raise DataError(f"{path}: IDX element type {(magic >> 8) & 0xFF:#x} is not unsigned byte (0x08)")
    raw_dims = stream.read(4 * n_dims)
    if len(raw_dims) < 4 * n_dims:
        raise DataError(f"{path}: file ends inside the IDX header ({4 + len(raw_dims)} bytes)")
    return struct.unpack(f">{n_dims}I", raw_dims)
