"""Training and evaluation loops: :func:`fit`, :func:`fit_data`, :func:`evaluate`, :func:`predict`, :func:`fit_staged`.

One loop, :func:`fit_data`, trains on a *data source*: :class:`ArrayData` (arrays
``(N, C, H, W)``, ``(N, H, W)``; :func:`fit` wraps them) or :class:`DatasetData` (a
VOC-layout folder, :mod:`fcn_scratch.voc`, images of any sizes: whole, or cropped
and flipped). A source gives the shuffled batches of an epoch (leaving out the
first ``skip`` when a run resumes inside an epoch), their count, and the scores
of a model on it.

They work with any model that follows the layer API (``forward``, ``backward``,
``named_parameters``, ``train``/``eval``), not only the FCNs: the tests train a
three-layer network composed from :mod:`fcn_scratch.layers`.

One training iteration, written out:

    logits = model.forward(x)              # (B, K, H, W)
    loss = criterion.forward(logits, y)    # mean softmax cross-entropy, 255 ignored
    model.backward(criterion.backward())   # fills every layer's grads
    optimizer.step()                       # w -= lr * (momentum-smoothed) grad

:func:`fit_data` runs the first three lines through :class:`fcn_scratch.parallel.DataParallel`,
which splits the batch across the CPU's cores (one model replica per thread,
gradients summed): the same gradients, computed on every core at once.

Everything random during training (the shuffling and the dropout masks) is
drawn from ``seed``, so a model built with the same initial weights and trained
with the same seed ends with the same weights, bit for bit.
"""

from __future__ import annotations

import copy
import itertools
import math
import sys
import time
import warnings

import numpy as np

from .data import iterate_batches
from .layers import Dropout2d, Module, SoftmaxCrossEntropy, no_grad
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
    """``images (N, C, H, W)`` float, finite, non-empty; returned in the model's dtype (float64 -> float32 casts).

    A numpy masked array is refused (its mask would be silently dropped); fill it first.
    """
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (N, C, H, W), got {type(images).__name__}")
    if isinstance(images, np.ma.MaskedArray):
        raise TypeError(f"{name} is a numpy masked array, whose mask would be ignored; fill the masked "
                        f"pixels first ({name}.filled(value)) and mark them 255 in the masks")
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
    """``masks (N, H, W)`` int matching ``images``, values in ``[0, num_classes)`` or ``ignore_index``; as int64.

    A numpy masked array is refused rather than guessed at: ``masks.filled(ignore_index)``
    turns its masked pixels into ignored ones explicitly.
    """
    if not isinstance(masks, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (N, H, W) of ints, got {type(masks).__name__}")
    if isinstance(masks, np.ma.MaskedArray):
        raise TypeError(f"{name} is a numpy masked array, whose mask would be ignored; use "
                        f"{name}.filled({ignore_index}) to leave the masked pixels out as ignore_index")
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

    def __init__(self, total_iterations, epochs, stream=None, enabled=True, width=24, done=0):
        self.total = total_iterations
        self.first = done  # iterations done before this process started (a resumed run)
        self.epochs = epochs
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.width = width
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def eta(self, done) -> float:
        elapsed = time.perf_counter() - self.start
        return elapsed / (done - self.first) * (self.total - done) if done > self.first else float("inf")

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

# Data sources: what the training loop needs of its data. Arrays and a VOC-layout folder both
# provide it, so there is one loop (fit_data) whatever the data's form.


class ArrayData:
    """Images ``(N, C, H, W)`` and masks ``(N, H, W)`` held as arrays, checked when training starts.

    ``name`` prefixes the argument names in error messages (``"val_"`` -> ``val_images``).
    """

    num_classes = None  # arrays do not say; the model (or fit's num_classes) does

    def __init__(self, images, masks, *, name=""):
        self.images, self.masks, self.name = images, masks, name

    def __len__(self) -> int:
        return len(self.images)

    def check(self, model, num_classes, ignore_index):
        """:func:`check_images` and :func:`check_masks`; keeps the arrays in the model's dtype and int64."""
        self.images = check_images(self.images, model, self.name + "images")
        self.masks = check_masks(self.masks, self.images, num_classes, ignore_index, self.name + "masks")

    def check_batch(self, batch_size):
        pass  # arrays hold images of one size: any batch size stacks

    def steps(self, batch_size) -> int:
        """Batches per epoch (the last one may be smaller)."""
        return math.ceil(len(self.images) / batch_size)

    def batches(self, batch_size, rng, *, skip=0, dtype=None):
        """One epoch of shuffled ``(x, y)`` batches (permutation drawn from ``rng``), the first ``skip`` left out."""
        batches = iterate_batches(self.images, self.masks, batch_size, rng=rng)
        return itertools.islice(batches, skip, None) if skip else batches

    def head(self, n) -> "ArrayData":
        return ArrayData(self.images[:n], self.masks[:n])

    def scores_and_loss(self, model, num_classes, ignore_index, batch_size, forward=None):
        """``(evaluate's scores, mean cross-entropy over the non-ignored pixels)``; ``forward`` replaces
        ``model.forward`` (``DataParallel.infer``: the batches split across the threads)."""
        return _scores_and_loss(model, self.images, self.masks, batch_size, num_classes, ignore_index, forward)

    def examples(self, model, n):
        """The first ``n`` images, masks and the model's predictions, as ``(n, C, H, W)``, ``(n, H, W)`` arrays."""
        x, y = self.images[:n], self.masks[:n]
        return x, y, predict(model, x)


class _Head:
    """The first ``n`` images of a dataset, with the attributes :func:`fcn_scratch.voc.evaluate_dataset` reads."""

    def __init__(self, dataset, n):
        self.dataset, self.n, self.root = dataset, min(n, len(dataset)), getattr(dataset, "root", None)
        self.num_classes, self.class_names = dataset.num_classes, dataset.class_names
        self.sizes = list(dataset.sizes[: self.n])

    def __len__(self) -> int:
        return self.n

    def same_size(self) -> bool:
        return len(set(self.sizes)) == 1

    def load(self, i):
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} images")
        return self.dataset.load(i)


class DatasetData:
    """A dataset of images of any sizes (:class:`fcn_scratch.voc.VOCDataset`), batched by
    :func:`fcn_scratch.voc.iterate_dataset` and scored whole, image by image, by
    :func:`fcn_scratch.voc.evaluate_dataset`.

    ``crop=None`` trains on whole images (batch size 1 when the sizes differ, as the FCN
    paper); ``crop=S`` on random ``S x S`` windows, padded (masks with 255) around smaller
    images; ``flip`` mirrors each sample left-right with probability 1/2.
    """

    def __init__(self, dataset, *, crop=None, flip=False):
        self.dataset, self.crop, self.flip = dataset, crop, bool(flip)
        self.num_classes = dataset.num_classes
        self.class_names = list(dataset.class_names)

    def __len__(self) -> int:
        return len(self.dataset)

    def check(self, model, num_classes, ignore_index):
        """Refuse a class count other than the dataset's (the masks were validated when it was opened)."""
        k = getattr(model, "num_classes", num_classes)
        if num_classes != self.num_classes or k != self.num_classes:
            raise ValueError(f"the dataset in {self.dataset.root!r} has {self.num_classes} classes, but the model "
                             f"predicts {k} and training is for {num_classes}")

    def check_batch(self, batch_size):
        """Whole images of different sizes do not stack: refuse a batch > 1 without ``crop`` before training."""
        if self.crop is None and batch_size > 1 and not self.dataset.same_size():
            a, b = sorted(set(self.dataset.sizes))[:2]
            raise ValueError(f"batch_size {batch_size} needs images of one size, but they differ "
                             f"({a[1]}x{a[0]} and {b[1]}x{b[0]}, WxH): use batch_size 1 (whole images, as the "
                             f"FCN paper) or crop=S")

    def steps(self, batch_size) -> int:
        from .voc import batch_count

        return batch_count(self.dataset, batch_size)

    def batches(self, batch_size, rng, *, skip=0, dtype=None):
        from .voc import iterate_dataset

        for x, y in iterate_dataset(self.dataset, batch_size, crop=self.crop, flip=self.flip, rng=rng, skip=skip):
            yield (x if dtype is None else x.astype(dtype, copy=False)), y

    def head(self, n) -> "DatasetData":
        return DatasetData(_Head(self.dataset, n), crop=self.crop, flip=self.flip)

    def scores_and_loss(self, model, num_classes, ignore_index, batch_size, forward=None):
        from .voc import evaluate_dataset

        # ``forward`` unused: images of their own sizes go one at a time, nothing to split

        scores = evaluate_dataset(model, self.dataset, ignore_index=ignore_index, with_loss=True)
        return scores, scores.pop("loss")

    def examples(self, model, n):
        """The first ``n`` images, masks and predictions (each predicted at its own size), padded at the
        bottom and right to the largest of them (image 0 = the mean colour, masks and predictions 255) so
        they stack: ``(n, C, H, W)``, ``(n, H, W)``, ``(n, H, W)``."""
        from .voc import crop_or_pad

        n = min(n, len(self.dataset))
        H = max(h for h, _ in self.dataset.sizes[:n])
        W = max(w for _, w in self.dataset.sizes[:n])
        xs, ys, ps = [], [], []
        for i in range(n):
            x, y = self.dataset.load(i)
            p = predict(model, x[None].astype(_model_dtype(model), copy=False))[0]
            ps.append(crop_or_pad(x[:1], p, (H, W), (0, 0))[1])
            x, y = crop_or_pad(x, y, (H, W), (0, 0))
            xs.append(x)
            ys.append(y)
        return np.stack(xs), np.stack(ys), np.stack(ps)


# Divergence rule (see fit): a loss above EXPLODE_FACTOR x max(first loss, ln K) is divergence.
# ln K is the loss of a uniform guess over K classes, so the limit never falls below 100 ln K
# (161 for the 5 toy classes) even when training starts from a good model with a tiny loss.
EXPLODE_FACTOR = 100.0


def _all_finite(arrays) -> bool:
    # exact, and measured 2-3x faster than testing a float64 sum of each array
    return all(np.isfinite(a).all() for a in arrays)


def _dropout_layers(model) -> list:
    modules = model.modules() if isinstance(model, Module) else [model]
    return [m for m in modules if isinstance(m, Dropout2d)]


def _rng_states(stepper) -> list:
    """Every dropout generator's state: one list per replica (replica 0 is the model)."""
    return [[m.rng.bit_generator.state for m in _dropout_layers(r)] for r in stepper.replicas]


def _set_rng_states(stepper, states) -> None:
    replicas = stepper.replicas
    if len(states) != len(replicas):  # another --threads: replicas re-spawn from the model's generators
        states = states[:1]
    for replica, layer_states in zip(replicas, states):
        layers = _dropout_layers(replica)
        if len(layers) != len(layer_states):
            raise ValueError(f"resume state holds {len(layer_states)} dropout generators, the model has {len(layers)}")
        for layer, st in zip(layers, layer_states):
            layer.rng.bit_generator.state = st
    if len(states) != len(replicas):
        stepper.reseed_dropout()


def fit(model, images, masks, *, epochs, batch_size, lr, seed, val_images=None, val_masks=None,
        ignore_index=255, num_classes=None, **kwargs) -> dict:
    """Train ``model`` in place on arrays: :func:`fit_data` over :class:`ArrayData` (see it for every argument).

    images ``(N, C, H, W)`` float (cast to the model's dtype); masks ``(N, H, W)`` int in
    ``[0, K)`` or ``ignore_index``; ``val_images``, ``val_masks`` an optional validation set
    evaluated after every epoch. ``K`` is ``num_classes``, else the model's.
    """
    _check_model(model)
    images = check_images(images, model, "images")
    K = int(num_classes) if num_classes is not None else _num_classes(model, images)
    if (val_images is None) != (val_masks is None):
        raise ValueError("give both val_images and val_masks, or neither")
    val = ArrayData(val_images, val_masks, name="val_") if val_images is not None else None
    return fit_data(model, ArrayData(images, masks), val=val, epochs=epochs, batch_size=batch_size, lr=lr,
                    seed=seed, ignore_index=ignore_index, num_classes=K, **kwargs)


def fit_data(model, data, *, epochs, batch_size, lr, seed, val=None,
             optimizer="sgd", momentum=0.9, weight_decay=0.0, schedule="poly", ignore_index=255,
             num_classes=None, eval_batch_size=32, progress=True, stream=None, callback=None,
             step_callback=None, threads=None, resume=None, on_state=None, stop=None,
             explode_factor=EXPLODE_FACTOR) -> dict:
    """Train ``model`` in place with mini-batch gradient descent on per-pixel cross-entropy.

    The one training loop: ``data`` and ``val`` are data sources (:class:`ArrayData` for
    arrays, as :func:`fit` builds; :class:`DatasetData` for a VOC-layout folder of images of
    any sizes). A source yields the shuffled batches of one epoch (``skip`` leaves out the
    first ones when resuming inside an epoch), says how many there are, and scores a model.

    Parameters
    ----------
    model : a module with ``forward (N, C, H, W) -> (N, K, H, W)`` logits and ``backward``.
    data : the training source; ``val`` an optional validation source, scored after every epoch.
    epochs, batch_size : passes over the data, images per step.
    lr : base learning rate; ``schedule="poly"`` decays it as ``lr (1 - it/max_it)^0.9``,
        ``"constant"`` keeps it.
    seed : int; seeds the shuffling and (by reseeding every ``Dropout2d``) the dropout masks.
    optimizer : ``"sgd"`` (with ``momentum``) or ``"adam"``; ``weight_decay`` skips biases.
    progress : a progress line (ETA, running loss) on ``stream`` (stderr by default).
    callback : optional ``callback(epoch, history)`` after every epoch.
    step_callback : optional ``step_callback(iteration, loss)`` after every optimiser step.
    threads : split each batch across this many threads, one model replica each
        (:class:`fcn_scratch.parallel.DataParallel`); None uses every usable CPU, 1 runs
        in the calling thread. The gradients equal the single-thread ones up to float
        rounding; a seeded run repeats exactly for a given ``threads``.
    on_state : optional ``on_state(state, event)`` receiving the *training state* (a dict:
        completed ``epoch``, ``step_in_epoch``, ``iteration``, the shuffle and dropout
        generator states, ``optimizer`` (its ``state_dict()``), ``history``, ...; the model
        holds the matching weights) at every healthy epoch end (``event="epoch"``), when
        ``stop`` asked to stop (``"interrupted"``, possibly mid-epoch) and after a divergence
        (``"diverged"``: the last healthy state, already restored). Save it to resume later.
    resume : a training state from ``on_state`` (the model must already hold its weights):
        training continues from there and ends with the same weights, bit for bit, as the
        uninterrupted run (same data, settings, seed and ``threads``).
    stop : optional ``stop() -> truthy`` polled after every step (e.g. "a SIGINT arrived");
        fit then hands the state to ``on_state(state, "interrupted")`` and returns, with
        ``history["interrupted"]`` set to what ``stop()`` returned.
    explode_factor : the divergence limit, below.

    Divergence. Training stops at the first sign that it has blown up: a NaN/inf loss,
    gradient, weight (checked after every step) or activation (a layer refuses it), or a
    loss above ``explode_factor * max(L0, ln K)`` where ``L0`` is the run's first loss (for
    a model whose score layers start at zero, ``L0 = ln K``). An epoch end is *healthy*
    when its weights also give a finite loss under that limit on the validation set (or,
    without one, on the first ``eval_batch_size`` training images). On divergence the
    model, optimiser and generators go back to the last healthy point (the last healthy
    epoch end, or the start of the run / the resumed state), ``history`` to what it was
    there, and ``history["stopped"]`` / ``history["diverged"]`` say what happened.

    Returns
    -------
    history : dict of per-epoch lists ``epoch``, ``loss`` (mean training loss), ``lr``, ``time``
        (seconds since start) and, with validation data, ``val_loss``, ``val_pixel_accuracy``,
        ``val_mean_accuracy``, ``val_mean_iou``, ``val_fw_iou``; plus ``iterations``,
        ``seconds``, ``stopped`` (None, or the one-line message of a divergence),
        ``diverged`` (None, or ``{"reason", "epoch", "iteration", "restored_epoch",
        "restored_iteration"}``) and ``interrupted`` (None, or what ``stop()`` returned).
    """
    _check_model(model)
    epochs = _positive(epochs, "epochs")
    batch_size = _positive(batch_size, "batch_size")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    if schedule not in ("poly", "constant"):
        raise ValueError(f"schedule must be 'poly' or 'constant', got {schedule!r}")
    K = int(num_classes) if num_classes is not None else data.num_classes or getattr(model, "num_classes", None)
    if K is None:
        raise ValueError("num_classes is needed: neither the data nor the model says how many classes there are")
    data.check(model, K, ignore_index)
    data.check_batch(batch_size)
    if val is not None:
        val.check(model, K, ignore_index)
    opt = make_optimizer(optimizer, model, lr, momentum=momentum, weight_decay=weight_decay)

    # Everything random comes from seed: [seed, 0] shuffles, [seed, 1, k] drives dropout layer k.
    shuffle_rng = np.random.default_rng([int(seed), 0])
    for k, m in enumerate(_dropout_layers(model)):
        m.rng = np.random.default_rng([int(seed), 1, k])

    stepper = DataParallel(model, threads, ignore_index)  # forward, loss and backward of a batch
    steps_per_epoch = data.steps(batch_size)
    max_it = epochs * steps_per_epoch
    names_params = [(name, p) for name, p, _ in model.named_parameters()]
    params = [p for _, p in names_params]
    check = val if val is not None else data.head(eval_batch_size)  # where an epoch end proves healthy
    run = dict(epochs=epochs, batch_size=batch_size, images=len(data), seed=int(seed),
               steps_per_epoch=steps_per_epoch)
    history = {"epoch": [], "loss": [], "lr": [], "time": [], "iterations": 0, "seconds": 0.0, "stopped": None,
               "diverged": None, "interrupted": None}
    it, done_epochs, skip, total, count, first_loss, offset = 0, 0, 0, 0.0, 0, None, 0.0
    if resume is not None:
        for key, value in run.items():
            if resume.get(key) != value:
                raise ValueError(f"resume state is for {key}={resume.get(key)!r}, this run has {key}={value!r}")
        opt.load_state_dict(resume["optimizer"])
        shuffle_rng.bit_generator.state = resume["shuffle_rng"]
        _set_rng_states(stepper, resume["dropout_rngs"])
        history = copy.deepcopy(resume["history"])
        history["interrupted"] = None
        it, done_epochs, skip = int(resume["iteration"]), int(resume["epoch"]), int(resume["step_in_epoch"])
        total, count = float(resume["epoch_loss_sum"]), int(resume["epoch_loss_count"])
        first_loss, offset = resume["first_loss"], float(resume["seconds"])
    bar = Progress(max_it, epochs, stream, progress, done=it)
    start = time.perf_counter()

    def capture(completed, step_in_epoch, shuffle_state, loss_sum, loss_count):
        """The training state now: with the model's weights, enough to continue bit for bit."""
        return dict(run, version=1, epoch=completed, step_in_epoch=step_in_epoch, iteration=it,
                    shuffle_rng=shuffle_state, dropout_rngs=_rng_states(stepper), optimizer=opt.state_dict(),
                    epoch_loss_sum=loss_sum, epoch_loss_count=loss_count, history=copy.deepcopy(history),
                    first_loss=first_loss, seconds=offset + time.perf_counter() - start,
                    weights={name: p.copy() for name, p in names_params})

    def reference():  # the loss scale divergence is measured against
        return max(first_loss if first_loss is not None else 0.0, math.log(max(K, 2)))

    def limit():
        return explode_factor * reference()

    last_good = resume if resume is not None else capture(0, 0, shuffle_rng.bit_generator.state, 0.0, 0)
    if resume is not None and "weights" not in last_good:
        last_good = dict(resume, weights={name: p.copy() for name, p in names_params})
    reason, where, epoch = None, it, done_epochs

    for epoch in range(done_epochs + 1, epochs + 1):
        model.train()
        epoch_shuffle_state = shuffle_rng.bit_generator.state  # the permutation is drawn from this
        # resuming inside an epoch: same permutation and draws, the first `skip` batches are done
        batches = data.batches(batch_size, shuffle_rng, skip=skip, dtype=_model_dtype(model))
        step = skip
        if skip:
            skip = 0
        else:
            total, count = 0.0, 0
        for xb, yb in batches:
            opt.lr = poly_lr(lr, it, max_it) if schedule == "poly" else float(lr)
            where = it + 1
            try:  # the images need no gradient: input_grad=False spares the first conv's dx
                loss = stepper.loss_and_grads(xb, yb, input_grad=False)
            except ValueError as exc:  # a layer refusing an inf activation: the weights blew up
                if "NaN or inf" not in str(exc):
                    raise
                reason = f"non-finite activations ({exc})"
                break
            if not math.isfinite(loss):
                reason = f"the loss is {loss}"
                break
            if first_loss is None:
                first_loss = loss
            if loss > limit():
                reason = f"the loss {loss:.3g} is over {explode_factor:g}x its start ({reference():.3g})"
                break
            if not _all_finite(gr for _, _, gr in model.named_parameters() if gr is not None):
                reason = "a gradient is NaN or inf"
                break
            opt.step()
            if not _all_finite(params):
                reason = "a weight became NaN or inf after the step"
                break
            it, step = it + 1, step + 1
            total, count = total + loss, count + 1
            bar.update(it, epoch, total / count)
            if step_callback is not None:
                step_callback(it, loss)
            if stop is not None and step < steps_per_epoch:
                signal = stop()
                if signal:
                    state = capture(epoch - 1, step, epoch_shuffle_state, total, count)
                    history["interrupted"] = signal
                    if on_state is not None:
                        on_state(state, "interrupted")
                    break
        if reason is not None or history["interrupted"]:
            break
        # epoch end: healthy only if these weights also give a finite loss under the limit on held-out data
        where = it
        try:
            scores, check_loss = check.scores_and_loss(model, K, ignore_index, eval_batch_size, stepper.infer)
        except ValueError as exc:
            if "NaN or inf" not in str(exc):
                raise
            reason = f"non-finite outputs at the end of the epoch ({exc})"
            break
        if not math.isfinite(check_loss) or check_loss > limit():
            what = "validation" if val is not None else "training-batch"
            reason = f"the {what} loss at the end of the epoch is {check_loss:.3g}, over " \
                     f"{explode_factor:g}x the start ({reference():.3g})"
            break
        history["epoch"].append(epoch)
        history["loss"].append(total / count)
        history["lr"].append(opt.lr)
        line = f"epoch {epoch}/{epochs}  loss {total / count:.4f}"
        if val is not None:
            history.setdefault("val_loss", []).append(check_loss)
            for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
                history.setdefault("val_" + key, []).append(scores[key])
            line += f"  val mIoU {scores['mean_iou']:.3f}  pixel acc {scores['pixel_accuracy']:.3f}"
        elapsed = offset + time.perf_counter() - start
        history["time"].append(elapsed)
        history["iterations"], history["seconds"] = it, elapsed
        bar.line(f"{line}  {elapsed:.1f}s  ETA {_clock(bar.eta(it))}")
        last_good = capture(epoch, 0, shuffle_rng.bit_generator.state, 0.0, 0)
        if on_state is not None:
            on_state(last_good, "epoch")
        if callback is not None:
            callback(epoch, history)
        if stop is not None and epoch < epochs:
            signal = stop()
            if signal:
                history["interrupted"] = signal
                if on_state is not None:
                    on_state(last_good, "interrupted")
                break

    if reason is not None:
        # back to the last healthy point: weights, optimiser, generators and history
        for name, p in names_params:
            p[...] = last_good["weights"][name]
        opt.load_state_dict(last_good["optimizer"])
        _set_rng_states(stepper, last_good["dropout_rngs"])
        shuffle_rng.bit_generator.state = last_good["shuffle_rng"]
        restored = f"epoch {last_good['epoch']}" if last_good["epoch"] else "the start of the run"
        if last_good.get("step_in_epoch"):
            restored = f"iteration {last_good['iteration']} (where the run was resumed)"
        msg = (f"training stopped at epoch {epoch}, iteration {where}: {reason}; the run diverged; restored the "
               f"last good weights, those of {restored} (try a smaller lr, now {lr})")
        history = copy.deepcopy(last_good["history"])
        history["stopped"] = msg
        history["diverged"] = dict(reason=reason, epoch=epoch, iteration=where, restored_epoch=last_good["epoch"],
                                   restored_iteration=last_good["iteration"])
        last_good["history"] = copy.deepcopy(history)
        bar.line("fit: " + msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        if on_state is not None:
            on_state(last_good, "diverged")
    stepper.close()
    model.eval()
    history["iterations"] = it
    history["seconds"] = offset + time.perf_counter() - start
    return history


# --------------------------------------------------------------------------- evaluate / predict


def _scores_and_loss(model, images, masks, batch_size, num_classes, ignore_index, forward=None):
    """``evaluate``'s scores and the mean cross-entropy over the non-ignored pixels, in one pass.

    ``forward(x) -> logits`` defaults to ``model.forward`` (run in eval mode, under ``no_grad``)."""
    forward = model.forward if forward is None else forward
    cm = ConfusionMatrix(num_classes, ignore_index)
    criterion = SoftmaxCrossEntropy(ignore_index)
    loss_sum, valid = 0.0, 0
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            y = masks[start : start + batch_size]
            with no_grad():
                logits = forward(images[start : start + batch_size])
                n = int(np.count_nonzero(y != ignore_index))
                loss_sum += criterion.forward(logits, y) * n
            valid += n
            cm.update(y, logits.argmax(axis=1))
    finally:
        model.train(was_training)
    out = cm.scores()
    out["confusion_matrix"] = cm.matrix.copy()
    return out, loss_sum / valid if valid else 0.0


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
    return _scores_and_loss(model, images, masks, batch_size, K, ignore_index)[0]


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
               model_kwargs=None, preset="tiny", verbose_transfer=False, on_stage=None, **fit_kwargs):
    """The paper's staged training: FCN-32s, then FCN-16s initialised from it, then FCN-8s.

    Each stage copies every shared weight from the previous one
    (``models.transfer_weights``); its new skip score layers start at zero, so
    it begins by computing exactly what the previous net computed, and training
    only adds what the finer skip can teach. ``epochs`` and ``lr`` are one value
    for all stages or one per stage (the paper lowers lr for later stages).

    ``images`` may also be a data source (:class:`DatasetData`) with ``masks=None``: each stage
    then runs :func:`fit_data` (pass ``val=`` among ``fit_kwargs``).

    ``on_stage(stage, model)`` is called as each stage's model is built (e.g. to checkpoint
    the model ``fit``'s ``on_state`` reports on). Training ends early after a stage that
    diverged or was interrupted.

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
        if on_stage is not None:
            on_stage(stage, model)
        if masks is None:
            histories[stage] = fit_data(model, images, epochs=e, batch_size=batch_size, lr=stage_lr, seed=seed,
                                        num_classes=num_classes, **fit_kwargs)
        else:
            histories[stage] = fit(model, images, masks, epochs=e, batch_size=batch_size, lr=stage_lr, seed=seed,
                                   **fit_kwargs)
        models[stage] = previous = model
        if histories[stage]["stopped"] is not None or histories[stage]["interrupted"]:
            break
    return models, histories


__all__ = ["fit", "fit_data", "ArrayData", "DatasetData", "evaluate", "predict", "fit_staged", "build_model", "check_images", "check_masks", "Progress",
           "STAGES", "EXPLODE_FACTOR"]
