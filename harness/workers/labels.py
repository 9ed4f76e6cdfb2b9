"""The harness's labels are one-hot: a student's loss for integer labels is trained as its one-hot twin.

Shared by the training worker (a factory's compiled loss) and the notebook run (a top-level model's, which
the synthesised factory compiles). No import: it reads the loss object it is given.
"""

from __future__ import annotations

SPARSE = "sparse_categorical_crossentropy"


def sparse_from_logits(loss) -> bool | None:
    """None when `loss` (a name, a function or a Keras loss object) is not sparse categorical cross-entropy;
    otherwise whether it is computed on logits (``from_logits=True``, TensorFlow's quickstart)."""
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", None) or getattr(loss, "name", "")
    if SPARSE not in str(name):
        return None
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    return bool(config.get("from_logits", False))
