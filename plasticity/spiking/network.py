"""The spiking network of Diehl & Cook (2015), vectorised over neurons and samples.

Diehl, P. U. & Cook, M. (2015). "Unsupervised learning of digit recognition using
spike-timing-dependent plasticity." Front. Comput. Neurosci. 9:99.

Architecture: Poisson inputs (one per pixel) → a layer of N excitatory conductance-based
leaky integrate-and-fire neurons (all-to-all plastic synapses W, inputs × N) with adaptive
thresholds → lateral inhibition. Per step of length dt, for every excitatory neuron:

  g_e ← g_e · exp(−dt/τ_ge) + Σ_i W_ij s_i          (input spikes s_i open excitatory conductance)
  g_i ← g_i · exp(−dt/τ_gi) + w_inh · (spikes of the *other* excitatory neurons at t − dt)
  τ_m dv/dt = (v_rest − v) + g_e (E_exc − v) + g_i (E_inh − v)   (Euler; clamped while refractory)
  spike when v > v_thresh + θ;  then v ← v_reset, refractory for t_ref, θ ← θ + θ₊

Lateral inhibition: Diehl & Cook connect each excitatory neuron one-to-one to an inhibitory
neuron that inhibits every other excitatory neuron. Their inhibitory neurons fire on the step
after their excitatory partner (weight 10.4 against a 25 mV gap); here that population is
implicit: each excitatory spike adds `inhibition` to the inhibitory conductance of all other
excitatory neurons one step later.

Homeostasis: θ (per neuron, mV) rises by θ₊ at each spike while learning (`adapt=True`) and
decays with τ_θ = 10⁷ ms, so a neuron that fires a lot needs more input to fire again, and every
neuron gets a share of the inputs. At evaluation θ is fixed.

Presentation: an input is shown for `duration_ms`; the network then starts the next input from
rest (Diehl & Cook simulate a 150 ms silent pause for the variables to decay; resetting them is
what the pause achieves). If all N neurons together fire fewer than `min_spikes` times, the
input is shown again with the maximal rate raised by `rate_step_hz`, up to `max_retries` times.

Classification (Diehl & Cook's vote): each neuron is labelled with the class it responds to most
(average spike count per presentation of that class, `responses` / `class_counts`), and an input
is assigned the class whose labelled neurons fire most on average. The response statistics are
written by the learning rule (`SpikingNet.record_responses`), the network only reads them.

Batching: B inputs are simulated at once by B copies of the network that share W and θ (and
start each presentation with the same θ). Everything per presentation is exact for each copy;
what batching changes is *when* the shared state moves: W and θ change after every batch from
the sum of its presentations' changes, instead of after every single presentation.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from plasticity.errors import ConfigError
from plasticity.fields import check_types
from plasticity.nets import check_fits
from plasticity.spiking.encoding import Events, poisson_events
from plasticity.spiking.traces import decay_factor


@dataclass
class LIFConfig:
    """Neuron, input and presentation constants (Diehl & Cook 2015, excitatory population).

    Potentials in mV, times in ms, rates in Hz. `inhibition` is the conductance jump each
    excitatory spike causes in every other excitatory neuron (their inhibitory weight 17).
    `weight_init_max`: initial W is uniform in [0, weight_init_max] (0.3 in the paper).
    """

    dt: float = 0.5
    duration_ms: float = 350.0
    rest_ms: float = 150.0
    v_rest: float = -65.0
    v_reset: float = -65.0
    v_thresh: float = -52.0
    tau_m: float = 100.0
    refractory_ms: float = 5.0
    e_exc: float = 0.0
    e_inh: float = -100.0
    tau_ge: float = 1.0
    tau_gi: float = 2.0
    inhibition: float = 17.0
    theta_plus: float = 0.05
    tau_theta: float = 1e7
    max_rate_hz: float = 63.75
    rate_step_hz: float = 32.0
    min_spikes: int = 5
    max_retries: int = 5
    weight_init_max: float = 0.3

    def validate(self) -> None:
        check_types(self)
        for name in ("dt", "duration_ms", "tau_m", "tau_ge", "tau_gi", "tau_theta", "max_rate_hz"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive finite number; got {value}")
        if self.dt > self.duration_ms:
            raise ConfigError(f"dt ({self.dt} ms) must not exceed the presentation ({self.duration_ms} ms)")
        if self.v_thresh <= self.v_reset:
            raise ConfigError(f"v_thresh ({self.v_thresh}) must lie above v_reset ({self.v_reset})")
        for name in ("rest_ms", "refractory_ms", "inhibition", "theta_plus", "rate_step_hz", "weight_init_max"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0; got {getattr(self, name)}")
        if self.min_spikes < 0 or self.max_retries < 0:
            raise ConfigError("min_spikes and max_retries must be ≥ 0")

    @property
    def steps(self) -> int:
        return round(self.duration_ms / self.dt)


@dataclass
class Presentation:
    """What one batch of presentations did: the record learning rules read.

    inputs: input spike events. spikes: excitatory spikes (steps, batch, neurons), bool.
    rate_hz: the maximal input rate each sample was finally shown at (batch,). Only the last
    showing of a sample that was shown again (too few spikes) is kept.
    """

    inputs: Events
    spikes: torch.Tensor
    rate_hz: torch.Tensor

    @cached_property
    def counts(self) -> torch.Tensor:
        """Spikes per sample and neuron (batch, neurons), float."""
        return self.spikes.sum(dim=0, dtype=torch.float32)


class SpikingNet(nn.Module):
    """Input → N excitatory LIF neurons with lateral inhibition (Diehl & Cook 2015).

    n_inputs: pixels (one Poisson input each); n_neurons: excitatory neurons; n_classes: classes
    of the vote. low/high: the raw input range mapped to intensities [0, 1] (the data's min and
    max; standardised inputs are mapped back this way, as standardisation is affine).

    Parameters and state (all in `state_dict`): weight (inputs × neurons, plastic), theta
    (neurons, mV), responses (neurons × classes: spikes summed per class), class_counts
    (classes: presentations per class behind `responses`).
    """

    activation = "lif"  # what results.json reports as the network's non-linearity

    def __init__(
        self,
        n_inputs: int,
        n_neurons: int,
        n_classes: int,
        low: float = 0.0,
        high: float = 1.0,
        config: LIFConfig | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if min(n_inputs, n_neurons, n_classes) < 1:
            raise ConfigError(f"need ≥ 1 input, neuron and class; got {n_inputs}, {n_neurons}, {n_classes}")
        if not high > low:
            raise ConfigError(f"the input range must have high > low; got [{low}, {high}]")
        self.config = config if config is not None else LIFConfig()
        self.config.validate()
        check_fits(n_inputs * n_neurons, f"a spiking layer of {n_inputs} inputs × {n_neurons} neurons")
        generator = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.rand(n_inputs, n_neurons, generator=generator) * self.config.weight_init_max, requires_grad=False)
        self.register_buffer("theta", torch.zeros(n_neurons))
        self.register_buffer("responses", torch.zeros(n_neurons, n_classes))
        self.register_buffer("class_counts", torch.zeros(n_classes))
        self.low, self.high = float(low), float(high)
        self.sizes = [n_inputs, n_neurons, n_classes]

    @property
    def n_neurons(self) -> int:
        return self.weight.shape[1]

    def intensity(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs mapped to [0, 1] by the network's input range (flattened to (batch, inputs))."""
        x = x.reshape(len(x), -1)
        if x.shape[1] != self.weight.shape[0]:
            raise ConfigError(f"inputs have {x.shape[1]} features; the network expects {self.weight.shape[0]}")
        return ((x - self.low) / (self.high - self.low)).clamp(0.0, 1.0)

    # ------------------------------------------------------------------------- simulation
    @torch.no_grad()
    def present(self, x: torch.Tensor, generator: torch.Generator, adapt: bool = False) -> Presentation:
        """Show every input of the batch (raising the rate for silent ones), with W fixed.

        adapt: whether thresholds rise with spikes *within* the presentation (learning mode);
        the shared θ is not changed here (see `adapt_thresholds`).
        """
        cfg = self.config
        intensity = self.intensity(x)
        rate = torch.full((len(x),), float(cfg.max_rate_hz))
        inputs, spikes = self._run(intensity, rate, generator, adapt)
        for _ in range(cfg.max_retries):
            silent = spikes.sum(dim=(0, 2)) < cfg.min_spikes
            if not silent.any() or cfg.rate_step_hz == 0:
                break
            rate[silent] += cfg.rate_step_hz
            again = silent.nonzero().flatten()
            shown, spikes[:, again] = self._run(intensity[again], rate[again], generator, adapt)
            kept = inputs.select(~silent[inputs.sample])
            inputs = Events(
                step=torch.cat([kept.step, shown.step]),
                sample=torch.cat([kept.sample, again[shown.sample]]),
                index=torch.cat([kept.index, shown.index]),
            )
        return Presentation(inputs=inputs, spikes=spikes, rate_hz=rate)

    def _drive(self, inputs: Events, steps: int, batch: int) -> torch.Tensor:
        """Conductance jumps Σ_i W_ij s_i(t) for every step and sample at once (steps, batch, N).

        W is fixed during a presentation and input spikes are sparse, so one sparse product
        (events as a CSR matrix of rows step·batch + sample) replaces a dense product per step.
        """
        row = inputs.step * batch + inputs.sample
        order = torch.argsort(row)
        crow = torch.zeros(steps * batch + 1, dtype=torch.long)
        crow[1:] = torch.cumsum(torch.bincount(row, minlength=steps * batch), 0)
        # One entry per spike: within a row the columns are unsorted and two spikes of one input
        # in one step are two entries. CSR's invariants (sorted, distinct columns) are not
        # checked, and the product only sums entries, which this layout supports; a test checks
        # it against the dense product.
        with warnings.catch_warnings():  # torch flags CSR support as beta
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
            matrix = torch.sparse_csr_tensor(
                crow, inputs.index[order], torch.ones(len(order)), size=(steps * batch, self.weight.shape[0]), check_invariants=False
            )
        return torch.sparse.mm(matrix, self.weight).reshape(steps, batch, -1)

    def _run(self, intensity: torch.Tensor, rate: torch.Tensor, generator: torch.Generator, adapt: bool) -> tuple[Events, torch.Tensor]:
        cfg = self.config
        steps, batch, n = cfg.steps, len(intensity), self.n_neurons
        inputs = poisson_events(intensity, rate, steps, cfg.dt, generator)
        drive = self._drive(inputs, steps, batch)
        ge_decay, gi_decay = decay_factor(cfg.tau_ge, cfg.dt), decay_factor(cfg.tau_gi, cfg.dt)
        leak = cfg.dt / cfg.tau_m
        refractory_steps = round(cfg.refractory_ms / cfg.dt)
        v = torch.full((batch, n), cfg.v_rest)
        ge = torch.zeros(batch, n)
        gi = torch.zeros(batch, n)
        refractory = torch.zeros(batch, n, dtype=torch.int32)
        threshold = (cfg.v_thresh + self.theta).expand(batch, n).clone()
        fired = torch.zeros(batch, n)
        spikes = torch.zeros(steps, batch, n, dtype=torch.bool)
        for t in range(steps):
            ge = ge * ge_decay + drive[t]
            gi = gi * gi_decay + cfg.inhibition * (fired.sum(dim=1, keepdim=True) - fired)
            free = refractory <= 0
            v = torch.where(free, v + leak * ((cfg.v_rest - v) + ge * (cfg.e_exc - v) + gi * (cfg.e_inh - v)), v)
            now = free & (v > threshold)
            v = torch.where(now, cfg.v_reset, v)
            refractory = torch.where(now, refractory_steps, refractory - 1)
            fired = now.to(torch.float32)
            if adapt:
                threshold = threshold + cfg.theta_plus * fired
            spikes[t] = now
        return inputs, spikes

    def adapt_thresholds(self, counts: torch.Tensor) -> None:
        """Homeostasis after a batch: θ decays over the batch's simulated time, then rises by
        θ₊ per spike (counts: batch × neurons)."""
        cfg = self.config
        elapsed = len(counts) * (cfg.duration_ms + cfg.rest_ms)
        self.theta.mul_(math.exp(-elapsed / cfg.tau_theta)).add_(cfg.theta_plus * counts.sum(dim=0))

    # ------------------------------------------------------------------------- read-out
    def record_responses(self, counts: torch.Tensor, y: torch.Tensor, keep: float = 1.0) -> None:
        """Add a batch's spike counts to the per-class response statistics.

        keep: factor applied to the old statistics first (1: sum over everything seen; < 1:
        older presentations fade, so labels follow weights that are still learning).
        """
        classes = self.responses.shape[1]
        onehot = torch.nn.functional.one_hot(y, classes).to(torch.float32)
        self.responses.mul_(keep).add_(counts.T @ onehot)
        self.class_counts.mul_(keep).add_(onehot.sum(dim=0))

    def labels(self) -> torch.Tensor:
        """Each neuron's class: the one with the highest mean response (−1: never fired yet)."""
        mean = self.responses / self.class_counts.clamp(min=1e-12)
        labels = mean.argmax(dim=1)
        return torch.where(self.responses.sum(dim=1) > 0, labels, -1)

    def vote(self, counts: torch.Tensor) -> torch.Tensor:
        """Class scores (batch, classes): mean spike count of the neurons labelled with each class."""
        labels = self.labels()
        classes = self.responses.shape[1]
        member = torch.nn.functional.one_hot(labels.clamp(min=0), classes).to(torch.float32) * (labels >= 0)[:, None]
        return (counts @ member) / member.sum(dim=0).clamp(min=1.0)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Class scores by vote, thresholds fixed and no learning; deterministic for given x
        (the Poisson draws come from a generator seeded by the inputs' position in the batch)."""
        scores = []
        for start in range(0, len(x), chunk):
            generator = torch.Generator().manual_seed(1_000_003 + start)
            scores.append(self.vote(self.present(x[start : start + chunk], generator).counts))
        return torch.cat(scores) if scores else torch.zeros(0, self.responses.shape[1])
