"""``fcn-scratch bench`` runs and reports; no assertion here is about speed (machines are shared and noisy)."""

import json

import numpy as np

from fcn_scratch import bench


def test_interleaved_times_every_contender_and_calls_each_enough():
    calls = {"a": 0, "b": 0}

    def make(name):
        def fn():
            calls[name] += 1
        return fn

    best = bench.interleaved({"a": make("a"), "b": make("b")}, repeats=3, number=2, warmup=1)
    assert set(best) == {"a", "b"} and all(v >= 0 for v in best.values())
    assert calls == {"a": 1 + 3 * (1 + 2), "b": 1 + 3 * (1 + 2)}  # warm-up, then per repeat: settle + block


def test_interleaved_keeps_every_block_and_pairs_them_by_round(monkeypatch):
    ticks = iter(np.arange(0.0, 1000.0, 1.0))
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(ticks))
    monkeypatch.setattr(bench.time, "sleep", lambda s: None)
    # each block reads the clock twice: a's blocks take 1 tick, b's too, per call of number=1
    t = bench.interleaved({"a": lambda: None, "b": lambda: None}, repeats=3, number=1, warmup=0)
    assert t.blocks == {"a": [1.0, 1.0, 1.0], "b": [1.0, 1.0, 1.0]} and t == {"a": 1.0, "b": 1.0}
    made = bench.Timings({"ours": [2.0, 3.0, 1.0], "torch": [1.0, 2.0, 4.0]})
    assert made == {"ours": 1.0, "torch": 1.0}  # best blocks
    assert made.round_ratios() == [2.0, 1.5, 0.25]  # round by round, not best against best
    assert bench._rounds(made) == {"round_ratios": [2.0, 1.5, 0.25]}
    assert bench._rounds(bench.Timings({"ours": [1.0]})) == {}  # no PyTorch: nothing to pair


def test_kernel_section_and_json(tmp_path):
    out = tmp_path / "bench.json"
    lines = []
    payload = bench.run(("kernels",), repeats=1, use_torch=False, json_path=str(out), print_fn=lines.append)
    table = "\n".join(lines)
    for name in ("im2col", "col2im", "maxpool_forward", "maxpool_backward"):
        assert name in table
    data = json.loads(out.read_text())
    assert data["gemm_peak_gflops"] > 0
    assert len(data["results"]) == 16 and all(r["ref_name"] == "numpy twin" for r in data["results"])
    assert data["summary"]["kernel_speedup_over_numpy_min"] > 0
    assert payload["summary"] == data["summary"]


def test_forward_gflop_counts_a_known_network():
    from fcn_scratch.models import FCN32s

    model = FCN32s(2, widths=(2, 2, 2, 2, 2), convs_per_block=(1, 1, 1, 1, 1), fc_channels=4, seed=0)
    x = np.zeros((1, 3, 32, 32), dtype=np.float32)
    # conv b: 2 * C_out * C_in * 9 * (32 / 2^(b-1))^2; fc6, fc7, score_fr 1x1 at 1x1; upscore32 k64 on a 1x1 map
    convs = 2 * 2 * 3 * 9 * 32**2 + sum(2 * 2 * 2 * 9 * (32 >> b) ** 2 for b in range(1, 5))
    heads = 2 * 4 * 2 + 2 * 4 * 4 + 2 * 2 * 4
    up = 2 * 2 * 2 * 64 * 64
    assert bench._forward_gflop(model, x) * 1e9 == convs + heads + up


def test_memory_job_reports_mib():
    figures = bench._memory_job("train_step", "ours")
    assert figures["peak_mib"] >= figures["baseline_mib"] > 0


def test_layer_and_model_rows_without_torch():
    layers = bench.bench_layers(1, None)
    convs = [r for r in layers if r.case.startswith("Conv2d") and r.case.endswith("fwd+bwd")]
    floors = [r for r in layers if "GEMMs alone" in r.case]
    assert len(convs) == len(floors) == len(bench.TINY_CONVS)
    for conv, floor in zip(convs, floors):
        assert 0 < floor.ours_ms and floor.gflop == conv.gflop and floor.ref_ms is None
    steps = bench.bench_train_step(1, None)
    assert len(steps) == 3 and all(r.ours_ms > 0 and r.gflop > 0 for r in steps)
    assert "as fit()" in steps[0].case and "one thread" in steps[1].case
    # the shard row: half the batch, so half the FLOPs, and no target of its own
    assert "shard" in steps[2].case and steps[2].gflop == steps[0].gflop / 2
    assert "as fit()" not in steps[2].case and "one thread" not in steps[2].case


def test_targets_take_the_worst_conv_and_say_held_or_missed():
    R = bench.Result
    results = [
        R("layers", "Conv2d 3->16 64x64 fwd+bwd", 1.0, 1.0, "torch"),
        R("layers", "Conv2d 16->16 64x64 fwd+bwd", 1.6, 1.0, "torch"),  # the worst: 1.6x
        R("layers", "Conv2d 16->16 64x64 forward", 9.0, 1.0, "torch"),  # not a fwd+bwd row
        R("model", "FCN-8s tiny training step, 8x3x64x64, as fit() (2 threads)", 0.9, 1.0, "torch"),
        R("model", "  the same step in one thread (BLAS threads only)", 1.2, 1.0, "torch"),
        R("model", "FCN-8s VGG16-size inference 1x3x224x224", 1.1, 1.0, "torch"),
    ]
    memory = [(bench._MEMORY_JOBS["train_step"], {"ours": {"job_peak_mib": 30.0}, "torch": {"job_peak_mib": 25.0}})]
    got = {t["name"]: (t["limit"], round(t["ratio"], 6), t["held"]) for t in bench.check_targets(results, memory)}
    assert got == {
        "training step (fit)": (1.0, 0.9, True),
        "training step (one thread)": (1.3, 1.2, True),
        "VGG16-size inference 224x224": (1.0, 1.1, False),
        "worst Conv2d fwd+bwd": (1.5, 1.6, False),
        "peak memory of the training step": (1.5, 1.2, True),
    }
    assert bench.check_targets([R("layers", "Conv2d 3->16 64x64 fwd+bwd", 1.0)]) == []  # no torch: no targets


def test_a_target_reports_the_rounds_of_the_row_that_decided_it():
    R = bench.Result
    results = [
        R("layers", "Conv2d 3->16 64x64 fwd+bwd", 1.4, 1.0, "torch", extra={"round_ratios": [1.0, 1.1, 1.2]}),
        R("layers", "Conv2d 16->16 64x64 fwd+bwd", 1.6, 1.0, "torch", extra={"round_ratios": [1.7, 1.3, 2.0, 1.5]}),
        R("model", "FCN-8s VGG16-size inference 1x3x224x224", 1.1, 1.0, "torch"),  # no rounds kept
    ]
    got = {t["name"]: t for t in bench.check_targets(results)}
    assert got["worst Conv2d fwd+bwd"]["rounds"] == {"median": 1.6, "min": 1.3, "max": 2.0}  # the 16->16 row's
    assert "rounds" not in got["VGG16-size inference 224x224"]


def test_run_prints_a_line_per_target(monkeypatch):
    fake = [bench.Result("model", "FCN-8s tiny training step, 8x3x64x64, as fit() (2 threads)", 1.12, 1.0, "torch"),
            bench.Result("model", "  the same step in one thread (BLAS threads only)", 1.2, 1.0, "torch",
                         extra={"round_ratios": [1.25, 1.1, 1.4]})]
    monkeypatch.setattr(bench, "bench_train_step", lambda repeats, torch: fake)
    monkeypatch.setattr(bench, "bench_vgg_inference", lambda repeats, torch: [])
    monkeypatch.setattr(bench, "gemm_peak", lambda: 100.0)
    lines = []
    payload = bench.run(("model",), repeats=1, use_torch=False, print_fn=lines.append)
    assert "target  training step (fit) <= 1.0x: 1.12x  MISSED" in lines
    assert ("target  training step (one thread) <= 1.3x: 1.20x  held  (rounds: median 1.25x, 1.10-1.40x)"
            in lines)
    assert payload["targets"] == [
        {"name": "training step (fit)", "limit": 1.0, "ratio": 1.12, "held": False},
        {"name": "training step (one thread)", "limit": 1.3, "ratio": 1.2, "held": True,
         "rounds": {"median": 1.25, "min": 1.1, "max": 1.4}},
    ]


def test_memory_job_warm_and_cold():
    warm = bench._memory_job("train_step", "ours")
    assert warm["warmup_mib"] >= 0 and warm["job_peak_mib"] >= 0 and warm["peak_mib"] >= warm["baseline_mib"]
    cold = bench._memory_job("train_step", "ours", warm=False)
    assert "warmup_mib" not in cold and cold["job_peak_mib"] >= 0
