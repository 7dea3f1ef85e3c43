"""``report.html``: one self-contained page describing a training (or comparison) run.

:func:`write_report` puts on one page, in reading order: the command and its
settings, the metrics table (pixel accuracy, mean accuracy, mean IoU, f.w. IoU,
then IoU and accuracy per class), the confusion matrix as a heat map, the
training curves, the caller's figures (e.g. the prediction grid) and the
per-epoch history. Every image is a PNG embedded as a ``data:image/png;base64``
URI, so the file can be mailed or archived alone; there is no script. Every
string from the run (command, settings, class names, captions) goes through
:func:`html.escape`. Each number in a table cell carries its exact value in a
``data-value`` attribute (``repr`` of the float, ``nan`` for n/a) beside the
4-decimal text, so a test -- or a reader's script -- can check the page against
``metrics.json``. The file is written atomically (unique temporary file, then
``os.replace``). The per-epoch CSV is :func:`fcn_scratch.runs.history_csv`.
"""

from __future__ import annotations

import base64
import html
import json
import math
import numbers
import os
import shlex
from datetime import datetime, timezone

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEADLINE = (("pixel_accuracy", "pixel acc."), ("mean_accuracy", "mean acc."), ("mean_iou", "mean IoU"),
            ("fw_iou", "f.w. IoU"))

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1000px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.meta { color: #666; font-size: 0.9em; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _number(v) -> float:
    """A metric value as a float; None (a NaN stored as JSON null) -> NaN."""
    if v is None:
        return math.nan
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"expected a number or None in the metrics, got {v!r}")
    return float(v)


def _num_cell(v, fmt=".4f") -> str:
    x = _number(v)
    if math.isnan(x):
        return '<td class="num" data-value="nan">n/a</td>'
    return f'<td class="num" data-value="{_e(repr(x))}">{x:{fmt}}</td>'


def _plain(v) -> str:
    """A settings value as one line of text (JSON for containers)."""
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str, allow_nan=True)
    return str(v)


def _png(value, caption) -> bytes:
    """PNG bytes from bytes, a path to a PNG file, or a matplotlib Figure; the signature is checked."""
    from matplotlib.figure import Figure

    from .viz import png_bytes

    if isinstance(value, Figure):
        data = png_bytes(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, (str, os.PathLike)):
        try:
            with open(value, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ValueError(f"figure {caption!r}: cannot read {os.fspath(value)!r}: {exc.strerror or exc}") \
                from None
    else:
        raise TypeError(f"figure {caption!r} must be PNG bytes, a path to a PNG or a matplotlib Figure, "
                        f"got {type(value).__name__}")
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"figure {caption!r} is not a PNG (its first bytes are {data[:8]!r})")
    return data


def _figure_html(caption, data: bytes) -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<figure><img src="{uri}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _per_class(values, class_names):
    """Per-class values as ``{name: value}`` from a dict (metrics.json) or a list (evaluate)."""
    if values is None:
        return {}
    if isinstance(values, dict):
        return dict(values)
    names = list(class_names) if class_names is not None else [f"class_{k}" for k in range(len(values))]
    if len(names) != len(values):
        raise ValueError(f"{len(values)} per-class values for {len(names)} class names")
    return dict(zip(names, values))


def _is_scores(d) -> bool:
    return isinstance(d, dict) and "mean_iou" in d


def _headline_table(rows) -> str:
    """``rows`` = [(label, scores dict)]: one row each with the four headline metrics."""
    head = "".join(f"<th>{_e(title)}</th>" for _, title in HEADLINE)
    body = "".join(f"<tr><th>{_e(label)}</th>" + "".join(_num_cell(s.get(k)) for k, _ in HEADLINE) + "</tr>"
                   for label, s in rows)
    return f'<table class="metrics" id="headline"><tr><th></th>{head}</tr>{body}</table>'


def _class_table(columns, class_names) -> str:
    """``columns`` = [(heading, {class: value})]: one row per class."""
    names = list(class_names) if class_names else list(dict.fromkeys(n for _, c in columns for n in c))
    head = "".join(f"<th>{_e(h)}</th>" for h, _ in columns)
    body = "".join(f'<tr><th data-class="{_e(n)}">{_e(n)}</th>'
                   + "".join(_num_cell(c.get(n)) for _, c in columns) + "</tr>" for n in names)
    return f'<table class="metrics" id="per-class"><tr><th>class</th>{head}</tr>{body}</table>'


def _history_table(history, label=None) -> str:
    columns = [k for k, v in history.items() if isinstance(v, list) and len(v) == len(history.get("epoch", []))]
    if not columns:
        return ""
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = []
    for i in range(len(history["epoch"])):
        cells = []
        for c in columns:
            v = history[c][i]
            cells.append(f'<td class="num" data-value="{_e(v)}">{_e(v)}</td>' if c == "epoch"
                         else _num_cell(v, ".4g"))  # lr 3e-05 must not read 0.0000
        rows.append("<tr>" + "".join(cells) + "</tr>")
    title = f"<h3>{_e(label)}</h3>" if label else ""
    return f'{title}<table class="history"><tr>{head}</tr>{"".join(rows)}</table>'


def render_report(*, command, settings, metrics, history=None, figures=None, title=None, run_id=None,
                  class_names=None, auto_figures=True) -> str:
    """The page as a string; see :func:`write_report` for the arguments."""
    from .viz import confusion_figure, curves_figure, png_bytes

    if isinstance(command, (list, tuple)):
        command = shlex.join(str(c) for c in command)
    if not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict, got {type(settings).__name__}")
    if not isinstance(metrics, dict) or not metrics:
        raise TypeError("metrics must be a non-empty dict: one run's scores, or {model: scores}")
    single = _is_scores(metrics)
    runs = {"": metrics} if single else dict(metrics)
    if not all(_is_scores(s) for s in runs.values()):
        raise ValueError("metrics must hold pixel_accuracy, mean_accuracy, mean_iou, fw_iou "
                         "(one run), or be {model name: such a dict}")
    if class_names is None:
        class_names = next((s.get("class_names") for s in runs.values() if s.get("class_names")), None)
    title = title or ("fcn-scratch run report" if single else "fcn-scratch comparison report")
    figures = dict(figures or {})

    parts = [f"<h1>{_e(title)}</h1>"]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f'<p class="meta">written {_e(stamp)}' + (f", run id <code>{_e(run_id)}</code>" if run_id else "")
                 + "</p>")
    parts.append(f'<h2>Command</h2><pre id="command">{_e(command)}</pre>')
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_plain(v))}</td></tr>" for k, v in settings.items())
    parts.append(f'<h2>Settings</h2><table id="settings">{rows}</table>')

    parts.append("<h2>Metrics</h2>")
    if single:
        rows = [("validation", metrics)]
        if _is_scores(metrics.get("strict")):
            rows.append(("every pixel counted", metrics["strict"]))
        columns = [("IoU", _per_class(metrics.get("per_class_iou"), class_names)),
                   ("accuracy", _per_class(metrics.get("per_class_accuracy"), class_names))]
    else:
        rows = list(runs.items())
        columns = [(f"{name} IoU", _per_class(s.get("per_class_iou"), class_names)) for name, s in runs.items()]
    parts.append(_headline_table(rows))
    if any(c for _, c in columns):
        parts.append("<h3>Per class</h3>" + _class_table(columns, class_names))

    given = [(str(c), _png(v, c)) for c, v in figures.items()]  # checked before anything is drawn
    drawn = []
    if auto_figures:
        for name, s in runs.items():
            cm = s.get("confusion_matrix")
            if cm is not None and class_names is not None:
                caption = "confusion matrix" + (f", {name}" if name else "") + \
                          " (rows = truth, shares of each row; pixel counts in the cells)"
                drawn.append((caption, png_bytes(confusion_figure(np.asarray(cm), class_names))))
        histories = {} if history is None else ({"": history} if "epoch" in history else dict(history))
        for name, h in histories.items():
            if h.get("epoch"):
                caption = "training curves" + (f", {name}" if name else "")
                drawn.append((caption, png_bytes(curves_figure(h, title=name or None))))
    all_figures = drawn + given
    if all_figures:
        parts.append("<h2>Figures</h2>" + "".join(_figure_html(c, d) for c, d in all_figures))

    if history:
        histories = {"": history} if "epoch" in history else dict(history)
        tables = "".join(_history_table(h, name) for name, h in histories.items())
        if tables:
            parts.append("<h2>History (per epoch)</h2>" + tables)

    meta = f'<meta name="fcn-scratch-run-id" content="{_e(run_id)}">' if run_id else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{meta}"
            f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def write_report(path, *, command, settings, metrics, history=None, figures=None, title=None, run_id=None,
                 class_names=None, auto_figures=True) -> str:
    """Write the run's ``report.html`` to ``path`` atomically; returns the path.

    Parameters
    ----------
    command : the command line, a string or an argv list (shown shell-quoted).
    settings : ``{name: value}`` shown as a table (containers as JSON).
    metrics : one run's scores as in ``metrics.json`` (``pixel_accuracy``, ``mean_accuracy``,
        ``mean_iou``, ``fw_iou``, ``per_class_iou`` / ``per_class_accuracy`` as ``{class: value}``
        or lists, ``confusion_matrix``, ``class_names``, optional ``strict`` scores), or
        ``{model name: scores}`` for a comparison. ``None`` stands for NaN (n/a).
    history : :func:`fcn_scratch.train.fit`'s history (lists per epoch), or ``{model: history}``.
    figures : ``{caption: PNG bytes | path to a PNG | matplotlib Figure}``, e.g. the prediction grid.
    auto_figures : also draw the confusion matrix (from ``metrics``) and the curves (from ``history``).
    """
    from .runs import atomic_write

    page = render_report(command=command, settings=settings, metrics=metrics, history=history, figures=figures,
                         title=title, run_id=run_id, class_names=class_names, auto_figures=auto_figures)
    return atomic_write(path, page.encode("utf-8"))


__all__ = ["write_report", "render_report"]
