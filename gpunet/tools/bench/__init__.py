"""`gpunet bench`: the throughput sweep, its peers (PyTorch, the per-example loop, the
GEMMs alone) and its report."""
