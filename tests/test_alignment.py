import torch

from plasticity.observe.alignment import AlignmentMonitor, alignment, angle
from plasticity.train import TrainConfig, train


def test_angle():
    assert angle(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == 90.0
    assert abs(angle(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]))) < 1e-3
    assert abs(angle(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0])) - 180.0) < 1e-6
    assert angle(torch.zeros(3), torch.ones(3)) == 90.0


def test_feedback_alignment_angle_falls_below_90_degrees(digits):
    """Lillicrap et al. (2016): under FA the hidden update comes to point within 90° of backprop's."""
    results = train(
        TrainConfig(rule="fa", data="digits", hidden=(64,), activation="tanh", epochs=8, batch_size=64, seed=0),
        digits,
        observers=[AlignmentMonitor()],
        progress=False,
    )
    hidden_angle = [e.angles(0)[0] for e in results.epochs]
    feedback_angle = [e.angles(1)[0] for e in results.epochs]
    # About 90° after the first epoch (random feedback carries no information yet), then falling.
    assert 85.0 < hidden_angle[0] < 95.0
    assert hidden_angle[-1] < 85.0 and hidden_angle[-1] < hidden_angle[0] - 5.0
    assert feedback_angle[-1] < feedback_angle[0] - 10.0  # W2 turns towards the fixed B2


def test_backprop_is_aligned_with_itself(digits):
    from plasticity.nets import build_mlp
    from plasticity.rules import build_rule

    net = build_mlp(64, 10, (32,), seed=0)
    report = alignment(build_rule("bp", net), net, digits.train.x[:64], digits.train.y[:64])
    assert max(report["update_angle"]) < 1e-3 and report["feedback_angle"] == []
