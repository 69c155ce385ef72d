"""Optimizers (SGD with momentum and Nesterov, Adam, AdamW) and learning-rate schedules.

Each update is one backend op per parameter array, in place and allocation-free once warm
(the formulas are those of the ops, minisnn.backends.base):
    SGD (PyTorch's convention):  g = grad + weight_decay*param;  v = momentum*v + g;
                                 param -= lr*(g + momentum*v if nesterov else v)
    Adam (L2 in the gradient):   g = grad + weight_decay*param;  m, v moving averages of g, g^2;
                                 param -= lr*m_hat/(sqrt(v_hat) + eps)   (bias-corrected)
    AdamW (decoupled decay):     param *= 1 - lr*weight_decay, then Adam's step with g = grad
The optimizer's state (velocity, or m and v) is named "<slot>/<parameter name>" in checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backends.base import Backend

SCHEDULES = ("constant", "step", "cosine")
OPTIMIZERS = ("sgd", "adam", "adamw")


class Schedule:
    """Learning rate as a function of the optimizer step: constant, step decay or cosine decay.

    step:   lr * gamma ** (t // step_size)
    cosine: min_lr + (lr - min_lr) * (1 + cos(pi * min(t, total_steps) / total_steps)) / 2
    """

    def __init__(self, kind: str = "constant", step_size: int = 1000, gamma: float = 0.1,
                 total_steps: int = 1000, min_lr: float = 0.0):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
        if step_size < 1 or total_steps < 1 or not 0 < gamma <= 1 or min_lr < 0:
            raise ValueError(f"bad schedule parameters: step_size={step_size}, total_steps={total_steps} "
                             f"(both >= 1), gamma={gamma} (in (0, 1]), min_lr={min_lr} (>= 0)")
        self.kind, self.step_size, self.gamma = kind, int(step_size), float(gamma)
        self.total_steps, self.min_lr = int(total_steps), float(min_lr)

    def __call__(self, base_lr: float, step: int) -> float:
        if self.kind == "step":
            return base_lr * self.gamma ** (step // self.step_size)
        if self.kind == "cosine":
            progress = min(step, self.total_steps) / self.total_steps
            return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return base_lr

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "step_size": self.step_size, "gamma": self.gamma,
                "total_steps": self.total_steps, "min_lr": self.min_lr}


class Optimizer:
    """Base class: parameters (a model's named_parameters(), or a list of Parameter tuples with
    `backend=`), a learning-rate schedule, a step counter and per-parameter state arrays.

    The first step binds each parameter's arrays (value, grad and state) to the backend's update
    op (Backend.bind_update); from then on change their contents in place (as load_state does),
    never replace the arrays.
    """

    kind = ""
    slots: tuple[str, ...] = ()  # names of the per-parameter state arrays

    def __init__(self, params, lr: float, schedule: Schedule | None, backend: Backend | None):
        if hasattr(params, "named_parameters"):  # a model or layer
            backend = backend or params.backend
            params = params.named_parameters()
        if backend is None:
            raise ValueError(f"{type(self).__name__} needs the backend of its parameters: pass a model, or backend=")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__} needs lr > 0, got lr={lr}")
        self.params = list(params)
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError("parameter names must be unique")
        self.backend = backend
        self.lr = float(lr)
        self.schedule = schedule or Schedule()
        self.step_count = 0
        self.state: dict[str, dict[str, Any]] = {}  # slot -> parameter name -> array
        self._updates: list | None = None  # one bound backend update per parameter, made by the first step

    def _allocate_state(self, slots: tuple[str, ...]) -> None:
        self.state = {slot: {p.name: self.backend.zeros(p.value.shape) for p in self.params} for slot in slots}

    @property
    def current_lr(self) -> float:
        return self.schedule(self.lr, self.step_count)

    def step(self) -> None:
        """Apply one update to every parameter from its gradient buffer."""
        lr = self.current_lr
        self.step_count += 1
        if self._updates is None:  # bound on first use: the arrays are fixed from then on
            self._updates = [self._bind(p) for p in self.params]
        for update in self._updates:
            self._update(update, lr)

    def __getstate__(self):
        """Picklable where the backend is: the bound updates are made again after unpickling."""
        return {**self.__dict__, "_updates": None}

    def _bind(self, p):
        """The backend's update op bound to parameter p's arrays (Backend.bind_update)."""
        raise NotImplementedError

    def _update(self, update, lr: float) -> None:
        """Call a bound update with this step's arguments."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Host copies of the state arrays, named "<slot>/<parameter name>"."""
        return {f"{slot}/{name}": self.backend.to_numpy(a) for slot, arrays in self.state.items()
                for name, a in arrays.items()}

    def load_state(self, step_count: int, arrays: dict[str, np.ndarray]) -> None:
        """Restore the step counter and the state arrays (names and shapes checked)."""
        expected = {f"{slot}/{name}": a for slot, named in self.state.items() for name, a in named.items()}
        if set(arrays) != set(expected):
            raise ValueError(f"optimizer state names {sorted(arrays)} do not match the expected {sorted(expected)}")
        for name, value in arrays.items():
            if tuple(value.shape) != tuple(expected[name].shape):
                raise ValueError(f"optimizer state {name!r} has shape {tuple(value.shape)}, "
                                 f"expected {tuple(expected[name].shape)}")
        for name, value in arrays.items():
            expected[name][...] = self.backend.asarray(value)
        if int(step_count) < 0:
            raise ValueError(f"optimizer step must be non-negative, got {step_count}")
        self.step_count = int(step_count)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay."""

    kind = "sgd"

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, schedule: Schedule | None = None, backend: Backend | None = None):
        super().__init__(params, lr, schedule, backend)
        if not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"SGD needs 0 <= momentum < 1 and weight_decay >= 0; "
                             f"got momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)
        self._allocate_state(("velocity",) if momentum > 0 else ())

    @property
    def velocity(self) -> dict[str, Any]:
        return self.state.get("velocity", {})

    def _bind(self, p):
        return self.backend.bind_update("sgd_update", p.value, p.grad, self.velocity.get(p.name))

    def _update(self, update, lr: float) -> None:
        update(lr, self.momentum, self.weight_decay, self.nesterov)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay, "schedule": self.schedule.config()}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; weight decay as an L2 term in the gradient."""

    kind = "adam"
    decoupled = False

    def __init__(self, params, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0, schedule: Schedule | None = None, backend: Backend | None = None):
        super().__init__(params, lr, schedule, backend)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1 and eps > 0 and weight_decay >= 0):
            raise ValueError(f"{type(self).__name__} needs 0 <= beta1, beta2 < 1, eps > 0 and weight_decay >= 0; "
                             f"got beta1={beta1}, beta2={beta2}, eps={eps}, weight_decay={weight_decay}")
        self.beta1, self.beta2, self.eps, self.weight_decay = float(beta1), float(beta2), float(eps), float(weight_decay)
        self._allocate_state(("m", "v"))

    def _bind(self, p):
        return self.backend.bind_update("adam_update", p.value, p.grad, self.state["m"][p.name],
                                        self.state["v"][p.name])

    def _update(self, update, lr: float) -> None:
        update(lr, self.beta1, self.beta2, self.eps, self.weight_decay, self.step_count, self.decoupled)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "weight_decay": self.weight_decay, "schedule": self.schedule.config()}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): param *= 1 - lr*weight_decay each step."""

    kind = "adamw"
    decoupled = True

    def __init__(self, params, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01, schedule: Schedule | None = None, backend: Backend | None = None):
        super().__init__(params, lr, beta1, beta2, eps, weight_decay, schedule, backend)


_OPTIMIZER_TYPES = {cls.kind: cls for cls in (SGD, Adam, AdamW)}


def optimizer_from_config(config: dict[str, Any], model) -> Optimizer:
    """The optimizer described by config() over the model's parameters (a ValueError names a bad kind)."""
    config = dict(config)
    kind = config.pop("kind", "sgd")
    if kind not in _OPTIMIZER_TYPES:
        raise ValueError(f"unknown optimizer {kind!r}; known: {', '.join(OPTIMIZERS)}")
    schedule = Schedule(**config.pop("schedule", {}))
    return _OPTIMIZER_TYPES[kind](model, schedule=schedule, **config)
