"""The roofline (issue 19): bytes and FLOPs counted per op, each category classified against the roofs,
the roofs measured once per device, and the words and plot data the report makes from them."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from bench.config import TrainConfig
from bench.profile.roofline import NEAR_ROOF, classify, pick_roof, roofline
from bench.profile.roofs import RoofMeter
from bench.profile.traffic import OpCounter, count_step
from bench.results import atomic_write_json
from bench.train import Trainer
from model.gpt import GPTConfig
from reports import words
from reports.diagnosis import diagnose
from reports.html import render_html
from reports.load import load_results
from reports.roofline import device_rooflines, roofline_of
from tests import fixtures as synthetic

F32 = 4


def _counted(fn) -> dict:
    """{(op name, category): Tally} of what fn runs under the counter."""
    with OpCounter() as counter:
        fn()
    return {name: tally for (name, _cat), tally in counter.counts.ops.items()}


# --- bytes and FLOPs of ops of known shape ----------------------------------------------------------


def test_matmul_bytes_and_flops_exact():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    (mm,) = _counted(lambda: torch.mm(a, b)).values()
    assert mm.flops == 2 * 8 * 16 * 4 and mm.flops_floor == 0
    assert mm.bytes == (8 * 16 + 16 * 4 + 8 * 4) * F32  # both inputs read once, the output written once


def test_linear_with_bias_is_one_addmm_and_the_transposed_weight_moves_nothing():
    x, w, bias = torch.randn(8, 16), torch.randn(4, 16), torch.randn(4)
    ops = _counted(lambda: F.linear(x, w, bias))
    assert set(ops) <= {"aten::addmm", "aten::t"}
    assert "aten::t" not in ops or ops["aten::t"].bytes == 0
    assert ops["aten::addmm"].flops == 2 * 8 * 16 * 4
    assert ops["aten::addmm"].bytes == (4 + 8 * 16 + 4 * 16 + 8 * 4) * F32


def test_layer_norm_bytes_exact_and_flops_a_floor():
    x, w, b = torch.randn(2, 3, 16), torch.ones(16), torch.zeros(16)
    (ln,) = _counted(lambda: F.layer_norm(x, (16,), w, b)).values()
    # reads x, weight, bias; writes the output and the saved mean and rstd (2x3x1 each)
    assert ln.bytes == (96 + 16 + 16 + 96 + 6 + 6) * F32
    assert ln.flops == ln.flops_floor == 96  # one per element of its largest operand


def test_add_bytes_count_a_broadcast_operand_once():
    a, row = torch.randn(8, 16), torch.randn(1, 16)
    (add,) = _counted(lambda: a + row).values()
    assert add.bytes == (128 + 16 + 128) * F32 and add.flops == add.flops_floor == 128
    (inplace,) = _counted(lambda: a.add_(row)).values()
    assert inplace.bytes == (128 + 16 + 128) * F32  # self is read and written
    expanded = row.expand(8, 16)  # stride 0: 16 distinct elements, not 128
    (add2,) = _counted(lambda: expanded + a).values()
    assert add2.bytes == (16 + 128 + 128) * F32


def test_views_move_nothing_and_indexing_reads_what_it_gathers():
    a = torch.randn(8, 16)
    ops = _counted(lambda: (a.view(-1), a.t(), a.transpose(0, 1), a.unsqueeze(0), a.detach()))
    assert all(t.bytes == 0 and t.flops == 0 for t in ops.values())
    table, idx = torch.arange(1000), torch.tensor([1, 5, 7])
    (index,) = _counted(lambda: table[idx]).values()
    assert index.bytes == 3 * 8 + 3 * 8 + 3 * 8 and index.flops == 0  # 3 gathered, 3 indices, 3 written
    z = torch.empty(8, 16)
    (copy,) = _counted(lambda: z.copy_(a)).values()
    assert copy.bytes == 2 * 128 * F32  # copy_ reads its source, not the tensor it overwrites


def test_cpu_fused_attention_flops_counted_where_flop_counter_sees_none():
    """flop_counter has no formula for the CPU's fused attention kernel (the 12LHQT gap of
    test_model.test_flop_formula_against_flop_counter); the counter uses the CUDA kernels' formula."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count

    B, H, T, D = 2, 2, 8, 4
    q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))

    def fwd_bwd():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()

    ops = _counted(fwd_bwd)
    fwd = ops["aten::_scaled_dot_product_flash_attention_for_cpu"]
    bwd = ops["aten::_scaled_dot_product_flash_attention_for_cpu_backward"]
    assert fwd.flops == 4 * B * H * T * T * D  # QK^T and PV: the model's 12LHQT counts 4 of its 12 here
    assert bwd.flops == sdpa_backward_flop_count((B, H, T, D), (B, H, T, D), (B, H, T, D), (B, H, T, D))
    assert fwd.flops_floor == 0 and bwd.bytes > 0
    with FlopCounterMode(display=False) as fc:
        fwd_bwd()
    assert fc.get_total_flops() == 0  # what flop_counter alone would say


# --- one real counted step ----------------------------------------------------------------------------


def _trainer(dataset) -> Trainer:
    cfg = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16)
    trainer = Trainer(cfg, TrainConfig(max_iters=10), torch.device("cpu"), "fp32", "off", 4, dataset)
    trainer.train_step(0)
    return trainer


def test_count_step_per_category_and_leaves_the_trainer_as_it_was(shakespeare):
    trainer = _trainer(shakespeare)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    counts = count_step(trainer, 1)
    cats = counts["categories"]
    tokens, c = 4 * 16, 32
    linear_params = 12 * c * c + c * trainer.model.config.vocab_size  # 1 block + the tied lm_head
    assert cats["matmul"]["flops"] == 6 * tokens * linear_params  # forward 2x, backward 4x
    assert cats["attention"]["flops"] > 0 and cats["attention"]["flops_floor"] == 0
    for cat in ("matmul", "attention", "elementwise_norm", "optimizer", "data"):
        assert cats[cat]["bytes"] > 0 and cats[cat]["ops"] > 0, cat
    assert cats["other"]["bytes"] < 1000  # views and metadata ops move nothing
    # the optimizer reads every parameter, its gradient and both moments at least once
    n_params = sum(p.numel() for p in trainer.model.parameters())
    assert cats["optimizer"]["bytes"] >= 4 * n_params * F32
    assert counts["top_ops"][0]["bytes"] >= counts["top_ops"][-1]["bytes"]
    assert not counts["uncounted_ops"]
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert trainer.marks is False and not trainer.compiled
    json.dumps(counts)


# --- classification on synthetic figures at each side of the ridge --------------------------------

PEAK, BW = 100e9, 10e9  # ridge at 10 FLOP/byte


@pytest.mark.parametrize(
    ("intensity", "flops_per_s", "bound"),
    [
        (1.0, 8e9, "memory"),  # below the ridge at 80% of the bandwidth roof
        (100.0, 80e9, "compute"),  # above the ridge at 80% of the compute roof
        (100.0, 5e9, "overhead"),  # above the ridge, far below it
        (1.0, 0.5e9, "overhead"),  # below the ridge, at 5% of the bandwidth
        (
            10.0,
            NEAR_ROOF * 100e9 * 1.01,
            "compute",
        ),  # on the ridge: both fractions equal, just above NEAR_ROOF
        (0.05, 0.4e9, "memory"),  # 8 GB/s at 0.05 FLOP/byte
    ],
)
def test_classification_each_side_of_the_ridge(intensity, flops_per_s, bound):
    got, fc, fm = classify(flops_per_s, flops_per_s / intensity, PEAK, BW)
    assert got == bound
    assert fc == pytest.approx(flops_per_s / PEAK) and fm == pytest.approx(flops_per_s / intensity / BW)


def test_classification_without_a_roof():
    assert classify(1e9, 1e8, None, BW)[0] is None  # 1% of bandwidth, compute roof unknown: cannot say
    assert classify(1e9, 9e9, None, BW)[0] == "memory"  # near the roof it knows
    assert classify(1e9, 1e8, None, None)[0] is None


def test_measured_roof_preferred():
    roofs = [{"value": 150e9, "source": "spec"}, {"value": 60e9, "source": "measured"}, {"value": None}]
    assert pick_roof(roofs)["source"] == "measured"
    assert pick_roof([{"value": 0, "source": "measured"}]) is None


def _counts(**cats) -> dict:
    """Synthetic counted step: {cat: (flops, bytes)}."""
    return {
        "iter": 3,
        "categories": {
            c: {"flops": f, "flops_floor": 0, "bytes": b, "ops": 10} for c, (f, b) in cats.items()
        },
        "top_ops": [],
    }


ROOFS = {
    "compute": [{"value": 150e9, "source": "spec", "label": "fp32 peak (spec)"},
                {"value": PEAK, "source": "measured", "label": "fp32 matmul (measured)"}],
    "memory": [{"value": BW, "source": "measured", "kind": "triad", "label": "STREAM triad (measured)"}],
}  # fmt: skip
# per step: matmul 80 GFLOP in 1 s (compute), elementwise 8 GB in 1 s (memory), optimizer 0.1 GB in 1 s
COUNTS = _counts(matmul=(80e9, 1e9), elementwise_norm=(0.5e9, 8e9), optimizer=(0.01e9, 0.1e9), data=(0, 1e3))
MS = {"matmul": 1000.0, "elementwise_norm": 1000.0, "optimizer": 1000.0, "data": 0.0, "other": 500.0}


def test_roofline_figures_and_bounds():
    rl = roofline(MS, 3500.0, COUNTS, ROOFS, "host", compiled=False)
    cats = rl["categories"]
    assert rl["compute_roof"]["source"] == "measured" and rl["ridge_flop_per_byte"] == pytest.approx(10)
    assert cats["matmul"]["intensity"] == pytest.approx(80) and cats["matmul"][
        "flops_per_s"
    ] == pytest.approx(80e9)
    assert [cats[c]["bound"] for c in ("matmul", "elementwise_norm", "optimizer", "other")] == [
        "compute", "memory", "overhead", "overhead",
    ]  # fmt: skip
    assert cats["other"]["bound_basis"] == "remainder"
    assert cats["data"]["bound"] is None and cats["data"]["bound_basis"] == "no_time"
    assert cats["elementwise_norm"]["bytes_per_s"] == pytest.approx(8e9)
    assert rl["bound_fraction"] == pytest.approx(
        {"compute": 1 / 3.5, "memory": 1 / 3.5, "overhead": 1.5 / 3.5, "unknown": 0}
    )


def test_roofline_in_views_where_time_does_not_match_the_counted_ops():
    compiled = roofline(MS, 3500.0, COUNTS, ROOFS, "host", compiled=True)["categories"]
    assert compiled["elementwise_norm"]["bound"] is None  # fused: the eager bytes are not the kernels'
    assert compiled["other"]["bound_basis"] == "fused_by_compile"  # Inductor's CPU kernels are in other
    assert compiled["matmul"]["bound"] == "compute"
    cuda_compiled = roofline(MS, 3500.0, COUNTS, ROOFS, "device", compiled=True)["categories"]
    assert cuda_compiled["other"]["bound"] == "overhead"  # the device idle
    mps = roofline(MS, 3500.0, COUNTS, ROOFS, "host_async", compiled=False)
    assert all(c["bound"] is None for c in mps["categories"].values())
    assert mps["categories"]["matmul"]["intensity"] == pytest.approx(80)  # still placed on x
    unknown_bw = roofline(MS, 3500.0, COUNTS, {"compute": ROOFS["compute"]}, "host", compiled=False)
    assert unknown_bw["categories"]["optimizer"]["bound"] is None  # could be memory: bandwidth unknown
    assert unknown_bw["categories"]["matmul"]["bound"] == "compute"


def test_a_measured_roof_below_what_the_step_reached_gives_way_to_the_spec():
    fast = _counts(matmul=(120e9, 1e9), elementwise_norm=(0.5e9, 8e9))  # 120 GFLOP/s > the measured 100
    rl = roofline(MS, 3500.0, fast, ROOFS, "host", compiled=False)
    assert rl["compute_roof"]["source"] == "spec" and rl["contradicted_compute_roof"]["source"] == "measured"
    assert rl["categories"]["matmul"]["fraction_of_compute_roof"] == pytest.approx(120 / 150)
    assert rl["ridge_flop_per_byte"] == pytest.approx(15)
    only_measured = {"compute": [ROOFS["compute"][1]], "memory": ROOFS["memory"]}
    kept = roofline(MS, 3500.0, fast, only_measured, "host", compiled=False)
    assert kept["compute_roof"]["source"] == "measured" and kept["contradicted_compute_roof"] is None
    assert roofline(MS, 3500.0, COUNTS, ROOFS, "host", compiled=False)["contradicted_compute_roof"] is None


# --- the roofs: measured once per device, reused from hwinfo --measure ------------------------------


def _stream(calls):
    def measure(device, llc_bytes=None):
        calls.append((device, llc_bytes))
        return {"copy_bytes_per_s": 9e9, "triad_bytes_per_s": 10e9, "array_bytes": 2**27}

    return measure


def _matmul(calls):
    def measure(device, dtype):
        calls.append((device, dtype))
        return {"flops_per_s": 60e9, "n": 1024, "repeats": 5}

    return measure


HW = {"cpu": {"torch_threads": 2}, "devices": [{"device": "cpu", "llc_bytes": 32 * 2**20, "peaks": {}}]}
PEAK_SPEC = {"value": 150e9, "source": "spec", "detail": "2 cores x ..."}


def test_roof_meter_measures_once_per_device_and_threads():
    bw_calls, mm_calls = [], []
    meter = RoofMeter(HW, _stream(bw_calls), _matmul(mm_calls))
    roofs = meter.roofs("cpu", "fp32", PEAK_SPEC, threads=2)
    meter.roofs("cpu", "fp32", PEAK_SPEC, threads=2)
    assert bw_calls == [("cpu", 32 * 2**20)] and mm_calls == [("cpu", "fp32")]
    assert [r["source"] for r in roofs["compute"]] == ["spec", "measured"]
    assert [r.get("kind") for r in roofs["memory"]] == ["triad", "copy"]
    assert "2 threads" in roofs["memory"][0]["detail"]
    meter.roofs("cpu", "fp32", PEAK_SPEC, threads=1)  # another thread count is another measurement
    assert len(bw_calls) == 2 and len(mm_calls) == 2


def test_roof_meter_reuses_hwinfo_measure_and_survives_a_failed_measurement():
    hw = {
        "cpu": {"torch_threads": 2},
        "devices": [{
            "device": "cuda:0", "llc_bytes": 50 * 2**20,
            "memory_bandwidth": {"value": 3.35e12, "source": "spec", "detail": "H100 SXM: 3.35 TB/s",
                                 "stream": {"copy_bytes_per_s": 2.9e12, "triad_bytes_per_s": 3.0e12}},
            "peaks": {"bf16": {"value": 989e12, "source": "spec", "measured": 700e12}},
        }],
    }  # fmt: skip

    def broken(*a, **k):
        raise RuntimeError("no")

    roofs = RoofMeter(hw, broken, broken).roofs("cuda", "bf16", {"value": 989e12, "source": "spec"})
    assert [(r["source"], r["value"]) for r in roofs["compute"]] == [("spec", 989e12), ("measured", 700e12)]
    assert [(r["source"], r.get("kind")) for r in roofs["memory"]] == [
        ("spec", None),
        ("measured", "triad"),
        ("measured", "copy"),
    ]
    nothing = RoofMeter({}, broken, broken).roofs("cpu", "fp32", None)
    assert nothing == {"compute": [], "memory": []}


def test_bandwidth_measurement_is_plausible_on_this_cpu():
    """The real STREAM measurement through the meter (a wide bound: a loaded shared machine must pass)."""
    torch.set_num_threads(torch.get_num_threads())
    roofs = RoofMeter({}, measure_matmul=_matmul([])).roofs("cpu", "fp32", None)
    triad, copy = (r["value"] for r in roofs["memory"])
    assert 2e8 < triad < 2e12 and 2e8 < copy < 2e12
    assert "STREAM triad" in roofs["memory"][0]["detail"]


# --- the report: words and plot data from the numbers --------------------------------------------------


def _profile(device="cpu", view="host", batch=12, counts=COUNTS, ms=MS, compiled=False, **extra) -> dict:
    step = sum(ms.values())
    return {
        "schema": "devicebench-profile/2", "device": device, "device_type": device.split(":")[0], "view": view,
        "batch_size": batch, "compiled": compiled, "fused_adamw": False,
        "mean": {"step_ms": step, "ms": ms, "fraction": {c: v / step for c, v in ms.items()}},
        "roofline": roofline(ms, step, counts, ROOFS, view, compiled), **extra,
    }  # fmt: skip


def _results(tmp_path, profiles: dict[str, dict]):
    synthetic.write_sweep(tmp_path)
    for run_id, prof in profiles.items():
        device = prof["device"]
        rd = synthetic.write_run(tmp_path, run_id, device=device, batch_size=prof["batch_size"])
        atomic_write_json(rd / "profile.json", {**prof, "run_id": run_id})
    return load_results(tmp_path)


def test_findings_say_what_bounds_the_step_with_the_figures(tmp_path):
    results = _results(tmp_path, {"cpu-b12": _profile()})
    (f,) = [f for f in diagnose(results) if f.kind == "roofline"]
    cats = f.evidence["categories"]
    assert f.evidence["ridge_flop_per_byte"] == pytest.approx(10)
    assert f.evidence["compute_roof"]["source"] == f.evidence["memory_roof"]["source"] == "measured"
    elt, mm = cats["elementwise_norm"], cats["matmul"]
    assert elt["share"] == pytest.approx(2 / 7) and elt["bytes_per_s"] == pytest.approx(8e9)
    assert elt["intensity"] == pytest.approx(0.0625) and elt["of_roof"] == pytest.approx(0.8)
    assert elt["flops_per_s"] is None and elt["lever"] == "fuse_elementwise"
    assert mm["flops_per_s"] == pytest.approx(80e9) and mm["intensity"] == pytest.approx(80)
    assert mm["of_roof"] == pytest.approx(0.8) and mm["bound"] == "compute"
    assert cats["optimizer"]["lever"] == "fused_adamw"
    assert f.evidence["contradicted_compute_roof"] is None
    assert f.severity == "info"
    assert f.evidence["categories"]["elementwise_norm"]["bound"] == "memory"
    assert json.loads(json.dumps(f.to_dict()))["evidence"]["ridge_flop_per_byte"] == pytest.approx(10)


def test_a_contradicted_measured_roof_is_said(tmp_path):
    prof = _profile(counts=_counts(matmul=(120e9, 1e9), elementwise_norm=(0.5e9, 8e9)))
    (f,) = [f for f in diagnose(_results(tmp_path, {"cpu-b64": prof})) if f.kind == "roofline"]
    low = f.evidence["contradicted_compute_roof"]
    assert low["value"] == pytest.approx(100e9) and low["source"] == "measured"
    assert f.evidence["compute_roof"]["source"] == "spec" and f.evidence["compute_roof"][
        "value"
    ] == pytest.approx(150e9)
    assert f.evidence["ridge_flop_per_byte"] == pytest.approx(15)


def test_launch_bound_cuda_step_gets_the_cuda_graphs_lever(tmp_path):
    ms = {"matmul": 10.0, "elementwise_norm": 10.0, "optimizer": 5.0, "data": 0.5, "other": 74.5}
    counts = _counts(matmul=(1e8, 1e7), elementwise_norm=(1e6, 1e7), optimizer=(1e6, 1e7), data=(0, 1e3))
    prof = _profile("cuda:0", "device", 12, counts, ms)
    results = _results(tmp_path, {"cuda-b12": prof})
    (f,) = [f for f in diagnose(results) if f.kind == "roofline"]
    assert f.evidence["lever"] == "cuda_graphs" and f.evidence["top_category"]["name"] == "other"
    assert f.evidence["categories"]["other"]["bound"] == "overhead"
    assert f.severity == "warning" and f.evidence["bound_fraction"]["overhead"] > 0.7


def test_plot_data_per_device_and_page_section(tmp_path):
    results = _results(tmp_path, {"cpu-b12": _profile(batch=12), "cpu-b64": _profile(batch=64)})
    (dev,) = device_rooflines(results, list(results.profiles))
    assert dev.runs == ["cpu-b12", "cpu-b64"]
    assert {r["source"] for r in dev.compute} == {"spec", "measured"} and len(dev.memory) == 1
    placed = {(p.run, p.category) for p in dev.points}
    assert ("cpu-b12", "matmul") in placed and ("cpu-b64", "elementwise_norm") in placed
    assert not any(p.category == "other" for p in dev.points)  # no FLOPs: not on the plot
    page = render_html(results, diagnose(results))
    assert 'id="roofline"' in page and 'id="plot-roofline-0"' in page and "% of its roof" in page
    assert "fusing them (torch.compile)" in page  # each category's lever, in words


def test_a_damaged_or_old_roofline_reads_as_absent(tmp_path):
    bad = _profile()
    bad["roofline"]["categories"]["matmul"] = {"flops": "lots", "bound": "fast", "intensity": -3}
    bad["roofline"]["roofs"] = {"compute": "x", "memory": [None, {"value": "1"}]}
    rl = roofline_of(bad)
    assert rl["categories"]["matmul"]["flops"] is None and rl["categories"]["matmul"]["bound"] is None
    assert rl["roofs"] == {"compute": [], "memory": []}
    assert roofline_of({"roofline": "nonsense"}) is None and roofline_of({}) is None
    absurd = _profile()
    absurd["roofline"]["categories"]["matmul"].update(
        intensity=1e300, flops_per_s=1e308, fraction_of_compute_roof=1e300
    )
    absurd["roofline"]["roofs"]["memory"][0]["value"] = 1e-300
    assert roofline_of(absurd)["categories"]["matmul"]["intensity"] is None
    assert roofline_of(absurd)["roofs"]["memory"] == []
    results = _results(
        tmp_path, {"cpu-bad": bad, "cpu-old": {**_profile(), "roofline": None}, "cpu-absurd": absurd}
    )
    findings = [f for f in diagnose(results) if f.kind == "roofline"]
    assert [results.label(f.runs[0]) for f in findings] == ["cpu-absurd", "cpu-bad"]
    absurd_mm = findings[0].evidence["categories"]["matmul"]
    assert (
        absurd_mm["intensity"] is None and absurd_mm["flops_per_s"] is None
    )  # the absurd figures are dropped
    assert absurd_mm["share"] == pytest.approx(2 / 7)  # what is left is kept
    render_html(results, diagnose(results))


def test_ops_that_could_not_be_counted_reach_profile_json():
    """docs/profile-schema.md promises roofline.uncounted_ops: an op left out of the bytes is said."""
    counts = {**COUNTS, "uncounted_ops": {"aten::weird": "RuntimeError: no meta kernel"}}
    assert roofline(MS, 3500.0, counts, ROOFS, "host", compiled=False)["uncounted_ops"] == {
        "aten::weird": "RuntimeError: no meta kernel"
    }
    assert roofline(MS, 3500.0, COUNTS, ROOFS, "host", compiled=False)["uncounted_ops"] == {}


def test_the_roofline_finding_says_which_ops_were_left_out(tmp_path):
    counts = {**COUNTS, "uncounted_ops": {"aten::weird": "RuntimeError", "aten::odd\x1b[2J": "x"}}
    (f,) = [
        f for f in diagnose(_results(tmp_path, {"cpu-b12": _profile(counts=counts)})) if f.kind == "roofline"
    ]
    assert "\x1b" not in f.sentence and f.evidence["uncounted_ops"] == ["aten::odd??2J", "aten::weird"]
    assert ("uncounted_ops", "aten::odd??2J, aten::weird") in words.details(f)
    (whole,) = [
        f for f in diagnose(_results(tmp_path / "b", {"cpu-b12": _profile()})) if f.kind == "roofline"
    ]
    assert whole.evidence["uncounted_ops"] == []
