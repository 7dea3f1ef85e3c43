"""Runs that survive: atomic outputs, a locked output directory, resumable checkpoints, signals.

A training run writes its ``--out`` directory so that a reader always sees one
consistent set of files:

1. :class:`RunDir` locks the directory (``fcntl.flock`` on ``<out>/.lock``, which
   records the pid): a second run into the same directory is refused at once,
   and the lock of a killed run is released by the operating system.
2. Before any work it checks that every output can be written (not a directory,
   the directory writable, enough free disk, the file-size limit ``ulimit -f``
   above the checkpoint's size) and removes the temporary files a killed run
   left behind.
3. A fresh run removes the previous run's files, ``metrics.json`` first; then
   ``model.npz`` and ``history.csv`` are rewritten at the end of every epoch,
   and at the end the figures and, last, ``metrics.json``: its presence marks
   a complete set. Every file carries the same run id.
4. Every write goes to a unique temporary file in the same directory
   (``tempfile.mkstemp``), is flushed to disk, then renamed over the target
   (``os.replace``, atomic): a reader sees the old file or the new one, never
   a torn one, and concurrent writers never share a temporary name.

The checkpoint holds, beside the weights, what :func:`fcn_scratch.train.fit`
needs to continue bit for bit (its *training state*: optimizer state, epoch,
iteration, the shuffle and dropout generator states, the history), stored as
``resume/state.json`` and ``resume/optimizer/<param>/<key>`` arrays
(:func:`pack_state`, :func:`read_state`).

:class:`StopSignals` turns SIGINT and SIGTERM into a polite request while
training (``fit(stop=...)`` finishes the current step, saves, returns) and into
:class:`Interrupted` (a ``KeyboardInterrupt``) anywhere else or on a second signal.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import signal
import tempfile
import uuid

import numpy as np

from .atomic import TMP_PREFIX, write_bytes_atomic

LOCK_NAME = ".lock"
STATE_VERSION = 1


class RunError(Exception):
    """A run cannot start or cannot write its outputs: one line for the user (the CLI exits 2)."""


# --------------------------------------------------------------------------- atomic writes


def atomic_write(path, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically (:func:`fcn_scratch.atomic.write_atomic`); the temporary
    file's name ends with the target's, so a leftover one says which output it was."""
    return write_bytes_atomic(path, data, suffix="-" + os.path.basename(os.fspath(path)))


def json_value(v):
    """NaN becomes null and arrays lists, so the file stays standard JSON."""
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if hasattr(v, "tolist"):
        return json_value(v.tolist())
    return v


def json_bytes(obj) -> bytes:
    """``obj`` as indented standard JSON (NaN -> null), UTF-8."""
    return (json.dumps(json_value(obj), indent=2, allow_nan=False) + "\n").encode()


def write_json(path, obj) -> str:
    """``obj`` as indented JSON at ``path``, atomically (see :func:`atomic_write`); NaN -> null."""
    return atomic_write(path, json_bytes(obj))  # serialised before the disk is touched


HISTORY_COLUMNS = ("epoch", "loss", "lr", "time", "val_loss", "val_pixel_accuracy", "val_mean_accuracy",
                   "val_mean_iou", "val_fw_iou")


def history_csv(history, run_id=None) -> str:
    """One row per completed epoch: ``epoch, loss, lr, time[, val_loss, val_* metrics], run_id``."""
    columns = [c for c in HISTORY_COLUMNS if c in history]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns + ["run_id"])
    for i in range(len(history.get("epoch", []))):
        writer.writerow([repr(history[c][i]) if isinstance(history[c][i], float) else history[c][i]
                         for c in columns] + [run_id or ""])
    return buf.getvalue()


# --------------------------------------------------------------------------- the output directory


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


class RunDir:
    """An output directory owned by one run: locked, checked, written atomically.

    ``with RunDir(out, outputs=(...), sizes={...}, fresh=True) as run: run.write(...)``.
    ``outputs`` are the file names the run will write (``metrics.json`` is written last
    and, for a fresh run, removed first); ``sizes`` estimates some of their sizes in
    bytes, for the free-space and file-size-limit checks. Raises :class:`RunError`.
    """

    def __init__(self, path, *, outputs, sizes=None, fresh=True, marker="metrics.json"):
        self.path = os.fspath(path)
        self.outputs = tuple(outputs)
        self.sizes = dict(sizes or {})
        self.fresh = fresh
        self.marker = marker
        self._lock_fd = None

    # -- lifecycle
    def __enter__(self):
        self.make()
        self.lock()
        try:
            self.check()
            self.clean()
        except BaseException:
            self.unlock()
            raise
        return self

    def __exit__(self, *exc):
        self.unlock()
        return False

    def make(self):
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create output directory {self.path!r}: {_describe(exc)}") from None

    def lock(self):
        """Take ``<out>/.lock`` (non-blocking); refuse with the holder's pid if another run has it."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here; the run goes unlocked
            return
        lock_path = os.path.join(self.path, LOCK_NAME)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise RunError(f"output directory {self.path!r} is not writable ({lock_path}: {_describe(exc)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = os.read(fd, 32).decode("ascii", "replace").strip()
            except OSError:
                pid = ""
            os.close(fd)
            who = f" (pid {pid})" if pid.isdigit() else ""
            raise RunError(f"output directory {self.path!r} is in use by another run{who}; wait for it to "
                           f"finish or choose another --out") from None
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):  # a filesystem without locks
                return
            raise RunError(f"cannot lock output directory {self.path!r}: {_describe(exc)}") from None
        try:  # the holder's pid, for the message a second run prints
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        self._lock_fd = fd

    def unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def file(self, name) -> str:
        return os.path.join(self.path, name)

    def check(self):
        """Every output writable before the work starts: not a directory, room on disk, under ``ulimit -f``."""
        for name in self.outputs:
            p = self.file(name)
            if os.path.isdir(p):
                raise RunError(f"cannot write {p!r}: it is a directory")
            if os.path.lexists(p) and not os.path.isfile(p):
                raise RunError(f"cannot write {p!r}: it exists and is not a regular file")
        try:  # the real test of writability (os.access says yes to root on a read-only mount)
            fd, probe = tempfile.mkstemp(prefix=TMP_PREFIX, dir=self.path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise RunError(f"output directory {self.path!r} is not writable: {_describe(exc)}") from None
        if not self.sizes:
            return
        try:
            import resource

            soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        except (ImportError, OSError, ValueError):
            soft = None
        if soft is not None and soft != resource.RLIM_INFINITY:
            name, size = max(self.sizes.items(), key=lambda kv: kv[1])
            if size > soft:
                raise RunError(f"cannot write {self.file(name)!r}: it needs about {_mb(size)} but the file size "
                               f"limit (ulimit -f) is {_mb(soft)}")
        try:
            st = os.statvfs(self.path)
        except (AttributeError, OSError):
            return
        free = st.f_bavail * st.f_frsize
        # each file briefly exists twice (the old one and its temp successor); 4 MiB for figures and JSON
        need = 2 * sum(self.sizes.values()) + 4 * 2**20
        if free < need:
            raise RunError(f"not enough free disk space in {self.path!r}: {_mb(free)} free, the run's outputs "
                           f"need about {_mb(need)}")

    def clean(self):
        """Remove leftover temp files (a killed run's; we hold the lock) and, for a fresh run, the old outputs."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path):
                if entry.name.startswith(TMP_PREFIX) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
        if self.fresh:  # the marker first: from here on the old set reads as incomplete, never as current
            for name in [self.marker] + [n for n in self.outputs if n != self.marker]:
                try:
                    os.unlink(self.file(name))
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise RunError(f"cannot remove the previous run's {self.file(name)!r}: {_describe(exc)}") \
                        from None

    def write(self, name, data: bytes, *, keep=None) -> str:
        """Write one output atomically; on failure a :class:`RunError` naming it (and what is kept)."""
        try:
            return atomic_write(self.file(name), data)
        except OSError as exc:
            kept = f"; {keep}" if keep else ""
            raise RunError(f"cannot write {self.file(name)!r}: {_describe(exc)}{kept}") from None


def _mb(n) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def checkpoint_size(model, optimizer="adam", momentum=0.9) -> int:
    """Bytes ``model.npz`` will take with the resume state: weights + optimizer arrays + headers."""
    weights = sum(p.nbytes for _, p, _ in model.named_parameters())
    per_weight = {"adam": 2, "sgd": 1 if momentum else 0}.get(optimizer, 2)
    return weights * (1 + per_weight) + 64 * 1024


# --------------------------------------------------------------------------- the training state in a checkpoint


def pack_state(state) -> dict:
    """``fit``'s training state -> checkpoint extras: ``state.json`` plus one array per optimizer buffer.

    The weights are not included (the checkpoint stores them as ``param/...``).
    """
    meta = {k: v for k, v in state.items() if k not in ("weights", "optimizer")}
    opt = state["optimizer"]
    arrays = {}
    opt_meta = {k: v for k, v in opt.items() if k != "state"}
    opt_meta["state"] = {}
    for name, entries in opt["state"].items():
        opt_meta["state"][name] = {}
        for key, value in entries.items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer/{name}/{key}"] = value
                opt_meta["state"][name][key] = None  # stored as an array
            else:
                opt_meta["state"][name][key] = value
    meta["optimizer"] = opt_meta
    arrays["state.json"] = np.array(json.dumps(json_value(meta), allow_nan=False))
    return arrays


def unpack_state(extras) -> dict:
    """Inverse of :func:`pack_state`; raises ``ValueError`` if the extras are not a training state."""
    if "state.json" not in extras:
        raise ValueError("it holds no training state (written before checkpoints were resumable?)")
    try:
        state = json.loads(str(extras["state.json"]))
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ValueError(f"its training state is not valid JSON ({exc})") from None
    required = dict(version=int, epoch=int, step_in_epoch=int, iteration=int, epochs=int, steps_per_epoch=int,
                    seed=int, shuffle_rng=dict, dropout_rngs=list, optimizer=dict, history=dict,
                    epoch_loss_sum=(int, float), epoch_loss_count=int, seconds=(int, float))
    if not isinstance(state, dict):
        raise ValueError("its training state is not a JSON object")
    for key, kind in required.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise ValueError(f"its training state has no valid {key!r}")
    if state["version"] != STATE_VERSION:
        raise ValueError(f"its training state has version {state['version']}; this fcn_scratch reads {STATE_VERSION}")
    opt = state["optimizer"]
    if not isinstance(opt.get("state"), dict):
        raise ValueError("its optimizer state is malformed")
    for name, entries in opt["state"].items():
        if not isinstance(entries, dict):
            raise ValueError(f"its optimizer state for {name!r} is malformed")
        for key, value in entries.items():
            if value is None:
                array = extras.get(f"optimizer/{name}/{key}")
                if array is None:
                    raise ValueError(f"its optimizer array {name}/{key} is missing")
                entries[key] = array
    return state


def read_state(path) -> dict:
    """The training state stored in checkpoint ``path`` (``CheckpointError``/``ValueError`` if absent or bad)."""
    from .checkpoint import read_extras

    return unpack_state(read_extras(path))


# --------------------------------------------------------------------------- signals


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived where the work cannot stop politely; ``signum`` says which."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class StopSignals:
    """SIGINT and SIGTERM handled alike, as a context manager (main thread only).

    Inside :meth:`deferred` (the training loop) the first signal only sets
    :attr:`received`, which ``fit(stop=signals)`` polls after every step: training then
    stops at a consistent point and saves. Elsewhere, or on a second signal, the
    handler raises :class:`Interrupted`. SIGXFSZ is ignored, so writing past the file
    size limit (``ulimit -f``) raises ``OSError(EFBIG)`` instead of killing the process.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received = None
        self._deferring = False
        self._previous = {}

    def __call__(self):
        return self.received

    def _handle(self, signum, frame):
        if self._deferring and self.received is None:
            self.received = signum
            return
        raise Interrupted(signum)

    def __enter__(self):
        for s in self.SIGNALS:
            self._previous[s] = signal.signal(s, self._handle)
        if hasattr(signal, "SIGXFSZ"):
            self._previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        return False

    @contextlib.contextmanager
    def deferred(self):
        self._deferring = True
        try:
            yield self
        finally:
            self._deferring = False


def signal_name(signum) -> str:
    return signal.Signals(signum).name


# --------------------------------------------------------------------------- fault injection (tests)

FAULT_ENV = "FCN_SCRATCH_FAULT"


def fault_hook(get_model, spec=None):
    """A ``step_callback`` injecting the fault named by ``$FCN_SCRATCH_FAULT`` (for the test suite), or None.

    ``sigint@K`` / ``sigterm@K`` send the process that signal right after iteration K
    (deterministic, unlike a timer); ``nan@K`` writes NaN into the first weight after
    iteration K (a divergence the next forward pass must catch).
    """
    spec = os.environ.get(FAULT_ENV) if spec is None else spec
    if not spec:
        return None
    try:
        kind, at = spec.split("@")
        at = int(at)
    except ValueError:
        raise RunError(f"{FAULT_ENV} must look like sigint@K, sigterm@K or nan@K, got {spec!r}") from None
    if kind not in ("sigint", "sigterm", "nan"):
        raise RunError(f"{FAULT_ENV} must look like sigint@K, sigterm@K or nan@K, got {spec!r}")

    def hook(iteration, loss):
        if iteration != at:
            return
        if kind == "nan":
            _, p, _ = next(iter(get_model().named_parameters()))
            p.flat[0] = math.nan
        else:
            os.kill(os.getpid(), signal.SIGINT if kind == "sigint" else signal.SIGTERM)

    return hook


def chain(*callbacks):
    """One ``step_callback`` calling each of ``callbacks`` that is not None, in order."""
    callbacks = [c for c in callbacks if c is not None]
    if not callbacks:
        return None

    def call(iteration, loss):
        for c in callbacks:
            c(iteration, loss)

    return call


__all__ = ["RunError", "RunDir", "atomic_write", "write_json", "json_bytes", "json_value", "history_csv",
           "new_run_id", "checkpoint_size", "pack_state", "unpack_state", "read_state", "Interrupted",
           "StopSignals", "signal_name", "fault_hook", "chain", "LOCK_NAME", "TMP_PREFIX"]
