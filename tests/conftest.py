"""Test-suite settings."""

import torch

# The suite runs many small tensor operations, usually in pytest-xdist workers (one per core).
# More than one intra-op thread per process oversubscribes the cores, and PyTorch's OpenMP
# threads then stall for several times the work itself. Results do not depend on the thread
# count (tests that time things live in benchmarks/, not here).
torch.set_num_threads(1)
