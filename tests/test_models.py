import math

import pytest
import torch
from torch import nn

from plasticity.models import build_cnn1d, build_lenet5

BUILDS = [(build_cnn1d, 40), (build_lenet5, 784)]


@pytest.mark.parametrize(("build", "n_features"), BUILDS)
def test_logits_shape(build, n_features):
    model = build(n_features, 10)
    assert model(torch.randn(7, n_features)).shape == (7, 10)


def test_reference_layer_sizes():
    cnn = build_cnn1d(40, 10)
    assert cnn[-1].in_features == 25 * 5  # lengths 40 → 19 → 10 → 5
    assert sum(p.numel() for p in cnn.parameters()) == 5210
    lenet = build_lenet5(784, 10)
    assert [m.out_channels for m in lenet if isinstance(m, nn.Conv2d)] == [6, 16]
    assert [(m.in_features, m.out_features) for m in lenet if isinstance(m, nn.Linear)] == [
        (400, 120),
        (120, 84),
        (84, 10),
    ]
    assert sum(p.numel() for p in lenet.parameters()) == 61706


@pytest.mark.parametrize(("build", "n_features"), BUILDS)
def test_seed_fixes_weights_without_touching_global_rng(build, n_features):
    state = torch.get_rng_state()
    a, b, c = build(n_features, 10, seed=3), build(n_features, 10, seed=3), build(n_features, 10, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(not torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize(("build", "n_features"), BUILDS)
def test_pytorch_default_initialisation_bounds(build, n_features):
    model = build(n_features, 10)
    for module in model:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            bound = 1.0 / math.sqrt(module.weight[0].numel())
            assert module.weight.abs().max() <= bound
            assert module.weight.abs().max() > 0.9 * bound
            assert module.bias.abs().max() <= bound


@pytest.mark.parametrize(("build", "n_features"), BUILDS)
def test_only_plain_torch_nn_modules(build, n_features):
    model = build(n_features, 10)
    assert type(model) is nn.Sequential
    assert isinstance(model[0], nn.Unflatten)
    for module in model.modules():
        assert type(module).__module__.startswith("torch.nn.modules."), type(module)


def test_lenet5_rejects_non_square_input():
    with pytest.raises(ValueError, match=r"28×28.*784.*got 64"):
        build_lenet5(64, 10)
    with pytest.raises(ValueError, match="side ≥ 12"):
        build_lenet5(64, 10, side=8)


def test_cnn1d_learns_with_backprop():
    # Three classes, each a fixed random signal shifted by up to ±3 samples, plus noise: learnable
    # by a convolution, not by memorising a fixed position.
    generator = torch.Generator().manual_seed(0)
    templates = torch.randn(3, 40, generator=generator)
    y = torch.randint(0, 3, (600,), generator=generator)
    shifts = torch.randint(-3, 4, (600,), generator=generator)
    x = torch.stack([templates[c].roll(int(s)) for c, s in zip(y, shifts, strict=True)])
    x = x + 0.3 * torch.randn(x.shape, generator=generator)

    model = build_cnn1d(40, 3, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)  # the reference's setting
    loss_fn = nn.CrossEntropyLoss()
    with torch.no_grad():
        before = loss_fn(model(x), y).item()
    for step in range(40):
        batch = slice((step * 100) % 600, (step * 100) % 600 + 100)  # batches of 100, as the reference
        optimizer.zero_grad()
        loss_fn(model(x[batch]), y[batch]).backward()
        optimizer.step()
    with torch.no_grad():
        after = loss_fn(model(x), y).item()
    assert after < 0.3 * before


# ------------------------------------------------------------------------------ segments (docs/workspace.md, H3)
def test_segments_shapes_and_sizes():
    from plasticity.models import build_segments

    model = build_segments(40, 10)
    assert model(torch.randn(7, 40)).shape == (7, 10)
    assert [(b[0].in_features, b[0].out_features) for b in model.blocks] == [(10, 64)] * 4
    assert [(h.in_features, h.out_features) for h in model.heads] == [(64, 10)] * 4
    assert sum(p.numel() for p in model.parameters()) == 5416
    assert build_segments(12, 3, segments=3, width=5)(torch.randn(2, 12)).shape == (2, 3)


def test_segments_refuses_features_not_divisible():
    from plasticity.errors import ConfigError as Refused
    from plasticity.models import build_segments

    with pytest.raises(Refused, match="41 is not divisible by 4"):
        build_segments(41, 10)


def test_segments_seeded_initialisation():
    from plasticity.models import build_segments

    state = torch.get_rng_state()
    a, b, c = build_segments(40, 10, seed=3), build_segments(40, 10, seed=3), build_segments(40, 10, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(not torch.equal(sa[k], sc[k]) for k in sa)
    for block in a.blocks:  # a Linear(10 → 64)'s default bounds
        assert 0.9 / math.sqrt(10) < block[0].weight.abs().max() <= 1 / math.sqrt(10)
    for head in a.heads:  # a slice of one Linear(256 → 10)
        assert 0.9 / math.sqrt(256) < head.weight.abs().max() <= 1 / math.sqrt(256)
        assert head.bias.abs().max() <= 1 / math.sqrt(256)


def test_segments_isolation():
    """Changing segment k's inputs changes block k's output and no other block's."""
    from plasticity.models import build_segments

    model = build_segments(40, 10, seed=0)
    seen = {}
    for index, block in enumerate(model.blocks):
        block.register_forward_hook(lambda module, args, out, index=index: seen.__setitem__(index, out.detach().clone()))
    x = torch.randn(5, 40)
    model(x)
    before = dict(seen)
    for k in range(4):
        changed = x.clone()
        changed[:, 10 * k : 10 * (k + 1)] = torch.randn(5, 10)
        model(changed)
        for j in range(4):
            assert torch.equal(seen[j], before[j]) == (j != k), (k, j)
