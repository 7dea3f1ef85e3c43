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

from . import kernels


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
            state = self.state.get(name, {})
            self._update(name, param, g.astype(param.dtype, copy=False), state)
            if state:  # only real state is kept: plain SGD (momentum 0) has none, so saves none
                self.state[name] = state

    def _update(self, name, param, grad, state):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ saving and resuming

    #: the per-parameter state this optimiser keeps: ``{key: is_array}`` (SGD: velocity; Adam: t, m, v)
    STATE_KEYS: dict = {}

    def hyperparameters(self) -> dict:
        """The settings an interrupted run must resume with (``lr`` excluded: schedules change it)."""
        return {"weight_decay": self.weight_decay}

    def stateless(self) -> bool:
        """True when :meth:`step` keeps no per-parameter state at all (plain SGD, ``momentum=0``)."""
        return False

    def state_dict(self) -> dict:
        """Everything :meth:`step` has accumulated, as copies, to save and later resume from.

        ``{"type": "SGD" | "Adam", "iterations": int, "lr": float, "hyperparameters": {...},
        "state": {param_name: {key: array or int}}}``; the arrays have their parameter's shape
        and dtype (SGD ``velocity``; Adam ``m``, ``v`` and the step count ``t``). Plain SGD
        (``momentum=0``) keeps nothing: its ``"state"`` is ``{}``.
        """
        return {
            "type": type(self).__name__,
            "iterations": int(self.iterations),
            "lr": float(self.lr),
            "hyperparameters": self.hyperparameters(),
            "state": {name: {k: (v.copy() if isinstance(v, np.ndarray) else int(v)) for k, v in st.items()}
                      for name, st in self.state.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output; checks type, hyperparameters, names, keys, shapes, dtypes.

        Raises ``ValueError`` (``TypeError`` for a non-dict) naming the first entry that does not fit
        this optimiser and model; nothing is changed unless everything fits.
        """
        if not isinstance(state, dict):
            raise TypeError(f"optimizer state must be a dict from state_dict(), got {type(state).__name__}")
        for key in ("type", "iterations", "lr", "hyperparameters", "state"):
            if key not in state:
                raise ValueError(f"optimizer state has no {key!r} entry")
        if state["type"] != type(self).__name__:
            raise ValueError(f"optimizer state is for {state['type']!r}, this optimizer is {type(self).__name__}")
        mine = self.hyperparameters()
        if not isinstance(state["hyperparameters"], dict) or \
                {k: state["hyperparameters"].get(k) for k in mine} != mine:
            raise ValueError(f"optimizer state has hyperparameters {state['hyperparameters']!r}, "
                             f"this optimizer has {mine!r}")
        iterations = state["iterations"]
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
            raise ValueError(f"optimizer state 'iterations' must be an int >= 0, got {iterations!r}")
        lr = _number(state["lr"], "optimizer state 'lr'")
        params = {name: p for name, p, _ in self.model.named_parameters()}
        entries = state["state"]
        if not isinstance(entries, dict):
            raise ValueError(f"optimizer state 'state' must be a dict by parameter name, got {type(entries).__name__}")
        restored = {}
        for name, st in entries.items():
            if name not in params:
                raise ValueError(f"optimizer state names parameter {name!r}, which the model does not have")
            if isinstance(st, dict) and not st and self.stateless():
                continue  # an empty entry, as older versions saved for plain SGD: nothing to restore
            if not isinstance(st, dict) or set(st) != set(self.STATE_KEYS):
                got = sorted(st) if isinstance(st, dict) else type(st).__name__
                raise ValueError(f"optimizer state of {name!r} must hold {sorted(self.STATE_KEYS)}, got {got}")
            out = {}
            for key, is_array in self.STATE_KEYS.items():
                value = st[key]
                if is_array:
                    p = params[name]
                    if not isinstance(value, np.ndarray) or value.shape != p.shape or value.dtype != p.dtype:
                        got = (value.shape, str(value.dtype)) if isinstance(value, np.ndarray) else type(value).__name__
                        raise ValueError(f"optimizer state {name!r}/{key!r} must be an array of shape {p.shape} "
                                         f"and dtype {p.dtype}, got {got}")
                    if not np.isfinite(value).all():
                        raise ValueError(f"optimizer state {name!r}/{key!r} contains NaN or inf")
                    out[key] = value.copy()
                else:
                    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
                        raise ValueError(f"optimizer state {name!r}/{key!r} must be an int >= 0, got {value!r}")
                    out[key] = int(value)
            restored[name] = out
        self.state = restored
        self.iterations = int(iterations)
        self.lr = lr


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum, PyTorch's formulation.

    ``g = grad + wd * w`` (weights only), ``v = momentum * v + g``, ``w -= lr * v``.
    The first step starts from ``v = g``. ``momentum=0`` is plain SGD.
    """

    def __init__(self, model, lr, momentum=0.9, weight_decay=0.0):
        super().__init__(model, lr, weight_decay)
        self.momentum = _number(momentum, "momentum", below=1.0)

    STATE_KEYS = {"velocity": True}

    def hyperparameters(self) -> dict:
        return {"weight_decay": self.weight_decay, "momentum": self.momentum}

    def stateless(self) -> bool:
        return not self.momentum

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

    STATE_KEYS = {"t": False, "m": True, "v": True}

    def hyperparameters(self) -> dict:
        return {"weight_decay": self.weight_decay, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _update(self, name, param, grad, state):
        if not state:
            state["t"] = 0
            state["m"] = np.zeros_like(param)
            state["v"] = np.zeros_like(param)
        state["t"] += 1
        # m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  param -= lr m_hat / (sqrt(v_hat) + eps).
        # One fused pass over the arrays (the NumPy twin in kernels/numpy_kernels.py spells it out):
        # about a dozen whole-array operations took 8.9 ms a step on the tiny FCN's 0.7 M parameters.
        kernels.adam_update(param, grad, state["m"], state["v"], self.lr, self.beta1, self.beta2, self.eps, state["t"])


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, model, lr, *, momentum=0.9, weight_decay=0.0):
    """``"sgd"`` -> :class:`SGD` (with ``momentum``), ``"adam"`` -> :class:`Adam`."""
    if name == "sgd":
        return SGD(model, lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return Adam(model, lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, got {name!r}")


__all__ = ["Optimizer", "SGD", "Adam", "OPTIMIZERS", "make_optimizer", "poly_lr"]
