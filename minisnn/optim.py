"""SGD with momentum, Nesterov and weight decay, and learning-rate schedules.

The update (PyTorch's convention, applied by the backend's sgd_update op in place; for a model,
whose parameters are packed in one flat buffer, in a single call over the whole model):
    g = grad + weight_decay * param
    v = momentum * v + g                      (only when momentum > 0)
    param -= lr * (g + momentum * v  if nesterov else  v)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backends.base import Backend
from .model import packed_view

SCHEDULES = ("constant", "step", "cosine")


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


class SGD:
    """Stochastic gradient descent over a model's parameters (or a list of Parameter tuples + backend)."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, schedule: Schedule | None = None, backend: Backend | None = None):
        flat = None
        if hasattr(params, "parameters"):  # a model
            backend = backend or params.backend
            flat = params.flat_parameters() if hasattr(params, "flat_parameters") else None
            params = params.parameters()
        if backend is None:
            raise ValueError("SGD needs the backend of its parameters: pass a model, or backend=")
        if not lr > 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"SGD needs lr > 0, 0 <= momentum < 1 and weight_decay >= 0; "
                             f"got lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.params = list(params)
        self.backend = backend
        self.lr, self.momentum, self.nesterov, self.weight_decay = float(lr), float(momentum), bool(nesterov), float(weight_decay)
        self.schedule = schedule or Schedule()
        self.step_count = 0
        self._flat = None  # (values, grads, velocity or None), each (P,), for a model with packed parameters
        if flat is None:
            self.velocity = {p.name: backend.zeros(p.value.shape) for p in self.params} if momentum > 0 else {}
        else:
            velocity = backend.zeros(flat.values.shape) if momentum > 0 else None
            self._flat = (flat.values, flat.grads, velocity)
            self.velocity = ({p.name: packed_view(velocity, offset, shape) for p, (offset, shape) in
                              zip(self.params, flat.slots)} if momentum > 0 else {})

    @property
    def current_lr(self) -> float:
        return self.schedule(self.lr, self.step_count)

    def step(self) -> None:
        """Apply one update to every parameter from its gradient buffer."""
        lr = self.current_lr
        if self._flat is not None:  # the whole model in one pass
            values, grads, velocity = self._flat
            self.backend.sgd_update(values, grads, velocity, lr, self.momentum, self.weight_decay, self.nesterov)
        else:
            for p in self.params:
                self.backend.sgd_update(p.value, p.grad, self.velocity.get(p.name), lr, self.momentum,
                                        self.weight_decay, self.nesterov)
        self.step_count += 1

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay, "schedule": self.schedule.config()}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Velocity buffers as host arrays, by parameter name."""
        return {name: self.backend.to_numpy(v) for name, v in self.velocity.items()}

    def load_state(self, step_count: int, velocity: dict[str, np.ndarray]) -> None:
        """Restore the step counter and the velocity buffers (shapes checked)."""
        if set(velocity) != set(self.velocity):
            raise ValueError(f"optimizer state names {sorted(velocity)} do not match the parameters' "
                             f"{sorted(self.velocity)}")
        for name, value in velocity.items():
            if value.shape != self.velocity[name].shape:
                raise ValueError(f"velocity {name!r} has shape {value.shape}, expected {self.velocity[name].shape}")
            self.velocity[name][...] = self.backend.asarray(value)
        self.step_count = int(step_count)

    @classmethod
    def from_config(cls, config: dict[str, Any], model) -> "SGD":
        config = dict(config)
        schedule = Schedule(**config.pop("schedule", {}))
        return cls(model, schedule=schedule, **config)
