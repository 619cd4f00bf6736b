"""Test-suite settings."""

import os

import torch

# The suite runs many small tensor operations, usually in pytest-xdist workers (one per core).
# More than one intra-op thread per process oversubscribes the cores, and PyTorch's OpenMP
# threads then stall for several times the work itself. Results do not depend on the thread
# count (tests that time things live in benchmarks/, not here).
torch.set_num_threads(1)
# The CLI chooses its own thread count from the machine; in-process `main()` calls and console
# scripts started by tests must keep one thread too (CI machines may have many cores).
os.environ.setdefault("TOPOSEG_THREADS", "1")
