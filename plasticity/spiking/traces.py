"""Exponential traces and the pair-based STDP they define.

A trace x with time constant τ jumps by 1 at each spike of its neuron and decays in between,
τ dx/dt = −x, so that x(t) = Σ_{spikes s ≤ t} exp(−(t − s)/τ) (all-to-all interaction; Morrison,
Diesmann & Gerstner 2008, Biol. Cybern. 98:459). Trace-based STDP reads them at spikes:

  at a post spike of j (time t):  Δw_ij += A₊ · x_pre,i(t)     (pre before post: potentiation)
  at a pre spike of i (time t):   Δw_ij −= A₋ · x_post,j(t⁻)   (post before pre: depression)

Summed over a presentation this is the classical pair window (Bi & Poo 1998; Song, Miller &
Abbott 2000): every pair (pre at s, post at t) contributes A₊ exp(−(t − s)/τ₊) if s ≤ t and
−A₋ exp(−(s − t)/τ₋) if s > t. `pair_correlations` evaluates exactly these sums, with the traces
in closed form at the post-spike times, which are few (lateral inhibition keeps the layer
sparse), instead of integrating the traces at every step; the tests integrate the trace ODE step
by step and check that both agree.
"""

from __future__ import annotations

import math

import torch

from plasticity.spiking.encoding import Events


def decay_factor(tau_ms: float, dt_ms: float) -> float:
    """exp(−dt/τ): how much of a trace survives one step."""
    if not (tau_ms > 0 and dt_ms > 0):
        raise ValueError(f"time constants must be positive; got tau={tau_ms}, dt={dt_ms}")
    return math.exp(-dt_ms / tau_ms)


def pair_correlations(
    inputs: Events,
    spikes: torch.Tensor,
    n_inputs: int,
    dt_ms: float,
    tau_pre: float,
    tau_post: float,
    gain: torch.Tensor | None = None,
    tau_eligibility: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(potentiation, depression), each (inputs × neurons), summed over a batch's presentations.

    potentiation_ij = Σ over post spikes of j (sample b, step t) of x_pre,i(t), the pre trace
    with τ_pre (pre spikes at steps ≤ t); depression_ij = Σ over the same post spikes of the pre
    spikes strictly later, each weighted exp(−(s − t)/τ_post): the value of j's post trace at
    each later pre spike of i.

    gain: optional (batch,) or (batch, neurons) factor on each sample's (and neuron's) pairs:
        the third factor of a three-factor rule.
    tau_eligibility: if given, each pair is weighted exp(−(end − t₂)/τ_e), t₂ being the step of
        its later spike and `end` the presentation's last step: the decay of an eligibility
        trace between the pairing and a modulator that arrives at the end.
    """
    steps, batch, neurons = spikes.shape
    potentiation = torch.zeros(n_inputs, neurons)
    depression = torch.zeros(n_inputs, neurons)
    rows = spikes.any(dim=2).nonzero()  # (R, 2): step, sample of every moment with a post spike
    if len(rows) == 0 or len(inputs) == 0:
        return potentiation, depression
    post = spikes[rows[:, 0], rows[:, 1]].to(torch.float32)
    if gain is not None:
        post = post * (gain[rows[:, 1]] if gain.dim() == 2 else gain[rows[:, 1], None])
    log_pre, log_post = -dt_ms / tau_pre, -dt_ms / tau_post
    log_elig = -dt_ms / tau_eligibility if tau_eligibility else 0.0
    event_order = torch.argsort(inputs.sample, stable=True)
    event_bounds = torch.searchsorted(inputs.sample[event_order], torch.arange(batch + 1))
    row_order = torch.argsort(rows[:, 1], stable=True)
    row_bounds = torch.searchsorted(rows[row_order, 1].contiguous(), torch.arange(batch + 1))
    for b in range(batch):
        r = row_order[row_bounds[b] : row_bounds[b + 1]]
        e = event_order[event_bounds[b] : event_bounds[b + 1]]
        if len(r) == 0 or len(e) == 0:
            continue
        t_post = rows[r, 0].to(torch.float32)[:, None]
        t_pre = inputs.step[e].to(torch.float32)[None, :]
        lag = t_post - t_pre  # ≥ 0: pre before (or with) post
        later = torch.maximum(t_post, t_pre)
        age = log_elig * (steps - 1 - later)
        pot = torch.where(lag >= 0, torch.exp(log_pre * lag + age), 0.0)
        dep = torch.where(lag < 0, torch.exp(-log_post * lag + age), 0.0)
        index = inputs.index[e]
        x_pre = torch.zeros(len(r), n_inputs).index_add_(1, index, pot)
        y_pre = torch.zeros(len(r), n_inputs).index_add_(1, index, dep)
        potentiation += x_pre.T @ post[r]
        depression += y_pre.T @ post[r]
    return potentiation, depression
