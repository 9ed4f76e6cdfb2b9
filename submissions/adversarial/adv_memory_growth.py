"""Adversarial sample (written by the course team): memory that grows until something stops it.

Expected: model `out_of_memory` — "out of memory (MemoryError): the worker's limit is N MiB of
address space per process" (RLIMIT_AS refuses the next block). Bounded: it stops by itself at
4 GiB and then fails with a RuntimeError saying no limit stopped it, so it cannot exhaust an
unprotected machine. The blocks are reserved, zero-filled on first touch (calloc), and only the
first one is written: a fill of every block is what tests/test_sandbox.py's resident-memory test
does, quicker, without TensorFlow.
"""
BLOCK_MIB = 256
MAX_GIB = 4


def create_improved_model_1():
    """Keeps 256 MiB blocks until the system refuses one."""
    blocks = []
    for n in range(MAX_GIB * 1024 // BLOCK_MIB):
        block = bytearray(BLOCK_MIB * 2**20)
        if n == 0:
            block[:] = b"\x01" * len(block)  # one block really resident
        blocks.append(block)
    raise RuntimeError(f"no memory limit stopped {len(blocks) * BLOCK_MIB} MiB of allocations")
