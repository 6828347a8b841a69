import math

import pytest
import torch

from plasticity.nets import MLP, build_mlp


def test_trace_records_every_layer():
    net = build_mlp(6, 3, (5, 4), seed=0)
    x = torch.randn(7, 6)
    trace = net.trace(x)
    assert [t.shape for t in trace.h] == [(7, 6), (7, 5), (7, 4), (7, 3)]
    assert [t.shape for t in trace.a] == [(7, 5), (7, 4), (7, 3)]
    assert torch.equal(trace.h[1], torch.relu(trace.a[0]))
    assert torch.equal(trace.logits, trace.a[-1])
    assert torch.equal(net(x), trace.logits)


def test_tanh_and_initialisation_bounds():
    net = build_mlp(50, 3, (40,), activation="tanh", seed=1)
    trace = net.trace(torch.randn(2, 50))
    assert torch.equal(trace.h[1], torch.tanh(trace.a[0]))
    bound = math.sqrt(3.0 / 50)
    assert net.layers[0].weight.abs().max() <= bound
    assert net.layers[0].weight.abs().max() > 0.9 * bound
    assert torch.all(net.layers[0].bias == 0)
    relu = build_mlp(50, 3, (40,), seed=1)
    assert relu.layers[0].weight.abs().max() <= math.sqrt(2) * bound
    assert relu.layers[0].weight.abs().max() > bound


def test_seed_fixes_weights():
    a, b, c = build_mlp(8, 2, (4,), seed=3), build_mlp(8, 2, (4,), seed=3), build_mlp(8, 2, (4,), seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


def test_clamp_pins_activities_bit_for_bit_and_keeps_gradients():
    net = build_mlp(6, 3, (5,), seed=0)
    x = torch.randn(4, 6)
    reference = build_mlp(6, 3, (5,), seed=9).trace(x).detach()
    with net.clamp(reference):
        with torch.no_grad():
            pinned = net.trace(x)
        assert all(torch.equal(p, r) for p, r in zip(pinned.h[1:], reference.h[1:]))
        logits = net(x)
        assert torch.equal(logits, reference.logits)
        logits.sum().backward()
    # d(sum logits)/dW2 = sum over batch of the reference hidden activity: the gradient path is live.
    assert torch.allclose(net.layers[1].weight.grad, reference.h[1].sum(0).expand(3, 5))
    assert not torch.equal(net(x), reference.logits)  # clamp ends with the block


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        MLP([3, 2], activation="sigmoid")
    with pytest.raises(ValueError, match="sizes"):
        MLP([3])
    net = build_mlp(6, 3, (5,), seed=0)
    with pytest.raises(ValueError, match="clamped"):
        with net.clamp(build_mlp(6, 3, (4,), seed=0).trace(torch.randn(2, 6))):
            net.trace(torch.randn(2, 6))
