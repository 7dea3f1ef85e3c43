"""``parallel.DataParallel``: a batch split across threads gives the single-thread loss and gradients."""

import numpy as np
import pytest

from fcn_scratch import parallel
from fcn_scratch.layers import Conv2d, Module, ReLU, SoftmaxCrossEntropy
from fcn_scratch.models import FCN8s
from fcn_scratch.optim import SGD
from fcn_scratch.parallel import DataParallel, shard_bounds


def _model(seed=0, dropout_eval=True):
    rng = np.random.default_rng(seed)
    model = FCN8s(3, widths=(2, 3, 4, 4, 5), convs_per_block=(2, 1, 1, 1, 1), fc_channels=6,
                  dtype=np.float64, seed=seed)
    for _, p, _ in model.named_parameters():
        p[...] = rng.standard_normal(p.shape) * 0.3  # score layers start at zero: give every layer a gradient
    return model.eval() if dropout_eval else model.train()


def _serial(model, x, labels):
    criterion = SoftmaxCrossEntropy()
    loss = criterion.forward(model.forward(x), labels)
    model.backward(criterion.backward(), input_grad=False)
    return loss, model.grad_dict()


@pytest.mark.parametrize("batch, shards", [(1, 2), (2, 3), (5, 2), (5, 3), (6, 4)])
def test_shard_bounds_cover_the_batch_evenly(batch, shards):
    bounds = shard_bounds(batch, shards)
    assert len(bounds) == min(batch, shards)
    assert bounds[0][0] == 0 and bounds[-1][1] == batch
    assert all(a < b for a, b in bounds) and all(b == a2 for (_, b), (a2, _) in zip(bounds, bounds[1:]))
    sizes = [b - a for a, b in bounds]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_loss_and_gradients_equal_the_single_thread_step(threads, backend):
    rng = np.random.default_rng(1)
    model = _model()
    x = rng.standard_normal((5, 3, 37, 30))
    labels = rng.integers(0, 3, (5, 37, 30))
    labels[0, :20] = 255   # shards with different numbers of valid pixels
    labels[3] = 255        # and one image with none
    loss, grads = _serial(model, x, labels)
    dp = DataParallel(model, threads=threads, min_shard_pixels=1)
    got = dp.loss_and_grads(x, labels, input_grad=False)
    assert got == pytest.approx(loss, rel=1e-13)
    for key, g in model.grad_dict().items():
        np.testing.assert_allclose(g, grads[key], rtol=1e-11, atol=1e-13, err_msg=key)
    dp.close()


def test_a_fully_ignored_batch_gives_zero_loss_and_zero_gradients():
    model = _model()
    x = np.random.default_rng(2).standard_normal((4, 3, 16, 16))
    dp = DataParallel(model, threads=2, min_shard_pixels=1)
    assert dp.loss_and_grads(x, np.full((4, 16, 16), 255)) == 0.0
    assert all(not g.any() for g in model.grad_dict().values())


def test_replicas_share_the_parameter_arrays_so_an_update_reaches_all():
    model = _model()
    dp = DataParallel(model, threads=3, min_shard_pixels=1)
    own = [p for _, p, _ in model.named_parameters()]
    for replica in dp.replicas[1:]:
        assert all(a is b for a, (_, b, _) in zip(own, replica.named_parameters()))
        assert replica is not model
    rng = np.random.default_rng(3)
    x, labels = rng.standard_normal((3, 3, 16, 16)), rng.integers(0, 3, (3, 16, 16))
    dp.loss_and_grads(x, labels)
    before = own[0].copy()
    SGD(model, lr=0.1).step()
    assert not np.array_equal(before, own[0])
    for replica in dp.replicas[1:]:
        np.testing.assert_array_equal(next(replica.named_parameters())[1], own[0])


def _record_dropout_masks(monkeypatch):
    """Record every dropout mask drawn, per thread (the layers drop their caches after backward)."""
    import threading

    from fcn_scratch import layers

    masks, real = {}, layers.F.dropout2d_forward

    def recording(x, p, training, rng):
        y, mask = real(x, p, training, rng)
        masks.setdefault(threading.get_ident(), []).append(mask)
        return y, mask

    monkeypatch.setattr(layers.F, "dropout2d_forward", recording)
    return masks


def test_dropout_differs_across_shards_and_repeats_with_the_seed(monkeypatch):
    rng = np.random.default_rng(4)
    x = np.repeat(rng.standard_normal((1, 3, 32, 32)), 2, axis=0)  # two identical images
    labels = np.repeat(rng.integers(0, 3, (1, 32, 32)), 2, axis=0)
    runs = []
    for _ in range(2):
        masks = _record_dropout_masks(monkeypatch)
        model = _model(dropout_eval=False)
        dp = DataParallel(model, threads=2, min_shard_pixels=1)
        dp.loss_and_grads(x, labels)
        runs.append(model.grad_dict())
        first = [drawn[0] for drawn in masks.values()]  # drop6's mask in each thread
        assert len(first) == 2 and not np.array_equal(first[0], first[1])  # each shard draws its own channels
        dp.close()
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])


def test_replicas_follow_train_and_eval(monkeypatch):
    model = _model(dropout_eval=False)
    dp = DataParallel(model, threads=2, min_shard_pixels=1)
    model.eval()
    masks = _record_dropout_masks(monkeypatch)
    rng = np.random.default_rng(5)
    dp.loss_and_grads(rng.standard_normal((2, 3, 16, 16)), rng.integers(0, 3, (2, 16, 16)))
    assert dp.replicas[1].training is False
    assert len(masks) == 2 and all(m is None for drawn in masks.values() for m in drawn)  # identity in eval


def test_the_step_leaves_no_cache_behind():
    """Each layer drops its cache once its backward has used it: nothing of a step outlives it."""
    model = _model()
    dp = DataParallel(model, threads=2, min_shard_pixels=1)
    rng = np.random.default_rng(6)
    dp.loss_and_grads(rng.standard_normal((2, 3, 16, 16)), rng.integers(0, 3, (2, 16, 16)))
    for replica in dp.replicas:
        assert all(m._cache is None for m in replica.modules())
    model.forward(rng.standard_normal((1, 3, 16, 16)))  # outside the step a layer keeps its cache as before
    assert model.conv1_1._cache is not None


def test_blas_runs_one_thread_inside_the_step_only():
    from threadpoolctl import threadpool_info

    seen = []

    class Probe(Module):
        def forward(self, x):
            seen.append([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])
            return x

        def backward(self, dy):
            return dy

    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    model = Probe()
    dp = DataParallel(model, threads=2, min_shard_pixels=1)
    dp.loss_and_grads(np.zeros((2, 3, 4, 4)), np.zeros((2, 4, 4), dtype=int))
    assert seen and all(all(n == 1 for n in s) for s in seen)
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


def test_a_model_without_input_grad_and_a_shard_error_propagates():
    rng = np.random.default_rng(6)

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.conv = Conv2d(3, 2, 3, padding=1, dtype=np.float64, rng=rng)
            self.relu = ReLU()

        def forward(self, x):
            return self.relu.forward(self.conv.forward(x))

        def backward(self, dy):  # no input_grad parameter
            return self.conv.backward(self.relu.backward(dy))

    dp = DataParallel(Net(), threads=2, min_shard_pixels=1)
    dp.loss_and_grads(rng.standard_normal((3, 3, 5, 5)), rng.integers(0, 2, (3, 5, 5)))
    bad = rng.standard_normal((3, 3, 5, 5))
    bad[2, 0, 0, 0] = np.nan  # lands in the worker thread's shard
    with pytest.raises(ValueError, match="NaN or inf"):
        dp.loss_and_grads(bad, rng.integers(0, 2, (3, 5, 5)))


def test_bad_arguments():
    model = _model()
    for threads in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            DataParallel(model, threads=threads, min_shard_pixels=1)

    class Duck:
        def forward(self, x):
            return x

        def backward(self, dy):
            return dy

    with pytest.raises(TypeError, match="Module"):
        DataParallel(Duck(), threads=2)
    assert DataParallel(Duck()).threads == 1  # threads=None: one for a model it cannot replicate
    dp = DataParallel(model, threads=2, min_shard_pixels=1)
    with pytest.raises(ValueError, match="one label map per image"):
        dp.loss_and_grads(np.zeros((2, 3, 8, 8)), np.zeros((3, 8, 8), dtype=int))
    assert parallel.usable_cpus() >= 1


def test_fit_with_two_threads_follows_the_single_thread_run(monkeypatch):
    """No dropout: the two runs differ only by float rounding, so the weights stay within 1e-9."""
    from fcn_scratch.train import fit

    monkeypatch.setattr(parallel, "MIN_SHARD_PIXELS", 1)  # split even these small batches

    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 3, 16, 16))
    labels = rng.integers(0, 3, (6, 16, 16))
    ends = {}
    for threads in (1, 2):
        model = _model()
        model.drop6.p = model.drop7.p = 0.0
        fit(model, x, labels, epochs=2, batch_size=3, lr=0.01, seed=0, progress=False, threads=threads)
        ends[threads] = model.state_dict()
    for key in ends[1]:
        np.testing.assert_allclose(ends[2][key], ends[1][key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_small_batches_run_whole_in_the_calling_thread():
    """Below min_shard_pixels per shard the step does not split (threads would only queue for the GIL)."""
    model = _model()
    dp = DataParallel(model, threads=2, min_shard_pixels=16 * 16 * 2)
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 3, (3, 16, 16))
    dp.loss_and_grads(rng.standard_normal((3, 3, 16, 16)), labels)
    assert dp.replicas[1].conv1_1.grads["weight"] is None  # 3 images of 16x16: one shard, the model's own
    dp.loss_and_grads(rng.standard_normal((4, 3, 16, 16)), np.concatenate([labels, labels[:1]]))
    assert dp.replicas[1].conv1_1.grads["weight"] is not None  # 4 images: two shards of two


def test_close_stops_the_workers_and_a_later_step_restarts_them():
    model = _model()
    dp = DataParallel(model, threads=2, min_shard_pixels=1)
    rng = np.random.default_rng(9)
    x, labels = rng.standard_normal((2, 3, 16, 16)), rng.integers(0, 3, (2, 16, 16))
    first = dp.loss_and_grads(x, labels)
    dp.close()
    assert dp._pool is None
    assert dp.loss_and_grads(x, labels) == first
    dp.close()


def test_modules_walks_every_layer_once_in_assignment_order():
    model = _model()
    mods = list(model.modules())
    assert mods[0] is model and mods[1] is model.conv1_1
    assert len(mods) == len({id(m) for m in mods}) == 1 + len(model.children())


@pytest.mark.parametrize("batch", [1, 3, 5])
def test_infer_splits_the_batch_and_gives_the_models_output(batch, rng):
    model = _model(3, dropout_eval=False)  # in train mode: infer must follow the model's eval() below
    x = rng.standard_normal((batch, 3, 16, 16))
    dp = DataParallel(model, threads=2, min_shard_pixels=1)
    model.eval()
    seen = []
    for replica in dp.replicas:
        real = replica.forward
        replica.forward = lambda x, real=real: seen.append(len(x)) or real(x)
    from fcn_scratch.layers import no_grad

    with no_grad():
        want = FCN8s.forward(model, x)
    got = dp.infer(x)
    assert sorted(seen) == sorted(b - a for a, b in shard_bounds(batch, 2))  # one shard per thread, all used
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    used = dp.replicas[: len(shard_bounds(batch, 2))]
    assert all(not r.training for r in used)  # each replica that ran did so in the model's eval mode
    assert model.conv1_1._cache is None  # no_grad: nothing kept for a backward pass
    dp.close()
    with pytest.raises(ValueError, match="B, C, H, W"):
        dp.infer(x[0])


def test_infer_of_a_small_batch_runs_in_the_calling_thread(rng):
    model = _model(4)
    dp = DataParallel(model, threads=2)  # 2 images of 16x16: under MIN_SHARD_PIXELS, no split
    x = rng.standard_normal((2, 3, 16, 16))
    calls = []
    real = dp.replicas[1].forward
    dp.replicas[1].forward = lambda x: calls.append(1) or real(x)
    got = dp.infer(x)
    assert calls == [] and dp._pool is None
    from fcn_scratch.layers import no_grad

    with no_grad():
        np.testing.assert_array_equal(got, model.forward(x))
