"""The op case table: how to call, feed and judge every op in OPS, on any backend.

Each Case gives one op (in one setting: SELU parameters, a mask kind, an optimizer option) its
awkward shapes, a generator of inputs (keyword arguments by the op's parameter names: host arrays
already rounded to the dtype, masks, scalars), the outputs to compare with minisnn.reference
computed in float64 and the op class of each (the row of conftest.TOLERANCE_TABLE), and the
contract facts a backend must honour: which keyword arguments take preallocated outputs, which
(out, input) pairs may share memory, which inputs an update op changes in place, and for dropout
ops the output whose dropped elements hold an exact value.

run_case() runs one case on one backend variant and checks all of it; tests/test_ops.py
parametrizes it over backend x op x variant x dtype x shape.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conftest import AWKWARD_SHAPES, EPS64, assert_close
from minisnn import reference as ref
from minisnn.backends.base import OPS, Backend
from minisnn.constants import ALPHA_01, LAMBDA_01, alpha_dropout_params
from minisnn.rng import DropoutMask, dropout_key, keep_threshold

SELU_01 = {"alpha": ALPHA_01, "lam": LAMBDA_01}
SELU_04 = {"alpha": 2.404005338216483, "lam": 1.070232274447111}  # the (0, 4) fixed point
# Values on both sides of the kinks and near them, far into saturation, past float32's exp range.
SPECIAL_VALUES = (0.0, -0.0, 1e-7, -1e-7, -0.3466, -1.0, -20.0, -87.5, -100.0, -1000.0, 30.0, 90.0)

ELEMENTWISE_SHAPES = [*AWKWARD_SHAPES, (1003,), (3, 5, 7)]
# Plus a tall one (column reductions in several row chunks, then a second pass) and a wide one
# (many column blocks; softmax rows longer than a block).
ROW_SHAPES = [*AWKWARD_SHAPES, (4099, 3), (20, 4100)]
UPDATE_SHAPES = [(1,), (1003,), (257, 129), (301, 700)]  # the last spans several UPDATE_CHUNK slices
# (N, K, M): ragged against every SGEMM tile (32, 128 x 128 with k-slices of 8), and K = 0.
MATMUL_SHAPES = [(1, 1, 1), (1, 31, 7), (3, 1003, 5), (257, 129, 33), (130, 9, 257), (5, 0, 3)]
# Float array inputs are passed contiguous and as two kinds of views.
LAYOUTS = ("contiguous", "transposed", "strided")
DROPOUT_RATE = 0.3


# ---- inputs ------------------------------------------------------------------------------------

def activation_input(rng, shape, dtype, scale=2.0):
    """Normal values of both signs with SPECIAL_VALUES written over the first elements."""
    x = scale * rng.standard_normal(shape)
    flat = x.reshape(-1)
    count = min(flat.size, len(SPECIAL_VALUES))
    flat[:count] = SPECIAL_VALUES[:count]
    return x.astype(dtype)


def gradient(rng, shape, dtype):
    """An upstream gradient without zeros (a zero in dx then comes from a mask or a slope)."""
    g = rng.standard_normal(shape)
    g[g == 0] = 1.0
    return g.astype(dtype)


def normal(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def dropout_mask(kind: str = "element", rate: float = DROPOUT_RATE, seed: int = 11, step: int = 3) -> DropoutMask:
    """The one dropout-mask helper: alpha dropout ("element", "per_feature") or standard inverted
    dropout ("standard": kept x/q, dropped 0)."""
    k0, k1 = dropout_key(seed, step)
    if kind == "standard":
        return DropoutMask(k0, k1, keep_threshold(rate), 1.0 / (1.0 - rate), 0.0, 0.0)
    p = alpha_dropout_params(rate)
    return DropoutMask(k0, k1, keep_threshold(rate), p.a, p.b, p.dropped_value, per_feature=kind == "per_feature")


def stored(y64, dtype):
    """A forward output as the backend would have stored it."""
    return np.asarray(y64).astype(dtype)


def softmax_logits(rng, shape, dtype):
    """Logits with +-1000 in the first row (no overflow allowed) and a tie in the last."""
    logits = 4.0 * rng.standard_normal(shape)
    logits[0, 0] = 1000.0
    if shape[1] > 1:
        logits[0, 1] = -1000.0
        logits[-1, -1] = logits[-1, 0]
    return logits.astype(dtype)


def labels_for(rng, shape, dtype=np.int64):
    return rng.integers(0, shape[1], shape[0]).astype(dtype)


# ---- magnitudes of the terms an op adds (for ops that add an inexact intermediate) ---------------

def _selu_slope_terms(y, alpha, lam):
    """|terms| of SELU's slope from its output: lam, or y + lam*alpha (lam*alpha rounded to the dtype)."""
    return np.where(y > 0, lam, np.abs(y) + lam * alpha)


def _selu_backward_magnitude(a, e):
    return {"out": (np.abs(a["dy"]) * _selu_slope_terms(a["y"], a["alpha"], a["lam"]), 1)}


def _bias_selu_backward_magnitude(a, e):
    dz = np.abs(a["dy"]) * _selu_slope_terms(a["y"], a["alpha"], a["lam"])
    return {"dz": (dz, 1), "db": (dz.sum(axis=0), len(dz))}


def _bias_selu_dropout_backward_magnitude(a, e):
    """The SELU output s = (y - shift)/scale is inexact, so s + lam*alpha is too."""
    mask, y = a["mask"], a["y"]
    s = (y - mask.shift) / mask.scale
    slope = np.where(s > 0, a["lam"], (np.abs(y) + abs(mask.shift)) / mask.scale + a["lam"] * a["alpha"])
    dz = np.abs(a["dy"]) * mask.scale * slope * mask.keep(y.shape)
    return {"dz": (dz, 1), "db": (dz.sum(axis=0), len(dz))}


def _dropout_magnitude(mask, x):
    """scale*x + shift with scale and shift rounded to the dtype."""
    return mask.scale * np.abs(x) + abs(mask.shift) + abs(mask.dropped)


# ---- the case table -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    op: str
    setting: str  # a name for the scalars/mask/options used
    shapes: tuple
    make: Callable[[np.random.Generator, tuple, np.dtype], dict[str, Any]]  # keyword arguments of the op
    outputs: dict[str, str]  # output name -> op class, in the order the op returns them
    out_args: tuple[str, ...] = ()  # keyword arguments taking preallocated outputs (named as the output)
    alias: tuple[tuple[str, str], ...] = ()  # (out argument, input) pairs allowed to share memory
    in_place: tuple[str, ...] = ()  # inputs the op changes in place (outputs, after the returned ones)
    # (args64, expected) -> {output: (magnitude, terms)} for sums; an entry may add (magnitude64, terms64) of
    # float64 accumulations inside the op (statistics), whose error does not shrink with the dtype.
    magnitude: Callable | None = None
    masked: tuple[str, str] | None = None  # (output, "dropped" or "zero") on dropped elements
    id: str = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "id", self.op if self.setting == "" else f"{self.op}[{self.setting}]")


def _selu_cases():
    cases = []
    for setting, selu in (("", SELU_01), ("selu04", SELU_04)):
        cases += [
            Case("selu_forward", setting, ELEMENTWISE_SHAPES,
                 lambda rng, s, dt, selu=selu: {"x": activation_input(rng, s, dt), **selu},
                 {"out": "elementwise"}, ("out",), (("out", "x"),)),
            Case("selu_backward", setting, ELEMENTWISE_SHAPES,
                 lambda rng, s, dt, selu=selu: {
                     "dy": gradient(rng, s, dt),
                     "y": stored(ref.selu_forward(activation_input(rng, s, np.float64), **selu), dt), **selu},
                 {"out": "elementwise"}, ("out",), (("out", "dy"),), magnitude=_selu_backward_magnitude),
            Case("bias_selu_forward", setting, ROW_SHAPES,
                 lambda rng, s, dt, selu=selu: {"z": activation_input(rng, s, dt), "b": normal(rng, s[1:], dt, 0.5),
                                                **selu},
                 {"out": "elementwise"}, ("out",), (("out", "z"),)),
            Case("bias_selu_backward", setting, ROW_SHAPES,
                 lambda rng, s, dt, selu=selu: {
                     "dy": gradient(rng, s, dt),
                     "y": stored(ref.bias_selu_forward(activation_input(rng, s, np.float64),
                                                       rng.standard_normal(s[1:]) * 0.5, **selu), dt), **selu},
                 {"dz": "elementwise", "db": "sum"}, ("dz", "db"), (("dz", "dy"),),
                 magnitude=_bias_selu_backward_magnitude),
        ]
    return cases


def _dropout_cases():
    cases = []
    for kind in ("element", "per_feature", "standard"):
        cases += [
            Case("alpha_dropout_forward", kind, ELEMENTWISE_SHAPES,
                 lambda rng, s, dt, kind=kind: {"x": activation_input(rng, s, dt), "mask": dropout_mask(kind)},
                 {"out": "elementwise"}, ("out",), (("out", "x"),), masked=("out", "dropped"),
                 magnitude=lambda a, e: {"out": (_dropout_magnitude(a["mask"], a["x"]), 1)}),
            Case("alpha_dropout_backward", kind, ELEMENTWISE_SHAPES,
                 lambda rng, s, dt, kind=kind: {"dy": gradient(rng, s, dt), "mask": dropout_mask(kind)},
                 {"out": "elementwise"}, ("out",), (("out", "dy"),), masked=("out", "zero")),
        ]
    for kind, selu in (("element", SELU_01), ("per_feature", SELU_01), ("element-selu04", SELU_04)):
        mask_kind = kind.split("-")[0]

        def backward_inputs(rng, s, dt, mask_kind=mask_kind, selu=selu):
            mask = dropout_mask(mask_kind)
            z, b = activation_input(rng, s, np.float64), 0.5 * rng.standard_normal(s[1:])
            y = stored(ref.bias_selu_dropout_forward(z, b, mask, **selu), dt)
            return {"dy": gradient(rng, s, dt), "y": y, "mask": mask, **selu}

        cases += [
            Case("bias_selu_dropout_forward", kind, ROW_SHAPES,
                 lambda rng, s, dt, mask_kind=mask_kind, selu=selu: {
                     "z": activation_input(rng, s, dt), "b": normal(rng, s[1:], dt, 0.5),
                     "mask": dropout_mask(mask_kind),
                     **selu},
                 {"out": "elementwise"}, ("out",), (("out", "z"),), masked=("out", "dropped"),
                 magnitude=lambda a, e: {"out": (_dropout_magnitude(
                     a["mask"], ref.bias_selu_forward(a["z"], a["b"], a["alpha"], a["lam"])), 1)}),
            Case("bias_selu_dropout_backward", kind, ROW_SHAPES, backward_inputs,
                 {"dz": "elementwise", "db": "sum"}, ("dz", "db"), (("dz", "dy"),),
                 magnitude=_bias_selu_dropout_backward_magnitude, masked=("dz", "zero")),
        ]
    return cases


# |terms| of each activation's slope from its output (None: one exact operation, |dx| itself).
_SLOPE_TERMS = {"relu": None, "elu": None, "tanh": lambda y: 1.0 + y * y,
                "sigmoid": lambda y: np.abs(y) * (1.0 + np.abs(y))}


def _activation_cases():
    cases = []
    for name, forward, scalars in (("relu", ref.relu_forward, ({},)), ("elu", ref.elu_forward, ({"alpha": 1.0},
                                                                                                  {"alpha": 0.5})),
                                   ("tanh", ref.tanh_forward, ({},)), ("sigmoid", ref.sigmoid_forward, ({},))):
        terms = _SLOPE_TERMS[name]
        magnitude = None if terms is None else lambda a, e, terms=terms: {"out": (np.abs(a["dy"]) * terms(a["y"]), 1)}
        for extra in scalars:
            setting = "" if not extra or extra == {"alpha": 1.0} else f"alpha{extra['alpha']}"
            cases += [
                Case(f"{name}_forward", setting, ELEMENTWISE_SHAPES,
                     lambda rng, s, dt, extra=extra: {"x": activation_input(rng, s, dt), **extra},
                     {"out": "elementwise"}, ("out",), (("out", "x"),)),
                Case(f"{name}_backward", setting, ELEMENTWISE_SHAPES,
                     lambda rng, s, dt, extra=extra, forward=forward: {
                         "dy": gradient(rng, s, dt),
                         "y": stored(forward(activation_input(rng, s, np.float64), **extra), dt), **extra},
                     {"out": "elementwise"}, ("out",), (("out", "dy"),), magnitude=magnitude),
            ]
    return cases


def _softmax_magnitude(args, expected):
    """Per row: the log-sum-exp's error is about C*eps (plus eps*|max| from the shift); averaging adds N*eps."""
    logits, labels = args["logits"], args["labels"]
    n, c = logits.shape
    row_max = logits.max(axis=1)
    log_total = np.log(np.exp(logits - row_max[:, None]).sum(axis=1))
    magnitude = (1.0 + np.abs(row_max) + np.abs(logits[np.arange(n), labels]) + log_total).mean()
    return {"loss": (magnitude, c + n), "probs": (np.abs(expected["probs"]), c)}  # probs: divided by a sum of C terms


def _sigmoid_xent_magnitude(args, expected):
    z, weights = args["logits"], args["weights"]
    terms = np.abs(z) + np.log(2.0)
    if weights is not None:
        terms = terms * np.abs(weights)
    return {"loss": (terms.sum(), z.size)}


def _sigmoid_xent_grad_magnitude(a, e):
    """scale * weights * (sigmoid(z) - t): sigmoid(z) is inexact."""
    terms = a["scale"] * (ref.sigmoid_forward(a["logits"]) + np.abs(a["targets"]))
    return {"out": (terms if a["weights"] is None else terms * np.abs(a["weights"]), 1)}


def _loss_cases():
    def sigmoid_inputs(rng, s, dt, weighted):
        targets = rng.uniform(size=s)
        targets.reshape(-1)[:2] = [0.0, 1.0][: targets.size]
        weights = rng.choice([0.0, 0.5, 1.0, 2.0], size=s).astype(dt) if weighted else None
        return {"logits": activation_input(rng, s, dt), "targets": targets.astype(dt), "weights": weights}

    cases = []
    for labels_dtype in (np.int64, np.int32):
        setting = "" if labels_dtype == np.int64 else "int32_labels"
        cases += [
            Case("softmax_cross_entropy_forward", setting, ROW_SHAPES,
                 lambda rng, s, dt, ldt=labels_dtype: {"logits": softmax_logits(rng, s, dt),
                                                       "labels": labels_for(rng, s, ldt)},
                 {"loss": "loss", "probs": "loss"}, ("probs",), (("probs", "logits"),),
                 magnitude=_softmax_magnitude),
            Case("softmax_cross_entropy_backward", setting, ROW_SHAPES,
                 lambda rng, s, dt, ldt=labels_dtype: {
                     "probs": stored(ref.softmax_cross_entropy_forward(softmax_logits(rng, s, np.float64),
                                                                       labels_for(rng, s))[1], dt),
                     "labels": labels_for(rng, s, ldt)},
                 {"out": "elementwise"}, ("out",), (("out", "probs"),)),
        ]
    for weighted in (False, True):
        setting = "weighted" if weighted else ""
        cases += [
            Case("sigmoid_cross_entropy_forward", setting, ROW_SHAPES,
                 lambda rng, s, dt, w=weighted: sigmoid_inputs(rng, s, dt, w),
                 {"loss": "sum"}, magnitude=_sigmoid_xent_magnitude),
            Case("sigmoid_cross_entropy_backward", setting, ROW_SHAPES,
                 lambda rng, s, dt, w=weighted: {**sigmoid_inputs(rng, s, dt, w), "scale": 1.0 / (s[0] * s[1])},
                 {"out": "elementwise"}, ("out",), (("out", "logits"),), magnitude=_sigmoid_xent_grad_magnitude),
        ]
    cases += [
        Case("squared_error_forward", "", ROW_SHAPES,
             lambda rng, s, dt: {"pred": normal(rng, s, dt, 2.0), "target": normal(rng, s, dt)},
             {"loss": "sum"}, magnitude=lambda a, e: {"loss": (e["loss"], a["pred"].size)}),
        Case("squared_error_backward", "", ROW_SHAPES,
             lambda rng, s, dt: {"pred": normal(rng, s, dt, 2.0), "target": normal(rng, s, dt),
                                 "scale": 1.0 / (s[0] * s[1])},
             {"out": "elementwise"}, ("out",), (("out", "pred"),)),
    ]

    def count_inputs(rng, s, dt):
        logits = rng.integers(-3, 4, size=s).astype(dt)  # small integers: ties in many rows (first maximum wins)
        labels = labels_for(rng, s)
        hit = rng.random(s[0]) < 0.5
        labels[hit] = np.argmax(logits[hit], axis=1)
        return {"logits": logits, "labels": labels}

    cases.append(Case("count_correct", "", ROW_SHAPES, count_inputs, {"count": "exact"}))
    return cases


def _sgd_magnitude(a, e):
    """|terms| of the SGD update: param - lr*step, with every term inexact."""
    p, momentum = np.abs(a["param"]), a["momentum"]
    g = np.abs(a["grad"]) + a["weight_decay"] * p
    if momentum == 0.0:
        return {"param": (p + a["lr"] * g, 1)}
    v = momentum * np.abs(a["velocity"]) + g
    step = g + momentum * v if a["nesterov"] else v
    return {"param": (p + a["lr"] * step, 1), "velocity": (v, 1)}


def _adam_magnitude(a, e):
    """|terms| of the Adam update: param*(1 - lr*wd) - lr*m_hat/(sqrt(v_hat) + eps)."""
    p0, wd = np.abs(a["param"]), a["weight_decay"]
    g = np.abs(a["grad"]) + (0.0 if a["decoupled"] else wd * p0)
    m = a["beta1"] * np.abs(a["m"]) + (1 - a["beta1"]) * g
    v = e["v"]  # a sum of non-negative terms
    c1, rc2 = 1 - a["beta1"] ** a["step"], np.sqrt(1 - a["beta2"] ** a["step"])
    decayed = p0 * (1 - a["lr"] * wd) if a["decoupled"] else p0
    return {"param": (decayed + a["lr"] / c1 * m / (np.sqrt(v) / rc2 + a["eps"]), 1), "m": (m, 1)}


def _update_cases():
    cases = []
    for setting, momentum, weight_decay, nesterov in (("plain", 0.0, 0.0, False), ("decay", 0.0, 1e-2, False),
                                                      ("momentum", 0.9, 0.0, False), ("nesterov", 0.9, 1e-3, True)):
        cases.append(Case(
            "sgd_update", setting, UPDATE_SHAPES,
            lambda rng, s, dt, m=momentum, wd=weight_decay, nest=nesterov: {
                "param": normal(rng, s, dt), "grad": normal(rng, s, dt),
                "velocity": normal(rng, s, dt, 0.1) if m else None,
                "lr": 0.05, "momentum": m, "weight_decay": wd, "nesterov": nest},
            {"param": "elementwise", "velocity": "elementwise"}, in_place=("param", "velocity"),
            magnitude=_sgd_magnitude))
    for setting, weight_decay, decoupled, step in (("adam", 0.0, False, 3), ("adam_l2", 1e-2, False, 3),
                                                   ("adamw", 1e-2, True, 3), ("adam_step1", 1e-2, False, 1),
                                                   ("adamw_step1000", 1e-2, True, 1000)):
        cases.append(Case(
            "adam_update", setting, UPDATE_SHAPES,
            lambda rng, s, dt, wd=weight_decay, dec=decoupled, step=step: {
                "param": normal(rng, s, dt), "grad": normal(rng, s, dt), "m": normal(rng, s, dt, 0.1),
                "v": (0.01 * rng.random(s)).astype(dt), "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                "weight_decay": wd, "step": step, "decoupled": dec},
            {"param": "elementwise", "m": "elementwise", "v": "elementwise"}, in_place=("param", "m", "v"),
            magnitude=_adam_magnitude))
    return cases


# ---- composite layers: residual sums, normalization, highway gates ---------------------------------

EPS_NORM = 1e-5  # the eps of the normalization cases (PyTorch's default)
OFFSET = 1e4  # a large common offset: one-pass or float32 statistics lose the variance under it
BATCH_NORM_SHAPES = [(2, 1), (2, 31), (3, 1003), (257, 129), (4099, 3), (20, 4100)]  # N >= 2; N = 2 first


def normalization_input(rng, shape, dtype, axis: int, offset: float = 0.0):
    """offset + normal values, with one slice of constant values along `axis` (variance 0): the
    first column for batch norm (axis 0), the first row for layer norm (axis 1), where the array
    has more than one; with an offset the noise stays well above the dtype's spacing there."""
    x = offset + rng.standard_normal(shape)
    if shape[1 - axis] > 1:
        constant = x[:, :1] if axis == 0 else x[:1, :]
        constant[...] = offset + 0.7
    return x.astype(dtype)


def _statistics(x, axis: int, eps: float):
    """(mean, var, rstd) of x (float64) along axis, two-pass."""
    mean = x.mean(axis=axis)
    var = ((x - np.expand_dims(mean, axis)) ** 2).mean(axis=axis)
    return mean, var, 1.0 / np.sqrt(var + eps)


def _normalization_forward_magnitude(x, gamma, beta, eps, axis: int) -> dict:
    """|terms| of a normalization's y and statistics: y = x*scale + shift (or (x - mean)*rstd*gamma + beta)
    with mean and rstd rounded to the dtype has terms |x|*|gamma|*rstd, |mean|*|gamma|*rstd, |beta|; mean and
    rstd are rounded once from float64 sums of n terms, whose error (n*eps64 of mean |x|, of rstd) reaches y too."""
    n = x.shape[axis]
    mean, _, rstd = _statistics(x, axis, eps)
    mean_abs = np.abs(x).mean(axis=axis)
    if axis == 1:
        mean, rstd, mean_abs = mean[:, None], rstd[:, None], mean_abs[:, None]
    statistics_error = (mean_abs + np.abs(x) + np.abs(mean)) * np.abs(gamma) * rstd
    return {"out": ((np.abs(x) + np.abs(mean)) * np.abs(gamma) * rstd + np.abs(beta), 1, statistics_error, 2 * n),
            "mean": (np.abs(mean).reshape(-1), 1, mean_abs.reshape(-1), n),
            "rstd": (rstd.reshape(-1), 1, rstd.reshape(-1), 2 * n)}


def _batch_norm_forward_magnitude(a, e):
    """As _normalization_forward_magnitude; the running statistics (1 - m)*r + m*s add one rounding to s's error."""
    x, n = a["x"], len(a["x"])
    terms = _normalization_forward_magnitude(x, a["gamma"], a["beta"], a["eps"], 0)
    if a["running_mean"] is not None:
        m, (mean, var, _) = a["momentum"], _statistics(x, 0, a["eps"])
        terms["running_mean"] = ((1 - m) * np.abs(a["running_mean"]) + m * np.abs(mean), 1,
                                 m * np.abs(x).mean(axis=0), n)
        unbiased = var * n / (n - 1)
        terms["running_var"] = ((1 - m) * np.abs(a["running_var"]) + m * unbiased, 1, m * unbiased, 2 * n)
    return terms


def _batch_norm_backward_magnitude(a, e):
    """|terms| of dbeta = sum dy, dgamma = sum dy*x_hat and dx = gamma*rstd*(dy - dbeta/N - x_hat*dgamma/N);
    x - mean is exact or within an ulp of itself (Sterbenz), so x_hat is as exact as its product."""
    dy, n = a["dy"], len(a["dy"])
    x_hat = np.abs(a["x"] - a["mean"]) * a["rstd"]
    dbeta, dgamma = np.abs(dy).sum(axis=0), (np.abs(dy) * x_hat).sum(axis=0)
    dx = np.abs(a["gamma"]) * a["rstd"] * (np.abs(dy) + dbeta / n + x_hat * dgamma / n)
    return {"dx": (dx, n), "dgamma": (dgamma, n), "dbeta": (dbeta, n)}


def _batch_norm_inference_backward_magnitude(a, e):
    dy, rstd = np.abs(a["dy"]), 1.0 / np.sqrt(a["running_var"] + a["eps"])
    x_hat = (np.abs(a["x"]) + np.abs(a["running_mean"])) * rstd
    return {"dgamma": ((dy * x_hat).sum(axis=0), len(dy)), "dbeta": (dy.sum(axis=0), len(dy))}


def _layer_norm_forward_magnitude(a, e):
    return _normalization_forward_magnitude(a["x"], a["gamma"], a["beta"], a["eps"], 1)


def _layer_norm_backward_magnitude(a, e):
    """|terms| of dx = rstd*(g - mean(g) - x_hat*mean(g*x_hat)), g = dy*gamma (row means of D terms), and of
    the column sums dgamma, dbeta (N terms)."""
    dy, (n, d) = a["dy"], a["dy"].shape
    x_hat = np.abs(a["x"] - a["mean"][:, None]) * a["rstd"][:, None]
    g = np.abs(dy) * np.abs(a["gamma"])
    dx = a["rstd"][:, None] * (g + g.mean(axis=1, keepdims=True) + x_hat * (g * x_hat).mean(axis=1, keepdims=True))
    return {"dx": (dx, d), "dgamma": ((np.abs(dy) * x_hat).sum(axis=0), n), "dbeta": (np.abs(dy).sum(axis=0), n)}


def _weight_norm_forward_magnitude(a, e):
    return {"out": (np.abs(e["out"]), len(a["v"])), "norm": (e["norm"], len(a["v"]))}


def _weight_norm_backward_magnitude(a, e):
    """dg = sum_i dw*v / norm (D_in terms); dv = (g/norm)*(dw - v*dg/norm)."""
    dw, v, norm = np.abs(a["dw"]), np.abs(a["v"]), a["norm"]
    dg = (dw * v).sum(axis=0) / norm
    return {"dv": (np.abs(a["g"]) / norm * (dw + v * dg / norm), len(v)), "dg": (dg, len(v))}


def _batch_norm_forward_inputs(rng, s, dt, offset=0.0, running=True):
    return {"x": normalization_input(rng, s, dt, 0, offset), "gamma": normal(rng, s[1:], dt),
            "beta": normal(rng, s[1:], dt), "eps": EPS_NORM,
            "running_mean": normal(rng, s[1:], dt, 0.1) if running else None,
            "running_var": rng.uniform(0.5, 1.5, s[1:]).astype(dt) if running else None, "momentum": 0.1}


def _normalization_backward_inputs(rng, s, dt, axis: int, offset=0.0):
    """dy, x, gamma and the forward's mean and rstd (over axis 0: batch norm, axis 1: layer norm) as stored."""
    x = normalization_input(rng, s, dt, axis, offset)
    mean, _, rstd = _statistics(x.astype(np.float64), axis, EPS_NORM)
    return {"dy": gradient(rng, s, dt), "x": x, "gamma": normal(rng, s[1:], dt), "mean": stored(mean, dt),
            "rstd": stored(rstd, dt)}


def _weight_norm_backward_inputs(rng, s, dt):
    v = normal(rng, s, dt)
    return {"dw": gradient(rng, s, dt), "v": v, "g": normal(rng, s[1:], dt),
            "norm": stored(np.sqrt((v.astype(np.float64) ** 2).sum(axis=0)), dt)}


def _composite_cases():
    normalization_outputs = {"out": "elementwise", "mean": "elementwise", "rstd": "elementwise"}
    cases = [
        Case("add", "", ELEMENTWISE_SHAPES, lambda rng, s, dt: {"a": normal(rng, s, dt, 2.0), "b": normal(rng, s, dt)},
             {"out": "elementwise"}, ("out",), (("out", "a"), ("out", "b"))),
        Case("batch_norm_inference", "", ROW_SHAPES,
             lambda rng, s, dt: {"x": normalization_input(rng, s, dt, 0), "gamma": normal(rng, s[1:], dt),
                                 "beta": normal(rng, s[1:], dt), "running_mean": normal(rng, s[1:], dt, 0.5),
                                 "running_var": rng.uniform(0.0, 2.0, s[1:]).astype(dt), "eps": EPS_NORM},
             {"out": "elementwise"}, ("out",), (("out", "x"),),
             magnitude=lambda a, e: {"out": ((np.abs(a["x"]) + np.abs(a["running_mean"])) * np.abs(a["gamma"])
                                             / np.sqrt(a["running_var"] + a["eps"]) + np.abs(a["beta"]), 1)}),
        Case("batch_norm_inference_backward", "", ROW_SHAPES,
             lambda rng, s, dt: {"dy": gradient(rng, s, dt), "x": normalization_input(rng, s, dt, 0),
                                 "gamma": normal(rng, s[1:], dt), "running_mean": normal(rng, s[1:], dt, 0.5),
                                 "running_var": rng.uniform(0.0, 2.0, s[1:]).astype(dt), "eps": EPS_NORM},
             {"dx": "elementwise", "dgamma": "sum", "dbeta": "sum"}, ("dx", "dgamma", "dbeta"), (("dx", "dy"),),
             magnitude=_batch_norm_inference_backward_magnitude),
        Case("highway_forward", "", ELEMENTWISE_SHAPES,
             lambda rng, s, dt: {"h": normal(rng, s, dt), "t": rng.uniform(size=s).astype(dt), "x": normal(rng, s, dt)},
             {"out": "elementwise"}, ("out",), (("out", "h"),),
             magnitude=lambda a, e: {"out": (np.abs(a["x"]) + a["t"] * (np.abs(a["h"]) + np.abs(a["x"])), 1)}),
        Case("highway_backward", "", ELEMENTWISE_SHAPES,
             lambda rng, s, dt: {"dy": gradient(rng, s, dt), "h": normal(rng, s, dt),
                                 "t": rng.uniform(size=s).astype(dt), "x": normal(rng, s, dt)},
             {"dh": "elementwise", "dt": "elementwise", "dx": "elementwise"}, ("dh", "dt", "dx"),
             magnitude=lambda a, e: {"dt": (np.abs(a["dy"]) * (np.abs(a["h"]) + np.abs(a["x"])), 1),
                                     "dx": (np.abs(a["dy"]) * (1.0 + a["t"]), 1)}),
        Case("weight_norm_forward", "", AWKWARD_SHAPES,
             lambda rng, s, dt: {"v": normal(rng, s, dt), "g": normal(rng, s[1:], dt)},
             {"out": "sum", "norm": "sum"}, ("out", "norm"), (("out", "v"),), magnitude=_weight_norm_forward_magnitude),
        Case("weight_norm_backward", "", AWKWARD_SHAPES, _weight_norm_backward_inputs, {"dv": "sum", "dg": "sum"},
             ("dv", "dg"), (("dv", "dw"),), magnitude=_weight_norm_backward_magnitude),
    ]
    for setting, offset in (("", 0.0), ("offset", OFFSET)):
        cases += [
            Case("batch_norm_forward", setting, BATCH_NORM_SHAPES,
                 lambda rng, s, dt, offset=offset: _batch_norm_forward_inputs(rng, s, dt, offset),
                 {**normalization_outputs, "running_mean": "elementwise", "running_var": "elementwise"},
                 ("out", "mean", "rstd"),
                 (("out", "x"),), in_place=("running_mean", "running_var"), magnitude=_batch_norm_forward_magnitude),
            Case("batch_norm_backward", setting, BATCH_NORM_SHAPES,
                 lambda rng, s, dt, offset=offset: _normalization_backward_inputs(rng, s, dt, 0, offset),
                 {"dx": "sum", "dgamma": "sum", "dbeta": "sum"}, ("dx", "dgamma", "dbeta"), (("dx", "dy"),),
                 magnitude=_batch_norm_backward_magnitude),
            Case("layer_norm_forward", setting, ROW_SHAPES,
                 lambda rng, s, dt, offset=offset: {
                     "x": normalization_input(rng, s, dt, 1, offset), "gamma": normal(rng, s[1:], dt),
                     "beta": normal(rng, s[1:], dt), "eps": EPS_NORM},
                 normalization_outputs, ("out", "mean", "rstd"), (("out", "x"),),
                 magnitude=_layer_norm_forward_magnitude),
            Case("layer_norm_backward", setting, ROW_SHAPES,
                 lambda rng, s, dt, offset=offset: _normalization_backward_inputs(rng, s, dt, 1, offset),
                 {"dx": "sum", "dgamma": "sum", "dbeta": "sum"}, ("dx", "dgamma", "dbeta"), (("dx", "dy"),),
                 magnitude=_layer_norm_backward_magnitude),
        ]
    cases.append(Case("batch_norm_forward", "no_running_statistics", BATCH_NORM_SHAPES,
                      lambda rng, s, dt: _batch_norm_forward_inputs(rng, s, dt, running=False),
                      normalization_outputs, ("out", "mean", "rstd"), (("out", "x"),),
                      magnitude=_batch_norm_forward_magnitude))
    return cases


CASE_LIST = [
    Case("matmul", "", MATMUL_SHAPES,
         lambda rng, nkm, dt: {"a": normal(rng, nkm[:2], dt), "b": normal(rng, nkm[1:], dt)},
         {"out": "matmul"}, ("out",),
         magnitude=lambda a, e: {"out": (np.abs(a["a"]) @ np.abs(a["b"]), a["a"].shape[1])}),
    Case("bias_add_forward", "", ROW_SHAPES,
         lambda rng, s, dt: {"z": activation_input(rng, s, dt), "b": normal(rng, s[1:], dt)},
         {"out": "elementwise"}, ("out",), (("out", "z"),)),
    Case("column_sum", "", ROW_SHAPES, lambda rng, s, dt: {"x": normal(rng, s, dt)}, {"out": "sum"}, ("out",),
         magnitude=lambda a, e: {"out": (np.abs(a["x"]).sum(axis=0), a["x"].shape[0])}),
    *_selu_cases(),
    *_dropout_cases(),
    *_activation_cases(),
    *_composite_cases(),
    *_loss_cases(),
    *_update_cases(),
]
CASES: dict[str, list[Case]] = {}  # op -> its cases
for _case in CASE_LIST:
    CASES.setdefault(_case.op, []).append(_case)


# ---- running a case ---------------------------------------------------------------------------------

def case_rng(case: Case, shape) -> np.random.Generator:
    """The same inputs for a case and shape in every process and on every backend."""
    return np.random.default_rng([zlib.crc32(case.id.encode()), *shape])


def to_backend(be, value, layout: str = "contiguous"):
    """A host array as a backend array, contiguous or as a non-contiguous view with the same values;
    anything else (masks, scalars, None) as is."""
    if not isinstance(value, np.ndarray):
        return value
    if layout == "transposed" and value.ndim >= 2:
        axes = tuple(reversed(range(value.ndim)))
        return be.asarray(np.ascontiguousarray(value.transpose(axes)), dtype=value.dtype).transpose(axes)
    if layout in ("transposed", "strided") and value.ndim >= 1:
        wide = np.zeros((*value.shape[:-1], 2 * value.shape[-1]), value.dtype)
        wide[..., ::2] = value
        return be.asarray(wide, dtype=value.dtype)[..., ::2]
    return be.asarray(value.copy(), dtype=value.dtype)  # a copy: NumPy's asarray would share the host array


def float64_copies(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments for the reference: float arrays as float64 copies, other arrays copied."""
    return {k: (v.astype(np.float64) if v.dtype.kind == "f" else v.copy()) if isinstance(v, np.ndarray) else v
            for k, v in args.items()}


def collect(case: Case, result, args) -> dict[str, Any]:
    """The op's outputs by name: its (tuple of) results, then its in-place arguments (None skipped)."""
    returned = [name for name in case.outputs if name not in case.in_place]
    results = () if result is None and not returned else result if isinstance(result, tuple) else (result,)
    assert len(results) == len(returned), f"{case.op} returned {len(results)} values, expected {len(returned)}"
    got = dict(zip(returned, results))
    got.update({name: args[name] for name in case.in_place if args[name] is not None})
    return got


def reference_outputs(case: Case, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the arguments in float64, the reference's outputs computed on a copy of them)."""
    args64 = float64_copies(args)
    work = float64_copies(args64)  # update ops change their arguments in place
    return args64, collect(case, getattr(ref, case.op)(**work), work)


def host(be, value) -> np.ndarray:
    return value if isinstance(value, (int, np.integer)) else np.asarray(be.to_numpy(value))


def compare_outputs(be, case: Case, got: dict[str, Any], args64, expected, dtype, what: str) -> dict[str, np.ndarray]:
    """Every output against the reference, with the tolerance of its op class; returns host copies."""
    magnitudes = case.magnitude(args64, expected) if case.magnitude else {}
    assert set(got) == set(expected), f"{what}: outputs {sorted(got)}, expected {sorted(expected)}"
    results = {}
    for name, kind in case.outputs.items():
        if name not in expected:
            continue  # an optional state (velocity without momentum)
        value = host(be, got[name])
        results[name] = value
        if kind == "exact":
            assert value == expected[name] and isinstance(value, int), f"{what}: {name} {value!r} != {expected[name]!r}"
            continue
        assert value.dtype == dtype, f"{what}: {name} has dtype {value.dtype}, expected {dtype}"
        assert value.shape == expected[name].shape, f"{what}: {name} has shape {value.shape}"
        magnitude, terms, *float64_sum = magnitudes.get(name, (None, 1))
        extra = float64_sum[1] * EPS64 * float64_sum[0] if float64_sum else 0.0
        assert_close(value, expected[name], dtype, kind, magnitude, terms, what=f"{what}: {name}", extra_bound=extra)
    return results


def check_mask(case: Case, args, results, dtype, what: str) -> None:
    """Dropped elements hold exactly the mask's value; a backward passes nothing through them."""
    output, value = case.masked
    mask = args["mask"]
    y = results[output]
    keep = mask.keep(y.shape)
    exact = dtype.type(mask.dropped) if value == "dropped" else dtype.type(0)
    assert np.array_equal(y[~keep], np.full((~keep).sum(), exact, dtype)), f"{what}: dropped elements differ"
    if case.op == "alpha_dropout_backward":  # dy has no zeros: dx is zero exactly where dropped
        assert np.array_equal(y != 0, keep), f"{what}: kept elements differ from the mask"


def run_case(be, fn, case: Case, shape, layouts=LAYOUTS) -> None:
    """Run variant `fn` of case.op on `be` for one shape, in every layout, and check it all:
    outputs against the reference in float64, their dtype and shape, the mask, and that no input
    outside case.in_place was written."""
    dtype = be.dtype
    args = case.make(case_rng(case, shape), shape, dtype)
    args64, expected = reference_outputs(case, args)
    for layout in layouts:
        what = f"{be.name} {case.id} {dtype.name} {shape} {layout}"
        device = {k: to_backend(be, v, "contiguous" if k in case.in_place else layout) for k, v in args.items()}
        got = collect(case, fn(**device), device)
        results = compare_outputs(be, case, got, args64, expected, dtype, what)
        for name, value in args.items():
            if isinstance(value, np.ndarray) and name not in case.in_place:
                unchanged = np.array_equal(host(be, device[name]), value, equal_nan=True)
                assert unchanged, f"{what}: input {name} was written"
        if case.masked:
            check_mask(case, args, results, dtype, what)


def run_out_and_alias(be, fn, case: Case, shape) -> None:
    """Preallocated outputs are written and returned (bit-equal to a call without them); an output
    the contract lets alias an input gives the same bits when it does."""
    args = case.make(case_rng(case, shape), shape, be.dtype)
    what = f"{be.name} {case.id} {be.dtype.name} {shape}"
    plain = {k: to_backend(be, v) for k, v in args.items()}
    baseline = {k: host(be, v) for k, v in collect(case, fn(**plain), plain).items()}
    buffers = {name: be.empty(baseline[name].shape) for name in case.out_args}
    with_out = {**{k: to_backend(be, v) for k, v in args.items()}, **buffers}
    got = collect(case, fn(**with_out), with_out)
    for name in case.out_args:
        assert got[name] is buffers[name], f"{what}: {name}= buffer not returned"
    for name, value in got.items():
        assert np.array_equal(host(be, value), baseline[name], equal_nan=True), f"{what}: {name} differs with out="
    for out_name, input_name in case.alias:
        aliased = {k: to_backend(be, v) for k, v in args.items()}
        aliased[out_name] = aliased[input_name]
        got = collect(case, fn(**aliased), aliased)
        assert got[out_name] is aliased[input_name], f"{what}: {out_name} aliasing {input_name} not returned"
        for name, value in got.items():
            assert np.array_equal(host(be, value), baseline[name], equal_nan=True), (
                f"{what}: {name} differs when {out_name} aliases {input_name}")


# ---- which variants a backend is tested on -----------------------------------------------------------

def is_emulated(be) -> bool:
    return bool(getattr(be.xp, "IS_CPU_EMULATOR", False))


def tested_variants(be) -> list[tuple[str, str]]:
    """(op, variant) pairs to test on `be`: all of them, except default bodies that are the
    numpy backend's code again (a host backend that does not override the op) or that need more
    of CuPy than the CUDA emulator provides (it stands in for the kernels only)."""
    pairs = []
    for op in OPS:
        for name in be.variants(op):
            default_body = name == "default" and getattr(type(be), op) is getattr(Backend, op)
            if default_body and be.name != "numpy" and (be.xp is np or is_emulated(be)):
                continue
            pairs.append((op, name))
    return pairs
