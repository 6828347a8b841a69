"""The experiment harness: bench grids and suites, the class-incremental protocol and its
baselines, the report, the demo and the command line. It is built on the library (`plasticity`'s
other packages) and the library never imports it (`tests/test_imports.py`)."""
