"""plasticity: learning without backpropagation, measured side by side with backprop."""

__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202 - module-level lazy attribute
    """`plasticity.attach` (from `plasticity.rules`), imported on first use so that `import
    plasticity` stays light."""
    if name == "attach":
        from plasticity.rules import attach

        return attach
    raise AttributeError(f"module 'plasticity' has no attribute {name!r}")
