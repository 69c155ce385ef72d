"""The self-normalizing property of deep SELU networks at LeCun initialization."""

import numpy as np

from minisnn import get_backend
from minisnn.model import mlp


def _layer_moments(activation):
    be = get_backend("numpy", dtype="float64")
    model = mlp(256, 10, depth=64, width=256, dropout=0.0, activation=activation, init="lecun_normal",
                fused=False, backend=be, seed=0)
    x = be.asarray(np.random.default_rng(0).standard_normal((2000, 256)))
    moments = []
    for layer in model.layers[:-1]:
        x = layer.forward(x, train=False)
        if type(layer).__name__ != "Linear":
            moments.append((float(x.mean()), float(x.var())))
    return np.array(moments)  # (64, 2)


def test_selu_network_keeps_every_layer_normalized():
    moments = _layer_moments("selu")
    assert moments.shape == (64, 2)
    assert np.abs(moments[:, 0]).max() < 0.1
    assert moments[:, 1].min() > 0.8 and moments[:, 1].max() < 1.2


def test_relu_network_with_lecun_init_does_not():
    moments = _layer_moments("relu")
    # The variance roughly halves each layer and collapses toward zero.
    assert moments[-1, 1] < 1e-6
    assert not (moments[:, 1].min() > 0.8 and moments[:, 1].max() < 1.2)
