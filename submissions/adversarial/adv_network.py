"""Adversarial sample (written by the course team): network connection attempts.

Expected: model `error` — "ConnectionError: no network: ..." listing every attempt and why it
failed (under bubblewrap the worker has a private loopback and nothing else). Without
bubblewrap the network is NOT isolated: an attempt may succeed, and then the factory returns a
valid model (status `ok`) — the result's worker.sandbox says the network was not isolated.
Bounded: one small message per attempt, 2-second timeouts, no data is read from anywhere.
"""
import socket

import keras
from keras import layers

# 127.0.0.1:47631 is where tests/test_adversarial.py listens on the grading machine (outside the
# sandbox's network namespace, the same address is a different loopback).
ATTEMPTS = [("tcp", "127.0.0.1", 47631), ("tcp", "192.0.2.1", 80), ("tcp", "10.0.0.1", 443),
            ("dns", "example.org", 80), ("udp", "1.1.1.1", 53)]


def _attempt(kind, host, port):
    if kind == "dns":
        socket.getaddrinfo(host, port)
        return
    family = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, family) as sock:
        sock.settimeout(2)
        sock.connect((host, port))
        sock.sendall(b"adversarial sample: exfiltration attempt\n")


def create_improved_model_1():
    """Tries to reach the network before building a model."""
    failures, successes = [], []
    for kind, host, port in ATTEMPTS:
        try:
            _attempt(kind, host, port)
            successes.append(f"{kind} {host}:{port}")
        except OSError as error:
            failures.append(f"{kind} {host}:{port} ({error.strerror or error})")
    if not successes:
        raise ConnectionError("no network: " + "; ".join(failures))
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
