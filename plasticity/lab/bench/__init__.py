"""Benchmarks side by side: grids of rules × datasets × seeds run in lockstep (`runner`), YAML suites
(`suite`), their summary with ratios to backprop (`summary`), and the table in words and markdown
(`describe`, `markdown`)."""
