"""Checksum-verified downloads from a list of mirrors, with nothing half-written left behind.

Each file is streamed into a temp file in the destination folder while its md5 is computed;
only a file whose md5 matches the expected one is moved (os.replace) to its final name. A
failed, interrupted or corrupted transfer deletes the temp file and the next mirror is
tried; if every mirror fails, DataError reports what each one did.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from plasticity.data.errors import DataError
from plasticity.data.files import verify_md5
from plasticity.io import atomic_write

_CHUNK = 1 << 16
_USER_AGENT = "plasticity-data/0.1 (+urllib)"


class _BadTransfer(Exception):
    """A short or wrong body; raised inside the atomic write so the temp file is discarded."""


def fetch(expected_md5: Mapping[str, str], dest: Path, base_urls: Sequence[str], *, timeout: float = 60.0) -> dict[str, str]:
    """Make sure every file in `expected_md5` (name -> md5) is in `dest` with that md5.

    Files already present are verified, not re-downloaded (a present file with the wrong md5
    is an error: it may be the user's, so it is not overwritten). Missing files are fetched
    from `base_url + name`, trying `base_urls` in order. Returns name -> verified md5.
    """
    if not base_urls:
        raise DataError("no mirror URLs to download from; pass mirrors=[...] or put the files in place yourself")
    verified = {}
    for name, md5 in expected_md5.items():
        target = dest / name
        if not target.is_file():
            _download_one(name, md5, target, base_urls, timeout)
        verified[name] = verify_md5(target, md5)
    return verified


def _download_one(name: str, md5: str, target: Path, base_urls: Sequence[str], timeout: float) -> None:
    """Try each mirror until one delivers `name` with the right md5; else raise DataError."""
    failures = []
    for base in base_urls:
        url = base.rstrip("/") + "/" + name
        try:
            with atomic_write(target) as out:
                actual = _stream(url, out, timeout)
                if actual != md5:
                    raise _BadTransfer(f"md5 {actual}, expected {md5}")
            return
        except (OSError, http.client.HTTPException, ValueError, _BadTransfer) as error:
            failures.append(f"  {url}: {error}")
    raise DataError(
        f"could not download {name} into {target.parent}; every mirror failed:\n" + "\n".join(failures) + "\n"
        "Check the network or pass other mirrors (mirrors=[...]), or download the file by hand into "
        f"{target.parent} (or a folder you pass as root)."
    )


def _stream(url: str, out: BinaryIO, timeout: float) -> str:
    """Copy the body at `url` into the open binary file `out`; return its md5."""
    digest = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], disable=None, leave=False) as bar:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise _BadTransfer(f"transfer ended after {received} of {total} bytes")
    return digest.hexdigest()
