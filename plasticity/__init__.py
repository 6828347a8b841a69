"""plasticity: learning without backpropagation, measured side by side with backprop."""

__version__ = "0.1.0"
