"""Reference convolutional networks, written as plain `nn.Sequential` stacks a user could write.

Both take the flattened (batch, n_features) inputs the rest of the library feeds its networks and
reshape them with `nn.Unflatten` as their first module; every module is a stock `torch.nn` class
with no custom forward, so any tool that walks a `nn.Sequential` can read or train them.

A convolution with kernel k, stride s and padding p maps an input of length L to

    L_out = ⌊(L + 2p − k) / s⌋ + 1                                        (per spatial axis)

and `_conv_len` is that formula; the builders use it to size the final `nn.Linear`.

Initialisation is PyTorch's default for `nn.Conv*d` and `nn.Linear`, but drawn from a
`torch.Generator` seeded with `seed`: the same seed gives bit-identical weights, and the global
random state is left untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from plasticity.errors import ConfigError


def _conv_len(length: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length ⌊(L + 2p − k) / s⌋ + 1 of a convolution or pooling along one axis."""
    return (length + 2 * padding - kernel) // stride + 1


def seeded_sequential(make_layers: Callable[[], list[nn.Module]], seed: int) -> nn.Sequential:
    """`nn.Sequential(*make_layers())` with PyTorch's default initialisation drawn from `seed`.

    Layers are first built on the meta device, so their constructors draw nothing from the
    global generator; they are then allocated on the CPU and every convolution and linear layer
    gets PyTorch's default (He et al. 2015, "Delving deep into rectifiers", with a = √5):

        W ~ U(−1/√fan_in, 1/√fan_in),   b ~ U(−1/√fan_in, 1/√fan_in)

    where fan_in = in_channels · ∏ kernel_size (in_features for a linear layer); kaiming-uniform
    with a = √5 has gain √(2 / (1 + a²)) = 1/√3, hence the weight bound gain · √(3 / fan_in).
    The draws come, layer by layer and weight before bias, from `torch.Generator().manual_seed(seed)`.
    """
    with torch.device("meta"):
        model = nn.Sequential(*make_layers())
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(module.weight[0].numel())
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
    return model


def build_cnn1d(n_features: int, n_classes: int, seed: int = 0) -> nn.Sequential:
    """The reference 1-D CNN of MNIST-1D (Greydanus & Kobak 2024, "Scaling down deep learning
    with MNIST-1D", ICML; `ConvBase` in github.com/greydanus/mnist1d, notebooks/models.py).

    The signal x ∈ ℝ^{n_features} is read as one channel; three convolutions of 25 channels,
    stride 2 and padding 1 (kernels 5, 3, 3), each followed by a ReLU, halve its length in turn,

        h_1 = ReLU(conv_{5}(x)),  h_2 = ReLU(conv_{3}(h_1)),  h_3 = ReLU(conv_{3}(h_2)),
        conv_k(h)_c[t] = b_c + Σ_{c'} Σ_{j<k} W_{c c' j} h_{c'}[2t + j − 1],

    and a linear layer maps the flattened h_3 to the class logits. For the 40-feature dataset the
    lengths are 40 → 19 → 10 → 5, so the classifier reads 25 · 5 = 125 features (5,210 weights
    and biases in all). No pooling: the strides do the downsampling. The reference training
    (notebooks/train.py) is Adam, learning rate 10⁻², no weight decay, cross-entropy, batches of
    100 for 8,000 steps over the 4,000 training examples (200 epochs); the paper reports 94% test
    accuracy on the 1,000 test examples.
    """
    channels = 25
    length = n_features
    for kernel in (5, 3, 3):
        length = _conv_len(length, kernel, stride=2, padding=1)
    if length < 1:
        raise ConfigError(f"build_cnn1d needs n_features ≥ 3 to leave a feature after three stride-2 convolutions; got {n_features}")

    def layers() -> list[nn.Module]:
        return [
            nn.Unflatten(1, (1, n_features)),
            nn.Conv1d(1, channels, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(channels * length, n_classes),
        ]

    return seeded_sequential(layers, seed)


def build_lenet5(n_features: int, n_classes: int, seed: int = 0, side: int = 28) -> nn.Sequential:
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
    recognition") for side × side images, in the form BioTorch benchmarks it (Sanfiz & Akrout 2021,
    "Benchmarking the accuracy and robustness of feedback alignment algorithms";
    github.com/jsalbert/biotorch, biotorch/models/le_net.py, `LeNetMNIST`).

        C1: 6 maps, 5×5 conv, padding 2 (side × side)     → ReLU → S2: 2×2 max-pool
        C3: 16 maps, 5×5 conv (side/2 − 4 on each axis)  → ReLU → S4: 2×2 max-pool
        F5: 120 units → ReLU,  F6: 84 units → ReLU,  output: n_classes logits

    For 28 × 28 inputs the maps are 28 → 14 → 10 → 5, so F5 reads 16 · 5 · 5 = 400 features
    (61,706 weights and biases in all for 10 classes).
    BioTorch resizes MNIST to 32 × 32 and writes F5 as a 120-map 5×5 convolution over the 5×5
    map; padding C1 by 2 and a linear F5 give the same layer sizes and the same function class.
    Like BioTorch, it uses ReLU and max-pooling where the 1998 paper had scaled tanh units,
    trainable average-pooling subsampling and an RBF output layer.
    """
    if n_features != side * side:
        raise ConfigError(f"build_lenet5 expects flattened {side}×{side} images, n_features = {side * side}; got {n_features}")
    pooled = _conv_len(_conv_len(_conv_len(side, 2, stride=2), 5), 2, stride=2)  # S2, C3, S4
    if pooled < 1:
        raise ConfigError(f"build_lenet5 needs side ≥ 12 to leave a feature map after the second pooling; got {side}")

    def layers() -> list[nn.Module]:
        return [
            nn.Unflatten(1, (1, side, side)),
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * pooled * pooled, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, n_classes),
        ]

    return seeded_sequential(layers, seed)


class Segments(nn.Module):
    """A modular network: the input cut into `segments` equal, contiguous segments, each read by
    its own hidden block, the blocks' readouts summed into the logits.

        x = [x_0 | x_1 | … | x_{S−1}]             (S segments of n_features / S inputs each)
        h_k = tanh(A_k x_k + a_k)                 (block k: Linear(n_features / S → width), tanh)
        logits = Σ_k (W_k h_k + b_k)              (head k: Linear(width → n_classes))

    The sum of the heads is one output layer on the concatenated blocks, W = [W_0 | … | W_{S−1}],
    b = Σ_k b_k, split by block; split, each block's output is the input of its own layer, so a
    rule that treats the input of every layer as a module (the workspace, `plasticity.rules.
    workspace`) sees S hidden modules and the output module. Block k sees segment k only: no
    weight connects segment k to another block (docs/workspace.md, H3)."""

    def __init__(self, n_features: int, n_classes: int, segments: int = 4, width: int = 64) -> None:
        super().__init__()
        if segments < 1 or width < 1:
            raise ConfigError(f"segments and width must be ≥ 1; got {segments} and {width}")
        if n_features % segments:
            raise ConfigError(f"the segments model cuts the {n_features} inputs into {segments} equal segments: {n_features} is not divisible by {segments}")
        self.size = n_features // segments
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(self.size, width), nn.Tanh()) for _ in range(segments))
        self.heads = nn.ModuleList(nn.Linear(width, n_classes) for _ in range(segments))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = x.split(self.size, dim=1)
        logits = self.heads[0](self.blocks[0](parts[0]))
        for part, block, head in zip(parts[1:], self.blocks[1:], self.heads[1:], strict=True):
            logits = logits + head(block(part))
        return logits


def build_segments(n_features: int, n_classes: int, seed: int = 0, segments: int = 4, width: int = 64) -> Segments:
    """`Segments` with PyTorch's default initialisation drawn from `seed` (as `seeded_sequential`):
    each block as a Linear(n_features / segments → width), each head as its slice of the one output
    layer it is part of, a Linear(segments · width → n_classes): weights and biases
    U(−1/√fan_in, 1/√fan_in) with fan_in = segments · width. The draws come, block by block then head
    by head, weight before bias, from `torch.Generator().manual_seed(seed)`; the global random state
    is left untouched. For MNIST-1D (40 inputs, 10 classes) with the defaults: 4 blocks of 10 → 64,
    4 heads of 64 → 10 (5,416 weights and biases)."""
    with torch.device("meta"):
        model = Segments(n_features, n_classes, segments, width)
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    fan_ins = [(block[0], model.size) for block in model.blocks] + [(head, segments * width) for head in model.heads]
    with torch.no_grad():
        for layer, fan_in in fan_ins:
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return model
