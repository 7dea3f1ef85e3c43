"""Runs that survive (issue 10): divergence caught, checkpoints every epoch, resume bit for bit,
signals, a locked and consistent --out, outputs that cannot be written. Fault injection against a
real `fcn-scratch train` subprocess where a signal or a process limit is involved."""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fcn_scratch import runs
from fcn_scratch.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from fcn_scratch.cli import main
from fcn_scratch.data import toy_shapes
from fcn_scratch.layers import Conv2d, Module
from fcn_scratch.models import FCN8s
from fcn_scratch.optim import SGD, Adam
from fcn_scratch.train import fit

# A few seconds per run: 2 steps per epoch, 3 epochs, one thread (bit-for-bit needs a fixed thread count).
TINY = ["--size", "32", "--train-images", "16", "--val-images", "4", "--epochs", "3", "--batch-size", "8",
        "--threads", "1", "--widths", "4,8,8,8,8", "--fc-channels", "16", "--dropout", "0.3", "--quiet"]
SMALL = dict(widths=(4, 8, 8, 8, 8), convs_per_block=(1, 1, 1, 1, 1), fc_channels=16)


def _cli(*argv, env=None, preexec_fn=None, timeout=120):
    """`python -m fcn_scratch ...` in a child process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "fcn_scratch", *argv], capture_output=True, text=True,
                          env=full_env, preexec_fn=preexec_fn, timeout=timeout)


def _one_line(stderr, start="fcn-scratch: "):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _weights(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files if k.startswith("param/") or k.startswith("resume/optimizer/")}


def _assert_same_weights(a, b):
    assert sorted(a) == sorted(b) and any(k.startswith("resume/optimizer/") for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _no_temp_files(directory):
    return [n for n in os.listdir(directory) if n.startswith(runs.TMP_PREFIX)] == []


# --------------------------------------------------------------------------- optimizer state


class Pair(Module):
    """Two float64 parameters whose gradients the test sets by hand."""

    def __init__(self):
        super().__init__()
        self.params = {"weight": np.array([1.0, -2.0, 0.5]), "bias": np.array([0.25])}
        self.grads = {"weight": None, "bias": None}


@pytest.mark.parametrize("make", [lambda m: SGD(m, lr=0.1, momentum=0.9, weight_decay=0.01),
                                  lambda m: Adam(m, lr=0.05, weight_decay=0.01)], ids=["sgd", "adam"])
def test_optimizer_state_round_trip_continues_bit_for_bit(make):
    grads = np.random.default_rng(0).standard_normal((6, 4))

    def steps(model, opt, rows):
        for g in rows:
            model.grads["weight"], model.grads["bias"] = g[:3].copy(), g[3:].copy()
            opt.step()

    a = Pair()
    opt_a = make(a)
    steps(a, opt_a, grads)                        # six steps without a break
    b = Pair()
    opt_b = make(b)
    steps(b, opt_b, grads[:3])
    state, weights = opt_b.state_dict(), {k: v.copy() for k, v in b.params.items()}
    steps(b, opt_b, grads[3:4])                   # the saved state is a copy: later steps leave it alone
    c = Pair()                                    # "a new process": the saved weights and optimizer state
    c.params = weights
    opt_c = make(c)
    opt_c.load_state_dict(state)
    assert opt_c.iterations == 3
    steps(c, opt_c, grads[3:])
    for k in a.params:
        np.testing.assert_array_equal(c.params[k], a.params[k])
    # and without the state the continuation differs (the test can fail)
    d = Pair()
    steps(d, make(d), grads[:3])
    steps(d, make(d), grads[3:])
    assert not np.array_equal(d.params["weight"], a.params["weight"])


def test_optimizer_load_state_dict_names_what_is_wrong():
    model = Pair()
    opt = Adam(model, lr=0.1)
    model.grads["weight"], model.grads["bias"] = np.ones(3), np.ones(1)
    opt.step()
    good = opt.state_dict()
    with pytest.raises(ValueError, match="is for 'Adam'"):
        SGD(model, lr=0.1).load_state_dict(good)
    with pytest.raises(ValueError, match="hyperparameters"):
        Adam(model, lr=0.1, betas=(0.5, 0.999)).load_state_dict(good)
    bad = opt.state_dict()
    bad["state"]["weight"]["m"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"'weight'/'m' must be an array of shape \(3,\)"):
        Adam(model, lr=0.1).load_state_dict(bad)
    bad = opt.state_dict()
    bad["state"]["nope"] = bad["state"].pop("bias")
    with pytest.raises(ValueError, match="parameter 'nope'"):
        Adam(model, lr=0.1).load_state_dict(bad)
    bad = opt.state_dict()
    bad["state"]["weight"]["v"][0] = np.nan
    fresh = Adam(model, lr=0.1)
    with pytest.raises(ValueError, match="NaN or inf"):
        fresh.load_state_dict(bad)
    assert fresh.state == {} and fresh.iterations == 0  # nothing changed


# --------------------------------------------------------------------------- fit: resume and divergence


def _fcn():
    return FCN8s(5, dropout=0.3, seed=0, **SMALL)


@pytest.fixture(scope="module")
def data64():
    x, m = toy_shapes(16, 64, seed=0)  # 64x64, batch 8: the batch splits across 2 threads (replicas)
    return x, m, x[:4], m[:4]


@pytest.mark.parametrize("stop_after", [2, 3], ids=["epoch-boundary", "mid-epoch"])
def test_fit_resumed_through_a_checkpoint_file_ends_bit_for_bit(data64, tmp_path, stop_after):
    x, m, xv, mv = data64
    kw = dict(epochs=3, batch_size=8, lr=3e-3, seed=5, optimizer="adam", val_images=xv, val_masks=mv,
              progress=False, threads=2)  # 8 images of 64x64: two shards, two replicas with their own dropout
    whole = _fcn()
    h_whole = fit(whole, x, m, **kw)

    part, saved, done = _fcn(), {}, []
    path = tmp_path / "model.npz"

    def on_state(state, event):
        save_checkpoint(path, part, extras=runs.pack_state(state))
        saved["event"] = event

    h_part = fit(part, x, m, **kw, on_state=on_state, step_callback=lambda it, loss: done.append(it),
                 stop=lambda: "SIGINT" if done and done[-1] >= stop_after else None)
    assert h_part["interrupted"] == "SIGINT" and saved["event"] == "interrupted"
    state = runs.read_state(path)
    assert state["iteration"] == stop_after and state["epoch"] == 1 and state["step_in_epoch"] == stop_after - 2
    resumed, _ = load_checkpoint(path)
    h_resumed = fit(resumed, x, m, **kw, resume=state)
    assert h_resumed["loss"] == h_whole["loss"] and h_resumed["val_mean_iou"] == h_whole["val_mean_iou"]
    a, b = whole.state_dict(), resumed.state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # without the generator states the same resume differs: the test can fail
    state = runs.read_state(path)
    state["dropout_rngs"] = [[np.random.default_rng(99).bit_generator.state] * len(r) for r in state["dropout_rngs"]]
    other, _ = load_checkpoint(path)
    fit(other, x, m, **kw, resume=state)
    assert any(not np.array_equal(a[k], other.state_dict()[k]) for k in a)


def test_plain_sgd_restores_after_divergence_and_resumes_through_a_file(data64, tmp_path):
    """optimizer="sgd", momentum=0: no optimizer state, yet divergence restore and resume both work."""
    x, m, xv, mv = data64
    kw = dict(epochs=3, batch_size=4, lr=1e-2, seed=0, optimizer="sgd", momentum=0.0, progress=False, threads=1)
    model, snapshots = _fcn(), {}

    def poison(it, loss):
        if it == 6:  # in epoch 2 (4 steps per epoch)
            next(iter(model.named_parameters()))[1].flat[0] = np.nan

    with pytest.warns(RuntimeWarning, match="training stopped at epoch 2"):
        history = fit(model, x, m, **kw, step_callback=poison,
                      callback=lambda epoch, h: snapshots.setdefault(epoch, model.state_dict()))
    assert history["diverged"]["restored_epoch"] == 1
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[1][k], err_msg=k)

    whole = _fcn()
    fit(whole, x, m, **kw)
    part, done, path = _fcn(), [], tmp_path / "model.npz"
    fit(part, x, m, **kw, on_state=lambda state, event: save_checkpoint(path, part, extras=runs.pack_state(state)),
        step_callback=lambda it, loss: done.append(it), stop=lambda: "SIGINT" if done and done[-1] >= 5 else None)
    state = runs.read_state(path)
    assert state["iteration"] == 5 and state["optimizer"]["state"] == {}
    resumed, _ = load_checkpoint(path)
    fit(resumed, x, m, **kw, resume=state)
    for k, v in whole.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v, err_msg=k)


def test_fit_refuses_a_state_of_another_run(data64, tmp_path):
    x, m, xv, mv = data64
    states = []
    model = _fcn()
    fit(model, x, m, epochs=1, batch_size=4, lr=1e-3, seed=0, progress=False, threads=1,
        on_state=lambda st, ev: states.append(st))
    with pytest.raises(ValueError, match="resume state is for batch_size=4, this run has batch_size=8"):
        fit(model, x, m, epochs=1, batch_size=8, lr=1e-3, seed=0, progress=False, threads=1, resume=states[-1])


def test_divergence_later_in_a_run_restores_the_last_healthy_epoch(data64):
    x, m, xv, mv = data64
    model = _fcn()
    snapshots = {}

    def poison(it, loss):
        if it == 6:  # in epoch 2 (4 steps per epoch): a weight becomes NaN, as an overflow would make it
            next(iter(model.named_parameters()))[1].flat[0] = np.nan

    with pytest.warns(RuntimeWarning, match="training stopped at epoch 2"):
        history = fit(model, x, m, epochs=3, batch_size=4, lr=3e-3, seed=0, optimizer="adam", val_images=xv,
                      val_masks=mv, progress=False, threads=1, step_callback=poison,
                      callback=lambda epoch, h: snapshots.setdefault(epoch, model.state_dict()))
    d = history["diverged"]
    assert d["epoch"] == 2 and d["iteration"] == 7 and d["restored_epoch"] == 1 and d["restored_iteration"] == 4
    assert "non-finite" in d["reason"] or "NaN" in d["reason"]
    assert history["epoch"] == [1] and len(history["val_mean_iou"]) == 1  # the history of the healthy point
    final = model.state_dict()
    for k in final:
        assert np.isfinite(final[k]).all()
        np.testing.assert_array_equal(final[k], snapshots[1][k], err_msg=k)


def test_a_normal_run_stays_far_below_the_divergence_limit(data64):
    """The rule's margin: a healthy run's worst step loss against the limit of 100 x max(L0, ln K)."""
    x, m, xv, mv = data64
    losses = []
    for lr in (3e-3, 1e-2):  # the default lr and a three times larger one
        history = fit(_fcn(), x, m, epochs=4, batch_size=4, lr=lr, seed=0, optimizer="adam", progress=False,
                      threads=1, val_images=xv, val_masks=mv, step_callback=lambda it, loss: losses.append(loss))
        assert history["stopped"] is None and history["diverged"] is None
    assert max(losses) < 0.05 * 100 * np.log(5), max(losses)  # 20x below the limit (it is about ln 5)


# --------------------------------------------------------------------------- the CLI: divergence


@pytest.mark.parametrize("extra", [["--lr", "1000"], ["--lr", "100"], ["--lr", "10"],
                                   ["--optimizer", "sgd", "--lr", "1e6"]], ids=["1000", "100", "10", "sgd-1e6"])
def test_the_issues_diverging_commands_end_cleanly(tmp_path, capsys, extra):
    out = tmp_path / "run"
    code = main(["train", "--epochs", "2", "--train-images", "8", "--batch-size", "8", "--val-images", "4",
                 "--size", "32", *extra, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 3, err
    line = _one_line(err)
    assert "diverged" in line and "restored the last good weights" in line
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["stopped"] == line[len("fcn-scratch: "):].split("; wrote")[0]
    assert metrics["diverged"]["epoch"] == 1 and metrics["diverged"]["restored_epoch"] == 0
    model, meta = load_checkpoint(out / "model.npz")  # the start of the run: the only healthy point
    fresh = FCN8s.tiny(5, dropout=0.0, seed=0)
    for k, v in model.state_dict().items():
        assert np.isfinite(v).all()
        np.testing.assert_array_equal(v, fresh.state_dict()[k], err_msg=k)
    assert meta["training"]["status"] == "diverged" and meta["training"]["run_id"] == metrics["run_id"]
    assert main(["train", "--resume", str(out)]) == 2  # resuming would only repeat the divergence
    assert "diverged" in _one_line(capsys.readouterr().err, "fcn-scratch: error: ")


# --------------------------------------------------------------------------- the CLI: signals and resume


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, in this process (same computation as the CLI's child processes)."""
    out = tmp_path_factory.mktemp("reference")
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("fault, code, where", [("sigterm@3", 143, (1, 3)), ("sigint@2", 130, (1, 2))],
                         ids=["SIGTERM-mid-epoch", "SIGINT-epoch-boundary"])
def test_a_signalled_run_saves_and_resumes_to_the_same_weights(reference, tmp_path, capsys, fault, code, where):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"from": "an older run"}')  # must not survive beside the new model.npz
    proc = _cli("train", *TINY, "--out", str(out), env={runs.FAULT_ENV: fault})
    assert proc.returncode == code, proc.stderr
    line = _one_line(proc.stderr)
    assert ("SIGTERM" if code == 143 else "SIGINT") in line and f"--resume {out}" in line
    assert sorted(os.listdir(out)) == [".lock", "history.csv", "model.npz"]  # no metrics.json: incomplete set
    _, meta = load_checkpoint(out / "model.npz")
    state = runs.read_state(out / "model.npz")
    assert meta["training"]["status"] == "interrupted" and (state["epoch"], state["iteration"]) == where
    rows = (out / "history.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1,") and rows[1].endswith(meta["training"]["run_id"])

    # settings of the run cannot change on resume; --threads/--quiet may be given
    assert main(["train", "--resume", str(out), "--lr", "0.1"]) == 2
    assert "conflicts with the run being resumed" in _one_line(capsys.readouterr().err, "fcn-scratch: error: ")
    assert main(["train", "--resume", str(out / "model.npz"), "--threads", "1", "--quiet"]) == 0
    _assert_same_weights(_weights(out / "model.npz"), _weights(reference / "model.npz"))
    metrics = json.loads((out / "metrics.json").read_text())
    ref = json.loads((reference / "metrics.json").read_text())
    assert metrics["run_id"] == meta["training"]["run_id"] and metrics["status"] == "finished"
    assert metrics["history"]["loss"] == ref["history"]["loss"] and metrics["mean_iou"] == ref["mean_iou"]
    assert _no_temp_files(out)
    assert main(["train", "--resume", str(out)]) == 0
    assert "already finished" in capsys.readouterr().out


def test_an_external_sigint_at_an_unknown_moment(tmp_path):
    """SIGINT from outside, whenever it lands in training: exit 130, one line, a valid resumable checkpoint."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "fcn_scratch", "train", *TINY, "--epochs", "200", "--out",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "model.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (out / "model.npz").exists(), "no checkpoint after the first epoch"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted by SIGINT" in _one_line(err)
    read_checkpoint(out / "model.npz")  # complete and valid
    _, meta = load_checkpoint(out / "model.npz")
    state = runs.read_state(out / "model.npz")
    assert meta["training"]["status"] == "interrupted" and 1 <= state["epoch"] < 200
    assert _no_temp_files(out) and not (out / "metrics.json").exists()


# --------------------------------------------------------------------------- the CLI: the output directory


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from fcn_scratch.runs import RunDir
    with RunDir(sys.argv[1], outputs=()):
        print("locked", flush=True)
        time.sleep(120)
""")


def test_a_second_run_into_a_locked_out_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["train", *TINY, "--out", str(out)]) == 2
        line = _one_line(capsys.readouterr().err, "fcn-scratch: error: ")
        assert f"{str(out)!r} is in use by another run (pid {holder.pid})" in line
        assert os.listdir(out) == [".lock"]  # refused before anything was written or removed
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs in the holder
        holder.wait()
    (out / ".tmp-left-by-a-killed-run.npz").write_bytes(b"partial")
    with runs.RunDir(out, outputs=()):  # the OS released the killed holder's lock
        assert _no_temp_files(out)  # and the new owner removed the killed run's temp file


@pytest.mark.parametrize("name", ["model.npz", "metrics.json", "predictions.png", "history.csv"])
def test_an_output_that_is_a_directory_is_refused_before_training(tmp_path, capsys, name):
    out = tmp_path / "run"
    (out / name).mkdir(parents=True)
    t0 = time.perf_counter()
    assert main(["train", *TINY, "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err, "fcn-scratch: error: ")
    assert f"cannot write {str(out / name)!r}: it is a directory" in line
    assert sorted(os.listdir(out)) == [".lock", name] and time.perf_counter() - t0 < 5


def test_an_output_failing_after_training_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    """predictions.png becomes unwritable while the run trains: one line, model.npz kept, --resume finishes."""
    from fcn_scratch import viz

    out = tmp_path / "run"
    real = viz.predictions_figure

    def sabotage(*args, **kwargs):
        (out / "predictions.png").mkdir()
        return real(*args, **kwargs)

    monkeypatch.setattr(viz, "predictions_figure", sabotage)
    assert main(["train", *TINY, "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err, "fcn-scratch: error: ")
    assert f"cannot write {str(out / 'predictions.png')!r}" in line and "model.npz holds epoch 3" in line
    assert not (out / "metrics.json").exists() and _no_temp_files(out)
    assert runs.read_state(out / "model.npz")["epoch"] == 3
    monkeypatch.setattr(viz, "predictions_figure", real)
    (out / "predictions.png").rmdir()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0  # no training left: only the outputs
    assert json.loads((out / "metrics.json").read_text())["status"] == "finished"


def _limit_file_size(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer instead of EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return preexec


def test_a_file_size_limit_is_refused_before_training(tmp_path):
    out = tmp_path / "run"
    proc = _cli("train", *TINY, "--out", str(out), preexec_fn=_limit_file_size(50_000))
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr, "fcn-scratch: error: ")
    assert "model.npz" in line and "file size limit (ulimit -f)" in line
    assert sorted(os.listdir(out)) == [".lock"]


def test_a_write_past_the_file_size_limit_is_one_line_and_leaves_the_old_file(tmp_path):
    """EFBIG from a real write (a full disk behaves alike): RunError, old file intact, no temp file."""
    target = tmp_path / "model.npz"
    target.write_bytes(b"the last good checkpoint")
    script = textwrap.dedent("""
        import sys
        from fcn_scratch.runs import RunDir, RunError
        run = RunDir(sys.argv[1], outputs=())
        try:
            run.write("model.npz", b"x" * 100_000, keep="the last good checkpoint is kept")
        except RunError as exc:
            print(exc)
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          preexec_fn=_limit_file_size(10_000), timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "File too large; the last good checkpoint is kept" in proc.stdout
    assert target.read_bytes() == b"the last good checkpoint" and _no_temp_files(tmp_path)


def _read_only(path):
    """Run argv with ``path`` read-only: chmod for a normal user; root ignores modes, so a private ro bind mount."""
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        return []
    if shutil.which("unshare") is None:
        pytest.skip("root, and no unshare(1) for a read-only bind mount")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind -o ro {path} {path}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("root without the privilege to make a read-only mount")
    return ["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{path}" "{path}" && exec "$0" "$@"']


def test_a_read_only_out_is_refused_before_training(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    prefix = _read_only(out)
    try:
        proc = subprocess.run([*prefix, sys.executable, "-m", "fcn_scratch", "train", *TINY, "--out", str(out)],
                              capture_output=True, text=True, timeout=120)
    finally:
        os.chmod(out, 0o755)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr, "fcn-scratch: error: ")
    assert f"output directory {str(out)!r} is not writable" in line
    assert os.listdir(out) == []


# --------------------------------------------------------------------------- atomic JSON under concurrency


WRITER = textwrap.dedent("""
    import sys
    from fcn_scratch.runs import write_json
    path, me = sys.argv[1], int(sys.argv[2])
    for i in range(60):
        write_json(path, {"writer": me, "i": i, "payload": [me] * 3000})
""")


def test_concurrent_json_writers_never_show_a_torn_file(tmp_path):
    path = tmp_path / "metrics.json"
    runs.write_json(path, {"writer": -1, "i": 0, "payload": []})
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w)], stderr=subprocess.PIPE,
                                text=True) for w in range(4)]
    reads, seen = 0, set()
    while any(w.poll() is None for w in writers) or reads < 50:
        obj = json.loads(path.read_text())  # a torn or half-written file would raise here
        assert obj["payload"] == [obj["writer"]] * len(obj["payload"])
        seen.add(obj["writer"])
        reads += 1
    for w in writers:
        assert w.wait() == 0, w.stderr.read()
    assert reads >= 50 and len(seen) >= 2 and _no_temp_files(tmp_path)
