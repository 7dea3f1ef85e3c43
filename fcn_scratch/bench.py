"""``fcn-scratch bench``: how fast is each piece, beside its NumPy twin and beside PyTorch?

Method. All contenders of a row run in the same process, interleaved: each
repeat times a block of ``number`` calls of every contender in turn, after
``warmup`` untimed calls, and a contender's figure is its best block divided
by ``number``. Interleaving spreads the machine's noise over all contenders
alike. Before each block of a row that pits us against PyTorch the process
sleeps ``GAP`` seconds, so the other library's worker threads (OpenBLAS's and
OpenMP's spin for a while after each call) are asleep, then makes one untimed
call. Without the gap, each library's spinning threads steal the cores of the
other on these millisecond-sized calls and both look several times slower.

The ratio of two best blocks can pair a quiet moment of one library with a busy
one of the other. So the rows against PyTorch also keep each round's ratio (its
two blocks, timed within a second), and each target's line ends with their
median and range: the noise inside that one run.

GFLOP/s count multiply-adds twice: a convolution forward is
``2 N F C kh kw Ho Wo``; forward+backward (weights and input) is three times
that. "% peak" divides by the float32 GEMM rate this machine measures first
(``np.matmul`` on 2048 x 2048). "ratio" is ours / PyTorch's time (< 1: ours is
faster). Peak memory is the peak resident set of a separate process running
only that job, minus the resident set after its imports and weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import kernels
from .kernels import numba_kernels, numpy_kernels
from .layers import no_grad

BATCH = 8
# Every distinct 3x3 convolution of the tiny FCN-8s on 64x64 images: (C_in, C_out, H=W)
TINY_CONVS = [(3, 16, 64), (16, 16, 64), (16, 32, 32), (32, 32, 32), (32, 64, 16), (64, 64, 16), (64, 128, 8),
              (128, 128, 8), (128, 128, 4)]
KERNEL_SHAPES = [(3, 64), (16, 32), (32, 16), (64, 8)]  # (C, H=W) of the kernel rows
TINY_NET = dict(widths=(16, 32, 64, 128, 128), convs_per_block=(2, 2, 2, 2, 2), fc_channels=256)
TINY_CLASSES = 4
GAP = 0.2  # seconds of idle before each timed block of a row against PyTorch


@dataclass
class Result:
    section: str
    case: str
    ours_ms: float
    ref_ms: float | None = None  # NumPy twin (kernels), zero_insert (transposed conv) or PyTorch
    ref_name: str = ""
    gflop: float | None = None  # per call
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self):
        return None if self.ref_ms is None else self.ours_ms / self.ref_ms


class Timings(dict):
    """Best per-call seconds of each contender (the dict itself), with every timed block kept in ``blocks``.

    ``blocks[name][i]`` is the per-call time of ``name``'s block in round ``i``; the
    blocks of one round run one after another, within a second or so.
    """

    def __init__(self, blocks: dict):
        super().__init__({name: min(times) for name, times in blocks.items()})
        self.blocks = blocks

    def round_ratios(self, ours: str = "ours", ref: str = "torch") -> list:
        """``ours / ref`` per round, each from two blocks timed moments apart.

        Their spread is the noise inside one run: the best-block ratio (``self[ours] / self[ref]``)
        can pair blocks from a quiet and a busy moment; the median of these cannot.
        """
        return [a / b for a, b in zip(self.blocks[ours], self.blocks[ref])]


def interleaved(contenders: dict, repeats: int = 7, number: int = 3, warmup: int = 2, gap: float = 0.0) -> Timings:
    """Best per-call seconds of each callable, timed in interleaved blocks of ``number`` calls.

    ``gap`` seconds of sleep before each block let the previous contender's
    worker threads stop spinning (OpenBLAS's spin for about 0.1 s), so that two
    libraries' thread pools never fight over the cores inside a timed block.
    Returns a :class:`Timings` (a dict of best times that also keeps every block).
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    blocks = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            time.sleep(gap)
            fn()  # settle: warms this contender's own thread pool and caches
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            blocks[name].append((time.perf_counter() - t0) / number)
    return Timings(blocks)


def _rounds(t: Timings, ours: str = "ours", ref: str = "torch") -> dict:
    """A row's ``extra``: its per-round ratios against ``ref``, when ``ref`` ran."""
    return {"round_ratios": t.round_ratios(ours, ref)} if ref in t else {}


def gemm_peak(n: int = 2048, repeats: int = 5) -> float:
    """Measured float32 GEMM rate of ``np.matmul`` in GFLOP/s."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    t = interleaved({"gemm": lambda: a @ a}, repeats=repeats, number=1, warmup=1)["gemm"]
    return 2 * n**3 / t / 1e9


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    return torch


# --------------------------------------------------------------------------- sections


def bench_kernels(repeats):
    """Every Numba kernel beside its NumPy twin, on the tiny-FCN shapes."""
    rng = np.random.default_rng(0)
    out = []
    for cin, s in KERNEL_SHAPES:
        x = rng.standard_normal((BATCH, cin, s, s)).astype(np.float32)
        conv = (3, 3, 1, 1, 1, 1, 1, 1, s, s)
        pool = (2, 2, 2, 2, 0, 0, 1, 1, s // 2, s // 2)
        cols = numba_kernels.im2col(x, *conv)
        y, idx = numba_kernels.maxpool_forward(x, *pool)
        cases = {
            "im2col": (x, *conv),
            "col2im": (cols, BATCH, cin, s, s, *conv),
            "maxpool_forward": (x, *pool),
            "maxpool_backward": (y, idx, s, s),
        }
        for name, args in cases.items():
            fast, twin = getattr(numba_kernels, name), getattr(numpy_kernels, name)
            t = interleaved({"numba": lambda: fast(*args), "numpy": lambda: twin(*args)}, repeats)
            out.append(Result("kernels", f"{name} {cin}x{s}x{s}", t["numba"] * 1e3, t["numpy"] * 1e3, "numpy twin"))
    return out


def bench_layers(repeats, torch):
    """Conv2d, ConvTranspose2d and MaxPool2d forward+backward beside PyTorch."""
    from .layers import Conv2d, ConvTranspose2d, MaxPool2d

    rng = np.random.default_rng(0)
    out = []

    def ours_step(layer, x):
        y = layer.forward(x)
        layer.backward(np.ones_like(y))

    for cin, cout, s in TINY_CONVS:
        layer = Conv2d(cin, cout, 3, padding=1, seed=0)
        x = rng.standard_normal((BATCH, cin, s, s)).astype(np.float32)
        # The floor of any im2col design: the layer's three GEMMs alone, operands ready
        # (forward W @ cols, weights cols @ dY^T, input W^T @ dY; one per image, as the layer runs them).
        w2 = layer.weight.reshape(cout, -1)
        cols = numba_kernels.im2col(x, 3, 3, 1, 1, 1, 1, 1, 1, s, s)
        dy = np.ones((BATCH, cout, s * s), dtype=np.float32)
        dyT = np.ascontiguousarray(dy.transpose(0, 2, 1))

        def gemms(w2=w2, cols=cols, dy=dy, dyT=dyT):
            np.matmul(w2, cols)
            np.matmul(cols, dyT)
            np.matmul(w2.T, dy)

        contenders = {"ours": lambda: ours_step(layer, x), "gemms": gemms}
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_()
            tconv = torch.nn.Conv2d(cin, cout, 3, padding=1)

            def theirs(tx=tx, tconv=tconv):
                y = tconv(tx)
                y.backward(torch.ones_like(y))

            contenders["torch"] = theirs
        t = interleaved(contenders, repeats, gap=GAP if torch else 0.0)
        gflop = 3 * 2 * BATCH * cout * cin * 9 * s * s / 1e9
        out.append(Result("layers", f"Conv2d {cin}->{cout} {s}x{s} fwd+bwd", t["ours"] * 1e3,
                          t.get("torch", np.nan) * 1e3 if torch else None, "torch", gflop, _rounds(t)))
        out.append(Result("layers", "  its 3 GEMMs alone (the floor of im2col + BLAS)", t["gemms"] * 1e3,
                          t.get("torch", np.nan) * 1e3 if torch else None, "torch", gflop))

        def ours_forward(layer=layer, x=x):
            with no_grad():  # inference, as torch.no_grad() below
                layer.forward(x)

        contenders = {"ours": ours_forward}
        if torch is not None:
            def theirs_forward(tx=tx, tconv=tconv):
                with torch.no_grad():
                    tconv(tx)

            contenders["torch"] = theirs_forward
        t = interleaved(contenders, repeats, gap=GAP if torch else 0.0)
        out.append(Result("layers", f"Conv2d {cin}->{cout} {s}x{s} forward", t["ours"] * 1e3,
                          t["torch"] * 1e3 if torch else None, "torch", gflop / 3))

    # transposed convolution: the FCN-8s decoder shapes, both methods, and torch
    for cin, k, st, p, s in [(TINY_CLASSES, 4, 2, 1, 4), (TINY_CLASSES, 16, 8, 4, 8)]:
        x = rng.standard_normal((BATCH, cin, s, s)).astype(np.float32)
        fast = ConvTranspose2d(cin, cin, k, st, p, method="col2im", seed=0)
        slow = ConvTranspose2d(cin, cin, k, st, p, method="zero_insert", seed=0)
        t = interleaved({"col2im": lambda: ours_step(fast, x), "zero_insert": lambda: ours_step(slow, x)},
                        repeats=max(3, repeats // 2), number=1, warmup=1)
        gflop = 3 * 2 * BATCH * cin * cin * k * k * s * s / 1e9
        out.append(Result("layers", f"ConvTranspose2d k{k} s{st} {cin}ch {s}x{s}: col2im vs zero_insert",
                          t["col2im"] * 1e3, t["zero_insert"] * 1e3, "zero_insert", gflop))
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_()
            tconv = torch.nn.ConvTranspose2d(cin, cin, k, st, p)

            def theirs(tx=tx, tconv=tconv):
                y = tconv(tx)
                y.backward(torch.ones_like(y))

            t = interleaved({"ours": lambda: ours_step(fast, x), "torch": theirs}, repeats, gap=GAP)
            out.append(Result("layers", f"ConvTranspose2d k{k} s{st} {cin}ch {s}x{s} fwd+bwd",
                              t["ours"] * 1e3, t["torch"] * 1e3, "torch", gflop))

    for cin, s in [(16, 64), (64, 16)]:
        x = rng.standard_normal((BATCH, cin, s, s)).astype(np.float32)
        pool = MaxPool2d(2, 2, ceil_mode=True)
        contenders = {"ours": lambda: ours_step(pool, x)}
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_()

            def theirs(tx=tx):
                y = torch.nn.functional.max_pool2d(tx, 2, 2, ceil_mode=True)
                y.backward(torch.ones_like(y))

            contenders["torch"] = theirs
        t = interleaved(contenders, repeats, gap=GAP if torch else 0.0)
        out.append(Result("layers", f"MaxPool2d 2x2 ceil {cin}x{s}x{s} fwd+bwd", t["ours"] * 1e3,
                          t["torch"] * 1e3 if torch else None, "torch"))
    return out


def bench_train_step(repeats, torch):
    """One FCN-8s training step (forward, loss, backward), tiny preset, float32, batch 8, 3x64x64.

    Two of ours: the step as :func:`fcn_scratch.train.fit` runs it (the batch
    split across every usable CPU by :class:`fcn_scratch.parallel.DataParallel`),
    and the plain single-thread step (BLAS still uses its own threads). A third
    row times one shard of ``fit``'s split (the first ``BATCH // 2`` images) alone
    on one core, beside PyTorch on one thread: the engine's pace per core, and,
    against the first row, how much two shards at once lose to running side by side.
    """
    from .layers import SoftmaxCrossEntropy, free_after_backward
    from .models import FCN8s
    from .parallel import DataParallel, _one_blas_thread

    rng = np.random.default_rng(0)
    model = FCN8s(TINY_CLASSES, **TINY_NET, seed=0)
    x = rng.standard_normal((BATCH, 3, 64, 64)).astype(np.float32)
    labels = rng.integers(0, TINY_CLASSES, (BATCH, 64, 64))
    loss_fn = SoftmaxCrossEntropy()
    stepper = DataParallel(model)

    def ours():  # as fit() does, and as torch does for an input that needs no gradient: no dx for conv1_1
        stepper.loss_and_grads(x, labels, input_grad=False)

    def ours_one_thread():
        loss_fn.forward(model.forward(x), labels)
        model.backward(loss_fn.backward(), input_grad=False)

    half = BATCH // 2
    xs, ls = x[:half], labels[:half]

    def ours_shard():  # what each of fit's two threads runs, here with the other core idle
        with _one_blas_thread(), free_after_backward():
            loss_fn.forward(model.forward(xs), ls)
            model.backward(loss_fn.backward(), input_grad=False)

    contenders = {"ours": ours, "one thread": ours_one_thread, "shard": ours_shard}
    if torch is not None:
        from . import torch_ref

        twin = torch_ref.build_like(model).train()
        tx, tl = torch.from_numpy(x), torch.from_numpy(labels)

        def theirs():
            twin.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(twin(tx), tl, ignore_index=255)
            loss.backward()

        contenders["torch"] = theirs
        txs, tls = torch.from_numpy(xs), torch.from_numpy(ls)

        def theirs_shard():
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                twin.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(twin(txs), tls, ignore_index=255).backward()
            finally:
                torch.set_num_threads(threads)

        contenders["torch shard"] = theirs_shard
    t = interleaved(contenders, repeats, number=2, gap=GAP if torch else 0.0)
    stepper.close()
    gflop = 3 * _forward_gflop(model, x)
    ref = t["torch"] * 1e3 if torch else None
    return [Result("model", f"FCN-8s tiny training step, 8x3x64x64, as fit() ({stepper.threads} threads)",
                   t["ours"] * 1e3, ref, "torch", gflop, _rounds(t)),
            Result("model", "  the same step in one thread (BLAS threads only)", t["one thread"] * 1e3,
                   ref, "torch", gflop, _rounds(t, "one thread")),
            Result("model", f"  a {half}-image shard of it alone on one core (PyTorch: 1 thread)",
                   t["shard"] * 1e3, t["torch shard"] * 1e3 if torch else None, "torch", gflop * half / BATCH,
                   _rounds(t, "shard", "torch shard"))]


def _forward_gflop(model, x) -> float:
    """Forward GFLOP of ``model`` on ``x``: every Conv2d and ConvTranspose2d, from the shapes it produced."""
    from .layers import Conv2d, ConvTranspose2d

    model.forward(x)
    total = 0
    for child in model.children().values():
        if isinstance(child, (Conv2d, ConvTranspose2d)):
            N, _, Ho, Wo = child._out_shape
            taps = child.kernel_size[0] * child.kernel_size[1]
            if isinstance(child, Conv2d):
                total += 2 * N * child.out_channels * child.in_channels * taps * Ho * Wo
            else:  # each input pixel stamps C_out * taps products
                Hi = (Ho + 2 * child.padding[0] - child.kernel_size[0]) // child.stride[0] + 1
                Wi = (Wo + 2 * child.padding[1] - child.kernel_size[1]) // child.stride[1] + 1
                total += 2 * N * child.in_channels * child.out_channels * taps * Hi * Wi
    return total / 1e9


def bench_vgg_inference(repeats, torch):
    """Full VGG16-size FCN-8s (default widths, fc 4096), inference on 1x3x224x224."""
    from .models import FCN8s

    model = FCN8s(21, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)

    def ours():
        with no_grad():  # as torch.no_grad() below: no caches kept for a backward pass
            model.forward(x)

    contenders = {"ours": ours}
    if torch is not None:
        from . import torch_ref

        twin = torch_ref.build_like(model)
        tx = torch.from_numpy(x)

        def theirs():
            with torch.no_grad():
                twin(tx)

        contenders["torch"] = theirs
    t = interleaved(contenders, repeats=max(2, repeats // 2), number=1, warmup=1, gap=GAP if torch else 0.0)
    gflop = _forward_gflop(model, x)
    return [Result("model", "FCN-8s VGG16-size inference 1x3x224x224", t["ours"] * 1e3,
                   t["torch"] * 1e3 if torch else None, "torch", gflop, _rounds(t))]


# --------------------------------------------------------------------------- peak memory, in subprocesses

_MEMORY_JOBS = {
    "vgg_inference": "FCN-8s VGG16-size inference 1x3x224x224",
    "train_step": "FCN-8s tiny training step, 8x3x64x64",
}


def _status_mib(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _memory_job(job: str, library: str, warm: bool = True) -> dict:
    """Run one job in this (fresh) process and report resident-set figures in MiB.

    The peak is the kernel's high-water mark ``VmHWM``, reset
    (``/proc/self/clear_refs``) to the current resident set before the job, so
    it counts only the job. (``getrusage``'s ``ru_maxrss`` would not do: Linux
    carries it over ``execve`` from the parent process.)

    Two figures. ``first_mib``: the first run after imports and weights, as a
    fresh process meets it, one-time costs included (Numba loading its compiled
    kernels, about 70 MiB; PyTorch's lazy initialisation; thread pools and
    their allocator arenas). ``job_peak_mib``: the job itself, after one
    warm-up run of the same code on a small input (2 images of 32x32, split
    across the threads as the real step is) has paid those one-time costs; the
    working memory that grows with batch and image size.
    """

    from .models import FCN8s
    from .parallel import MIN_SHARD_PIXELS, DataParallel

    rng = np.random.default_rng(0)
    if job == "vgg_inference":
        classes, config, x = 21, {}, rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        labels = None
    else:
        classes, config = TINY_CLASSES, TINY_NET
        x = rng.standard_normal((BATCH, 3, 64, 64)).astype(np.float32)
        labels = rng.integers(0, TINY_CLASSES, (BATCH, 64, 64))
    small_x = np.ascontiguousarray(np.resize(x, (2, 3, 32, 32)))  # the warm-up input
    small_labels = None if labels is None else np.ascontiguousarray(labels[:2, :32, :32])
    if library == "torch":  # only torch's model lives in this process, so neither reuses the other's memory
        import torch

        from . import torch_ref

        torch.set_num_threads(os.cpu_count() or 1)
        twin = torch_ref.TorchFCN8s(classes, **config)
        if job == "vgg_inference":
            twin.eval()

            def run(x, labels):
                with torch.no_grad():
                    twin(torch.from_numpy(x))
        else:
            twin.train()

            def run(x, labels):
                twin.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(labels),
                                                         ignore_index=255)
                loss.backward()
    else:
        model = FCN8s(classes, **config, seed=0)
        stepper = DataParallel(model)  # the step fit() runs
        if job == "vgg_inference":
            model.eval()

            def run(x, labels):
                with no_grad():
                    model.forward(x)
        else:
            def run(x, labels):
                stepper.loss_and_grads(x, labels, input_grad=False)

    def measure(x, labels):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident set
        base = _status_mib("VmRSS")
        run(x, labels)
        return base, _status_mib("VmHWM")

    if warm:
        before = _status_mib("VmRSS")
        if library == "ours":  # split even these 2 small images, so the worker thread warms up too
            stepper.min_shard_pixels = 1
        run(small_x, small_labels)
        if library == "ours":
            stepper.min_shard_pixels = MIN_SHARD_PIXELS
        base, peak = measure(x, labels)
        return {"baseline_mib": base, "warmup_mib": base - before, "peak_mib": peak,
                "job_peak_mib": max(0.0, peak - base)}
    base, peak = measure(x, labels)
    return {"baseline_mib": base, "peak_mib": peak, "job_peak_mib": max(0.0, peak - base)}


def bench_memory(torch_available: bool):
    """Peak memory of each memory job, ours and torch's, each in a fresh process, warmed up and cold.

    Returns ``[(label, {library: figures})]``; a library's figures are those of
    :func:`_memory_job` after a warm-up, plus ``first_mib``, the ``job_peak_mib``
    of another fresh process that ran the job cold (one-time costs included).
    """
    def job_process(job, library, mode):
        proc = subprocess.run([sys.executable, "-m", "fcn_scratch.bench", "--memory-job", job, library, mode],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"memory job {job}/{library}/{mode} failed:\n{proc.stderr}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    out = []
    for job, label in _MEMORY_JOBS.items():
        figures = {}
        for library in ["ours"] + (["torch"] if torch_available else []):
            figures[library] = job_process(job, library, "warm")
            figures[library]["first_mib"] = job_process(job, library, "cold")["job_peak_mib"]
        out.append((label, figures))
    return out


# --------------------------------------------------------------------------- cold start


def bench_cold_start() -> dict:
    """Seconds from launching ``fcn-scratch train`` to its first finished training step, cold and warm.

    Cold: an empty Numba cache directory (every kernel compiles). Warm: the same
    directory again, now filled. The trainer prints ``first step done`` timing
    when ``FCN_SCRATCH_REPORT_FIRST_STEP=1``.
    """
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "FCN_SCRATCH_REPORT_FIRST_STEP": "1"}
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "fcn_scratch", "train", "--epochs", "1", "--out", out],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for line in proc.stderr:
                if "first step done" in line:
                    results[label] = time.perf_counter() - t0
                    proc.kill()
                    break
            proc.wait()
            if label not in results:
                raise RuntimeError("the trainer never reported its first step")
    return results


# --------------------------------------------------------------------------- report


def _format(results, peak):
    lines = [f"{'case':<64} {'ours ms':>9} {'ref ms':>9}  {'ours/ref':>8}  {'GFLOP/s':>7} {'%peak':>5}  ref"]
    section = None
    for r in results:
        if r.section != section:
            section = r.section
            lines.append(f"-- {section}")
        rate = f"{r.gflop / (r.ours_ms / 1e3):7.1f}" if r.gflop else " " * 7
        pct = f"{100 * r.gflop / (r.ours_ms / 1e3) / peak:5.0f}" if r.gflop else " " * 5
        ref = f"{r.ref_ms:9.3f}" if r.ref_ms is not None else " " * 9
        ratio = f"{r.ratio:8.2f}" if r.ratio is not None else " " * 8
        lines.append(f"{r.case:<64} {r.ours_ms:9.3f} {ref}  {ratio}  {rate} {pct}  {r.ref_name}")
    return "\n".join(lines)


# The speed issue's targets: (name, limit on ours / PyTorch's, how to find the ratio among the results)
TARGETS = (
    ("training step (fit)", 1.0, lambda r: r.section == "model" and "as fit()" in r.case),
    ("training step (one thread)", 1.3, lambda r: r.section == "model" and "one thread" in r.case),
    ("VGG16-size inference 224x224", 1.0, lambda r: r.section == "model" and "inference" in r.case),
    ("worst Conv2d fwd+bwd", 1.5, lambda r: r.case.startswith("Conv2d") and r.case.endswith("fwd+bwd")),
)
MEMORY_TARGET = ("peak memory of the training step", 1.5, "train_step")


def check_targets(results, memory=()) -> list[dict]:
    """``[{"name", "limit", "ratio", "held"}]`` for each target whose rows were measured against PyTorch.

    A target over several rows (the convolutions) takes the worst ratio. Where the
    deciding row kept its per-round ratios, ``"rounds"`` gives their median, least
    and greatest: how far the verdict could move with the machine's noise.
    """
    out = []
    for name, limit, pick in TARGETS:
        rows = [r for r in results if pick(r) and r.ref_name == "torch" and r.ratio is not None
                and np.isfinite(r.ratio)]
        if rows:
            worst = max(rows, key=lambda r: r.ratio)
            target = {"name": name, "limit": limit, "ratio": worst.ratio, "held": worst.ratio <= limit}
            if worst.extra.get("round_ratios"):
                rounds = worst.extra["round_ratios"]
                target["rounds"] = {"median": float(np.median(rounds)), "min": min(rounds), "max": max(rounds)}
            out.append(target)
    name, limit, job = MEMORY_TARGET
    for label, figures in memory:
        if label == _MEMORY_JOBS[job] and "torch" in figures and figures["torch"]["job_peak_mib"] > 0:
            ratio = figures["ours"]["job_peak_mib"] / figures["torch"]["job_peak_mib"]
            out.append({"name": name, "limit": limit, "ratio": ratio, "held": ratio <= limit})
    return out


def geometric_mean(values):
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def run(sections=("kernels", "layers", "model", "memory"), repeats=7, use_torch=True, json_path=None,
        cold_start=False, print_fn=print) -> dict:
    """Run the chosen sections, print the table, optionally write JSON; returns the figures.

    ``repeats`` (>= 1) timed blocks per contender; 0 would leave every best time at inf.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    torch = _torch() if use_torch else None
    print_fn(f"backend: {kernels.get_backend()}, numba parallel kernels: {numba_kernels.PARALLEL}, "
             f"cores: {os.cpu_count()}, torch: {torch.__version__ if torch else 'not installed'}")
    peak = gemm_peak()
    print_fn(f"measured float32 GEMM peak (np.matmul 2048^2): {peak:.1f} GFLOP/s")
    results = []
    if "kernels" in sections:
        results += bench_kernels(repeats)
    if "layers" in sections:
        results += bench_layers(repeats, torch)
    if "model" in sections:
        results += bench_train_step(repeats, torch)
        results += bench_vgg_inference(repeats, torch)
    print_fn(_format(results, peak))

    summary = {}
    conv = [r.ratio for r in results if r.case.startswith("Conv2d") and r.case.endswith("fwd+bwd")
            and r.ref_name == "torch"]
    if conv:
        summary["conv2d_vs_torch_geomean"] = geometric_mean(conv)
    floor = [r.ratio for r in results if "GEMMs alone" in r.case and r.ref_name == "torch"]
    if floor:
        summary["conv2d_gemms_alone_vs_torch_geomean"] = geometric_mean(floor)
    kern = [r.ref_ms / r.ours_ms for r in results if r.section == "kernels"]
    if kern:
        summary["kernel_speedup_over_numpy_min"] = min(kern)
    for r in results:
        if r.section == "model" and r.ratio is not None:
            summary[r.case.strip() + " vs torch"] = r.ratio
    memory = []
    if "memory" in sections:
        memory = bench_memory(torch is not None)
        print_fn("-- peak memory, MiB above the resident set before the job: after a warm-up run on 2x3x32x32 "
                 "(first run of a fresh process, one-time loading included)")
        for label, figures in memory:
            line = ", ".join(f"{lib} {f['job_peak_mib']:.0f} MiB ({f['first_mib']:.0f})" for lib, f in figures.items())
            print_fn(f"{label}: {line}")
            if "torch" in figures and figures["torch"]["job_peak_mib"] > 0:
                summary[f"{label} memory vs torch"] = figures["ours"]["job_peak_mib"] / figures["torch"]["job_peak_mib"]
    if cold_start:
        cs = bench_cold_start()
        summary["cold_start_s"], summary["warm_start_s"] = cs["cold"], cs["warm"]
        print_fn(f"-- start to first training step: cold {cs['cold']:.2f} s, warm {cs['warm']:.2f} s")
    for key, value in summary.items():
        print_fn(f"{key}: {value:.2f}")
    targets = check_targets(results, memory)
    for t in targets:
        line = f"target  {t['name']} <= {t['limit']:.1f}x: {t['ratio']:.2f}x  {'held' if t['held'] else 'MISSED'}"
        if "rounds" in t:  # the same row, each round's two blocks compared: the noise within this run
            line += f"  (rounds: median {t['rounds']['median']:.2f}x, {t['rounds']['min']:.2f}-{t['rounds']['max']:.2f}x)"
        print_fn(line)
    payload = {
        "gemm_peak_gflops": peak,
        "backend": kernels.get_backend(),
        "torch": torch.__version__ if torch else None,
        "results": [asdict(r) | {"ratio": r.ratio} for r in results],
        "memory": {label: figures for label, figures in memory},
        "summary": summary,
        "targets": targets,
    }
    if json_path:  # atomically: a reader never sees half a file (the CLI checked the folder before the run)
        from .atomic import write_atomic

        text = json.dumps(payload, indent=2) + "\n"
        write_atomic(json_path, lambda f: f.write(text.encode()), suffix=".json")
        print_fn(f"wrote {json_path}")
    return payload


if __name__ == "__main__":  # the peak-memory jobs run here, one per fresh process
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--memory-job" and sys.argv[4:] in ([], ["warm"], ["cold"]):
        print(json.dumps(_memory_job(sys.argv[2], sys.argv[3], warm=sys.argv[4:] != ["cold"])))
    else:
        sys.exit("usage: python -m fcn_scratch.bench --memory-job JOB ours|torch [warm|cold] (use `fcn-scratch bench`)")
