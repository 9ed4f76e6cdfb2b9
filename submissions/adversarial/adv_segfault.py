"""Adversarial sample (written by the course team): crashing the Python interpreter.

Expected: model `crashed` — "the worker crashed (SIGSEGV, segmentation fault)". The harness
starts a fresh worker for any model after it. Bounded: reads address 0 of its own process.
"""
import ctypes


def create_improved_model_1():
    """Dereferences a null pointer."""
    return ctypes.string_at(0)
