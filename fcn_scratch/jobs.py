"""What every ``fcn-scratch`` job shares: the user-facing error, loading a checkpoint, refusing an
output or a memory-hungry request before the work, the toy data of a run, and the scores as lines and JSON.

The jobs themselves are :mod:`fcn_scratch.jobs_train` (train, compare), :mod:`fcn_scratch.jobs_predict`
(predict, evaluate) and :mod:`fcn_scratch.jobs_files` (sample, export). A job takes plain values,
prints its progress and summary, returns the exit status and raises :class:`JobError` for an expected
failure, which :mod:`fcn_scratch.cli` prints as one line with exit status 2.
"""

from __future__ import annotations


class JobError(Exception):
    """A user-facing failure of a job (bad input, an unreadable file): one line, exit status 2."""


VAL_SEED_OFFSET = 10_000  # validation images come from seed + 10000: never the training images


def json_value(v):
    """NaN (an absent class) becomes null: metrics.json stays standard JSON."""
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, dict):
        return {k: json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if hasattr(v, "tolist"):
        return json_value(v.tolist())
    return v


def set_backend(name):
    """``--backend``: ``None`` keeps the default (numba, or $FCN_SCRATCH_BACKEND)."""
    if name is not None:
        from . import kernels

        kernels.set_backend(name)


def toy_data(settings, n, seed, *, ignore_border=None):
    """``n`` toy images and masks with the run's settings; ``ignore_border`` overrides the band width."""
    from .data import toy_shapes

    band = settings.get("ignore_border", 0) if ignore_border is None else ignore_border
    return toy_shapes(n, tuple(settings["size"]), seed=seed, ignore_border=band)


def per_class(values, class_names):
    """``{class name: value}``."""
    return {name: v for name, v in zip(class_names, values)}


def summary_lines(scores, class_names):
    """The four scores of the FCN paper on one line, the per-class IoU on the next."""
    per = "  ".join(f"{n} {v:.3f}" if v == v else f"{n} n/a" for n, v in zip(class_names, scores["per_class_iou"]))
    return [f"pixel acc {scores['pixel_accuracy']:.4f}  mean acc {scores['mean_accuracy']:.4f}  "
            f"mean IoU {scores['mean_iou']:.4f}  f.w. IoU {scores['fw_iou']:.4f}",
            f"per-class IoU: {per}"]


def load_model(path):
    """``(model, meta)`` from our ``.npz`` checkpoint, or from a PyTorch state_dict ``.pt``/``.pth``
    (needs torch; it holds no class names or normalisation): :func:`fcn_scratch.checkpoint.load_checkpoint`."""
    from .checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise JobError(f"checkpoint {path!r} not found") from None
    except CheckpointError as exc:
        raise JobError(str(exc)) from None
    except OSError as exc:
        raise JobError(f"cannot read checkpoint {path!r}: {exc.strerror or exc}") from None


def check_output(path, *, suffixes=None, what="output"):
    """Refuse an output path that cannot be written, before the work that produces it starts."""
    from .images import check_writable_file

    try:
        return check_writable_file(path, suffixes=suffixes, what=what)
    except ValueError as exc:
        raise JobError(str(exc)) from None


def check_inference_size(model, meta, *, images, size, batch_size, what):
    """Refuse ``predict``/``evaluate`` work that would not fit in memory (a big image into a big model)."""
    from . import budget
    from .checkpoint import architectures

    cls = architectures().get(meta["arch"])
    if cls is None:
        return
    config = dict(meta["config"])
    try:
        budget.check(budget.estimate_inference(cls, config, images=images, size=size, batch_size=batch_size,
                                               itemsize=model.dtype.itemsize), what, "use a smaller input")
    except budget.MemoryBudgetError as exc:
        raise JobError(str(exc)) from None
