"""Spiking, event-driven networks: Poisson input, leaky integrate-and-fire neurons, traces.

The simulator is vectorised over neurons and over the samples of a batch (no per-neuron
Python loop; one Python loop over time steps). `SpikingNet` is the network of Diehl & Cook
(2015); the learning rules that train it (`stdp`, `rstdp`) live in `plasticity.rules`.
"""

from plasticity.spiking.encoding import Events, poisson_events
from plasticity.spiking.network import LIFConfig, Presentation, SpikingNet
from plasticity.spiking.traces import decay_factor, pair_correlations

__all__ = ["Events", "LIFConfig", "Presentation", "SpikingNet", "decay_factor", "pair_correlations", "poisson_events"]
