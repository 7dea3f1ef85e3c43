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
    assert len(steps) == 2 and all(r.ours_ms > 0 and r.gflop > 0 for r in steps)
    assert "as fit()" in steps[0].case and "one thread" in steps[1].case
