"""The benchmarks beside the package: the epoch against PyTorch, distributed scaling, the
pytest-benchmark sweep and the profiling scripts (bench/profile)."""
