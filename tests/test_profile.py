"""bench.profile: the per-category breakdown of a train step under torch.profiler (tiny configs, CPU)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch

from bench.config import TrainConfig
from bench.profile import CATEGORIES, SCHEMA, profile_steps
from bench.profile.trace import TraceEvent
from bench.train import Trainer
from model.gpt import GPTConfig

_ROOT = Path(__file__).resolve().parents[1]


def _trainer(dataset, n_embd: int = 32, device: str = "cpu", warmup_steps: int = 3) -> Trainer:
    trainer = Trainer(
        GPTConfig(n_layer=1, n_head=2, n_embd=n_embd, block_size=16),
        TrainConfig(max_iters=10),
        torch.device(device),
        "fp32",
        "off",
        batch_size=4,
        dataset=dataset,
    )
    for it in range(warmup_steps):
        trainer.train_step(it)
    return trainer


@pytest.fixture(scope="module")
def one_thread():
    # One intra-op thread: on a busy 2-core machine, waits for descheduled OpenMP workers land in
    # whichever op is running and blur the shares.
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def tiny_profile(shakespeare, one_thread):
    trainer = _trainer(shakespeare)
    return profile_steps(trainer, n_steps=3, start_iter=3, unprofiled_ms_median=5.0)


def test_every_category_present_and_sums_to_the_step(tiny_profile):
    p = tiny_profile
    assert p["schema"] == SCHEMA
    assert p["n_steps"] == len(p["steps"]) == 3
    assert [s["iter"] for s in p["steps"]] == [4, 5, 6]
    for row in [*p["steps"], p["mean"]]:
        ms = row["ms"]
        assert set(ms) == set(CATEGORIES) == set(row["fraction"])
        assert all(v >= 0.0 for v in ms.values())
        for cat in ("matmul", "attention", "elementwise_norm", "optimizer", "data"):
            assert ms[cat] > 0.0, cat
        assert sum(ms.values()) == pytest.approx(row["step_ms"], rel=0.10)
        assert sum(row["fraction"].values()) == pytest.approx(1.0, rel=0.10)
        # Self times are exclusive: the ops of forward and backward fit in those phases' wall time.
        ops = ms["matmul"] + ms["attention"] + ms["elementwise_norm"]
        assert ops <= 1.02 * (row["phases_ms"]["forward"] + row["phases_ms"]["backward"])
        # The synchronised wall clock holds the profiler's step marker (and a burst of load may add to it)
        assert row["wall_ms"] >= 0.9 * row["step_ms"] - 0.5
    # ... and they measure the same step: the closest of the three agree (one burst cannot spoil all three)
    assert min(s["wall_ms"] / s["step_ms"] for s in p["steps"]) < 1.5


def test_matmul_flops_match_the_model(tiny_profile):
    # Every Linear (4 per block, and the tied lm_head) does a forward and two backward matmuls.
    c = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16)
    tokens = 4 * c.block_size
    linear_params = c.n_layer * 12 * c.n_embd * c.n_embd + c.vocab_size * c.n_embd
    assert tiny_profile["mean"]["matmul_flops"] == 6 * tokens * linear_params
    assert tiny_profile["matmul_flops_per_s"] > 0
    assert tiny_profile["profiler_overhead"] == pytest.approx(tiny_profile["wall_ms_median"] / 5.0)


def test_result_is_strict_json(tiny_profile, tmp_path):
    import json

    from bench.results import atomic_write_json

    path = tmp_path / "profile.json"
    atomic_write_json(path, tiny_profile)
    back = json.loads(path.read_text())
    assert back["mean"]["ms"] == pytest.approx(tiny_profile["mean"]["ms"])
    assert back["device"] == "cpu" and back["view"] == "host" and "sentence" not in back


def _median_share(profile: dict, category: str) -> float:
    return statistics.median(s["fraction"][category] for s in profile["steps"])


def test_wider_model_grows_the_matmul_share(shakespeare, one_thread):
    narrow = profile_steps(_trainer(shakespeare, n_embd=32), n_steps=5)
    wide = profile_steps(_trainer(shakespeare, n_embd=256), n_steps=5)
    assert _median_share(wide, "matmul") > 1.5 * _median_share(narrow, "matmul")
    assert wide["mean"]["matmul_flops"] > 30 * narrow["mean"]["matmul_flops"]


def test_profiling_leaves_the_trainer_as_it_was(shakespeare):
    profiled, untouched = _trainer(shakespeare), _trainer(shakespeare)
    before = {k: v.clone() for k, v in profiled.model.state_dict().items()}
    profile_steps(profiled, n_steps=2, start_iter=3)
    for k, v in profiled.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in profiled.model.parameters())
    # Same batches and same updates afterwards as a trainer that was never profiled.
    for it in (3, 4):
        _, loss_p, _ = profiled.train_step(it)
        _, loss_u, _ = untouched.train_step(it)
        assert loss_p.item() == loss_u.item()


def test_bad_step_count(shakespeare):
    with pytest.raises(ValueError, match="n_steps"):
        profile_steps(_trainer(shakespeare, warmup_steps=0), n_steps=0)


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("aten::mm", "matmul"),
        ("aten::addmm", "matmul"),
        ("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "attention"),
        ("aten::native_layer_norm_backward", "elementwise_norm"),
        ("aten::gelu", "elementwise_norm"),
        ("aten::view", "other"),
        ("autograd::engine::evaluate_function: MmBackward0", "other"),
        ("MmBackward0", "other"),
    ],
)
def test_host_op_categories(name, category):
    from bench.profile.analysis import op_category

    assert op_category(name) == category


@pytest.mark.parametrize(
    ("kernel", "category"),
    [
        ("ampere_sgemm_128x64_nn", "matmul"),
        ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "matmul"),
        ("nvjet_tst_128x64_64x8_1x2_h_bz_TNT", "matmul"),
        ("fmha_cutlassF_f32_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel)", "attention"),
        ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64>>", "attention"),
        (
            "void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl>",
            "elementwise_norm",
        ),
        ("triton_poi_fused_add_native_layer_norm_0", "elementwise_norm"),
    ],
)
def test_kernel_categories(kernel, category):
    from bench.profile.analysis import kernel_category

    assert kernel_category(kernel.lower()) == category


@pytest.mark.gpu
def test_cuda_profile_counts_kernels(shakespeare):
    p = profile_steps(_trainer(shakespeare, device="cuda"), n_steps=3)
    assert p["view"] == "device"
    avg = p["mean"]
    assert avg["kernel_launches_per_step"] > 0
    assert avg["mean_gap_us"] is not None and avg["mean_gap_us"] >= 0
    assert 0.0 <= avg["device_idle_fraction"] <= 1.0
    assert avg["ms"]["matmul"] > 0 and avg["ms"]["optimizer"] > 0
    assert sum(avg["ms"].values()) == pytest.approx(avg["step_ms"], rel=0.10)
    assert p["mean"]["kernel_launches_per_step"] > 10


def _event(name, start, end, device="CPU", kind="cpu_op", eid=0):
    return TraceEvent(name=name, start=start, end=end, on_device=device != "CPU", activity=kind, id=eid,
                      self_us=end - start, is_annotation=kind == "user_annotation")  # fmt: skip


def test_cuda_device_view_from_events():
    """The device view's bookkeeping on a hand-made trace (the GPU test checks torch's real events)."""
    from bench.profile.analysis import breakdown

    mark = "user_annotation"
    events = [
        _event("devicebench.step", 0, 1000, kind=mark),
        _event("devicebench.data", 0, 50, kind=mark),
        _event("devicebench.forward", 50, 300, kind=mark),
        _event("devicebench.backward", 300, 600, kind=mark),
        _event("devicebench.clip", 600, 650, kind=mark),
        _event("devicebench.optimizer", 650, 700, kind=mark),
        _event("devicebench.step", 2000, 2100, kind=mark),  # a second, empty step
    ]
    launches = [  # (host launch time, id, kernel, device start, device end)
        (10, 1, "Memcpy HtoD (Pinned -> Device)", 20, 25),
        (60, 2, "sm90_xmma_gemm_f32f32_tf32f32_f32_nn_n", 100, 200),
        (70, 3, "void pytorch_flash::flash_fwd_kernel<>", 210, 260),
        (80, 4, "void at::native::vectorized_elementwise_kernel<>", 270, 280),
        (310, 5, "ampere_sgemm_128x64_nn", 400, 500),
        (660, 6, "void multi_tensor_apply_kernel<>", 800, 850),
    ]
    for host, eid, kernel, a, b in launches:
        events.append(_event("cudaLaunchKernel", host, host + 5, kind="cuda_runtime", eid=eid))
        kind = "gpu_memcpy" if kernel.startswith("Memcpy") else "kernel"
        events.append(_event(kernel, a, b, device="CUDA", kind=kind, eid=eid))
    # A kernel whose launch is not in the trace: placed by its start time, categorised by its name.
    events.append(_event("void at::native::reduce_kernel<>", 900, 910, device="CUDA", kind="kernel", eid=99))
    steps = breakdown(sorted(events, key=lambda e: e.start), device_view=True)
    assert len(steps) == 2
    s = steps[0]
    assert s["ms"] == pytest.approx(
        {
            "matmul": 0.2,
            "attention": 0.05,
            "elementwise_norm": 0.02,
            "optimizer": 0.05,
            "communication": 0.0,
            "data": 0.05,
            "other": 1.0 - 0.37,
        }  # fmt: skip
    )
    assert s["kernel_launches"] == 6 and s["memcpy_memset"] == 1
    assert s["device_busy_ms"] == pytest.approx(0.325)
    assert s["mean_gap_us"] == pytest.approx((75 + 10 + 10 + 120 + 300 + 50) / 6)
    assert s["device_idle_fraction"] == pytest.approx(1 - 0.325)
    assert steps[1]["kernel_launches"] == 0 and steps[1]["mean_gap_us"] is None
    assert steps[1]["ms"]["other"] == pytest.approx(0.1)


def test_reading_a_profile_needs_no_torch():
    import subprocess
    import sys

    code = "import sys, bench.profile; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": "."}, cwd=_ROOT)


def test_kineto_start_stop_notices_are_dropped_and_other_stderr_kept():
    """torch 2.13's libkineto prints 'USDT:... profiler_start' / 'profiler_stop' to fd 2 on every profile,
    whatever KINETO_LOG_LEVEL says; a profiled run drops exactly those and delays, never loses, the rest."""
    import subprocess
    import sys

    code = (
        "import os, torch\nfrom torch.profiler import profile\nfrom bench.profile.capture import quiet_kineto\n"
        "with quiet_kineto():\n"
        "    with profile() as p:\n"
        "        torch.ones(3).sum()\n"
        "    os.write(2, b'a warning from a step\\n')\n"
        "print('done')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "profiler_start" not in done.stderr and "profiler_stop" not in done.stderr
    assert "a warning from a step" in done.stderr
