"""Adversarial sample (written by the course team): memory that grows until something stops it.

Expected: model `out_of_memory` — "out of memory (MemoryError): the worker's limit is N MiB of
address space per process" (RLIMIT_AS refuses the next block). Bounded: it stops by itself at
4 GiB and then fails with a RuntimeError saying no limit stopped it, so it cannot exhaust an
unprotected machine. Only the first block is written; the others are reserved (as a growing
program's heap is before it is used). Memory that is written, not just reserved, is stopped by
the resident-memory cap: tests/test_sandbox.py checks that without TensorFlow, quicker.
"""
import numpy as np

BLOCK_MIB = 256
MAX_GIB = 4


def create_improved_model_1():
    """Keeps 256 MiB blocks until the system refuses one."""
    blocks = [np.ones(BLOCK_MIB * 2**20, dtype=np.uint8)]  # resident
    while len(blocks) * BLOCK_MIB < MAX_GIB * 1024:
        blocks.append(np.empty(BLOCK_MIB * 2**20, dtype=np.uint8))  # reserved
    raise RuntimeError(f"no memory limit stopped {len(blocks) * BLOCK_MIB} MiB of allocations")
