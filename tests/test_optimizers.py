"""Optimizers: SGD, Adam and AdamW over a model's named parameters, their state, configs and errors."""

import numpy as np
import pytest

from minisnn import get_backend, mlp
from minisnn.optim import SGD, Adam, AdamW, Schedule, optimizer_from_config


@pytest.fixture
def model():
    return mlp(5, 3, depth=2, width=4, dropout=0.0, backend=get_backend("numpy", dtype="float64"), seed=1)


def _fill_grads(model, seed=0):
    rng = np.random.default_rng(seed)
    for p in model.named_parameters():
        p.grad[...] = rng.standard_normal(p.grad.shape)


def _adam_by_hand(w, grads, lr, beta1, beta2, eps, weight_decay, decoupled):
    """Adam / AdamW on one array, written out from Kingma & Ba and Loshchilov & Hutter."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, grad in enumerate(grads, 1):
        if decoupled:
            w = w - lr * weight_decay * w
            g = grad
        else:
            g = grad + weight_decay * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return w


@pytest.mark.parametrize("cls, decoupled", [(Adam, False), (AdamW, True)])
def test_adam_steps_follow_the_update_formulas(model, cls, decoupled):
    opt = cls(model, lr=0.01, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.1)
    start = {p.name: p.value.copy() for p in model.named_parameters()}
    history = {p.name: [] for p in model.named_parameters()}
    for step in range(4):
        _fill_grads(model, step)
        for p in model.named_parameters():
            history[p.name].append(p.grad.copy())
        opt.step()
    for p in model.named_parameters():
        expected = _adam_by_hand(start[p.name], history[p.name], 0.01, 0.8, 0.95, 1e-6, 0.1, decoupled)
        np.testing.assert_allclose(p.value, expected, rtol=1e-13, atol=1e-15)
    assert opt.step_count == 4 and set(opt.state) == {"m", "v"}


def test_adamw_decays_weights_even_without_gradients(model):
    opt = AdamW(model, lr=0.1, weight_decay=0.5)
    before = model.named_parameters()[0].value.copy()
    for p in model.named_parameters():
        p.grad[...] = 0.0
    opt.step()
    np.testing.assert_allclose(model.named_parameters()[0].value, before * (1 - 0.1 * 0.5))


@pytest.mark.parametrize("make", [
    lambda m: SGD(m, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3, schedule=Schedule("cosine", total_steps=9)),
    lambda m: Adam(m, lr=0.002, beta1=0.5, beta2=0.9, eps=1e-7, weight_decay=0.01),
    lambda m: AdamW(m, lr=0.003, weight_decay=0.2, schedule=Schedule("step", step_size=2, gamma=0.5)),
])
def test_configs_rebuild_the_same_optimizer_and_state_round_trips(model, make):
    opt = make(model)
    for step in range(3):
        _fill_grads(model, step)
        opt.step()
    rebuilt = optimizer_from_config(opt.config(), model)
    assert type(rebuilt) is type(opt) and rebuilt.config() == opt.config()
    rebuilt.load_state(opt.step_count, opt.state_arrays())
    assert rebuilt.current_lr == opt.current_lr
    for name, value in opt.state_arrays().items():
        np.testing.assert_array_equal(rebuilt.state_arrays()[name], value)


def test_bad_settings_and_state_are_named(model):
    with pytest.raises(ValueError, match="lr > 0"):
        Adam(model, lr=0.0)
    with pytest.raises(ValueError, match="beta1=1.0"):
        Adam(model, beta1=1.0)
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        SGD(model, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        optimizer_from_config({"kind": "lbfgs"}, model)
    opt = Adam(model)
    state = opt.state_arrays()
    with pytest.raises(ValueError, match="do not match"):
        opt.load_state(1, {k: v for k, v in state.items() if not k.startswith("v/")})
    with pytest.raises(ValueError, match="has shape"):
        opt.load_state(1, {**state, "m/0.W": np.zeros((1, 1))})
    with pytest.raises(ValueError, match="backend"):
        SGD(model.named_parameters(), lr=0.1)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_an_optimizer_pickles_after_binding_its_updates_and_steps_like_the_original(model, kind):
    """The first step binds the updates (closures); a pickled copy binds its own arrays again."""
    import pickle

    optimizer = SGD(model, lr=0.1, momentum=0.9) if kind == "sgd" else Adam(model, lr=0.1)
    _fill_grads(model)
    optimizer.step()
    copy = pickle.loads(pickle.dumps(optimizer))
    copy.step()
    optimizer.step()
    for original, copied in zip(optimizer.params, copy.params):
        assert copied.value is not original.value and np.array_equal(copied.value, original.value)
