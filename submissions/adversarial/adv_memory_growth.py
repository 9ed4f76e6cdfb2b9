"""Adversarial sample (written by the course team): memory that grows until something stops it.

Expected: model `out_of_memory` — MemoryError under the worker's address-space limit (or the
memory cgroup's OOM killer). Bounded: it stops by itself at 4 GiB and then fails with a
RuntimeError saying no limit stopped it, so it cannot exhaust an unprotected machine.
"""
CHUNK_MIB = 64
MAX_GIB = 4


def create_improved_model_1():
    """Allocates and touches 64 MiB blocks, keeping them all."""
    blocks = []
    for _ in range(MAX_GIB * 1024 // CHUNK_MIB):
        blocks.append(b"\x01" * (CHUNK_MIB * 2**20))  # filled, so resident, not just reserved
    raise RuntimeError(f"no memory limit stopped {len(blocks) * CHUNK_MIB} MiB of allocations")
