"""The class-incremental benchmark of the structural memory (`plasticity continual`): embeddings,
the protocol, its baselines, hyperparameter selection, the summary and its markdown."""
