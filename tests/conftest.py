"""Test-suite settings."""

import os

import torch

# pytest-xdist runs one process per core: more than one intra-op thread per process would
# oversubscribe the cores, and PyTorch's OpenMP threads then slow down by several times.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
