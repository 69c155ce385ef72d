"""PyTorch as an oracle for whole training runs: the same network, batches, masks and optimizer
steps in torch (float64, autograd) must give minisnn's losses and final weights.

The torch network is built from the minisnn model's layers: nn.Linear layers holding copies of
its initial weights, torch's own SELU, and alpha dropout applied with the keep masks minisnn's
layers draw (DropoutMask.keep for the layer's seed and the training step), with the affine map
written out here from the paper (not taken from minisnn). The optimizer is torch.optim's.
Also single ops: the reference's batch norm (training, with running statistics, and evaluation),
layer norm and weight norm, forward and backward, against torch.nn.functional and autograd.
Skipped without torch.
"""

import math

import numpy as np
import pytest

from minisnn import SGD, Adam, AdamW, get_backend, mlp, train_step
from minisnn import reference as ref
from minisnn.data import make_synthetic
from minisnn.layers import SELU, AlphaDropout, Linear, LinearSELU
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.rng import DropoutMask, dropout_key, keep_threshold
from test_optim_and_training import RECORDED_LOSSES

torch = pytest.importorskip("torch")

BATCH = 32


@pytest.fixture(autouse=True)
def _one_thread(torch):  # conftest's fixture: torch on one thread for these tests
    yield


def alpha_dropout_affine(rate):
    """(a, b, alpha') of alpha dropout at the (0, 1) fixed point (paper Sec. 6), with torch's SELU constants."""
    # torch.nn.functional.selu's constants
    alpha_prime = -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717
    q = 1.0 - rate
    a = (q + alpha_prime**2 * q * (1 - q)) ** -0.5
    return a, -a * (1 - q) * alpha_prime, alpha_prime


class TorchNetwork:
    """The torch version of a minisnn Sequential of Linear, LinearSELU, SELU and AlphaDropout layers."""

    def __init__(self, model):
        self.stages, self.parameters = [], []
        for layer in model.layers:
            if isinstance(layer, Linear):  # LinearSELU too
                linear = torch.nn.Linear(layer.d_in, layer.d_out, dtype=torch.float64)
                with torch.no_grad():
                    linear.weight.copy_(torch.from_numpy(np.array(layer.params["W"]).T))
                    linear.bias.copy_(torch.from_numpy(np.array(layer.params["b"])))
                self.stages.append(("linear", linear))
                self.parameters += [linear.weight, linear.bias]
            if isinstance(layer, (LinearSELU, SELU)):
                self.stages.append(("selu", None))
            if isinstance(layer, (LinearSELU, AlphaDropout)) and layer.dropout.rate > 0:
                self.stages.append(("dropout", layer.dropout))
            assert isinstance(layer, (Linear, SELU, AlphaDropout)), f"no torch version of {type(layer).__name__}"

    def forward(self, x, step):
        for kind, stage in self.stages:
            if kind == "linear":
                x = stage(x)
            elif kind == "selu":
                x = torch.nn.functional.selu(x)
            else:
                a, b, alpha_prime = alpha_dropout_affine(stage.rate)
                k0, k1 = dropout_key(stage.seed, step)
                mask = DropoutMask(k0, k1, keep_threshold(stage.rate), a, b, a * alpha_prime + b, stage.feature_wise)
                keep = torch.from_numpy(np.ascontiguousarray(mask.keep(tuple(x.shape))))
                x = a * torch.where(keep, x, torch.full_like(x, alpha_prime)) + b
        return x

    def weights(self):
        return [p.detach().numpy().T if p.ndim == 2 else p.detach().numpy() for p in self.parameters]


def batches(steps):
    data = make_synthetic(n_train=256, n_test=0, seed=1)
    for step in range(steps):
        rows = slice((step * BATCH) % 256, (step * BATCH) % 256 + BATCH)
        yield data.x_train[rows], data.y_train[rows]


def run_both(backend_name, optimizer, steps, depth=3, width=32, dropout=0.1, feature_wise=False, fused=True, seed=0):
    """(minisnn losses, torch losses, minisnn final weights, torch final weights) of the same run."""
    data = make_synthetic(n_train=256, n_test=0, seed=1)
    be = get_backend(backend_name, dtype="float64")
    model = mlp(data.n_features, data.n_classes, depth=depth, width=width, dropout=dropout, backend=be, seed=seed,
                feature_wise_dropout=feature_wise, fused=fused)
    network = TorchNetwork(model)
    kind, options = optimizer
    ours = {"sgd": SGD, "adam": Adam, "adamw": AdamW}[kind](model, **options)
    torch_options = dict(options)
    if kind != "sgd":
        torch_options["betas"] = (torch_options.pop("beta1", 0.9), torch_options.pop("beta2", 0.999))
    theirs = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind](
        network.parameters, **torch_options)
    loss = SoftmaxCrossEntropy(be)
    our_losses, their_losses = [], []
    for step, (x, y) in enumerate(batches(steps)):
        our_losses.append(float(train_step(model, loss, ours, be.asarray(x), be.asarray(y))))
        theirs.zero_grad()
        value = torch.nn.functional.cross_entropy(network.forward(torch.from_numpy(x.astype(np.float64)), step),
                                                  torch.from_numpy(y.astype(np.int64)))
        value.backward()
        theirs.step()
        their_losses.append(value.item())
    our_weights = [np.array(be.to_numpy(p.value)) for p in model.named_parameters()]
    return np.array(our_losses), np.array(their_losses), our_weights, network.weights()


def assert_same_weights(ours, theirs, rtol):
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, i
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max(), err_msg=f"parameter {i}")


def backend_names():
    names = ["numpy"]
    try:
        get_backend("numba")
        names.append("numba")
    except Exception:
        pass
    return names


def test_torch_reproduces_the_recorded_losses():
    """The six SGD steps whose losses tests/test_optim_and_training.py pins, computed by torch."""
    ours, theirs, our_weights, their_weights = run_both("numpy", ("sgd", {"lr": 0.05, "momentum": 0.9}), steps=6,
                                                        depth=4, width=32, dropout=0.05)
    np.testing.assert_allclose(theirs, RECORDED_LOSSES, rtol=1e-10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-11)
    assert_same_weights(our_weights, their_weights, rtol=1e-11)


RUNS = {  # name -> (optimizer, run_both options)
    "sgd-no-dropout": (("sgd", {"lr": 0.05, "momentum": 0.9}), {"steps": 20, "dropout": 0.0}),
    "sgd-nesterov-decay": (("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
                           {"steps": 20, "dropout": 0.1}),
    "sgd-unfused": (("sgd", {"lr": 0.05, "momentum": 0.9}), {"steps": 10, "dropout": 0.1, "fused": False}),
    "adam-per-feature": (("adam", {"lr": 1e-3, "weight_decay": 1e-4}), {"steps": 8, "dropout": 0.1,
                                                                        "feature_wise": True}),
    "adamw": (("adamw", {"lr": 1e-3, "weight_decay": 0.01}), {"steps": 8, "dropout": 0.05}),
}


@pytest.mark.parametrize("backend_name", backend_names())
@pytest.mark.parametrize("run", sorted(RUNS))
def test_training_steps_equal_torch(run, backend_name):
    optimizer, options = RUNS[run]
    ours, theirs, our_weights, their_weights = run_both(backend_name, optimizer, **options)
    assert np.isfinite(theirs).all() and not math.isclose(theirs[0], theirs[-1])  # it trains
    np.testing.assert_allclose(ours, theirs, rtol=1e-11)  # they agree to about 1e-15
    assert_same_weights(our_weights, their_weights, rtol=1e-11)


# ---- single ops against torch.nn.functional (float64, autograd) -------------------------------------

EPS_NORM = 1e-5
OP_SHAPE = (6, 5)


def _tensors(*arrays):
    return [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]


def _grads(*tensors):
    return [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("n", [2, 6])
def test_batch_norm_training_and_running_statistics_equal_torch(n):
    rng = np.random.default_rng(5)
    x, gamma, beta = 3.0 + rng.standard_normal((n, 5)), rng.standard_normal(5), rng.standard_normal(5)
    dy = rng.standard_normal((n, 5))
    running_mean, running_var = rng.standard_normal(5), rng.uniform(0.5, 1.5, 5)
    ours_mean, ours_var = running_mean.copy(), running_var.copy()
    theirs_mean, theirs_var = torch.tensor(running_mean), torch.tensor(running_var)
    tx, tgamma, tbeta = _tensors(x, gamma, beta)
    y = torch.nn.functional.batch_norm(tx, theirs_mean, theirs_var, tgamma, tbeta, training=True, momentum=0.1,
                                       eps=EPS_NORM)
    y.backward(torch.tensor(dy))
    ours, mean, rstd = ref.batch_norm_forward(x, gamma, beta, EPS_NORM, running_mean=ours_mean, running_var=ours_var,
                                              momentum=0.1)
    np.testing.assert_allclose(ours, y.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_mean, theirs_mean.numpy(), rtol=1e-13)
    np.testing.assert_allclose(ours_var, theirs_var.numpy(), rtol=1e-13)  # unbiased, as torch
    for got, want, name in zip(ref.batch_norm_backward(dy, x, gamma, mean, rstd), _grads(tx, tgamma, tbeta),
                               ("dx", "dgamma", "dbeta")):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11, err_msg=name)


def test_batch_norm_inference_and_its_backward_equal_torch_eval():
    rng = np.random.default_rng(6)
    x, gamma, beta, dy = (rng.standard_normal(OP_SHAPE), rng.standard_normal(5), rng.standard_normal(5),
                          rng.standard_normal(OP_SHAPE))
    running_mean, running_var = rng.standard_normal(5), rng.uniform(0.5, 1.5, 5)
    tx, tgamma, tbeta = _tensors(x, gamma, beta)
    y = torch.nn.functional.batch_norm(tx, torch.tensor(running_mean), torch.tensor(running_var), tgamma, tbeta,
                                       training=False, eps=EPS_NORM)
    y.backward(torch.tensor(dy))
    ours = ref.batch_norm_inference(x, gamma, beta, running_mean, running_var, EPS_NORM)
    np.testing.assert_allclose(ours, y.detach().numpy(), rtol=1e-13, atol=1e-13)
    grads = ref.batch_norm_inference_backward(dy, x, gamma, running_mean, running_var, EPS_NORM)
    for got, want, name in zip(grads, _grads(tx, tgamma, tbeta), ("dx", "dgamma", "dbeta")):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13, err_msg=name)


def test_layer_norm_equals_torch():
    rng = np.random.default_rng(7)
    x, gamma, beta, dy = (-2.0 + rng.standard_normal(OP_SHAPE), rng.standard_normal(5), rng.standard_normal(5),
                          rng.standard_normal(OP_SHAPE))
    tx, tgamma, tbeta = _tensors(x, gamma, beta)
    y = torch.nn.functional.layer_norm(tx, (5,), tgamma, tbeta, eps=EPS_NORM)
    y.backward(torch.tensor(dy))
    ours, mean, rstd = ref.layer_norm_forward(x, gamma, beta, EPS_NORM)
    np.testing.assert_allclose(ours, y.detach().numpy(), rtol=1e-12, atol=1e-12)
    for got, want, name in zip(ref.layer_norm_backward(dy, x, gamma, mean, rstd), _grads(tx, tgamma, tbeta),
                               ("dx", "dgamma", "dbeta")):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11, err_msg=name)


def test_weight_norm_equals_torch_weight_norm():
    """torch's weight norm over dim 0 of its (out, in) weight: a norm per output unit, our columns of (in, out)."""
    rng = np.random.default_rng(8)
    v, g, dw = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((4, 3))
    tv, tg = _tensors(v.T.copy(), g[:, None].copy())  # torch: v (out, in), g (out, 1)
    w = torch._weight_norm(tv, tg, 0)
    w.backward(torch.tensor(dw.T.copy()))
    ours, norm = ref.weight_norm_forward(v, g)
    np.testing.assert_allclose(ours, w.detach().numpy().T, rtol=1e-13, atol=1e-14)
    dv, dg = ref.weight_norm_backward(dw, v, g, norm)
    np.testing.assert_allclose(dv, tv.grad.numpy().T, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dg, tg.grad.numpy()[:, 0], rtol=1e-12, atol=1e-13)
