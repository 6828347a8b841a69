"""Rules as PyTorch extensions: a rule attaches to any `nn.Module` and delivers its learning signal
as ordinary `.grad`, so that the user keeps `loss.backward()` and any `torch.optim` optimizer.

A rule never replaces a layer. It acts on the layers it converts (`nn.Linear`, `nn.Conv1d`,
`nn.Conv2d`) through a per-instance `forward` (`override_forward`): each layer's forward pass and the
gradient of its own weight stay what PyTorch computes, and what the rule changes is the error
that reaches the layer's *input* — through an autograd Function whose backward pass uses the
rule's feedback instead of the transposed forward weight (the idea of BioTorch, Sanfiz & Akrout
2021, "Benchmarking the Accuracy and Robustness of Feedback Alignment Algorithms", without
swapping modules, so that parameter names, `state_dict` keys and optimizers built before
attaching all stay valid).

    model = nn.Sequential(...)                     # any model of Linear / Conv1d / Conv2d layers
    rule = plasticity.attach(model, "dfa", seed=0)  # or DirectFeedbackAlignment(seed=0).attach(model)
    loss = F.cross_entropy(model(x), y); loss.backward(); optimizer.step()
    rule.detach()                                  # the model is plain again

A rule is an `nn.Module`: its feedback matrices are buffers, so `rule.to(device)`,
`rule.state_dict()` and `rule.load_state_dict()` work; the model is not a submodule of the rule
(the user moves and saves the model as before). Layers with parameters that no rule can convert
are refused with their names (`UnsupportedLayer`), never silently left on backprop; the user
may leave them on exact backprop on purpose with `exclude`. Normalisation layers (BatchNorm,
LayerNorm, GroupNorm) pass gradients exactly through their own per-channel parameters and are
listed as left alone (`summary()`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict
from functools import partial
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError
from plasticity.rules.base import RuleConfig, RuleFacts, StepInfo

# Layers a rule converts: their input error is what feedback-alignment rules replace.
LEARNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
# Layers with parameters that are left on exact backprop (per-channel affine maps).
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
# Which rule each attached model is held by: one rule per model at a time.
_HOLDERS: weakref.WeakKeyDictionary[nn.Module, GradientRule] = weakref.WeakKeyDictionary()


class UnsupportedLayer(ConfigError):
    """A model holds a layer with parameters that the rule cannot convert."""


def fan_out(layer: nn.Module) -> int:
    """Inputs that one input unit of `layer` feeds: out_features, or out_channels × kernel size.

    It is the fan-in of the backward direction: the error reaching one input unit is a sum over
    this many weights, so feedback entries of variance 1/fan_out keep the error's scale."""
    weight = layer.weight
    return weight.shape[0] * weight[0, 0].numel()


def conv_padding(layer: nn.Module) -> tuple[int, ...]:
    """A convolution's padding as numbers ('valid' → 0, symmetric 'same' → its numbers)."""
    if layer.padding == "valid":
        return (0,) * len(layer.kernel_size)
    if layer.padding == "same":
        totals = [d * (k - 1) for d, k in zip(layer.dilation, layer.kernel_size, strict=True)]
        if any(total % 2 for total in totals):
            raise UnsupportedLayer(f"padding='same' with an even kernel pads asymmetrically; give {type(layer).__name__} numeric padding")
        return tuple(total // 2 for total in totals)
    return tuple(layer.padding)


def check_layer(name: str, layer: nn.Module) -> None:
    """Refuse, with the layer's name, a convertible layer in a configuration no rule handles."""
    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        if layer.padding_mode != "zeros":
            raise UnsupportedLayer(f"layer {name!r}: padding_mode={layer.padding_mode!r} is not supported (only 'zeros')")
        conv_padding(layer)


class RestoreForward:
    """The handle of `override_forward`: `remove()` gives the module its forward back."""

    def __init__(self, module: nn.Module, previous: Any) -> None:
        self.module, self.previous = module, previous

    def remove(self) -> None:
        if self.previous is None:
            self.module.__dict__.pop("forward", None)
        else:
            self.module.forward = self.previous


def override_forward(module: nn.Module, wrapper: Callable[..., Any]) -> RestoreForward:
    """Make `module(...)` call `wrapper(own_forward, *args, **kwargs)`, on this instance only.

    Cheaper than a pair of forward hooks (one Python call instead of PyTorch's hook dispatch),
    and like hooks it leaves the module's class, parameters and `state_dict` alone."""
    previous = module.__dict__.get("forward")
    module.forward = partial(wrapper, module.forward)
    return RestoreForward(module, previous)


class LazyFeedback(nn.Module):
    """One feedback matrix, a buffer created when its shape is first known (`materialize`).

    Until then it holds no tensor and is absent from `state_dict`; loading a state dict that
    holds it creates it with the stored shape."""

    weight: torch.Tensor | None

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", None)

    @property
    def ready(self) -> bool:
        return self.weight is not None

    def materialize(self, tensor: torch.Tensor) -> torch.Tensor:
        self.weight = tensor
        return tensor

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        stored = state_dict.get(prefix + "weight")
        if self.weight is None and stored is not None:
            self.weight = torch.empty_like(stored)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class GradientRule(RuleFacts, nn.Module):
    """Base class of the rules that attach to a model and deliver `.grad`.

    Parameters go in `__init__` (a config dataclass, or its fields as keywords, and `seed`,
    which fixes the rule's own randomness); what attaching learns about the model ends with an
    underscore: `layers_` (the Linear / Conv1d / Conv2d layers, in the model's module order:
    the layers converted, and the blocks that observers and probes read), `names_` (their
    qualified names) and `left_alone_` ((name, why) for every other module with parameters).

    The config also carries the optimizer settings (`RuleConfig`: lr, optimizer, momentum,
    weight decay) with which the rule is benchmarked; the rule itself never reads them — the
    optimizer is the user's (`plasticity.build.make_optimizer` makes the benchmarked one).
    """

    # Whether the rule converts layers (backprop converts none and accepts any module).
    converts: ClassVar[bool] = True

    def __init__(self, config: RuleConfig | None = None, seed: int = 0, **options: Any) -> None:
        super().__init__()
        config = self.checked_config(config, options)
        self.config = config
        self.seed = seed
        # Draws the rule's random feedback, in the order the feedback is first needed.
        self.generator = torch.Generator().manual_seed(seed)
        self.layers_: list[nn.Module] = []
        self.names_: list[str] = []
        self.left_alone_: list[tuple[str, str]] = []
        self.handles_: list[Any] = []
        # The model is held outside the module tree: moving or saving the rule leaves it alone.
        object.__setattr__(self, "model_", None)
        # Switches, each set by a context manager below.
        self.bypass = False  # True: the converted layers run their own forward (exact backprop), for reference gradients
        self.plastic = True  # False: the rule's own state (learned feedback, step count) does not change
        self.pinned_broadcast: torch.Tensor | None = None
        self.pinned_input: tuple[int, list[torch.Tensor]] | None = None
        # Layers running on the rule's own inference state (pc's value nodes), not on a forward pass.
        self.inferring: frozenset[nn.Module] = frozenset()

    # ----------------------------------------------------------------------------- attaching
    def attach(self, model: nn.Module, exclude: Sequence[str] = ()) -> GradientRule:
        """Convert every Linear / Conv1d / Conv2d layer of `model` (nested modules included).

        exclude: qualified module names (and their submodules) to leave on exact backprop.
        Raises `UnsupportedLayer` naming every other module with parameters of its own that the
        rule cannot convert."""
        if self.model_ is not None:
            raise RuntimeError(f"this {self.name} rule is already attached to a model; detach() it first")
        holders = {_HOLDERS[m].name for m in model.modules() if m in _HOLDERS}
        if holders:
            raise RuntimeError(f"the model (or a part of it) already has a {', '.join(sorted(holders))} rule attached; detach() it first")
        excluded = tuple(exclude)
        unknown = sorted(set(excluded) - {qualified for qualified, _ in model.named_modules()})
        if unknown:
            raise ConfigError(f"exclude names no module of the model: {unknown}")
        layers, names, left, refused = [], [], [], []
        for qualified, module in model.named_modules():
            own = list(module.parameters(recurse=False))
            if any(qualified == e or qualified.startswith(e + ".") for e in excluded):
                if own:
                    left.append((qualified, "excluded: exact backprop"))
            elif isinstance(module, LEARNABLE):
                if self.converts:
                    check_layer(qualified, module)
                layers.append(module)
                names.append(qualified)
            elif not self.converts:
                if own:
                    left.append((qualified, "exact backprop"))
            elif isinstance(module, NORMS):
                left.append((qualified, "normalisation: exact gradient through its own affine parameters"))
            elif own:
                refused.append(f"{qualified} ({type(module).__name__})")
        if refused:
            raise UnsupportedLayer(
                f"{self.name} cannot convert {', '.join(refused)}: it converts Linear, Conv1d and Conv2d layers. "
                "Pass exclude=[...] with these names to leave them on exact backprop on purpose."
            )
        if not layers:
            raise UnsupportedLayer(f"{self.name}: the model has no Linear, Conv1d or Conv2d layer to attach to")
        object.__setattr__(self, "model_", model)
        for module in model.modules():
            _HOLDERS[module] = self
        self.layers_, self.names_, self.left_alone_ = layers, names, left
        self.handles_ = self._register(model)
        return self

    def _register(self, model: nn.Module) -> list[Any]:
        """Register the rule on `model` and `self.layers_`; returns handles whose `remove()`
        undoes it (`RestoreForward`, or a hook's handle)."""
        return []

    def detach(self) -> nn.Module:
        """Undo `attach`: the model trains by exact backprop again. Returns the model."""
        model = self.model_
        if model is None:
            raise RuntimeError(f"this {self.name} rule is not attached to a model")
        for handle in self.handles_:
            handle.remove()
        self.handles_ = []
        for module in model.modules():
            _HOLDERS.pop(module, None)
        object.__setattr__(self, "model_", None)
        return model

    def summary(self) -> str:
        """Which layers the rule converted, and which modules with parameters it left alone."""
        verb = "converted" if self.converts else "attached nothing to (exact backprop)"
        lines = [f"{self.name}: {verb} {len(self.names_)} layer(s)"]
        lines += [f"  {name} ({type(layer).__name__})" for name, layer in zip(self.names_, self.layers_, strict=True)]
        if self.left_alone_:
            lines.append(f"left alone: {len(self.left_alone_)}")
            lines += [f"  {name}: {why}" for name, why in self.left_alone_]
        return "\n".join(lines)

    def check_model(self, model: nn.Module) -> None:
        if model is not self.model_:
            raise ConfigError(f"this {self.name} rule is attached to another model (or to none); attach it to this one first")

    # ----------------------------------------------------------------------------- switches
    @contextmanager
    def _setting(self, attribute: str, value: Any) -> Iterator[None]:
        previous = getattr(self, attribute)
        setattr(self, attribute, value)
        try:
            yield
        finally:
            setattr(self, attribute, previous)

    def bypassed(self) -> AbstractContextManager[None]:
        """Within the block the converted layers run their own forward: gradients are backprop's."""
        return self._setting("bypass", True)

    def frozen(self) -> AbstractContextManager[None]:
        """Within the block the rule's own state does not change (observers and probes)."""
        return self._setting("plastic", False)

    def pin_broadcast(self, signal: torch.Tensor) -> AbstractContextManager[None]:
        """Within the block the rule broadcasts `signal` instead of the error it computes.

        This is how the plausibility check holds the global signal fixed while it perturbs the
        activities of other layers (see `plasticity.observe.plausibility`)."""
        return self._setting("pinned_broadcast", signal)

    # ----------------------------------------------------------------------------- learning
    def objective(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of the class scores whose `.backward()` delivers the rule's directions:
        batch-mean cross-entropy."""
        return F.cross_entropy(logits, y)

    def loss_and_info(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, StepInfo]:
        """The loss whose `.backward()` puts the rule's directions in `.grad`, and what the step
        reports (`StepInfo`: the batch cross-entropy of the class scores, and `applied`: False
        when the rule withholds plasticity this step, and the optimizer must not step).

        Bypassed (`bypassed()`), every rule gives backprop's loss: `objective(model(x), y)`."""
        if self.bypass:
            return GradientRule.step_loss(self, model, x, y)
        return self.step_loss(model, x, y)

    def step_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, StepInfo]:
        """`loss_and_info` of this rule (not bypassed). Default: `objective(model(x), y)`."""
        logits = model(x)
        loss = self.objective(logits, y)
        return loss, StepInfo(loss=loss.detach(), logits=logits.detach())

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The rule's loss for (x, y): call `.backward()` on it, then step any optimizer (unless
        `loss_and_info` says the step is not applied)."""
        return self.loss_and_info(model, x, y)[0]

    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Class scores for `x` at evaluation: the plain forward pass."""
        return model(x)

    def trained(self, model: nn.Module) -> list[torch.Tensor]:
        """Every tensor an optimizer must train: the model's parameters, then the rule's own
        (`self.parameters()`, e.g. Forward-Forward's label weights; none for most rules)."""
        return list(model.parameters()) + list(self.parameters())

    def directions(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        """What `loss.backward()` would put in `.grad` of every tensor of `trained(model)` (zeros
        for unused ones), without touching `.grad` or the rule's state: for observers and the
        plausibility probes."""
        self.check_model(model)
        params = self.trained(model)
        with torch.enable_grad(), self.frozen():
            loss, info = self.loss_and_info(model, x, y)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        directions = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
        with torch.no_grad():
            info.update_norm = float(torch.nn.utils.get_total_norm(directions))
        return directions, info

    def broadcast(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """The signal sent identically to every block for this batch (batch × size), or None."""
        return None

    def relaxed_inputs(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[list[torch.Tensor] | None] | None:
        """Per converted layer, its input after every inference step (None: the forward input).

        None for rules without an inference phase (the default). A rule that relaxes its
        activities before updating (predictive coding) returns, for each layer l, the list
        [input before the first step, after step 1, ..., after step T]."""
        return None

    def pin_input(self, layer: int, trajectory: list[torch.Tensor]) -> AbstractContextManager[None]:
        """Within the block the rule uses `trajectory` as the relaxed input of `layer` (rules with
        an inference phase). The plausibility check holds a layer's relaxed input fixed this way
        while it perturbs the layers below, as the clamp holds a forward input fixed."""
        return self._setting("pinned_input", (layer, trajectory))

    # ----------------------------------------------------------------------------- description
    def card(self) -> PlausibilityCard:
        raise NotImplementedError

    def feedback_pairs(self, model: nn.Module) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(name, feedback B, what B stands in for), same shapes, for alignment angles."""
        return []

    def rule_state(self) -> dict[str, torch.Tensor]:
        """The rule's floating-point state by name (what the plausibility probe perturbs)."""
        return {key: value for key, value in self.state_dict().items() if value.is_floating_point()}

    def load_rule_state(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state, strict=False)

    def describe(self) -> dict[str, Any]:
        return {"rule": self.name, "seed": self.seed, "config": asdict(self.config), "converted": list(self.names_)}

    def extra_repr(self) -> str:
        return f"seed={self.seed}, attached={self.model_ is not None}"


def inferring(module: nn.Module) -> bool:
    """Whether `module` runs, at this moment, on its rule's inference state (a value node of a
    relaxation, `GradientRule.inferring`) rather than on a forward pass: what activity clamps,
    which pin a forward pass, leave alone."""
    holder = _HOLDERS.get(module)
    return holder is not None and module in holder.inferring
