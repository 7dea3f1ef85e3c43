"""Optimisers that update a model's parameters in place: SGD with momentum, and Adam.

An optimiser holds the *model* (anything with ``named_parameters()`` yielding
live ``(name, param, grad)`` triples, as :class:`fcn_scratch.layers.Module`)
and re-reads the triples on every :meth:`step`, because each ``backward``
stores fresh gradient arrays while the parameter arrays stay the same objects.

Weight decay is L2 regularisation added to the gradient, ``g + wd * w``, and
is skipped for biases (names ending in ``bias``): decaying a bias only pulls
the decision threshold towards zero and does not regularise anything.

The learning rate is the attribute ``opt.lr``; :func:`poly_lr` is FCN's
"poly" schedule, ``lr * (1 - it / max_it) ** 0.9``, to set it per iteration.
"""

from __future__ import annotations

import numbers

import numpy as np


def poly_lr(base_lr: float, iteration: int, max_iterations: int, power: float = 0.9) -> float:
    """``base_lr * (1 - iteration / max_iterations) ** power``, clamped at 0 past the end."""
    if max_iterations <= 0:
        raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
    frac = min(max(iteration / max_iterations, 0.0), 1.0)
    return float(base_lr) * (1.0 - frac) ** power


def _number(value, name, *, minimum=0.0, below=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (below is not None and value >= below):
        bound = f"in [{minimum}, {below})" if below is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return float(value)


class Optimizer:
    """Base class: keeps per-parameter state by name and applies :meth:`_update` to each parameter."""

    def __init__(self, model, lr, weight_decay=0.0):
        if not hasattr(model, "named_parameters"):
            raise TypeError(
                f"model must have named_parameters() yielding (name, param, grad), got {type(model).__name__}"
            )
        self.model = model
        self.lr = _number(lr, "lr")
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.state: dict[str, dict] = {}
        self.iterations = 0

    @staticmethod
    def decays(name: str) -> bool:
        """Weight decay applies to weights, not to biases."""
        return not name.endswith("bias")

    def step(self) -> None:
        """Update every parameter in place from the gradients of the last ``backward``."""
        triples = list(self.model.named_parameters())
        for name, param, grad in triples:  # check everything before touching anything
            if grad is None:
                raise ValueError(f"no gradient for parameter {name!r}: run forward and backward before step()")
            if grad.shape != param.shape:
                raise ValueError(f"gradient of {name!r} has shape {grad.shape}, expected {param.shape}")
        self.iterations += 1
        for name, param, grad in triples:
            g = grad
            if self.weight_decay and self.decays(name):
                g = g + self.weight_decay * param
            self._update(name, param, g.astype(param.dtype, copy=False), self.state.setdefault(name, {}))

    def _update(self, name, param, grad, state):  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum, PyTorch's formulation.

    ``g = grad + wd * w`` (weights only), ``v = momentum * v + g``, ``w -= lr * v``.
    The first step starts from ``v = g``. ``momentum=0`` is plain SGD.
    """

    def __init__(self, model, lr, momentum=0.9, weight_decay=0.0):
        super().__init__(model, lr, weight_decay)
        self.momentum = _number(momentum, "momentum", below=1.0)

    def _update(self, name, param, grad, state):
        if self.momentum:
            v = state.get("velocity")
            if v is None:
                v = state["velocity"] = grad.copy()
            else:
                v *= self.momentum
                v += grad
            grad = v
        param -= self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``, ``t += 1``,
    ``w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)``. Weight decay, if
    any, is L2 added to ``g`` (as ``torch.optim.Adam``), weights only.
    """

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(model, lr, weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = _number(betas[0], "betas[0]", below=1.0)
        self.beta2 = _number(betas[1], "betas[1]", below=1.0)
        self.eps = _number(eps, "eps")

    def _update(self, name, param, grad, state):
        if not state:
            state["t"] = 0
            state["m"] = np.zeros_like(param)
            state["v"] = np.zeros_like(param)
        state["t"] += 1
        t, m, v = state["t"], state["m"], state["v"]
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        param -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(param.dtype, copy=False)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, model, lr, *, momentum=0.9, weight_decay=0.0):
    """``"sgd"`` -> :class:`SGD` (with ``momentum``), ``"adam"`` -> :class:`Adam`."""
    if name == "sgd":
        return SGD(model, lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return Adam(model, lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, got {name!r}")


__all__ = ["Optimizer", "SGD", "Adam", "OPTIMIZERS", "make_optimizer", "poly_lr"]
