import math

import pytest
import torch
from torch import nn

from plasticity.nets import RMSNormalize, Triangle, build_mlp, linear_sizes, rms_normalize


def test_the_mlp_is_a_plain_sequential():
    net = build_mlp(6, 3, (5, 4), seed=0)
    assert type(net) is nn.Sequential
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert linear_sizes(net) == [6, 5, 4, 3]
    x = torch.randn(7, 6)
    assert torch.equal(net(x), net[4](torch.relu(net[2](torch.relu(net[0](x))))))


def test_tanh_and_initialisation_bounds():
    net = build_mlp(50, 3, (40,), activation="tanh", seed=1)
    assert isinstance(net[1], nn.Tanh)
    bound = math.sqrt(3.0 / 50)
    assert net[0].weight.abs().max() <= bound
    assert net[0].weight.abs().max() > 0.9 * bound
    assert torch.all(net[0].bias == 0)
    relu = build_mlp(50, 3, (40,), seed=1)
    assert relu[0].weight.abs().max() <= math.sqrt(2) * bound
    assert relu[0].weight.abs().max() > bound


def test_seed_fixes_weights():
    a, b, c = build_mlp(8, 2, (4,), seed=3), build_mlp(8, 2, (4,), seed=3), build_mlp(8, 2, (4,), seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_triangle_and_normalised_layers():
    net = build_mlp(6, 3, (5,), activation="triangle", seed=0, normalize=True)
    assert [type(m) for m in net] == [nn.Linear, Triangle, RMSNormalize, nn.Linear]
    a = torch.randn(4, 5)
    assert torch.equal(Triangle()(a), torch.relu(a - a.mean(dim=1, keepdim=True)))
    h = rms_normalize(torch.randn(4, 5))
    assert torch.allclose(h.pow(2).mean(dim=1), torch.ones(4), atol=1e-5)
    maps = rms_normalize(torch.randn(2, 3, 7))  # a conv feature map: over every feature of the sample
    assert torch.allclose(maps.pow(2).mean(dim=(1, 2)), torch.ones(2), atol=1e-5)


def test_bad_sizes_and_activations():
    with pytest.raises(ValueError, match="widths"):
        build_mlp(0, 3, (4,))
    with pytest.raises(ValueError, match="activation"):
        build_mlp(6, 3, (4,), activation="sigmoid")
    assert linear_sizes(nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(4, 2))) is None
