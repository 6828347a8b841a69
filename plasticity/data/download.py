"""Checksum-verified downloads from a list of mirrors, with nothing half-written left behind.

Each file is streamed into a temp file in the destination folder while its md5 is computed;
only a file whose md5 matches the expected one is moved (os.replace) to its final name. A
failed, interrupted, corrupted or too slow transfer deletes the temp file and the next mirror
is tried; if every mirror fails, DataError reports what each one did.

Every transfer is bounded: one read waits at most `timeout` seconds, one file from one mirror
takes at most `deadline` seconds in all (DEADLINE by default, headers included: a server that
sends a byte every few seconds never trips the per-read timeout, but it meets the deadline),
and a body larger than MAX_BYTES is abandoned.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
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
DEADLINE = 900.0
"""Seconds one file's transfer from one mirror may take in all: 15 minutes, enough for the largest
official file (Fashion-MNIST's 26 MB) at 30 kB/s."""
MAX_BYTES = 1 << 30
"""The largest body accepted from a mirror: 1 GiB, forty times the largest official file."""


class _BadTransfer(Exception):
    """A short, long, slow or wrong body; raised inside the atomic write so the temp file is discarded."""


def fetch(expected_md5: Mapping[str, str], dest: Path, base_urls: Sequence[str], *, timeout: float = 60.0, deadline: float = DEADLINE) -> dict[str, str]:
    """Make sure every file in `expected_md5` (name -> md5) is in `dest` with that md5.

    Files already present are verified, not re-downloaded (a present file with the wrong md5
    is an error: it may be the user's, so it is not overwritten). Missing files are fetched
    from `base_url + name`, trying `base_urls` in order, each transfer within `timeout` seconds
    per read and `deadline` seconds in all. Returns name -> verified md5.
    """
    if not base_urls:
        raise DataError("no mirror URLs to download from; pass mirrors=[...] or put the files in place yourself")
    verified = {}
    for name, md5 in expected_md5.items():
        target = dest / name
        if not target.is_file():
            _download_one(name, md5, target, base_urls, timeout, deadline)
        verified[name] = verify_md5(target, md5)
    return verified


def _download_one(name: str, md5: str, target: Path, base_urls: Sequence[str], timeout: float, deadline: float) -> None:
    """Try each mirror until one delivers `name` with the right md5; else raise DataError."""
    failures = []
    for base in base_urls:
        url = base.rstrip("/") + "/" + name
        try:
            with atomic_write(target) as out:
                actual = _stream(url, out, timeout, deadline)
                if actual != md5:
                    raise _BadTransfer(f"md5 {actual}, expected {md5}")
            return
        except (OSError, http.client.HTTPException, ValueError, _BadTransfer) as error:
            failures.append(f"{url}: {error}")
    raise DataError(
        f"could not download {name} into {target.parent}; every mirror failed ({'; '.join(failures)}). "
        "Check the network or pass other mirrors (mirrors=[...]), or download the file by hand into "
        f"{target.parent} (or a folder you pass as root)."
    )


def _stream(url: str, out: BinaryIO, timeout: float, deadline: float) -> str:
    """Copy the body at `url` into the open binary file `out` within `deadline` seconds; return its md5.

    The transfer runs in a daemon thread that this call waits for at most `deadline` seconds, so
    the deadline holds whatever the server does (headers included); an abandoned transfer stops
    at its next read and writes nothing more.
    """
    transfer = _Transfer(url, out, timeout)
    worker = threading.Thread(target=transfer.run, name=f"download {url}", daemon=True)
    worker.start()
    try:
        worker.join(deadline)
    finally:
        transfer.cancelled.set()  # a no-op once the transfer is done; else it stops at its next read
    if worker.is_alive():
        raise _BadTransfer(f"not finished within the overall deadline of {deadline:g} s")
    return transfer.result()


class _Transfer:
    """One download into an open file, run by a worker thread; `result()` gives its md5 or raises its error."""

    def __init__(self, url: str, out: BinaryIO, timeout: float) -> None:
        self.url, self.out, self.timeout = url, out, timeout
        self.cancelled = threading.Event()
        self.md5: str | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.md5 = self._copy()
        except Exception as error:  # noqa: BLE001 - any error is handed to the waiting thread by result()
            self.error = error

    def result(self) -> str:
        if self.error is not None:
            raise self.error
        assert self.md5 is not None
        return self.md5

    def _copy(self) -> str:
        """Read the body chunk by chunk (`read1`: whatever arrived, so a trickle is seen between
        reads), write and hash it; stop when cancelled or past MAX_BYTES."""
        digest = hashlib.md5(usedforsecurity=False)
        request = urllib.request.Request(self.url, headers={"User-Agent": _USER_AGENT})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=self.url.rsplit("/", 1)[-1], disable=None, leave=False) as bar:
                for chunk in iter(lambda: response.read1(_CHUNK), b""):
                    received += len(chunk)
                    if self.cancelled.is_set():
                        raise _BadTransfer("abandoned at the deadline")
                    if received > MAX_BYTES:
                        raise _BadTransfer(f"the body exceeds {MAX_BYTES} bytes")
                    self.out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise _BadTransfer(f"transfer ended after {received} of {total} bytes")
        return digest.hexdigest()
