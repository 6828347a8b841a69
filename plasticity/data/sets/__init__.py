"""One module per dataset family; each exposes loader functions `(LoadOptions) -> Dataset`."""
