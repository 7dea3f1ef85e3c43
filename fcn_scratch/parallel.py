"""Data parallelism on one machine: each thread runs a slice of the batch through its own replica.

One training step on a batch ``x (B, C, H, W)`` with labels ``(B, H, W)``::

    shards:   x[0:b1]        x[b1:b2]       ...      (contiguous slices, one per thread)
    thread:   replica 0      replica 1      ...      (replica 0 is the model itself)
              forward, loss_s, backward  -- all at once, each on its own core
    then:     grad = sum over shards of grad_s       (in shard order: deterministic)

Why it is right. The loss is the mean over the ``V`` non-ignored pixels of the
whole batch, ``L = (1/V) sum_s V_s L_s``, where shard ``s`` has ``V_s`` of them
and mean loss ``L_s``. So ``dL/dL_s = V_s / V``: each shard backpropagates its
own loss with ``dloss = V_s / V`` and the parameter gradients simply add up.
(No layer here mixes images, there is no batch norm, so the shards are
independent.) The result equals the single-thread gradient up to float
rounding of the order of summation.

Why it is faster. A layer keeps its cache for ``backward`` on itself, so two
threads cannot share one model object; the replicas are deep copies whose
parameter arrays are *the same arrays* as the model's (``params`` dicts point at
one set of buffers), so the optimiser's in-place update reaches all of them.
While a thread is inside a NumPy GEMM or a Numba kernel (compiled with
``nogil=True``) it has released the GIL, so the two cores both work on every
layer, not only inside the GEMMs. BLAS is held to one thread per call during the
step (``threadpoolctl``): its own pool would otherwise put four busy threads on
two cores, and its workers' spin-waiting between calls would halve the speed of
the serial kernels that run between GEMMs. Measured on the tiny FCN-8s step
(batch 8, 2 cores): see the README's speed table.
"""

from __future__ import annotations

import copy
import inspect
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .layers import Dropout2d, Module, SoftmaxCrossEntropy, free_after_backward, no_grad


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _tie_parameters(model: Module, replica: Module) -> None:
    """Make ``replica`` use ``model``'s parameter arrays (not copies of them)."""
    for mine, theirs in zip(model.modules(), replica.modules()):
        for key in mine.params:
            theirs.params[key] = mine.params[key]


_blas = None


def _one_blas_thread():
    """A context manager holding BLAS to one thread (threadpoolctl, found once, lazily)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def shard_bounds(batch: int, shards: int) -> list[tuple[int, int]]:
    """Split ``range(batch)`` into ``min(shards, batch)`` contiguous slices whose sizes differ by at most one."""
    shards = max(1, min(shards, batch))
    cuts = [batch * s // shards for s in range(shards + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


# Below this many pixels per shard, the threads mostly queue for the GIL (the Python around each
# layer call outweighs its arithmetic) and splitting loses. Measured on the tiny FCN-8s, 2 cores:
# 4 images of 48x48 (4,608 px per shard) 14.3 ms in one thread vs 21.2 ms in two; 8 of 64x64
# (16,384 per shard) 44 vs 34-39 ms.
MIN_SHARD_PIXELS = 16384


class DataParallel:
    """Split every training batch across ``threads`` threads, one model replica each.

    ``dp = DataParallel(model, threads=2, ignore_index=255)``;
    ``loss = dp.loss_and_grads(x (B, C, H, W), labels (B, H, W), input_grad=False)``
    runs forward, softmax cross-entropy (mean over non-ignored pixels of the whole
    batch) and backward, leaving the whole batch's gradients in ``model``'s
    ``grads``, exactly where ``model.backward`` would, so any optimiser steps
    as usual.

    A batch is cut into at most ``threads`` shards of at least
    ``min_shard_pixels`` pixels (images x height x width; default
    :data:`MIN_SHARD_PIXELS`) each; a smaller batch runs whole in the calling
    thread. ``threads=None`` uses every usable CPU (one for a model that is
    not a :class:`~fcn_scratch.layers.Module`); ``threads=1`` runs in the
    calling thread with no replica.

    Dropout: each replica's ``Dropout2d`` layers draw from generators spawned
    from the model's (``Generator.spawn``), so the shards drop different
    channels and a seeded run repeats exactly. Call :meth:`reseed_dropout`
    after reseeding the model's dropout layers.
    """

    def __init__(self, model: Module, threads: int | None = None, ignore_index: int = 255,
                 min_shard_pixels: int | None = None):
        self._pool = None
        self.min_shard_pixels = int(MIN_SHARD_PIXELS if min_shard_pixels is None else min_shard_pixels)
        if threads is None:  # every core for a model that can be replicated
            threads = usable_cpus() if isinstance(model, Module) else 1
        if isinstance(threads, (bool, np.bool_)) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"threads must be an int >= 1, got {threads!r}")
        if threads > 1 and not isinstance(model, Module):
            raise TypeError(f"threads > 1 needs a fcn_scratch Module to replicate, got {type(model).__name__}")
        self.model = model
        self.threads = int(threads)
        # a model whose backward takes input_grad can skip its first layer's input gradient
        self._takes_input_grad = "input_grad" in inspect.signature(model.backward).parameters
        self.criteria = [SoftmaxCrossEntropy(ignore_index) for _ in range(self.threads)]
        self.replicas = [model]
        for _ in range(self.threads - 1):
            replica = copy.deepcopy(model)
            _tie_parameters(model, replica)
            self.replicas.append(replica)
        self.reseed_dropout()

    def reseed_dropout(self) -> None:
        """Give every replica's dropout layers fresh generators spawned from the model's."""
        if len(self.replicas) == 1:
            return
        own = [m for m in self.model.modules() if isinstance(m, Dropout2d)]
        for replica in self.replicas[1:]:
            for mine, theirs in zip(own, (m for m in replica.modules() if isinstance(m, Dropout2d))):
                theirs.rng = mine.rng.spawn(1)[0]

    def _shard_step(self, s, x, labels, dloss, input_grad):
        model, criterion = self.replicas[s], self.criteria[s]
        loss = criterion.forward(model.forward(x), labels)
        if self._takes_input_grad:
            model.backward(criterion.backward(dloss), input_grad=input_grad)
        else:
            model.backward(criterion.backward(dloss))
        return loss

    def _bounds(self, x):
        """The shards of batch ``x``: one per thread, none under ``min_shard_pixels`` (then one in all)."""
        pixels = x.shape[0] * int(np.prod(x.shape[2:]))
        return shard_bounds(len(x), min(self.threads, max(1, pixels // max(1, self.min_shard_pixels))))

    def _run_shards(self, run, bounds):
        """``[run(s, a, b) for each shard s = (a, b)]``, shard 0 in this thread and the others in the pool, at once.

        BLAS is held to one thread per call meanwhile, and every shard is waited for (even if one
        raises) before that is undone. The replicas follow the model's train()/eval() switches.
        A single shard simply runs here, on the model, BLAS left as it is.
        """
        if len(bounds) == 1:
            return [run(0, *bounds[0])]
        for replica in self.replicas[1:]:
            replica.train(self.model.training)
        if self._pool is None:  # started at the first split (again after close())
            self._pool = ThreadPoolExecutor(self.threads - 1)
        with _one_blas_thread():
            futures = [self._pool.submit(run, s, a, b) for s, (a, b) in enumerate(bounds[1:], start=1)]
            try:
                first = run(0, *bounds[0])
            finally:
                for f in futures:
                    f.exception()
            return [first] + [f.result() for f in futures]

    def loss_and_grads(self, x, labels, input_grad: bool = True) -> float:
        """Forward + loss + backward of the batch; returns the batch's mean loss, fills ``model.grads``.

        ``input_grad=False`` spares the first convolution's input gradient (the
        images need none), as ``model.backward(..., input_grad=False)``.
        """
        if not isinstance(labels, np.ndarray) or not isinstance(x, np.ndarray) or len(labels) != len(x):
            raise ValueError(f"x and labels must be arrays with one label map per image, got "
                             f"{getattr(x, 'shape', type(x).__name__)} and {getattr(labels, 'shape', type(labels).__name__)}")
        bounds = self._bounds(x)
        if len(bounds) == 1:
            with free_after_backward():  # each layer's cache goes as soon as its backward has used it
                return self._shard_step(0, x, labels, 1.0, input_grad)
        ignore = self.criteria[0].ignore_index
        valid = [int(np.count_nonzero(labels[a:b] != ignore)) for a, b in bounds]
        total = sum(valid)
        # dL/dL_s = V_s / V; a shard with no valid pixel contributes nothing (its loss is 0 by convention).
        weights = [v / total if total else 0.0 for v in valid]
        with free_after_backward():
            losses = self._run_shards(
                lambda s, a, b: self._shard_step(s, x[a:b], labels[a:b], weights[s], input_grad), bounds)
        for replica in self.replicas[1 : len(bounds)]:
            for mine, theirs in zip(self.model.modules(), replica.modules()):
                for key, grad in theirs.grads.items():
                    if grad is not None:
                        mine.grads[key] = mine.grads[key] + grad
        return float(sum(w * loss for w, loss in zip(weights, losses)))

    def infer(self, x):
        """The model's output for ``x (B, C, H, W)`` under :func:`~fcn_scratch.layers.no_grad`, the batch
        split across the threads as a training step splits it (each replica in the model's train/eval mode).

        Same numbers as ``model.forward(x)`` under ``no_grad()``: no layer mixes images.
        ``fit`` scores its validation set each epoch through it (both cores instead of one).
        """
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            raise ValueError(f"x must be an array (B, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
        with no_grad():
            return np.concatenate(self._run_shards(lambda s, a, b: self.replicas[s].forward(x[a:b]), self._bounds(x)))

    def close(self, wait: bool = True) -> None:
        """Stop the worker threads (also done, without waiting, when the object is collected).

        A later :meth:`loss_and_grads` starts them again."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait)
            self._pool = None

    def __del__(self):
        self.close(wait=False)  # may run on a worker thread, which cannot join itself
