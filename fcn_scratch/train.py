"""Training and evaluation loops: :func:`fit`, :func:`evaluate`, :func:`predict`, :func:`fit_staged`.

They work with any model that follows the layer API (``forward``, ``backward``,
``named_parameters``, ``train``/``eval``), not only the FCNs: the tests train a
three-layer network composed from :mod:`fcn_scratch.layers`.

One training iteration, written out:

    logits = model.forward(x)              # (B, K, H, W)
    loss = criterion.forward(logits, y)    # mean softmax cross-entropy, 255 ignored
    model.backward(criterion.backward())   # fills every layer's grads
    optimizer.step()                       # w -= lr * (momentum-smoothed) grad

:func:`fit` runs the first three lines through :class:`fcn_scratch.parallel.DataParallel`,
which splits the batch across the CPU's cores (one model replica per thread,
gradients summed): the same gradients, computed on every core at once.

Everything random during training (the shuffling and the dropout masks) is
drawn from ``seed``, so a model built with the same initial weights and trained
with the same seed ends with the same weights, bit for bit.
"""

from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np

from .data import iterate_batches
from .layers import Dropout2d, Module, no_grad
from .metrics import ConfusionMatrix
from .optim import make_optimizer, poly_lr
from .parallel import DataParallel

# --------------------------------------------------------------------------- input checks


def _model_dtype(model) -> np.dtype:
    dtype = getattr(model, "dtype", None)
    if dtype is None:
        for _, p, _ in model.named_parameters():
            return p.dtype
        return np.dtype(np.float32)
    return np.dtype(dtype)


def _check_model(model):
    for attr in ("forward", "backward", "named_parameters", "train", "eval"):
        if not callable(getattr(model, attr, None)):
            raise TypeError(f"model must follow the layer API (forward, backward, named_parameters, train, eval); "
                            f"{type(model).__name__} has no {attr}()")


def check_images(images, model, name="images") -> np.ndarray:
    """``images (N, C, H, W)`` float, finite, non-empty; returned in the model's dtype (float64 -> float32 casts)."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (N, C, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"{name} must have 4 dimensions (N, C, H, W), got shape {images.shape}")
    if images.shape[0] == 0 or images.size == 0:
        raise ValueError(f"{name} is empty (shape {images.shape}); expected at least one (C, H, W) image")
    if images.dtype.kind != "f":
        raise TypeError(
            f"{name} must be floating point (N, C, H, W), got dtype {images.dtype}; for 8-bit RGB use "
            f"fcn_scratch.data.normalize(images / 255.0)"
        )
    in_channels = getattr(model, "in_channels", None)
    if in_channels is not None and images.shape[1] != in_channels:
        raise ValueError(f"{name} must have {in_channels} channels (axis 1 of (N, C, H, W)), got shape {images.shape}")
    if not np.isfinite(images).all():
        bad = int((~np.isfinite(images)).reshape(len(images), -1).any(axis=1).argmax())
        raise ValueError(f"{name} contains NaN or inf (first in image {bad})")
    return np.ascontiguousarray(images, dtype=_model_dtype(model))


def check_masks(masks, images, num_classes, ignore_index, name="masks") -> np.ndarray:
    """``masks (N, H, W)`` int matching ``images``, values in ``[0, num_classes)`` or ``ignore_index``; as int64."""
    if not isinstance(masks, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (N, H, W) of ints, got {type(masks).__name__}")
    if masks.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class ids (N, H, W), got dtype {masks.dtype}")
    N, _, H, W = images.shape
    if masks.shape != (N, H, W):
        raise ValueError(f"{name} must have shape (N, H, W) = {(N, H, W)} to match images {images.shape}, "
                         f"got {masks.shape}")
    bad = (masks != ignore_index) & ((masks < 0) | (masks >= num_classes))
    if bad.any():
        raise ValueError(f"{name} contains {masks[bad].flat[0]}, outside [0, {num_classes}) "
                         f"and not ignore_index={ignore_index}")
    return np.ascontiguousarray(masks, dtype=np.int64)


def _num_classes(model, images) -> int:
    k = getattr(model, "num_classes", None)
    if k is not None:
        return int(k)
    was_training = getattr(model, "training", True)
    model.eval()  # no dropout draws, so inferring K does not disturb any random stream
    try:
        return int(model.forward(images[:1]).shape[1])
    finally:
        model.train(was_training)


def _positive(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- progress


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60:02d}:{seconds % 60:02d}"


class Progress:
    """A one-line progress bar with running loss and ETA, redrawn with ``\\r`` on a terminal.

    On a non-terminal stream (a log file, a captured pipe) it writes one line
    per epoch instead, so logs stay readable.
    """

    def __init__(self, total_iterations, epochs, stream=None, enabled=True, width=24):
        self.total = total_iterations
        self.epochs = epochs
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.width = width
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def eta(self, done) -> float:
        elapsed = time.perf_counter() - self.start
        return elapsed / done * (self.total - done) if done else float("inf")

    def update(self, done, epoch, running_loss):
        if not self.tty:
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.1 and done < self.total:
            return
        self._last_draw = now
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\repoch {epoch}/{self.epochs} [{bar}] {done}/{self.total}  "
                          f"loss {running_loss:.4f}  ETA {_clock(self.eta(done))}  ")
        self.stream.flush()

    def line(self, text):
        if not self.enabled:
            return
        self.stream.write(("\r" + " " * 79 + "\r" if self.tty else "") + text + "\n")
        self.stream.flush()


# --------------------------------------------------------------------------- fit


def fit(model, images, masks, *, epochs, batch_size, lr, seed, val_images=None, val_masks=None,
        optimizer="sgd", momentum=0.9, weight_decay=0.0, schedule="poly", ignore_index=255,
        num_classes=None, eval_batch_size=32, progress=True, stream=None, callback=None,
        step_callback=None, threads=None) -> dict:
    """Train ``model`` in place with mini-batch gradient descent on per-pixel cross-entropy.

    Parameters
    ----------
    model : a module with ``forward (N, C, H, W) -> (N, K, H, W)`` logits and ``backward``.
    images : ``(N, C, H, W)`` float (cast to the model's dtype); masks ``(N, H, W)`` int in
        ``[0, K)`` or ``ignore_index``.
    epochs, batch_size : passes over the data, images per step.
    lr : base learning rate; ``schedule="poly"`` decays it as ``lr (1 - it/max_it)^0.9``,
        ``"constant"`` keeps it.
    seed : int; seeds the shuffling and (by reseeding every ``Dropout2d``) the dropout masks.
    val_images, val_masks : optional validation set, evaluated after every epoch.
    optimizer : ``"sgd"`` (with ``momentum``) or ``"adam"``; ``weight_decay`` skips biases.
    progress : a progress line (ETA, running loss) on ``stream`` (stderr by default).
    callback : optional ``callback(epoch, history)`` after every epoch.
    step_callback : optional ``step_callback(iteration, loss)`` after every optimiser step.
    threads : split each batch across this many threads, one model replica each
        (:class:`fcn_scratch.parallel.DataParallel`); None uses every usable CPU, 1 runs
        in the calling thread. The gradients equal the single-thread ones up to float
        rounding; a seeded run repeats exactly for a given ``threads``.

    Returns
    -------
    history : dict of per-epoch lists ``epoch``, ``loss`` (mean training loss), ``lr``, ``time``
        (seconds since start) and, with validation data, ``val_pixel_accuracy``,
        ``val_mean_accuracy``, ``val_mean_iou``, ``val_fw_iou``; plus ``iterations``,
        ``seconds`` and ``stopped`` (None, or the message if a NaN/inf loss stopped training;
        the model then holds the last weights that gave a finite loss).
    """
    _check_model(model)
    epochs = _positive(epochs, "epochs")
    batch_size = _positive(batch_size, "batch_size")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    if schedule not in ("poly", "constant"):
        raise ValueError(f"schedule must be 'poly' or 'constant', got {schedule!r}")
    images = check_images(images, model, "images")
    K = int(num_classes) if num_classes is not None else _num_classes(model, images)
    masks = check_masks(masks, images, K, ignore_index, "masks")
    if (val_images is None) != (val_masks is None):
        raise ValueError("give both val_images and val_masks, or neither")
    if val_images is not None:
        val_images = check_images(val_images, model, "val_images")
        val_masks = check_masks(val_masks, val_images, K, ignore_index, "val_masks")
    opt = make_optimizer(optimizer, model, lr, momentum=momentum, weight_decay=weight_decay)

    # Everything random comes from seed: [seed, 0] shuffles, [seed, 1, k] drives dropout layer k.
    shuffle_rng = np.random.default_rng([int(seed), 0])
    modules = model.modules() if isinstance(model, Module) else [model]
    for k, m in enumerate(m for m in modules if isinstance(m, Dropout2d)):
        m.rng = np.random.default_rng([int(seed), 1, k])

    stepper = DataParallel(model, threads, ignore_index)  # forward, loss and backward of a batch
    steps_per_epoch = math.ceil(len(images) / batch_size)
    max_it = epochs * steps_per_epoch
    bar = Progress(max_it, epochs, stream, progress)
    history = {"epoch": [], "loss": [], "lr": [], "time": [], "iterations": 0, "seconds": 0.0, "stopped": None}
    params = [p for _, p, _ in model.named_parameters()]
    good = [p.copy() for p in params]  # the last weights that produced a finite loss
    start = time.perf_counter()
    it = 0

    def diverged(reason):
        for p, g in zip(params, good):
            p[...] = g
        msg = (f"training stopped at epoch {epoch}, iteration {it + 1}: {reason}; restored the last weights "
               f"with a finite loss (try a smaller lr, now {lr})")
        history["stopped"] = msg
        bar.line("fit: " + msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)

    for epoch in range(1, epochs + 1):
        model.train()
        total, count = 0.0, 0
        for xb, yb in iterate_batches(images, masks, batch_size, rng=shuffle_rng):
            opt.lr = poly_lr(lr, it, max_it) if schedule == "poly" else float(lr)
            try:  # the images need no gradient: input_grad=False spares the first conv's dx
                loss = stepper.loss_and_grads(xb, yb, input_grad=False)
            except ValueError as exc:  # a layer refusing an inf activation: the weights blew up
                if "NaN or inf" not in str(exc):
                    raise
                diverged(f"non-finite activations ({exc})")
                break
            if not math.isfinite(loss):
                diverged(f"the loss is {loss}")
                break
            for p, g in zip(params, good):
                np.copyto(g, p)
            if not all(np.isfinite(gr).all() for _, _, gr in model.named_parameters() if gr is not None):
                diverged("a gradient is NaN or inf")
                break
            opt.step()
            it += 1
            total, count = total + loss, count + 1
            bar.update(it, epoch, total / count)
            if step_callback is not None:
                step_callback(it, loss)
        if history["stopped"] is not None:
            break
        history["epoch"].append(epoch)
        history["loss"].append(total / count)
        history["lr"].append(opt.lr)
        line = f"epoch {epoch}/{epochs}  loss {total / count:.4f}"
        if val_images is not None:
            scores = evaluate(model, val_images, val_masks, batch_size=eval_batch_size, num_classes=K,
                              ignore_index=ignore_index)
            for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
                history.setdefault("val_" + key, []).append(scores[key])
            line += f"  val mIoU {scores['mean_iou']:.3f}  pixel acc {scores['pixel_accuracy']:.3f}"
        elapsed = time.perf_counter() - start
        history["time"].append(elapsed)
        bar.line(f"{line}  {elapsed:.1f}s  ETA {_clock(bar.eta(it))}")
        if callback is not None:
            callback(epoch, history)
    stepper.close()
    model.eval()
    history["iterations"] = it
    history["seconds"] = time.perf_counter() - start
    return history


# --------------------------------------------------------------------------- evaluate / predict


def predict(model, images, *, batch_size=32, return_scores=False):
    """Per-pixel class ids ``(N, H, W)`` int64 (argmax of the logits), in eval mode, batched.

    With ``return_scores`` also the softmax probabilities ``(N, K, H, W)``.
    The model's train/eval mode is restored afterwards.
    """
    _check_model(model)
    images = check_images(images, model, "images")
    batch_size = _positive(batch_size, "batch_size")
    was_training = getattr(model, "training", False)
    model.eval()
    labels, probs = [], []
    try:
        for start in range(0, len(images), batch_size):
            with no_grad():  # inference: no caches kept for a backward pass
                logits = model.forward(images[start : start + batch_size])
            labels.append(logits.argmax(axis=1).astype(np.int64))
            if return_scores:
                e = np.exp(logits - logits.max(axis=1, keepdims=True))
                probs.append(e / e.sum(axis=1, keepdims=True))
    finally:
        model.train(was_training)
    labels = np.concatenate(labels)
    return (labels, np.concatenate(probs)) if return_scores else labels


def evaluate(model, images, masks, *, batch_size=32, num_classes=None, ignore_index=255) -> dict:
    """Segmentation metrics of ``model`` on ``images (N, C, H, W)``, ``masks (N, H, W)``.

    One confusion matrix is accumulated over all batches (see :mod:`fcn_scratch.metrics`).
    Returns ``pixel_accuracy``, ``mean_accuracy``, ``mean_iou``, ``fw_iou`` (floats),
    ``per_class_iou``, ``per_class_accuracy`` (lists, NaN for absent classes) and
    ``confusion_matrix`` (``(K, K)`` int64, rows = truth).
    """
    _check_model(model)
    images = check_images(images, model, "images")
    K = int(num_classes) if num_classes is not None else _num_classes(model, images)
    masks = check_masks(masks, images, K, ignore_index, "masks")
    batch_size = _positive(batch_size, "batch_size")
    cm = ConfusionMatrix(K, ignore_index)
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            with no_grad():
                logits = model.forward(images[start : start + batch_size])
            cm.update(masks[start : start + batch_size], logits.argmax(axis=1))
    finally:
        model.train(was_training)
    out = cm.scores()
    out["confusion_matrix"] = cm.matrix.copy()
    return out


# --------------------------------------------------------------------------- staged training

STAGES = ("fcn32s", "fcn16s", "fcn8s")


def build_model(arch: str, num_classes: int, *, preset="tiny", **kwargs):
    """``build_model("fcn8s", 5)`` -> ``FCN8s.tiny(5)``; ``preset=None`` calls the constructor itself."""
    from . import models

    classes = {"fcn32s": models.FCN32s, "fcn16s": models.FCN16s, "fcn8s": models.FCN8s}
    if arch not in classes:
        raise ValueError(f"arch must be one of {tuple(classes)}, got {arch!r}")
    cls = classes[arch]
    if preset is None:
        return cls(num_classes, **kwargs)
    if preset != "tiny":
        raise ValueError(f"preset must be 'tiny' or None, got {preset!r}")
    return cls.tiny(num_classes, **kwargs)


def fit_staged(images, masks, *, num_classes, epochs, batch_size, lr, seed, stages=STAGES,
               model_kwargs=None, preset="tiny", verbose_transfer=False, **fit_kwargs):
    """The paper's staged training: FCN-32s, then FCN-16s initialised from it, then FCN-8s.

    Each stage copies every shared weight from the previous one
    (``models.transfer_weights``); its new skip score layers start at zero, so
    it begins by computing exactly what the previous net computed, and training
    only adds what the finer skip can teach. ``epochs`` and ``lr`` are one value
    for all stages or one per stage (the paper lowers lr for later stages).

    Returns ``(models, histories)``: dicts keyed by stage name.
    """
    from .models import transfer_weights

    stages = tuple(stages)
    n = len(stages)
    epochs = tuple(epochs) if isinstance(epochs, (tuple, list)) else (epochs,) * n
    lrs = tuple(lr) if isinstance(lr, (tuple, list)) else (lr,) * n
    if len(epochs) != n or len(lrs) != n:
        raise ValueError(f"epochs and lr must be single values or one per stage ({n}), got {epochs!r}, {lrs!r}")
    kwargs = dict(model_kwargs or {})
    kwargs.setdefault("seed", seed)
    models, histories, previous = {}, {}, None
    for stage, e, stage_lr in zip(stages, epochs, lrs):
        model = build_model(stage, num_classes, preset=preset, **kwargs)
        if previous is not None:
            copied = transfer_weights(previous, model)
            if verbose_transfer:
                print(f"{stage}: copied {len(copied)} tensors from the previous stage", file=sys.stderr)
        histories[stage] = fit(model, images, masks, epochs=e, batch_size=batch_size, lr=stage_lr, seed=seed,
                               **fit_kwargs)
        models[stage] = previous = model
        if histories[stage]["stopped"] is not None:
            break
    return models, histories


__all__ = ["fit", "evaluate", "predict", "fit_staged", "build_model", "check_images", "check_masks", "Progress",
           "STAGES"]
