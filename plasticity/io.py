"""Files written so that an interruption never leaves a half-written one behind.

Everything goes to a temporary file in the destination folder first and is moved into place
with `os.replace`, which is atomic on POSIX and Windows. JSON-lines files grow by appends
instead: a crash can leave their last line half-written, so readers skip such a line and the
next append cuts it off before writing (`append_jsonl`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from plasticity.errors import ConfigError, FileCheckError, PlasticityError, brief, os_reason

try:  # POSIX: an advisory lock that the kernel releases when its process dies, even by SIGKILL
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock (documented in docs/reliability.md)
    fcntl = None

LOCK = ".lock"
TAIL_CHUNK = 1 << 16  # bytes read at a time, from the end, to find the last line break of a JSON-lines file


class FolderBusy(PlasticityError):
    """Another process is writing into the same output folder."""


@contextlib.contextmanager
def atomic_write(destination: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temp file next to `destination`; on clean exit, fsync it and move it into place.

    If the body raises (an interruption included), the temp file is removed and `destination`
    is untouched. The temp file's name is chosen before the file exists, so that an interruption
    arriving just after it is created still finds the name to remove.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.parent / f".{destination.name}.{secrets.token_hex(8)}.tmp"
    try:
        with open(temporary, "xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (created if missing) for the body, so that two commands
    writing into one output folder cannot interleave; the second fails at once with `FolderBusy`.

    The lock is `fcntl.flock` on `folder/.lock`: the kernel releases it when the holder exits,
    however it exits, so a killed run never leaves a stale lock behind (the empty file stays)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+b") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FolderBusy(f"{folder} is in use by another plasticity command; wait for it to finish or use another --out") from None
        try:
            yield folder
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def check_output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """`path` as a folder to write into, checked without creating anything: an empty name (it
    would mean the current folder), a file, a path under a file, or a name the system refuses
    (too long, a NUL byte) is a ConfigError."""
    if not str(path).strip():
        raise ConfigError(f"{option} is empty; give a folder (it is made if missing)")
    folder = Path(path)
    try:
        blocking = next((place for place in (folder, *folder.parents) if place.exists()), None)
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        raise ConfigError(f"{option} {brief(str(path))} cannot be used as a folder ({os_reason(error)}); give a folder you can write to") from None
    if blocking is not None and not blocking.is_dir():
        where = "is a file" if blocking == folder else f"lies under {brief(str(blocking))}, which is a file"
        raise ConfigError(f"{option} {brief(str(path))} {where}; give a folder (it is made if missing)")
    return folder


def check_output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """`path` as a file to write (`plasticity card --out FILE.json`), checked before any work: an
    empty name, a folder, or a path under a file is a ConfigError."""
    if not str(path).strip():
        raise ConfigError(f"{option} is empty; give a file")
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"{option} {brief(str(path))} is a folder; give a file")
    check_output_folder(file.parent if str(file.parent) else ".", option)
    return file


def file_to_write(text: str) -> str:
    """argparse type of an `--out FILE.json` option (`plasticity card`, the scripts of benchmarks/):
    the path when `check_output_file` accepts it, else a one-line usage error, before any work."""
    try:
        check_output_file(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """`path` as a folder to write into (`check_output_folder`), made if missing."""
    folder = check_output_folder(path, option)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        raise ConfigError(f"{option} {brief(str(path))} cannot be used as a folder ({os_reason(error)}); give a folder you can write to") from None
    return folder


def _record(raw: bytes) -> dict[str, Any] | None:
    """The JSON object on one line, or None if the line holds none (torn, damaged, too deeply nested)."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _last_line_start(handle: BinaryIO, end: int) -> int:
    """Where the last line of the open file starts: just after its last line break (0 if none),
    found by reading backwards from `end` in chunks, so a long file is not read whole."""
    position = end
    while position > 0:
        start = max(0, position - TAIL_CHUNK)
        handle.seek(start)
        newline = handle.read(position - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


def _mend_tail(handle: BinaryIO, path: Path) -> None:
    """Make the file end with a whole line before an append. A last line without its line break
    is what an interrupted append leaves: a complete record only lost its line break and gets it
    back; anything else is cut off, with a warning, so that the new record does not land on the
    same line and make both unreadable."""
    end = handle.seek(0, os.SEEK_END)
    start = _last_line_start(handle, end)
    if start == end:
        return
    handle.seek(start)
    if _record(handle.read(end - start)) is not None:
        handle.write(b"\n")
        return
    handle.truncate(start)
    warnings.warn(f"{path}: dropped a half-written last line ({end - start} bytes) left by an interrupted write", RuntimeWarning, stacklevel=3)


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk, so a crash loses at most the line being written
    (and the next append drops that half-written line: `_mend_tail`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    with open(path, "a+b") as handle:  # appends go to the end, wherever the reads of _mend_tail left the position
        _mend_tail(handle, path)
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (none if it does not exist). A last line without its line
    break that holds no JSON object is an interrupted append's: it is skipped. Any other line that
    is not a JSON object is a `FileCheckError` naming the file and the line."""
    path = Path(path)
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return []
    except OSError as error:
        raise FileCheckError(f"cannot read {path} ({os_reason(error)}); give the results file of a run") from None
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        record = _record(raw)
        if record is None:
            if number == len(lines):  # no line break after it: torn
                break
            raise FileCheckError(f"{path}: line {number} is not a JSON object; delete that line (or the file) and rerun what wrote it")
        records.append(record)
    return records
