"""Tests for plasticity.data's downloader against a local HTTP server (no external network).

The server runs on 127.0.0.1 on a free port and serves tiny IDX files generated in
tmp_path; the md5 tables are supplied by the tests (`expected_md5` / patched sources).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_data import patch_md5, write_fake_idx_set

from plasticity.data import DataError, download, load
from plasticity.data.download import fetch

UNREACHABLE = "http://127.0.0.1:9/"  # discard port: connection refused at once


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, plus /short/<name>: promises the whole file but sends half of it;
    /trickle/<name>: sends it a byte every 0.2 s; /stall/<name>: sends no headers until released."""

    released = threading.Event()  # set when the test ends, so no handler outlives its server

    def do_GET(self) -> None:
        if self.path.startswith("/stall/"):
            self.released.wait(timeout=10)
            return
        if self.path.startswith("/trickle/"):
            body = (Path(self.directory) / self.path.rsplit("/", 1)[-1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:
                if self.released.wait(timeout=0.2):
                    return
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:  # the client gave up
                    return
            return
        if self.path.startswith("/short/"):
            body = (Path(self.directory) / self.path.removeprefix("/short/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def server(tmp_path, monkeypatch) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder) of a throwaway HTTP server on 127.0.0.1."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _Handler.released.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    _Handler.released.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_downloads_and_verifies(server, tmp_path):
    base, served = server
    md5 = write_fake_idx_set(served)
    dest = tmp_path / "dest"
    assert fetch(md5, dest, [base], timeout=10) == md5
    assert _left_in(dest) == sorted(md5)
    assert all(hashlib.md5((dest / name).read_bytes()).hexdigest() == value for name, value in md5.items())


def test_fetch_falls_back_to_the_next_mirror(server, tmp_path):
    base, served = server
    md5 = write_fake_idx_set(served)
    dest = tmp_path / "dest"
    assert fetch(md5, dest, [UNREACHABLE, base + "missing/", base], timeout=10) == md5
    assert _left_in(dest) == sorted(md5)


def test_corrupted_download_leaves_nothing(server, tmp_path):
    base, served = server
    md5 = write_fake_idx_set(served)
    name = "train-images-idx3-ubyte.gz"
    (served / name).write_bytes(b"corrupted" + (served / name).read_bytes())
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as error:
        fetch({name: md5[name]}, dest, [base], timeout=10)
    assert name in str(error.value) and f"expected {md5[name]}" in str(error.value)
    assert _left_in(dest) == []


def test_404_is_a_data_error(server, tmp_path):
    base, _ = server
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="(?s)every mirror failed.*404"):
        fetch({"nothing-here.gz": "0" * 32}, dest, [base], timeout=10)
    assert _left_in(dest) == []


def test_interrupted_transfer_leaves_nothing(server, tmp_path):
    base, served = server
    md5 = write_fake_idx_set(served)
    name = "train-images-idx3-ubyte.gz"
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match=f"(?s){name}.*transfer ended after"):
        fetch({name: md5[name]}, dest, [base + "short/"], timeout=10)
    assert _left_in(dest) == []


def test_no_mirrors_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no mirror"):
        fetch({"a.gz": "0" * 32}, tmp_path, [])


def test_present_file_with_wrong_md5_is_not_overwritten(server, tmp_path):
    base, served = server
    md5 = write_fake_idx_set(served)
    name = "t10k-labels-idx1-ubyte.gz"
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / name).write_bytes(b"someone else's file")
    with pytest.raises(DataError, match=f"md5 is .*, expected {md5[name]}"):
        fetch({name: md5[name]}, dest, [base], timeout=10)
    assert (dest / name).read_bytes() == b"someone else's file"


def test_load_downloads_into_root_then_works_offline(server, tmp_path, monkeypatch):
    base, served = server
    md5 = write_fake_idx_set(served, n_train=10, n_test=4)
    patch_md5(monkeypatch, "MNIST", md5)
    root = tmp_path / "root"
    data = load("mnist", root=root, download=True, mirrors=[UNREACHABLE, base])
    assert (len(data.train), len(data.test)) == (10, 4) and data.checksums == md5
    assert _left_in(root) == sorted(md5)
    assert load("mnist", root=root).checksums == md5


def test_load_downloads_into_cache_dir(server, tmp_path, monkeypatch):
    base, served = server
    md5 = write_fake_idx_set(served)
    patch_md5(monkeypatch, "FASHION_MNIST", md5)
    data = load("fashion-mnist", cache_dir=tmp_path / "cache", download=True, mirrors=base)
    assert data.classes[0] == "T-shirt/top"
    assert _left_in(tmp_path / "cache" / "fashion-mnist") == sorted(md5)


def test_load_t10k_downloads_only_the_test_files(server, tmp_path, monkeypatch):
    base, served = server
    md5 = write_fake_idx_set(served, n_test=10)
    patch_md5(monkeypatch, "MNIST", md5)
    data = load("mnist-t10k", cache_dir=tmp_path, download=True, mirrors=[base])
    assert (len(data.train), len(data.test)) == (8, 2)
    assert _left_in(tmp_path / "mnist-t10k") == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_load_download_failure_leaves_nothing(server, tmp_path, monkeypatch):
    base, served = server
    patch_md5(monkeypatch, "MNIST", write_fake_idx_set(served))
    (served / "t10k-images-idx3-ubyte.gz").write_bytes(b"not the file")
    root = tmp_path / "root"
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        load("mnist", root=root, download=True, mirrors=[base])
    assert "t10k-images-idx3-ubyte.gz" not in _left_in(root)
    assert not [name for name in _left_in(root) if name.endswith(".tmp")]


@pytest.mark.parametrize("how", ["trickle", "stall"])
def test_a_slow_mirror_meets_the_overall_deadline(server, tmp_path, how):
    """A byte every 0.2 s never trips a 5 s per-read timeout, nor do headers that never come
    in under 5 s; the 1 s deadline ends both, the next mirror is tried and nothing is left."""
    base, served = server
    md5 = write_fake_idx_set(served)
    name = "train-labels-idx1-ubyte.gz"
    dest = tmp_path / "dest"
    started = time.monotonic()
    with pytest.raises(DataError) as error:
        fetch({name: md5[name]}, dest, [f"{base}{how}/", f"{base}{how}/again/"], timeout=5, deadline=1)
    assert time.monotonic() - started < 4
    message = str(error.value)
    assert message.count("overall deadline of 1 s") == 2 and "\n" not in message
    assert _left_in(dest) == []
    assert fetch({name: md5[name]}, dest, [f"{base}{how}/", base], timeout=5, deadline=1) == {name: md5[name]}


def test_an_endless_body_is_abandoned(server, tmp_path, monkeypatch):
    base, served = server
    md5 = write_fake_idx_set(served)
    name = "train-images-idx3-ubyte.gz"
    monkeypatch.setattr(download, "MAX_BYTES", 1000)
    with pytest.raises(DataError, match="the body exceeds 1000 bytes"):
        fetch({name: md5[name]}, tmp_path / "dest", [base], timeout=5)
    assert _left_in(tmp_path / "dest") == []
