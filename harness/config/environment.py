"""The environment variables the harness reads, named once."""

DATA_ENV = "HARNESS_MNIST_NPZ"  # a local MNIST .npz (no network needed)
SUITE_CACHE_ENV = "HARNESS_SUITE_CACHE"  # where built robustness suites are cached (default: per user)
