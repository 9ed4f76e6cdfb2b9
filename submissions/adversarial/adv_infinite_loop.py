"""Adversarial sample (written by the course team): a factory that never returns.

Expected: model `timeout` — "create_improved_model_1() did not return a model within N s"
(the profile's build_timeout_s). Bounded: the loop gives up by itself after 10 minutes.
"""
import time


def create_improved_model_1():
    """Spins on the CPU instead of building a model."""
    give_up = time.monotonic() + 600
    counter = 0
    while time.monotonic() < give_up:
        counter += 1
    raise RuntimeError("the harness did not stop an infinite loop within 10 minutes")
