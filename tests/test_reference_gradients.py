"""The reference's backward ops against central finite differences, and its update ops against the
update formulas written out here on whole arrays (and torch.optim where PyTorch is installed),
step by step for five steps. All in float64.

Each backward is checked on a scalar f = sum(dy * forward(inputs)) (a loss is its own f): the
gradient the backward op returns must equal (f(a + h e_i) - f(a - h e_i)) / (2h) for every entry i
of every input a, to a relative error below 1e-6. Inputs keep 0.05 away from the kinks (0 for
SELU, ReLU and ELU), so that no difference straddles one. Dropout masks are fixed (the same
DropoutMask in every evaluation).
"""

import numpy as np
import pytest

from backend_cases import SELU_01, SELU_04, dropout_mask
from minisnn import reference as ref

H = 1e-5  # truncation error ~h^2 |f'''| ~ 1e-10, rounding ~eps |f| / h ~ 1e-10
REL_TOL = 1e-6
FLOOR = 1e-3  # relative errors are measured against max(|analytic|, |numeric|, FLOOR)


def away_from_kink(x, margin=0.05):
    """x with every entry within `margin` of 0 pushed out to +-margin (keeping its sign)."""
    return np.where(np.abs(x) < margin, np.copysign(margin, x) + x, x)


def numeric_gradient(f, inputs: dict, name: str) -> np.ndarray:
    """d f / d inputs[name] by central differences, one entry at a time."""
    a = inputs[name]
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        saved = a[i]
        a[i] = saved + H
        up = f(**inputs)
        a[i] = saved - H
        down = f(**inputs)
        a[i] = saved
        grad[i] = (up - down) / (2 * H)
    return grad


def assert_gradient(analytic, numeric, what):
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    assert analytic.shape == numeric.shape, what
    rel = np.abs(analytic - numeric) / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), FLOOR)
    assert rel.max() < REL_TOL, f"{what}: relative error {rel.max():.2e} at {np.unravel_index(rel.argmax(), rel.shape)}"
    assert np.abs(numeric).max() > 1e-2, f"{what}: a vanishing gradient checks nothing"


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


SHAPE = (5, 7)


# ---- activations: backward from the output y -------------------------------------------------------

ACTIVATIONS = {  # name -> (forward(x), backward(dy, y))
    "selu01": (lambda x: ref.selu_forward(x, **SELU_01), lambda dy, y: ref.selu_backward(dy, y, **SELU_01)),
    "selu04": (lambda x: ref.selu_forward(x, **SELU_04), lambda dy, y: ref.selu_backward(dy, y, **SELU_04)),
    "relu": (ref.relu_forward, ref.relu_backward),
    "elu": (lambda x: ref.elu_forward(x, 1.0), lambda dy, y: ref.elu_backward(dy, y, 1.0)),
    "elu0.5": (lambda x: ref.elu_forward(x, 0.5), lambda dy, y: ref.elu_backward(dy, y, 0.5)),
    "tanh": (ref.tanh_forward, ref.tanh_backward),
    "sigmoid": (ref.sigmoid_forward, ref.sigmoid_backward),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_from_the_output_is_the_derivative(name, rng):
    forward, backward = ACTIVATIONS[name]
    x, dy = away_from_kink(2 * rng.standard_normal(SHAPE)), rng.standard_normal(SHAPE)
    dx = backward(dy, forward(x))
    assert_gradient(dx, numeric_gradient(lambda x: (dy * forward(x)).sum(), {"x": x}, "x"), name)


@pytest.mark.parametrize("selu", [SELU_01, SELU_04], ids=["selu01", "selu04"])
def test_bias_selu_backward(selu, rng):
    z, b, dy = 2 * rng.standard_normal(SHAPE), rng.standard_normal(SHAPE[1]), rng.standard_normal(SHAPE)
    z = away_from_kink(z + b) - b

    def f(z, b):
        return (dy * ref.bias_selu_forward(z, b, **selu)).sum()

    dz, db = ref.bias_selu_backward(dy, ref.bias_selu_forward(z, b, **selu), **selu)
    inputs = {"z": z, "b": b}
    assert_gradient(dz, numeric_gradient(f, inputs, "z"), "dz")
    assert_gradient(db, numeric_gradient(f, inputs, "b"), "db")


@pytest.mark.parametrize("kind", ["element", "per_feature", "standard"])
def test_alpha_dropout_backward_with_a_fixed_mask(kind, rng):
    mask = dropout_mask(kind, rate=0.3)
    x, dy = rng.standard_normal((9, 11)), rng.standard_normal((9, 11))
    dx = ref.alpha_dropout_backward(dy, mask)
    assert not mask.keep(x.shape).all() and mask.keep(x.shape).any()
    numeric = numeric_gradient(lambda x: (dy * ref.alpha_dropout_forward(x, mask)).sum(), {"x": x}, "x")
    assert_gradient(dx, numeric, kind)
    assert np.array_equal(dx == 0, ~mask.keep(x.shape))


@pytest.mark.parametrize("kind", ["element", "per_feature"])
@pytest.mark.parametrize("selu", [SELU_01, SELU_04], ids=["selu01", "selu04"])
def test_bias_selu_dropout_backward_from_the_output(kind, selu, rng):
    mask = dropout_mask(kind, rate=0.3)
    shape = (9, 11)
    z, b, dy = 2 * rng.standard_normal(shape), rng.standard_normal(shape[1]), rng.standard_normal(shape)
    z = away_from_kink(z + b) - b

    def f(z, b):
        return (dy * ref.bias_selu_dropout_forward(z, b, mask, **selu)).sum()

    y = ref.bias_selu_dropout_forward(z, b, mask, **selu)
    dz, db = ref.bias_selu_dropout_backward(dy, y, mask, **selu)
    inputs = {"z": z, "b": b}
    assert_gradient(dz, numeric_gradient(f, inputs, "z"), "dz")
    assert_gradient(db, numeric_gradient(f, inputs, "b"), "db")


def test_column_sum_is_the_backward_of_bias_add(rng):
    z, b, dy = rng.standard_normal(SHAPE), rng.standard_normal(SHAPE[1]), rng.standard_normal(SHAPE)

    def f(z, b):
        return (dy * ref.bias_add_forward(z, b)).sum()

    assert_gradient(ref.column_sum(dy), numeric_gradient(f, {"z": z, "b": b}, "b"), "db")
    assert_gradient(dy, numeric_gradient(f, {"z": z, "b": b}, "z"), "dz")


def test_matmul_backward_as_the_layers_compute_it(rng):
    """Linear's backward: dW = x^T dz and dx = dz W^T, both matmuls of transposed views."""
    x, w, dz = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal((5, 3))

    def f(x, w):
        return (dz * ref.matmul(x, w)).sum()

    assert_gradient(ref.matmul(x.T, dz), numeric_gradient(f, {"x": x, "w": w}, "w"), "dW")
    assert_gradient(ref.matmul(dz, w.T), numeric_gradient(f, {"x": x, "w": w}, "x"), "dx")


# ---- composite layers: residual sums, normalization, highway gates -------------------------------------

EPS_NORM = 1e-5


def test_add_backward_passes_dy_to_both_summands(rng):
    a, b, dy = rng.standard_normal(SHAPE), rng.standard_normal(SHAPE), rng.standard_normal(SHAPE)

    def f(a, b):
        return (dy * ref.add(a, b)).sum()

    assert_gradient(dy, numeric_gradient(f, {"a": a, "b": b}, "a"), "da")
    assert_gradient(dy, numeric_gradient(f, {"a": a, "b": b}, "b"), "db")


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_batch_norm_backward(offset, rng):
    x = offset + 2 * rng.standard_normal(SHAPE)
    gamma, beta, dy = rng.standard_normal(SHAPE[1]), rng.standard_normal(SHAPE[1]), rng.standard_normal(SHAPE)

    def f(x, gamma, beta):
        return (dy * ref.batch_norm_forward(x, gamma, beta, EPS_NORM)[0]).sum()

    _, mean, rstd = ref.batch_norm_forward(x, gamma, beta, EPS_NORM)
    dx, dgamma, dbeta = ref.batch_norm_backward(dy, x, gamma, mean, rstd)
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    assert_gradient(dx, numeric_gradient(f, inputs, "x"), "dx")
    assert_gradient(dgamma, numeric_gradient(f, inputs, "gamma"), "dgamma")
    assert_gradient(dbeta, numeric_gradient(f, inputs, "beta"), "dbeta")


def test_batch_norm_inference_backward(rng):
    x, gamma, beta, dy = (rng.standard_normal(SHAPE), rng.standard_normal(SHAPE[1]), rng.standard_normal(SHAPE[1]),
                          rng.standard_normal(SHAPE))
    running_mean, running_var = rng.standard_normal(SHAPE[1]), rng.uniform(0.5, 2.0, SHAPE[1])

    def f(x, gamma, beta):
        return (dy * ref.batch_norm_inference(x, gamma, beta, running_mean, running_var, EPS_NORM)).sum()

    dx, dgamma, dbeta = ref.batch_norm_inference_backward(dy, x, gamma, running_mean, running_var, EPS_NORM)
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    assert_gradient(dx, numeric_gradient(f, inputs, "x"), "dx")
    assert_gradient(dgamma, numeric_gradient(f, inputs, "gamma"), "dgamma")
    assert_gradient(dbeta, numeric_gradient(f, inputs, "beta"), "dbeta")


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_layer_norm_backward(offset, rng):
    x = offset + 2 * rng.standard_normal(SHAPE)
    gamma, beta, dy = rng.standard_normal(SHAPE[1]), rng.standard_normal(SHAPE[1]), rng.standard_normal(SHAPE)

    def f(x, gamma, beta):
        return (dy * ref.layer_norm_forward(x, gamma, beta, EPS_NORM)[0]).sum()

    _, mean, rstd = ref.layer_norm_forward(x, gamma, beta, EPS_NORM)
    dx, dgamma, dbeta = ref.layer_norm_backward(dy, x, gamma, mean, rstd)
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    assert_gradient(dx, numeric_gradient(f, inputs, "x"), "dx")
    assert_gradient(dgamma, numeric_gradient(f, inputs, "gamma"), "dgamma")
    assert_gradient(dbeta, numeric_gradient(f, inputs, "beta"), "dbeta")


def test_weight_norm_backward(rng):
    v, g, dw = rng.standard_normal(SHAPE), rng.standard_normal(SHAPE[1]), rng.standard_normal(SHAPE)

    def f(v, g):
        return (dw * ref.weight_norm_forward(v, g)[0]).sum()

    _, norm = ref.weight_norm_forward(v, g)
    dv, dg = ref.weight_norm_backward(dw, v, g, norm)
    assert_gradient(dv, numeric_gradient(f, {"v": v, "g": g}, "v"), "dv")
    assert_gradient(dg, numeric_gradient(f, {"v": v, "g": g}, "g"), "dg")


def test_highway_backward(rng):
    h, x, dy = rng.standard_normal(SHAPE), rng.standard_normal(SHAPE), rng.standard_normal(SHAPE)
    t = rng.uniform(0.1, 0.9, SHAPE)

    def f(h, t, x):
        return (dy * ref.highway_forward(h, t, x)).sum()

    dh, dt, dx = ref.highway_backward(dy, h, t, x)
    inputs = {"h": h, "t": t, "x": x}
    assert_gradient(dh, numeric_gradient(f, inputs, "h"), "dh")
    assert_gradient(dt, numeric_gradient(f, inputs, "t"), "dt")
    assert_gradient(dx, numeric_gradient(f, inputs, "x"), "dx")


# ---- losses: the loss itself is f --------------------------------------------------------------------

def test_softmax_cross_entropy_backward(rng):
    logits, labels = 3 * rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    _, probs = ref.softmax_cross_entropy_forward(logits, labels)
    grad = ref.softmax_cross_entropy_backward(probs, labels)
    numeric = numeric_gradient(lambda logits: float(ref.softmax_cross_entropy_forward(logits, labels)[0]),
                               {"logits": logits}, "logits")
    assert_gradient(grad, numeric, "dlogits")


@pytest.mark.parametrize("weighted", [False, True])
def test_sigmoid_cross_entropy_backward(weighted, rng):
    logits, targets = 3 * rng.standard_normal(SHAPE), rng.uniform(size=SHAPE)
    weights = rng.choice([0.0, 0.5, 1.0, 2.0], size=SHAPE) if weighted else None
    scale = 1.0 / 17.0
    grad = ref.sigmoid_cross_entropy_backward(logits, targets, weights, scale)
    def f(logits):
        return scale * float(ref.sigmoid_cross_entropy_forward(logits, targets, weights))

    numeric = numeric_gradient(f, {"logits": logits}, "logits")
    if weighted:  # where the weight is 0 both are exactly 0
        assert np.array_equal(grad == 0, weights == 0)
    assert_gradient(grad, numeric, "dlogits")


def test_squared_error_backward(rng):
    pred, target, scale = rng.standard_normal(SHAPE), rng.standard_normal(SHAPE), 1.0 / 35.0
    grad = ref.squared_error_backward(pred, target, scale)
    numeric = numeric_gradient(lambda pred: scale * float(ref.squared_error_forward(pred, target)), {"pred": pred},
                               "pred")
    assert_gradient(grad, numeric, "dpred")


# ---- update ops: several steps against the formulas written out -------------------------------------

STEPS = 5
# A small array, and one spanning several of the UPDATE_CHUNK slices the default update bodies use.
UPDATE_SHAPES = [(3, 4), (301, 700)]


def formula_sgd(param, grads, lr, momentum, weight_decay, nesterov):
    """SGD written out on whole arrays (PyTorch's convention); (param, velocity) after each step."""
    param, velocity, history = param.copy(), np.zeros_like(param), []
    for grad in grads:
        g = grad + weight_decay * param
        if momentum:
            velocity = momentum * velocity + g
            g = g + momentum * velocity if nesterov else velocity
        param = param - lr * g
        history.append((param, velocity))
    return history


def formula_adam(param, grads, lr, beta1, beta2, eps, weight_decay, decoupled):
    """Adam / AdamW written out on whole arrays (Kingma & Ba with bias correction; Loshchilov &
    Hutter); (param, m, v) after each step."""
    param, m, v, history = param.copy(), np.zeros_like(param), np.zeros_like(param), []
    for t, grad in enumerate(grads, start=1):
        if decoupled:
            param, g = param * (1 - lr * weight_decay), grad
        else:
            g = grad + weight_decay * param
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        param = param - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append((param, m, v))
    return history


SGD_SETTINGS = [(0.0, 0.0, False), (0.0, 0.01, False), (0.9, 0.0, False), (0.9, 0.01, False), (0.9, 0.01, True)]


@pytest.mark.parametrize("shape", UPDATE_SHAPES)
@pytest.mark.parametrize("momentum, weight_decay, nesterov", SGD_SETTINGS)
def test_sgd_update_steps_follow_the_formula(momentum, weight_decay, nesterov, shape, rng):
    param, grads = rng.standard_normal(shape), rng.standard_normal((STEPS, *shape))
    expected = formula_sgd(param, grads, 0.1, momentum, weight_decay, nesterov)
    velocity = np.zeros_like(param) if momentum else None
    for grad, (p_expected, v_expected) in zip(grads, expected):
        assert ref.sgd_update(param, grad, velocity, 0.1, momentum, weight_decay, nesterov) is None  # in place
        np.testing.assert_allclose(param, p_expected, rtol=1e-14, atol=1e-15)
        if momentum:
            np.testing.assert_allclose(velocity, v_expected, rtol=1e-14, atol=1e-15)


ADAM_SETTINGS = [(0.0, False), (0.01, False), (0.01, True), (0.1, True)]


@pytest.mark.parametrize("shape", UPDATE_SHAPES)
@pytest.mark.parametrize("weight_decay, decoupled", ADAM_SETTINGS)
def test_adam_update_steps_follow_the_formula(weight_decay, decoupled, shape, rng):
    param, grads = rng.standard_normal(shape), rng.standard_normal((STEPS, *shape))
    hyper = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    expected = formula_adam(param, grads, weight_decay=weight_decay, decoupled=decoupled, **hyper)
    m, v = np.zeros_like(param), np.zeros_like(param)
    for step, (grad, (p_expected, m_expected, v_expected)) in enumerate(zip(grads, expected), start=1):
        assert ref.adam_update(param, grad, m, v, weight_decay=weight_decay, step=step, decoupled=decoupled,
                               **hyper) is None  # in place
        np.testing.assert_allclose(param, p_expected, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(m, m_expected, rtol=1e-13, atol=1e-16)
        np.testing.assert_allclose(v, v_expected, rtol=1e-13, atol=1e-18)


@pytest.mark.parametrize("momentum, weight_decay, nesterov", SGD_SETTINGS)
def test_sgd_update_steps_equal_torch_optim_sgd(momentum, weight_decay, nesterov, rng, torch):
    param, grads = rng.standard_normal((3, 4)), rng.standard_normal((STEPS, 3, 4))
    tensor = torch.tensor(param, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([tensor], lr=0.1, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    velocity = np.zeros_like(param)
    for grad in grads:
        tensor.grad = torch.tensor(grad)
        optimizer.step()
        ref.sgd_update(param, grad, velocity, 0.1, momentum, weight_decay, nesterov)
        np.testing.assert_allclose(param, tensor.detach().numpy(), rtol=1e-14, atol=1e-15)
    if momentum:
        np.testing.assert_allclose(velocity, optimizer.state[tensor]["momentum_buffer"].numpy(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("weight_decay, decoupled", ADAM_SETTINGS)
def test_adam_update_steps_equal_torch_optim_adam_and_adamw(weight_decay, decoupled, rng, torch):
    param, grads = rng.standard_normal((3, 4)), rng.standard_normal((STEPS, 3, 4))
    tensor = torch.tensor(param, dtype=torch.float64, requires_grad=True)
    kind = torch.optim.AdamW if decoupled else torch.optim.Adam
    optimizer = kind([tensor], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    m, v = np.zeros_like(param), np.zeros_like(param)
    for step, grad in enumerate(grads, start=1):
        tensor.grad = torch.tensor(grad)
        optimizer.step()
        ref.adam_update(param, grad, m, v, 0.01, 0.9, 0.999, 1e-8, weight_decay, step, decoupled)
        np.testing.assert_allclose(param, tensor.detach().numpy(), rtol=1e-13, atol=1e-15)
    state = optimizer.state[tensor]
    np.testing.assert_allclose(m, state["exp_avg"].numpy(), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(v, state["exp_avg_sq"].numpy(), rtol=1e-13, atol=1e-18)
