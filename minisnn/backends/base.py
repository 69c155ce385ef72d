"""The Backend: array module, dtype policy, and the op table every layer, loss and optimizer uses.

A backend is an object passed to layers and models (`mlp(..., backend=be)`), never a global
switch. Every array operation a layer, loss, metric or optimizer performs is an op: a method of
Backend listed in OPS, named `<op>_<pass>` (forward, backward, update) or `<op>` alone, with a
docstring contract and a default body. The default body is the reference: plain, exact code
written against `self.xp`, so a new op works on every backend at once (NumPy and CuPy); a
backend overrides only the ops it has kernels for, under the same name (kernel files, Numba
kernels and benchmark rows use that name too, so one grep finds them all).

The contract common to every op, unless its docstring says otherwise:
- float arrays share one float dtype (the backend's); labels are integer arrays;
- inputs may be any layout (views, transposes); `out` (or `dz`, `db`) must have the result's
  shape and dtype and be C-contiguous (CuPy requires it; the CPU backends also accept views),
  and the op returns the array it wrote;
- elementwise ops allow `out` to alias their first input; no op writes into an upstream
  gradient `dy` unless it is also given as `out`;
- scalars (alpha, lam, lr, ...) are Python floats; `mask` is a minisnn.rng.DropoutMask;
- update ops (`*_update`) work in place on the parameter and its state, which must be
  contiguous and writeable.

Ops can have named variants: `register_variant(op, name, fn)` adds one, `use_variant(op, name)`
makes it the one layers call, `variants(op)` lists them. The plain method is variant "default".
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..rng import DropoutMask

OPS = (
    "matmul",
    "bias_add_forward",
    "column_sum",
    "selu_forward",
    "selu_backward",
    "bias_selu_forward",
    "bias_selu_backward",
    "alpha_dropout_forward",
    "alpha_dropout_backward",
    "bias_selu_dropout_forward",
    "bias_selu_dropout_backward",
    "relu_forward",
    "relu_backward",
    "elu_forward",
    "elu_backward",
    "tanh_forward",
    "tanh_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "add",
    "batch_norm_forward",
    "batch_norm_inference",
    "batch_norm_inference_backward",
    "batch_norm_backward",
    "layer_norm_forward",
    "layer_norm_backward",
    "weight_norm_forward",
    "weight_norm_backward",
    "highway_forward",
    "highway_backward",
    "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward",
    "sigmoid_cross_entropy_forward",
    "sigmoid_cross_entropy_backward",
    "squared_error_forward",
    "squared_error_backward",
    "count_correct",
    "sgd_update",
    "adam_update",
)
UPDATE_CHUNK = 1 << 16  # elements per slice of the default update ops: temporaries stay cache-sized

SUPPORTED_DTYPES = ("float32", "float64")
CACHE_LINE = 64  # bytes


def aligned_host_array(shape: tuple[int, ...], dtype: Any, zero: bool = False) -> np.ndarray:
    """A C-contiguous NumPy array whose data starts on a cache line.

    NumPy's own buffers start 16 bytes past one, so every 64-byte vector load of a row straddles
    two lines; aligned operands made the bias + SELU kernel about 20% faster (4096 x 4096 float32).
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = (np.zeros if zero else np.empty)(nbytes + CACHE_LINE, np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    return raw[start:start + nbytes].view(dtype).reshape(shape)


class BackendUnavailable(RuntimeError):
    """A backend cannot run here; the message says what to install or why."""


def missing_velocity(momentum: float) -> ValueError:
    """The error of an SGD update with momentum but no velocity array."""
    return ValueError(f"sgd_update with momentum {momentum} needs a velocity array, got None")


def _slices(array, chunk: int = UPDATE_CHUNK):
    """Slices along the first axis covering about `chunk` elements each."""
    row = max(1, array[:1].size)
    step = max(1, chunk // row)
    return [slice(start, start + step) for start in range(0, len(array), step)]


class Backend:
    """The reference backend: every op's default body on NumPy. Subclasses set `name` and `xp`
    and override the ops they have faster kernels for."""

    name: str = "reference"
    xp: Any = np

    def __init__(self, dtype: str | np.dtype = "float32"):
        dtype = np.dtype(dtype)
        if dtype.name not in SUPPORTED_DTYPES:
            raise ValueError(f"backend dtype must be one of {SUPPORTED_DTYPES}, got {dtype.name}")
        self.dtype = dtype
        self._variants: dict[str, dict[str, Callable]] = {op: {"default": getattr(self, op)} for op in OPS}
        self._selected: dict[str, str] = {op: "default" for op in OPS}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype.name})"

    # ---- variants -------------------------------------------------------------------------
    def register_variant(self, op: str, name: str, fn: Callable) -> None:
        """Add `fn` as variant `name` of op `op` (same signature as the op)."""
        if op not in OPS:
            raise KeyError(f"unknown op {op!r}; ops are {', '.join(OPS)}")
        self._variants[op][name] = fn

    def variants(self, op: str) -> dict[str, Callable]:
        """The variants of `op` by name."""
        if op not in self._variants:
            raise KeyError(f"unknown op {op!r}; ops are {', '.join(OPS)}")
        return dict(self._variants[op])

    def selected_variant(self, op: str) -> str:
        return self._selected[op]

    def use_variant(self, op: str, name: str) -> None:
        """Make variant `name` the implementation of `op` on this backend object."""
        options = self.variants(op)
        if name not in options:
            raise KeyError(f"op {op!r} has no variant {name!r}; available: {', '.join(options)}")
        setattr(self, op, options[name])
        self._selected[op] = name

    # ---- arrays ---------------------------------------------------------------------------
    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """x as a backend array; floating input is cast to the backend dtype unless `dtype` is given."""
        host = np.asarray(x)
        if dtype is None:
            dtype = self.dtype if host.dtype.kind in "fc" or host.dtype == object else host.dtype
        return self.xp.asarray(host, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A host NumPy array of x."""
        return np.asarray(x)

    def empty(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        """An uninitialized array (on the host: starting on a cache line)."""
        dtype = self.dtype if dtype is None else dtype
        return aligned_host_array(shape, dtype) if self.xp is np else self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        """An array of zeros (on the host: starting on a cache line)."""
        dtype = self.dtype if dtype is None else dtype
        return aligned_host_array(shape, dtype, zero=True) if self.xp is np else self.xp.zeros(shape, dtype=dtype)

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on the CPU)."""

    def info(self) -> dict[str, Any]:
        """Name, dtype and library versions, for `minisnn info` and benchmark JSON."""
        return {"backend": self.name, "dtype": self.dtype.name, "numpy": np.__version__}

    # ---- helpers of the default bodies ------------------------------------------------------
    def _out(self, like, out):
        """`out`, or a new array shaped and typed like `like`."""
        return self.xp.empty_like(like) if out is None else out

    def _store(self, value64, out, dtype):
        """A float64 statistic rounded into `out` (or a new array of `dtype`)."""
        if out is None:
            return value64.astype(dtype)
        out[...] = value64
        return out

    def _keep(self, mask: DropoutMask, shape: tuple[int, ...]):
        """The mask's boolean keep array for `shape`, on this backend's device."""
        return self.xp.asarray(mask.keep(tuple(shape)))

    def _check_labels(self, labels, n_rows: int, n_classes: int) -> None:
        """ValueError naming the first row whose label is not an integer in [0, n_classes)."""
        if labels.ndim != 1 or labels.shape[0] != n_rows or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers of shape ({n_rows},), got {labels.dtype} {tuple(labels.shape)}")
        bad = (labels < 0) | (labels >= n_classes)
        if bool(bad.any()):
            row = int(self.xp.argmax(bad))
            raise ValueError(f"label {int(labels[row])} in row {row} is outside [0, {n_classes})")

    # ---- linear algebra ---------------------------------------------------------------------
    def matmul(self, a, b, out=None):
        """(N, K) @ (K, M) -> (N, M); a or b may be transposed views; `out` must not alias a or b."""
        return self.xp.matmul(a, b, out=out)

    def bias_add_forward(self, z, b, out=None):
        """z (N, D) + b (D,) -> (N, D); `out` may alias z. Its backward is column_sum."""
        return self.xp.add(z, b, out=out)

    def column_sum(self, x, out=None):
        """(N, D) -> (D,): the bias gradient."""
        return self.xp.sum(x, axis=0, out=out)

    # ---- SELU ---------------------------------------------------------------------------------
    def selu_forward(self, x, alpha, lam, out=None):
        """y = lam*x for x > 0, lam*alpha*expm1(x) otherwise; same shape; `out` may alias x.

        Computed as lam*max(x, 0) + lam*alpha*expm1(min(x, 0)): exp never sees x > 0.
        """
        xp = self.xp
        negative = xp.minimum(x, 0)
        xp.expm1(negative, out=negative)
        negative *= lam * alpha
        out = xp.maximum(x, 0, out=self._out(x, out))
        out *= lam
        out += negative
        return out

    def selu_backward(self, dy, y, alpha, lam, out=None):
        """dx from the output y: dy*lam where y > 0, dy*(y + lam*alpha) elsewhere (lam*alpha*exp(x)
        = y + lam*alpha); `out` may alias dy.

        For very negative x, y + lam*alpha rounds to 0 while lam*alpha*exp(x) is a tiny positive
        number: a difference below 1e-30 of lam*alpha, harmless for training.
        """
        xp = self.xp
        slope = xp.add(y, lam * alpha)
        xp.copyto(slope, lam, where=y > 0)
        return xp.multiply(dy, slope, out=out)

    def bias_selu_forward(self, z, b, alpha, lam, out=None):
        """y = selu(z + b), z (N, D), b (D,); `out` may alias z."""
        out = self.xp.add(z, b, out=out)
        return self.selu_forward(out, alpha, lam, out=out)

    def bias_selu_backward(self, dy, y, alpha, lam, dz=None, db=None):
        """(dz (N, D), db (D,)) for y = selu(z + b), from the output y; `dz` may alias dy."""
        dz = self.selu_backward(dy, y, alpha, lam, out=dz)
        return dz, self.column_sum(dz, out=db)

    # ---- dropout (alpha dropout; standard dropout is the same op with shift = dropped = 0) -----
    def alpha_dropout_forward(self, x, mask: DropoutMask, out=None):
        """Kept elements mask.scale*x + mask.shift, dropped ones mask.dropped; `out` may alias x."""
        out = self.xp.multiply(x, mask.scale, out=out)
        out += mask.shift
        self.xp.copyto(out, mask.dropped, where=~self._keep(mask, x.shape))
        return out

    def alpha_dropout_backward(self, dy, mask: DropoutMask, out=None):
        """dx = mask.scale*dy where kept, 0 where dropped; `out` may alias dy."""
        out = self.xp.multiply(dy, mask.scale, out=out)
        self.xp.copyto(out, 0, where=~self._keep(mask, dy.shape))  # 0 even where dy is inf or NaN
        return out

    def bias_selu_dropout_forward(self, z, b, mask: DropoutMask, alpha, lam, out=None):
        """y = alpha_dropout(selu(z + b)); `out` may alias z."""
        out = self.bias_selu_forward(z, b, alpha, lam, out=out)
        return self.alpha_dropout_forward(out, mask, out=out)

    def bias_selu_dropout_backward(self, dy, y, mask: DropoutMask, alpha, lam, dz=None, db=None):
        """(dz, db) for y = dropout(selu(z + b)), from the output y alone; `dz` may alias dy.

        On kept elements the SELU output is s = (y - shift)/scale; dropped elements pass no
        gradient. Where |s| is below the rounding error of shift (about 1e-7 in float32) the
        branch taken for s may flip; such s lie at the kink, where either slope is a subgradient.
        """
        keep = self._keep(mask, y.shape)
        selu_out = (y - mask.shift) / mask.scale  # valid where kept
        dz = self.selu_backward(dy, selu_out, alpha, lam, out=dz)
        dz *= mask.scale
        self.xp.copyto(dz, 0, where=~keep)  # 0 even where dy is inf or NaN
        return dz, self.column_sum(dz, out=db)

    # ---- other activations (backward from the output y) ----------------------------------------
    def relu_forward(self, x, out=None):
        """y = max(x, 0); `out` may alias x."""
        return self.xp.maximum(x, 0, out=out)

    def relu_backward(self, dy, y, out=None):
        """dx = dy where y > 0, else 0 (0 at the kink, and where dy is inf or NaN); `out` may alias dy."""
        out = self.xp.multiply(dy, 1, out=out)
        self.xp.copyto(out, 0, where=~(y > 0))
        return out

    def elu_forward(self, x, alpha, out=None):
        """y = x for x > 0, alpha*expm1(x) otherwise; `out` may alias x."""
        xp = self.xp
        negative = xp.minimum(x, 0)
        xp.expm1(negative, out=negative)
        negative *= alpha
        out = xp.maximum(x, 0, out=self._out(x, out))
        out += negative
        return out

    def elu_backward(self, dy, y, alpha, out=None):
        """dx = dy where y > 0, dy*(y + alpha) elsewhere (alpha*exp(x) = y + alpha); `out` may alias dy."""
        xp = self.xp
        slope = xp.add(y, alpha)
        xp.copyto(slope, 1.0, where=y > 0)
        return xp.multiply(dy, slope, out=out)

    def tanh_forward(self, x, out=None):
        """y = tanh(x); `out` may alias x."""
        return self.xp.tanh(x, out=out)

    def tanh_backward(self, dy, y, out=None):
        """dx = dy*(1 - y^2); `out` may alias dy."""
        slope = self.xp.multiply(y, y)
        self.xp.subtract(1.0, slope, out=slope)
        return self.xp.multiply(dy, slope, out=out)

    def sigmoid_forward(self, x, out=None):
        """y = 1/(1 + exp(-x)), from e = exp(-|x|) (never overflows; relative accuracy for
        x << 0, where y = e/(1 + e)); `out` may alias x."""
        xp = self.xp
        e = xp.exp(-xp.abs(x))  # in (0, 1]
        negative = x < 0
        out = xp.divide(1.0, 1.0 + e, out=self._out(x, out))
        xp.copyto(out, e * out, where=negative)  # e/(1 + e) where x < 0
        return out

    def sigmoid_backward(self, dy, y, out=None):
        """dx = dy*y*(1 - y); `out` may alias dy."""
        slope = self.xp.subtract(1.0, y)
        slope *= y
        return self.xp.multiply(dy, slope, out=out)

    # ---- composite layers: residual sums, normalization, highway gates ---------------------------
    def add(self, a, b, out=None):
        """a + b, same shapes (a residual connection, and its backward's sum of two paths);
        `out` may alias a or b."""
        return self.xp.add(a, b, out=out)

    def batch_norm_forward(self, x, gamma, beta, eps, out=None, mean=None, rstd=None,
                           running_mean=None, running_var=None, momentum=0.1):
        """Training-mode batch normalization of x (N, D), N >= 2, over the batch axis.

        Per feature: mean, biased variance var, rstd = 1/sqrt(var + eps); y = gamma*(x - mean)*rstd
        + beta with gamma, beta (D,). Writes mean and rstd (D,), which the backward takes, and
        returns (y, mean, rstd). With running_mean and running_var (D,) given, also updates them in
        place, PyTorch's convention: r = (1 - momentum)*r + momentum*s, s the batch mean and the
        unbiased variance var*N/(N - 1); they must be C-contiguous (pass both or neither). Statistics
        are accumulated in float64 (two passes: the mean, then squared deviations), so a large common
        offset loses no precision.
        `out` may alias x.
        """
        xp = self.xp
        n = x.shape[0]
        if n < 2:
            raise ValueError(f"batch normalization needs at least 2 rows to estimate statistics, got {n}")
        if (running_mean is None) != (running_var is None):
            raise ValueError("running_mean and running_var are updated together: pass both or neither")
        x64 = x.astype(xp.float64)
        mean64 = x64.mean(axis=0)  # (D,)
        var64 = ((x64 - mean64) ** 2).mean(axis=0)  # (D,)
        rstd64 = 1.0 / xp.sqrt(var64 + eps)
        if running_mean is not None:
            running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean64
            running_var[...] = (1.0 - momentum) * running_var + momentum * var64 * (n / (n - 1))
        mean = self._store(mean64, mean, x.dtype)
        rstd = self._store(rstd64, rstd, x.dtype)
        scale = gamma * rstd  # (D,)
        shift = beta - mean * scale  # (D,)
        out = xp.multiply(x, scale, out=out)
        out += shift
        return out, mean, rstd

    def batch_norm_inference(self, x, gamma, beta, running_mean, running_var, eps, out=None):
        """Evaluation-mode batch normalization: y = gamma*(x - running_mean)/sqrt(running_var + eps)
        + beta for x (N, D), any N >= 1, one affine map per feature; `out` may alias x."""
        scale = gamma / self.xp.sqrt(running_var + eps)  # (D,)
        shift = beta - running_mean * scale
        out = self.xp.multiply(x, scale, out=out)
        out += shift
        return out

    def batch_norm_inference_backward(self, dy, x, gamma, running_mean, running_var, eps, dx=None, dgamma=None,
                                      dbeta=None):
        """(dx, dgamma, dbeta) for y = batch_norm_inference(x), a fixed affine map per feature (for
        fine-tuning with frozen statistics): with rstd = 1/sqrt(running_var + eps) and
        x_hat = (x - running_mean)*rstd, dx = dy*gamma*rstd, dgamma = sum_n dy*x_hat,
        dbeta = sum_n dy. `dx` may alias dy."""
        xp = self.xp
        rstd = 1.0 / xp.sqrt(running_var + eps)  # (D,)
        dbeta = xp.sum(dy, axis=0, out=dbeta)
        dgamma = xp.sum(dy * ((x - running_mean) * rstd), axis=0, out=dgamma)
        return xp.multiply(dy, gamma * rstd, out=dx), dgamma, dbeta

    def batch_norm_backward(self, dy, x, gamma, mean, rstd, dx=None, dgamma=None, dbeta=None):
        """(dx (N, D), dgamma (D,), dbeta (D,)) for training-mode y = batch_norm_forward(x), from
        its input x and saved mean, rstd (D,). With x_hat = (x - mean)*rstd:
        dbeta = sum_n dy, dgamma = sum_n dy*x_hat,
        dx = gamma*rstd*(dy - dbeta/N - x_hat*dgamma/N). `dx` may alias dy."""
        xp = self.xp
        n = x.shape[0]
        x_hat = (x - mean) * rstd  # (N, D)
        dbeta = xp.sum(dy, axis=0, out=dbeta)
        dgamma = xp.sum(dy * x_hat, axis=0, out=dgamma)
        x_hat *= dgamma / n
        x_hat += dbeta / n
        dx = xp.subtract(dy, x_hat, out=dx)
        dx *= gamma * rstd
        return dx, dgamma, dbeta

    def layer_norm_forward(self, x, gamma, beta, eps, out=None, mean=None, rstd=None):
        """Layer normalization of each row of x (N, D) over its D features: per row mean, biased
        variance var, rstd = 1/sqrt(var + eps); y = gamma*(x - mean)*rstd + beta, gamma, beta (D,).
        Writes mean and rstd (N,) and returns (y, mean, rstd); statistics in float64 as in
        batch_norm_forward. `out` may alias x."""
        xp = self.xp
        x64 = x.astype(xp.float64)
        mean64 = x64.mean(axis=1)  # (N,)
        var64 = ((x64 - mean64[:, None]) ** 2).mean(axis=1)  # (N,)
        mean = self._store(mean64, mean, x.dtype)
        rstd = self._store(1.0 / xp.sqrt(var64 + eps), rstd, x.dtype)
        out = xp.subtract(x, mean[:, None], out=out)
        out *= rstd[:, None]
        out *= gamma
        out += beta
        return out, mean, rstd

    def layer_norm_backward(self, dy, x, gamma, mean, rstd, dx=None, dgamma=None, dbeta=None):
        """(dx (N, D), dgamma (D,), dbeta (D,)) for y = layer_norm_forward(x), from x and the saved
        mean, rstd (N,). With x_hat = (x - mean)*rstd and g = dy*gamma (per row, means over D):
        dx = rstd*(g - mean(g) - x_hat*mean(g*x_hat)); dgamma = sum_n dy*x_hat; dbeta = sum_n dy.
        `dx` may alias dy."""
        xp = self.xp
        x_hat = (x - mean[:, None]) * rstd[:, None]  # (N, D)
        dbeta = xp.sum(dy, axis=0, out=dbeta)
        dgamma = xp.sum(dy * x_hat, axis=0, out=dgamma)
        g = dy * gamma  # (N, D)
        g_mean = g.mean(axis=1, keepdims=True)  # (N, 1)
        gx_mean = (g * x_hat).mean(axis=1, keepdims=True)  # (N, 1)
        x_hat *= gx_mean
        g -= g_mean
        g -= x_hat
        return xp.multiply(g, rstd[:, None], out=dx), dgamma, dbeta

    def weight_norm_forward(self, v, g, out=None, norm=None):
        """Weight normalization of v (D_in, D_out) per output unit (column): norm_j = ||v[:, j]||,
        w = v * g/norm with g (D_out,). Writes norm (D_out,) and returns (w, norm); a zero column
        of v is a ValueError (its direction is undefined). `out` may alias v."""
        xp = self.xp
        norm64 = xp.sqrt((v.astype(xp.float64) ** 2).sum(axis=0))  # (D_out,)
        if bool((norm64 == 0).any()):
            raise ValueError(f"weight normalization: column {int(xp.argmax(norm64 == 0))} of v is all zeros")
        norm = self._store(norm64, norm, v.dtype)
        out = xp.multiply(v, g / norm, out=out)
        return out, norm

    def weight_norm_backward(self, dw, v, g, norm, dv=None, dg=None):
        """(dv (D_in, D_out), dg (D_out,)) for w = weight_norm_forward(v, g), from the gradient dw of
        w: dg = sum_i dw*v / norm; dv = (g/norm)*(dw - v*dg/norm). `dv` may alias dw."""
        xp = self.xp
        dg = xp.divide(xp.sum(dw * v, axis=0), norm, out=dg)
        projection = v * (dg / norm)  # (D_in, D_out)
        dv = xp.subtract(dw, projection, out=dv)
        dv *= g / norm
        return dv, dg

    def highway_forward(self, h, t, x, out=None):
        """The highway mix y = t*h + (1 - t)*x = x + t*(h - x) of the transform h, the gate t (in
        [0, 1]) and the carried input x, all (N, D); `out` may alias h."""
        diff = self.xp.subtract(h, x)
        diff *= t
        return self.xp.add(x, diff, out=out)

    def highway_backward(self, dy, h, t, x, dh=None, dt=None, dx=None):
        """(dh, dt, dx) for y = highway_forward(h, t, x): dh = dy*t, dt = dy*(h - x),
        dx = dy*(1 - t) (the carry path only). None of the outputs may alias dy."""
        xp = self.xp
        dt = xp.multiply(dy, xp.subtract(h, x), out=dt)
        dx = xp.multiply(dy, xp.subtract(1.0, t), out=dx)
        dh = xp.multiply(dy, t, out=dh)
        return dh, dt, dx

    # ---- losses and metrics ---------------------------------------------------------------------
    def softmax_cross_entropy_forward(self, logits, labels, probs=None):
        """(summed loss / N as a 0-d array, probs (N, C)) for logits (N, C) and integer labels (N,)
        in [0, C) (a ValueError names the first row outside); `probs` may alias logits.

        log-sum-exp with the row maximum subtracted: no overflow, exact small probabilities.
        """
        xp = self.xp
        n, c = logits.shape
        self._check_labels(labels, n, c)
        rows = xp.arange(n)
        row_max = logits.max(axis=1, keepdims=True)  # (N, 1)
        probs = xp.subtract(logits, row_max, out=probs)
        label_logit = probs[rows, labels]  # (N,) shifted logit of the true class
        xp.exp(probs, out=probs)
        total = probs.sum(axis=1, keepdims=True)  # (N, 1)
        probs /= total
        loss = xp.mean(xp.log(total[:, 0]) - label_logit)
        return xp.asarray(loss, dtype=logits.dtype), probs

    def softmax_cross_entropy_backward(self, probs, labels, out=None):
        """d(mean loss)/d logits = (probs - onehot(labels)) / N, (N, C); `out` may alias probs."""
        xp = self.xp
        n, c = probs.shape
        self._check_labels(labels, n, c)
        if out is None:
            out = probs.copy()
        elif out is not probs:
            xp.copyto(out, probs)
        out[xp.arange(n), labels] -= 1
        out *= 1.0 / n
        return out

    def sigmoid_cross_entropy_forward(self, logits, targets, weights=None):
        """sum(weights * (max(z, 0) - z*t + log1p(exp(-|z|)))) as a 0-d array; logits, targets
        (and weights, None meaning ones) (N, T) float arrays; targets in [0, 1]."""
        xp = self.xp
        terms = xp.maximum(logits, 0) - logits * targets + xp.log1p(xp.exp(-xp.abs(logits)))  # (N, T)
        if weights is not None:
            terms *= weights
        return xp.asarray(terms.sum(), dtype=logits.dtype)

    def sigmoid_cross_entropy_backward(self, logits, targets, weights, scale, out=None):
        """scale * weights * (sigmoid(z) - t), (N, T); weights None means ones; `out` may alias logits."""
        out = self.sigmoid_forward(logits, out=out)
        out -= targets
        if weights is not None:
            out *= weights
        out *= scale
        return out

    def squared_error_forward(self, pred, target):
        """sum((pred - target)^2) over all elements, as a 0-d array; pred, target (N, T)."""
        diff = pred - target
        return self.xp.asarray((diff * diff).sum(), dtype=pred.dtype)

    def squared_error_backward(self, pred, target, scale, out=None):
        """2*scale*(pred - target), (N, T); `out` may alias pred."""
        out = self.xp.subtract(pred, target, out=out)
        out *= 2.0 * scale
        return out

    def count_correct(self, logits, labels) -> int:
        """The number of rows of logits (N, C) whose argmax (first maximum) equals the label (N,)."""
        return int((self.xp.argmax(logits, axis=1) == labels).sum())

    # ---- optimizer updates ------------------------------------------------------------------------
    UPDATE_OPS = ("sgd_update", "adam_update")

    def bind_update(self, op: str, param, grad, *state) -> Callable[..., None]:
        """The update op `op` (one of UPDATE_OPS) bound to one parameter's arrays: param, grad, then
        its state (velocity, or m and v). Calling the result with the op's remaining arguments
        (lr, ...) updates them in place. An optimizer binds every parameter once and calls each
        step; a backend may check the arrays once here (they are never rebound) instead of at
        every call, so the arrays must not be reshaped or replaced while the result is in use."""
        if op not in self.UPDATE_OPS:
            raise ValueError(f"bind_update binds one of {', '.join(self.UPDATE_OPS)}, got {op!r}")
        method = getattr(self, op)
        return lambda *args: method(param, grad, *state, *args)

    def sgd_update(self, param, grad, velocity, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        """In place, PyTorch's convention: g = grad + weight_decay*param; with momentum
        v = momentum*v + g and step = g + momentum*v (Nesterov) or v, else step = g;
        param -= lr*step. velocity is ignored (may be None) when momentum is 0. Works in
        slices of UPDATE_CHUNK elements, so its temporaries stay cache-sized."""
        if momentum != 0.0 and velocity is None:
            raise missing_velocity(momentum)
        for rows in _slices(param):
            p, g = param[rows], grad[rows]
            if weight_decay:
                g = g + weight_decay * p
            if momentum == 0.0:
                p -= lr * g
                continue
            v = velocity[rows]
            v *= momentum
            v += g
            p -= lr * (g + momentum * v if nesterov else v)

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled):
        """In place, one Adam step number `step` (1-based) with bias correction:
        decoupled (AdamW): param *= 1 - lr*weight_decay and g = grad; else (Adam, L2) g = grad +
        weight_decay*param; m = beta1*m + (1 - beta1)*g; v = beta2*v + (1 - beta2)*g^2;
        param -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)."""
        if step < 1:
            raise ValueError(f"step is the 1-based count of Adam steps (it sets the bias corrections), got {step}")
        correction1 = 1.0 - beta1 ** step
        root_correction2 = math.sqrt(1.0 - beta2 ** step)
        for rows in _slices(param):
            p, g, m_s, v_s = param[rows], grad[rows], m[rows], v[rows]
            if decoupled:
                p *= 1.0 - lr * weight_decay
            elif weight_decay:
                g = g + weight_decay * p
            m_s *= beta1
            m_s += (1.0 - beta1) * g
            v_s *= beta2
            v_s += (1.0 - beta2) * (g * g)
            denominator = self.xp.sqrt(v_s) / root_correction2
            denominator += eps
            p -= (lr / correction1) * m_s / denominator
