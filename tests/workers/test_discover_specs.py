"""Discovery grades one of each identical set-up: the same network built twice reads the same whatever
names Keras numbered its layers with (harness/workers/discover.py, ``architecture``)."""

from __future__ import annotations

import json

import pytest

from harness.workers.discover import architecture


def _functional(batchnorm: bool, name: str = "E1", dropout: bool = False):
    keras = pytest.importorskip("keras")
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3)(inputs)
    if batchnorm:
        x = keras.layers.BatchNormalization()(x)
    if dropout:
        x = keras.layers.Dropout(0.25)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name=name)


def test_the_same_network_built_twice_has_one_architecture_and_another_network_another():
    first, again, other = _functional(True).to_json(), _functional(True).to_json(), _functional(False).to_json()
    assert first != again  # Keras numbered the second build's layers on: conv2d_1, batch_normalization_1…
    assert architecture(first) == architecture(again)
    assert architecture(first) != architecture(other)


def test_a_model_named_like_a_layer_keras_names_is_still_the_same_network():
    """A config table's run called "dropout" names a model whose first Dropout layer Keras also names
    "dropout" (then "dropout_1" in the second seed's build): the model's own name is not one Keras numbers."""
    pytest.importorskip("keras").backend.clear_session()  # the first Dropout is then named "dropout"
    first, again = (_functional(False, name="dropout", dropout=True).to_json() for _ in range(2))
    assert architecture(first) == architecture(again)


def test_an_optimizer_numbered_by_keras_is_the_same_optimizer():
    keras = pytest.importorskip("keras")
    first, again = (json.dumps(keras.optimizers.serialize(keras.optimizers.Adam(1e-3))) for _ in range(2))
    assert first != again and architecture(first) == architecture(again)


def test_what_is_not_json_is_left_as_it_is():
    assert architecture("") == "" and architecture("not json") == "not json"


REFERENCE = ["Conv2D(32)", "MaxPooling2D()", "Conv2D(64)", "MaxPooling2D()", "Flatten()", "Dense(128)", "Dense(10)"]


def _found(signature: list[str], variable: str = "model") -> dict:
    return {"model_json": "{}", "variable": variable, "name": "mnist_net", "signature": signature, "fit": {}}


@pytest.mark.parametrize(
    ("first", "baseline"),
    [
        (REFERENCE, True),
        # a subclassed model lists its layers in the order its __init__ assigns them, not the order call() runs
        # them: MnistNet() at its defaults is the handout's network
        (
            ["Conv2D(32)", "Conv2D(64)", "MaxPooling2D()", "MaxPooling2D()", "Flatten()", "Dense(128)", "Dense(10)"],
            True,
        ),
        (
            ["Conv2D(32)", "Conv2D(64)", "MaxPooling2D()", "MaxPooling2D()", "Flatten()", "Dense(256)", "Dense(10)"],
            False,
        ),
    ],
)
def test_the_first_model_with_the_reference_s_layers_is_the_baseline(first, baseline):
    from harness.workers.discover import _Recorder

    models = [_found(first), _found([*first[:-1], "Dropout()", "Dense(10)"])]
    _Recorder._name(models, REFERENCE)
    assert (models[0]["role"] == "baseline") == baseline
