"""Rules as PyTorch extensions: attached to any model, delivering `.grad`."""

import copy
import math
import re
from dataclasses import replace
from pathlib import Path

import oracles
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import plasticity
from plasticity.build import TrainConfig
from plasticity.data.dataset import Split
from plasticity.nets import build_mlp
from plasticity.observe.plausibility import measure, verify
from plasticity.rules import UnsupportedLayer, attach, attachable
from plasticity.train import Trainer

RULES = ("bp", "fa", "sign", "dfa", "workspace", "pc", "ff", "softhebb")
# How far 60 full-batch AdamW steps must bring the cross-entropy of a rule's class scores, as a
# fraction of where it starts: the local rules (no error reaches a hidden layer, or a relaxed one)
# learn their hidden layers more slowly than the error-propagating ones.
LEARNS = {"bp": 0.3, "fa": 0.3, "sign": 0.3, "dfa": 0.3, "workspace": 0.3, "pc": 0.3, "ff": 0.7, "softhebb": 0.7}
README = Path(__file__).resolve().parents[1] / "README.md"


def grads(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


def test_attachable_rules():
    assert attachable() == ["bp", "fa", "dfa", "sign", "workspace", "pc", "ff", "softhebb"]


@pytest.mark.parametrize("name", ["fa", "sign", "dfa"])
def test_updates_on_the_benchmark_mlp_equal_the_closed_form_oracles(digits, name):
    """The extension's `.grad` equals the hand-derived directions to ≤ 1e-6 (they are the same algebra)."""
    net = build_mlp(64, 10, (256, 256), activation="tanh", seed=0)
    rule = attach(net, name, seed=0)
    x, y = digits.train.x[:64], digits.train.y[:64]
    got = grads(net, x, y)
    if name == "fa":
        expected = oracles.chain(net, x, y, [slot.weight for slot in rule.feedback[1:]])
    elif name == "sign":
        expected = oracles.chain(net, x, y, [torch.sign(l.weight) / math.sqrt(l.out_features) for l in oracles.linears(net)[1:]])
    else:
        expected = oracles.direct(net, x, y, [slot.weight for slot in rule.feedback[1:]])
    assert max(float((a - b).abs().max()) for a, b in zip(got, expected, strict=True)) <= 1e-6
    rule.detach()
    backprop = grads(net, x, y)
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, backprop, strict=True))


def test_bp_attaches_nothing_and_detach_restores_backprop(digits):
    net = build_mlp(64, 10, (32, 16), seed=0)
    x, y = digits.train.x[:32], digits.train.y[:32]
    plain = grads(net, x, y)
    rule = attach(net, "bp")
    assert rule.handles_ == [] and all(torch.equal(a, b) for a, b in zip(plain, grads(net, x, y), strict=True))
    dfa = attach(rule.detach(), "dfa")
    assert not all(torch.equal(a, b) for a, b in zip(plain, grads(net, x, y), strict=True))
    assert dfa.detach() is net and all(torch.equal(a, b) for a, b in zip(plain, grads(net, x, y), strict=True))


def pooled():
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding="same"),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


class Residual(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width))

    def forward(self, x):
        return torch.tanh(x + self.inner(x))


def residual():
    return nn.Sequential(
        nn.Unflatten(1, (1, 64)),
        nn.Conv1d(1, 4, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(128, 32),
        nn.Tanh(),
        Residual(32),
        Residual(32),
        nn.Linear(32, 10),
    )


@pytest.mark.parametrize("build", [pooled, residual])
@pytest.mark.parametrize("name", RULES)
def test_models_with_pooling_and_residual_blocks_train(digits, name, build):
    torch.manual_seed(0)
    model = build()
    rule = attach(model, name, seed=0)
    assert len(rule.layers_) == sum(isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) for m in model.modules())
    optimizer = torch.optim.AdamW(rule.trained(model), lr=1e-2)
    x, y = digits.train.x[:128], digits.train.y[:128]
    first = F.cross_entropy(rule.logits(model, x), y).item()
    for _ in range(60):
        optimizer.zero_grad()
        loss, info = rule.loss_and_info(model, x, y)
        loss.backward()
        if info.applied:
            optimizer.step()
    assert F.cross_entropy(rule.logits(model, x), y).item() < LEARNS[name] * first


def test_readme_shows_a_users_cnn_trained_by_dfa_with_adamw():
    """The README's example runs as written (its code block, executed here)."""
    code = re.search(r"<!-- example:byom -->\n```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) < 15 and "AdamW" in code and '"dfa"' in code and "loss.backward()" in code
    scope: dict = {}
    exec(compile(code, "README example", "exec"), scope)
    assert scope["rule"].name == "dfa" and len(scope["rule"].layers_) == 3
    assert scope["accuracy"] > 0.85


def test_rule_buffers_move_with_to_and_feedback_follows_the_weights(digits):
    net = build_mlp(64, 10, (16, 8), seed=0).double()
    rule = attach(net, "dfa", mirror_rate=0.1)
    grads(net, digits.train.x[:16].double(), digits.train.y[:16])
    assert all(b.dtype == torch.float64 for name, b in rule.named_buffers() if name != "steps")  # drawn like the model
    rule.to("meta")
    assert all(b.device.type == "meta" for b in rule.buffers())
    fa = attach(build_mlp(64, 10, (16,), seed=0), "fa").to(torch.float16)
    assert all(b.dtype == torch.float16 for b in fa.buffers())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", RULES)
def test_rules_train_on_cuda(digits, name):
    model = build_mlp(64, 10, (32, 16), seed=0).cuda()
    rule = attach(model, name, mirror_rate=0.1) if name == "dfa" else attach(model, name)
    x, y = digits.train.x[:64].cuda(), digits.train.y[:64].cuda()
    grads(model, x, y)
    assert all(b.is_cuda for b in rule.buffers())
    cpu = build_mlp(64, 10, (32, 16), seed=0)
    attach(cpu, name, mirror_rate=0.1) if name == "dfa" else attach(cpu, name)
    assert all(torch.allclose(a.cpu(), b, atol=1e-5) for a, b in zip(grads(model, x, y), grads(cpu, x.cpu(), y.cpu()), strict=True))


@pytest.mark.parametrize("name", RULES)
def test_state_dict_round_trip_resumes_bit_identically(digits, name):
    options = {"mirror_rate": 0.1, "mirror_every": 2} if name == "dfa" else {}
    batches = [(digits.train.x[i : i + 32], digits.train.y[i : i + 32]) for i in range(0, 320, 32)]

    def run(model, rule, optimizer, steps):
        for x, y in steps:
            optimizer.zero_grad()
            loss, info = rule.loss_and_info(model, x, y)
            loss.backward()
            if info.applied:
                optimizer.step()

    model = pooled()
    rule = attach(model, name, seed=3, **options)
    optimizer = torch.optim.Adam(rule.trained(model), 1e-3)
    run(model, rule, optimizer, batches[:5])
    saved = copy.deepcopy([model.state_dict(), rule.state_dict(), optimizer.state_dict()])
    run(model, rule, optimizer, batches[5:])

    torch.manual_seed(99)
    other = pooled()
    # Another seed, so that nothing matches unless it was loaded; the weight mirror draws its
    # noise from (seed, step), so a resumed mirror needs its own seed back.
    again = attach(other, name, seed=3 if getattr(rule.config, "learned", False) else 8, **options)
    again_optimizer = torch.optim.Adam(again.trained(other), 1e-3)
    other.load_state_dict(saved[0])
    again.load_state_dict(saved[1])
    again_optimizer.load_state_dict(saved[2])
    run(other, again, again_optimizer, batches[5:])
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters(), strict=True))
    assert all(torch.equal(rule.state_dict()[k], v) for k, v in again.state_dict().items())


@pytest.mark.parametrize("name", RULES)
def test_cards_hold_on_a_conv_model_by_perturbation(name):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 12, 12)),
        nn.Conv2d(1, 3, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64, 12),
        nn.ReLU(),
        nn.Linear(12, 5),
    )
    rule = attach(model, name)
    measured = measure(rule, x=torch.randn(8, 144, generator=torch.Generator().manual_seed(0)))
    assert verify(rule.card(), measured) == []
    assert measured.weight_transport == rule.card().weight_transport
    assert ("broadcast" in measured.reads) == (name in ("dfa", "workspace"))


def test_unconvertible_layers_are_refused_by_name_never_left_on_backprop():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Conv3d(1, 2, 1), nn.Linear(8, 3))
    with pytest.raises(UnsupportedLayer, match=r"cannot convert 2 \(Conv3d\).*exclude"):
        attach(model, "fa")
    rule = attach(model, "fa", exclude=["2"])
    assert rule.names_ == ["0", "3"] and ("2", "excluded: exact backprop") in rule.left_alone_
    assert "converted 2 layer(s)" in rule.summary() and "2: excluded" in rule.summary()
    assert attach(nn.Sequential(nn.Conv3d(1, 2, 1), nn.Linear(2, 2)), "bp").left_alone_ == [("0", "exact backprop")]
    with pytest.raises(UnsupportedLayer, match="padding_mode"):
        attach(nn.Sequential(nn.Conv1d(1, 2, 3, padding=1, padding_mode="circular")), "sign")
    with pytest.raises(UnsupportedLayer, match="no Linear"):
        attach(nn.Sequential(nn.ReLU()), "dfa")
    normed = attach(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)), "dfa")
    assert normed.left_alone_[0][0] == "1" and "normalisation" in normed.left_alone_[0][1]
    with pytest.raises(RuntimeError, match="already attached"):
        normed.attach(nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="already has a dfa rule attached"):
        attach(normed.model_, "fa")
    with pytest.raises(RuntimeError, match="already has a dfa rule attached"):
        attach(normed.model_[2], "sign")  # a part of an attached model
    with pytest.raises(ValueError, match="exclude names no module"):
        attach(nn.Sequential(nn.Linear(2, 2)), "fa", exclude=["encoder"])
    with pytest.raises(ValueError, match="cannot attach"):
        attach(nn.Linear(2, 2), "stdp")
    with pytest.raises(ValueError, match=r"\(batch, classes\)"):
        dfa = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3), nn.Unflatten(1, (3, 1)))
        attach(dfa, "dfa")
        dfa(torch.randn(2, 4, requires_grad=False)).sum().backward()


@pytest.mark.parametrize("name", RULES)
def test_observers_run_on_a_conv_model(digits, name):
    from plasticity.observe.registry import build_observers

    small = replace(digits, train=Split(digits.train.x[:256], digits.train.y[:256]), test=Split(digits.test.x[:100], digits.test.y[:100]))
    observers = ["pi", "omega", "alignment"] + (["workspace"] if name == "workspace" else [])
    trainer = Trainer.from_config(
        TrainConfig(rule=name, model="cnn1d", data="digits", epochs=1, batch_size=64, seed=0, rule_options={"lr": 1e-3}),
        small,
        observers=build_observers(observers),
        progress=False,
    )
    entry = trainer.fit().epochs[0]
    update = entry.angles(0)
    assert len(update) == 4 and all(0 <= a <= 180 for a in update)
    if name in ("dfa", "workspace"):
        assert entry.angles(1) == []  # direct feedback stands for no single matrix of a conv net
    assert math.isfinite(entry.headline("pi")) and math.isfinite(entry.headline("omega"))
    if name == "workspace":
        workspace = entry.observed["workspace"]
        assert len(workspace["winners"]) == 4 and workspace["synergy"]["mutual_information"] >= 0


def test_spiking_rules_train_their_own_network_only(digits):
    with pytest.raises(ValueError, match="trains a spiking network"):
        Trainer.from_config(TrainConfig(rule="stdp", model="cnn1d"), digits)


def test_attach_is_importable_from_the_package():
    assert plasticity.attach is attach


@pytest.mark.parametrize("name", RULES)
def test_schedulers_clipping_and_mixed_precision_work_as_usual(digits, name):
    model = pooled()
    rule = attach(model, name, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    x, y = digits.train.x[:64], digits.train.y[:64]
    for _ in range(4):
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = rule.loss(model, x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in model.parameters())
    assert scheduler.get_last_lr()[0] == pytest.approx(0.0125)


def test_fa_with_its_feedback_set_to_the_weights_is_backprop_on_any_conv_geometry():
    """Strides, dilation, groups, 'same' padding, no bias, 3-D inputs of a Linear: with B = W
    the extension's backward must be autograd's, exactly."""

    def model():
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, 6, 3, stride=2, dilation=2, padding=2, groups=2, bias=False),
            nn.Tanh(),
            nn.Conv2d(6, 6, 3, padding="same"),
            nn.Flatten(),
            nn.Linear(96, 12, bias=False),
            nn.ReLU(),
            nn.Linear(12, 5),
        )

    x, y = torch.randn(4, 2, 8, 8), torch.randint(0, 5, (4,))
    net = model()
    expected = grads(net, x, y)
    rule = attach(net, "fa")
    grads(net, x, y)  # draws the feedback of every layer whose input carries a graph
    with torch.no_grad():
        for slot, layer in zip(rule.feedback, rule.layers_, strict=True):
            if slot.ready:
                slot.weight.copy_(layer.weight)
    assert all(torch.equal(a, b) for a, b in zip(grads(net, x, y), expected, strict=True))
    sequence = nn.Sequential(nn.Linear(5, 7, bias=False), nn.Tanh(), nn.Linear(7, 3))
    attach(sequence, "sign")
    sequence(torch.randn(2, 4, 5)).sum().backward()
    assert [p.grad.shape for p in sequence.parameters()] == [(7, 5), (3, 7), (3,)]
