"""`bench profile TRACE` on real public profiler traces (tests/data/traces-wild, SOURCES.md there).

Each expected figure is worked out by hand from the trace text, the reason beside it: which kernel is a GEMM
or attention and why (the op that launched it), the kernel time, the step window, the idle share.
Hostile inputs are made in the test from the real traces.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.profile import fromtrace
from bench.profile.analysis import kernel_category
from bench.profile.kineto import TraceError, read_trace
from bench.results import read_profile, read_run

WILD = Path(__file__).resolve().parent / "data" / "traces-wild"
A100 = WILD / "hta_backward_thread.json"
MI300X_GEMM = WILD / "tracelens_mi300x_gemm_excerpt.json"
MI300X_SDPA = WILD / "tracelens_mi300x_sdpa_excerpt.json"
V100_2021 = WILD / "kineto_v100_2021_excerpt.json"
MI300X_ADD = WILD / "tracelens_mi300x_elementwise_excerpt.json"
UNKNOWN = {"value": None, "source": "unknown", "detail": "test"}


def _profile(path: Path, marker: str | None = None, peak: dict | None = None) -> dict:
    trace = read_trace(path)
    return fromtrace.profile_trace(trace, peak or UNKNOWN, fromtrace._dtype(trace), marker)


def test_a100_backward_thread_gemm_is_a_matmul_by_its_launching_op():
    """HTA's backward-thread trace: one step (ProfilerStep#552, 413451 us). The only kernel,
    cutlass_80_tensorop_s1688gemm (45 us), was launched (cudaLaunchKernel, correlation 2131433) on the
    autograd thread 24922 inside aten::mm under AddmmBackward0: a matmul, found by its op, not its name.
    Idle share of the step: 1 - 45 / 413451. HTA's definition over one kernel: 0."""
    p = _profile(A100)
    assert [s["iter"] for s in p["steps"]] == [552]
    assert p["mean"]["step_ms"] == pytest.approx(413.451)
    assert p["mean"]["ms"]["matmul"] == pytest.approx(0.045)
    assert p["mean"]["ms"]["elementwise_norm"] == 0 and p["mean"]["ms"]["attention"] == 0
    assert p["trace"]["kernels_categorised_by_launching_op"] == 1
    assert p["trace"]["kernels_categorised_by_name"] == 0
    assert p["mean"]["kernel_launches_per_step"] == 1
    assert p["mean"]["device_idle_fraction"] == pytest.approx(1 - 45 / 413451)
    assert p["trace"]["hta_idle_fraction"] == 0
    # fp32 inputs ("float") on a TF32 tensor-core GEMM (tensorop_s1688): the dtype is tf32
    assert p["dtype"] == "tf32"
    # aten::mm [2048, 2048] x [2048, 256]: 2*M*N*K FLOPs in 45 us
    assert p["mean"]["matmul_flops"] == 2 * 2048 * 2048 * 256
    assert p["matmul_flops_per_s"] == pytest.approx(2 * 2048 * 2048 * 256 / 45e-6)


def test_mi300x_tensile_gemm_and_its_split_k_reduction_are_matmul():
    """TraceLens' MI300X GEMM trace (excerpt: one aten::mm of bf16 [256, 131072] x [131072, 512]). The op
    launched two kernels through hipExtModuleLaunchKernel: Tensile's Cijk_Ailk_Bljk_BBS_BH_... (1085 us)
    and its split-K reduction Cijk_B_PostGSU2 (5 us). The kernels carry no correlation id; the ac2g flow
    arrows (ids 25, 26) link them to their launches, which lie inside aten::mm: both matmul by their op.
    No ProfilerStep: read whole, the window runs from the op's start (903147) to the last kernel's end
    (904267), 1120 us, of which 1090 us busy."""
    with pytest.raises(TraceError, match="--step-marker NAME .* or --whole-trace"):
        _profile(MI300X_GEMM)
    p = _profile(MI300X_GEMM, fromtrace.WHOLE_TRACE)
    assert p["mean"]["ms"]["matmul"] == pytest.approx(1.090)
    assert p["trace"]["kernels_categorised_by_launching_op"] == 2
    assert p["mean"]["step_ms"] == pytest.approx(1.120)
    assert p["mean"]["device_idle_fraction"] == pytest.approx(1 - 1090 / 1120)
    assert p["dtype"] == "bf16"
    assert p["trace"]["device"]["runtime"] == "ROCm"
    assert p["mean"]["matmul_flops"] == 2 * 256 * 131072 * 512
    # the name rules alone (a kernel whose launch is not in the trace) also call Tensile's kernels GEMMs
    assert kernel_category("cijk_b_postgsu2") == "matmul"


def test_mi300x_aotriton_flash_attention_is_attention():
    """TraceLens' MI300X SDPA trace (excerpt: the first of ten calls). attn_fwd.kd (85232.206 us) was
    launched by hipModuleLaunchKernel (correlation 5) inside aten::_flash_attention_forward, inside
    aten::scaled_dot_product_attention: attention. The device is named by deviceProperties id 0 (the
    kernel's pid 0). FLOPs of SDPA: 4*B*H*Lq*Lk*D with q, k [1, 32, 32768, 128]."""
    p = _profile(MI300X_SDPA, fromtrace.WHOLE_TRACE)
    assert p["mean"]["ms"]["attention"] == pytest.approx(85.232206)
    assert p["mean"]["ms"]["matmul"] == 0
    assert p["trace"]["kernels_categorised_by_launching_op"] == 1
    window_us = 5888649824453.633 + 85232.206 - 5888649824171.422
    assert p["mean"]["step_ms"] == pytest.approx(window_us / 1e3)
    assert p["mean"]["device_idle_fraction"] == pytest.approx(1 - 85232.206 / window_us)
    assert p["device_name"] == "AMD Instinct MI300X"
    assert p["dtype"] == "bf16"
    flops = 4 * 1 * 32 * 32768 * 32768 * 128
    assert p["roofline"]["categories"]["attention"]["flops"] == flops
    assert p["roofline"]["categories"]["attention"]["flops_per_s"] == pytest.approx(flops / 85.232206e-3)


def test_mi300x_elementwise_add_is_elementwise_not_a_guess():
    """TraceLens' MI300X elementwise trace (excerpt: the first of ten fp32 adds of [8192, 8192]). The
    vectorized_elementwise_kernel<CUDAFunctor_add> (430.922 us) was launched by hipLaunchKernel
    (correlation 1) inside aten::add: elementwise/norm by its op. The window runs from the op's start to
    the kernel's end: 583.722 us, the device idle for the launch's 152.8 us before the kernel."""
    p = _profile(MI300X_ADD, fromtrace.WHOLE_TRACE)
    assert p["mean"]["ms"]["elementwise_norm"] == pytest.approx(0.430922)
    assert p["mean"]["ms"]["matmul"] == 0 and p["mean"]["ms"]["attention"] == 0
    assert p["trace"]["kernels_categorised_by_launching_op"] == 1
    window_us = 5888467279898.213 + 430.922 - 5888467279745.413
    assert p["mean"]["device_idle_fraction"] == pytest.approx(1 - 430.922 / window_us)
    assert p["dtype"] is None  # no matmul or attention: no dtype to take a peak for


def test_v100_2021_layout_training_step():
    """Kineto's V100 trace (torch 1.8 layout: Operator/Runtime/Kernel/Memcpy categories, "computeProperties";
    excerpt of its one step). ProfilerStep#2 is 13410 us. cuBLAS's gemmSN_TN_kernel (3 us, a small-N GEMM)
    was launched (cudaLaunchKernel, correlation 333) inside aten::mm inside aten::linear: matmul, by its op.
    The DataLoader's next batch (725 us) is data. The batch's Memcpy HtoD (1 us, launched with no op around
    it in the excerpt) keeps the device busy but is in no category. Idle: 1 - 4 / 13410 of the step; by
    HTA's definition (one step: every device event), 1 - 4 / (225278 - 224556)."""
    p = _profile(V100_2021)
    assert [s["iter"] for s in p["steps"]] == [2]
    assert p["mean"]["step_ms"] == pytest.approx(13.410)
    assert p["mean"]["ms"]["matmul"] == pytest.approx(0.003)
    assert p["mean"]["ms"]["data"] == pytest.approx(0.725)
    assert p["mean"]["ms"]["elementwise_norm"] == 0
    assert p["mean"]["kernel_launches_per_step"] == 1 and p["mean"]["memcpy_memset"] == 1
    assert p["trace"]["kernels_categorised_by_launching_op"] == 1
    assert p["mean"]["device_idle_fraction"] == pytest.approx(1 - 4 / 13410)
    assert p["trace"]["hta_idle_fraction"] == pytest.approx(1 - 4 / (225278 - 224556))
    assert p["device_name"] == "Tesla V100-DGXS-32GB"
    assert p["dtype"] is None  # torch 1.8 recorded no input types: the peak needs --peak-flops


def test_attention_ops_win_over_the_matmuls_inside_them_and_modules_do_not():
    """SDPA's math fallback runs bmm inside scaled_dot_product_attention: attention. An annotation named
    after an attention module holds the q/k/v projections: those stay matmul."""
    from bench.profile.analysis import stack_category

    math = [("aten::scaled_dot_product_attention", "cpu_op"), ("aten::_scaled_dot_product_attention_math", "cpu_op"),
            ("aten::bmm", "cpu_op")]  # fmt: skip
    assert stack_category(math) == "attention"
    module = [("nn.Module: CausalSelfAttention_0", "user_annotation"), ("aten::linear", "cpu_op"),
              ("aten::addmm", "cpu_op")]  # fmt: skip
    assert stack_category(module) == "matmul"
    backward = [("autograd::engine::evaluate_function: ScaledDotProductFlashAttentionBackward0", "cpu_op"),
                ("aten::_flash_attention_backward", "cpu_op")]  # fmt: skip
    assert stack_category(backward) == "attention"
    assert stack_category(
        [("Optimizer.step#AdamW.step", "user_annotation"), ("aten::_foreach_mul_", "cpu_op")]
    ) == ("optimizer")
    assert stack_category([("nccl:all_reduce", "user_annotation"), ("record_param_comms", "cpu_op")]) == (
        "communication"
    )
    assert stack_category([("_c10d_functional::all_to_all_single", "cpu_op")]) == "communication"
    assert stack_category([("CompiledFunction", "cpu_op")]) is None  # Triton kernels: their names decide


def test_cli_writes_a_results_directory_bench_report_reads_beside_a_cpu_run(tmp_path, capsys):
    """A user's GPU trace and a devicebench CPU run give one report."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fixtures import write_run, write_sweep

    out = tmp_path / "gpu"
    assert main(["profile", str(A100), "--peak-flops", "tf32=156T", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 steps, 413.45 ms mean step" in text and "matmul" in text
    (run_dir,) = (out / "runs").iterdir()
    run = read_run(run_dir)
    assert not run.warnings
    assert run.meta["source"] == "trace" and run.meta["dtype"] == "tf32"
    assert run.meta["peak_flops"]["source"] == "user"
    prof = read_profile(run_dir / "profile.json")
    assert prof["mean"]["ms"]["matmul"] == pytest.approx(0.045)
    cpu = write_sweep(tmp_path / "cpu")
    write_run(cpu)
    assert main(["report", str(cpu), str(out)]) == 0
    report = capsys.readouterr().out
    assert "trace-rank0" in report and "cpu-fp32-b12-eager" in report


def test_gzipped_trace_reads_the_same_and_a_truncated_one_is_a_stated_partial(tmp_path, capsys):
    gz = tmp_path / "t.pt.trace.json.gz"
    gz.write_bytes(gzip.compress(A100.read_bytes()))
    assert _profile(gz)["mean"]["ms"] == _profile(A100)["mean"]["ms"]
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(gz.read_bytes()[: len(gz.read_bytes()) * 2 // 3])
    trace = read_trace(cut)
    assert trace.truncated and "gzip" in trace.truncated
    assert 0 < trace.n_events < 7
    # the cut left the step but not the kernel: the trace is read as far as it goes, and says so
    code = main(["profile", str(cut)])
    err = capsys.readouterr().err
    assert "partial" in err
    assert code in (0, 2)


def test_truncated_json_text_keeps_the_events_before_the_cut(tmp_path):
    text = MI300X_SDPA.read_text()
    cut = tmp_path / "cut.json"
    cut.write_text(text[: text.index('"ph": "f", "id": 5')])  # ends inside the flow after the kernel
    trace = read_trace(cut)
    assert "ends inside its JSON text" in trace.truncated
    assert any(e.name == "attn_fwd.kd" for e in trace.events)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"not json at all", "is not JSON"),
        (b"\x00\x01\x02binary", "is not JSON"),
        (b'{"traceEvents": [{"ph": "X"', None),  # truncated before any whole event
        (b'{"schemaVersion": 1}', "has no traceEvents"),
        (b'{"traceEvents": [1, 2] ]}', "is not valid JSON"),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert main(["profile", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and err[-1].startswith("bench profile: error:")
    if message:
        assert message in err[-1]


def test_missing_file_and_directory_are_exit_2(tmp_path, capsys):
    assert main(["profile", str(tmp_path / "nope.json")]) == 2
    assert main(["profile", str(tmp_path)]) == 2
    assert main(["profile", str(A100), "--step-marker", "no_such_marker"]) == 2
    assert "no host event named no_such_marker" in capsys.readouterr().err


def test_cpu_only_trace_says_so_and_gives_the_host_view(tmp_path, capsys):
    """The A100 trace without its CUDA events, kernel and runtime launch (what the profiler writes without
    CUDA activity): the host view, op self times; the only op that computes, aten::mm (58 us), is matmul."""
    data = json.loads(A100.read_text())
    data["traceEvents"] = [e for e in data["traceEvents"] if e["cat"] not in ("kernel", "cuda_runtime")]
    cpu = tmp_path / "cpu_only.json"
    cpu.write_text(json.dumps(data))
    assert main(["profile", str(cpu)]) == 0
    captured = capsys.readouterr()
    assert "no device events (a CPU-only trace" in captured.err
    assert "host view" in captured.out
    p = _profile(cpu)
    assert p["view"] == "host"
    assert p["mean"]["ms"]["matmul"] == pytest.approx(0.058)


def test_bare_event_array_and_2021_layout_are_read(tmp_path):
    """Chrome's trace format allows a bare array; torch 1.8-1.9 wrote Operator/Runtime/Kernel categories."""
    data = json.loads(A100.read_text())
    old = {"cpu_op": "Operator", "cuda_runtime": "Runtime", "kernel": "Kernel", "user_annotation": "Operator"}
    events = [{**e, "cat": old[e["cat"]]} for e in data["traceEvents"]]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(events))
    p = _profile(bare)
    assert p["mean"]["ms"]["matmul"] == pytest.approx(0.045)


def test_many_dropped_events_are_streamed_not_held(tmp_path, monkeypatch):
    """Python-function events (most of a with_stack trace) are counted and dropped while reading: memory
    follows the kept events, not the file."""
    import tracemalloc

    from bench.profile import kineto

    monkeypatch.setattr(kineto, "CHUNK_CHARS", 1 << 16)  # 64 KiB buffers: the same streaming, a small file
    events = [
        {
            "ph": "X",
            "cat": "python_function",
            "name": f"model.py({i}): forward",
            "pid": 1,
            "tid": 1,
            "ts": i,
            "dur": 1,
        }
        for i in range(25_000)
    ]
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"traceEvents": events}))
    size = big.stat().st_size
    tracemalloc.start()
    trace = read_trace(big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert trace.n_events == 25_000 and trace.events == []
    assert trace.dropped == {"python_function": 25_000}
    bound = 6 * 2**16  # a few reading buffers, whatever the file's size
    assert size > 2 * bound
    assert peak < bound, f"peak {peak} bytes for a {size}-byte file"


def test_one_file_per_rank_and_the_peak_from_hwinfo(tmp_path, capsys):
    """Two traces give two runs in one results directory; --hwinfo (the machine that made them) gives the
    GPU's peak for the traces' dtype, labelled with where it came from."""
    hw = Path(__file__).resolve().parents[1] / "examples" / "nanogpt" / "desktop-hwinfo.json"
    out = tmp_path / "ranks"
    assert main(["profile", str(A100), str(V100_2021), "--hwinfo", str(hw), "--out", str(out)]) == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == [
        "trace-kineto_v100_2021_excerpt",
        "trace-rank0",
    ]  # by rank where the trace says, else by name
    meta = read_run(out / "runs" / "trace-rank0").meta
    assert meta["peak_flops"]["source"] in ("spec", "derived") and "hwinfo" in meta["peak_flops"]["detail"]
    err = capsys.readouterr().err
    # the V100 trace records no element type: no peak, said once, with what to pass
    assert "--peak-flops" in err


def test_bench_run_device_view_takes_the_category_of_the_launching_op():
    """`bench run --profile` (torch's events, devicebench's phase markers) uses the same rule: a kernel
    whose name says nothing is a matmul when aten::mm launched it; the optimizer phase still decides."""
    from bench.profile.analysis import breakdown
    from bench.profile.trace import TraceEvent

    def ev(name, a, b, kind, eid=0, device=False):
        return TraceEvent(name=name, start=a, end=b, on_device=device, activity=kind, id=eid, thread=1,
                          is_annotation=kind == "user_annotation")  # fmt: skip

    events = [
        ev("devicebench.step", 0, 1000, "user_annotation"),
        ev("devicebench.forward", 0, 500, "user_annotation"),
        ev("devicebench.optimizer", 500, 1000, "user_annotation"),
        ev("aten::mm", 10, 50, "cpu_op"),
        ev("cudaLaunchKernel", 20, 25, "cuda_runtime", eid=1),
        ev("vendor_kernel_v2", 100, 200, "kernel", eid=1, device=True),
        ev("aten::mm", 600, 650, "cpu_op"),
        ev("cudaLaunchKernel", 610, 615, "cuda_runtime", eid=2),
        ev("vendor_kernel_v2", 700, 720, "kernel", eid=2, device=True),
    ]
    (step,) = breakdown(sorted(events, key=lambda e: e.start), device_view=True)
    assert step["ms"]["matmul"] == pytest.approx(0.1)
    assert step["ms"]["optimizer"] == pytest.approx(0.02)
    assert step["ms"]["elementwise_norm"] == 0


PT_A100 = WILD / "particle_transformer_a100_runtime_only.json"


def test_a100_trace_of_runtime_calls_only_says_no_kernel_ran_not_cpu_only(capsys):
    """particle_transformer's A100-PCIE-40GB trace (whole file): the profiler recorded seven CUDA runtime
    calls (cudaGetDeviceCount ... cudaDeviceSynchronize), no op ("Op count": 0), no kernel, copy or memset.
    That is no CPU-only trace (CUDA activity was recorded): the line says no kernel ran. No ProfilerStep:
    exit 2 naming --whole-trace; read whole, one step from cudaGetDeviceCount's start (4884379014449.020)
    to cudaDeviceSynchronize's end (4884379028972.798 + 29.959): 14553.737 us, all of it `other`."""
    assert main(["profile", str(PT_A100)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "no kernel, copy or memset ran" in err[0] and "7 CUDA runtime calls" in err[0]
    assert "CPU-only" not in err[0]
    assert "--whole-trace" in err[1]
    p = _profile(PT_A100, fromtrace.WHOLE_TRACE)
    assert p["view"] == "host"
    assert p["mean"]["step_ms"] == pytest.approx(14.553737)
    assert p["mean"]["ms"]["other"] == pytest.approx(14.553737)
    assert sum(v for k, v in p["mean"]["ms"].items() if k != "other") == 0


def test_fbgemm_embedding_ops_and_kernels_are_not_matmuls():
    """HolisticTraceAnalysis' `trace_diff/test` trace (a V100 recommendation model, read from a snapshot, not
    committed) launches cub scans and FBGEMM's embedding kernels from `fbgemm::permute_sparse_features`,
    `fbgemm::bounds_check_indices`, `fbgemm::split_embedding_codegen_lookup_rowwise_adagrad_function`: the
    `gemm` inside the namespace FBGEMM made all of them matmul (222 kernels). An embedding lookup or a
    permute is no GEMM; the op's own name decides, and FBGEMM's names say no matmul. Kernel names below are
    as that trace records them."""
    from bench.profile.analysis import op_category, stack_category

    for op in (
        "fbgemm::permute_sparse_features",
        "fbgemm::bounds_check_indices",
        "fbgemm::asynchronous_complete_cumsum",
        "fbgemm::split_embedding_codegen_lookup_rowwise_adagrad_function",
        # its autograd node, as HTA's trace_diff/control trace records it
        "torch::autograd::CppNode<fbgemm_gpu::PermutePooledEmbsFunction<&fbgemm_gpu::permute_pooled_embs_gpu> >",
    ):
        assert op_category(op) != "matmul", op
        assert stack_category([(op, "cpu_op")]) != "matmul", op
    for kernel in (
        "void fbgemm_gpu::permute_2D_lengths_kernel<int>(int, int, int const*, int const*, int*)",
        "void fbgemm_gpu::_offsets_range_cuda_kernel<long>(long, long, long const*, long*)",
    ):
        assert kernel_category(kernel.lower()) == "elementwise_norm", kernel
    # a GEMM says so in its own name, whatever its namespace
    assert op_category("aten::addmm") == "matmul"
    assert kernel_category("volta_sgemm_128x32_nn") == "matmul"


def test_cudnn_convolution_helper_kernels_are_matmul_by_name_too():
    """On HTA's ns_resolution_trace and nccl_data traces (V100, A100; not committed) the kernels below are
    launched inside aten::cudnn_convolution, so their op makes them matmul (convolutions are implicit GEMMs);
    where no launch says (a CUDA-graph replay, a launch before the trace), the name rules must say the same.
    cuDNN's batch norm kernels stay elementwise/norm. Names as those traces record them (cut at 70 chars)."""
    for kernel in (
        "void cudnn::winograd_nonfused::winogradForwardData4x4<float, float>(cudnn::winogr",
        "void cask_cudnn_infer::computeOffsetsKernel<false, false>(cask_cudnn_infer::Compu",
        "cask_cudnn_train::computeWgradSplitKOffsetsKernel(cask_cudnn_train::ComputeSplitK",
        "void cudnn::cnn::reduce_wgrad_nchw_helper<float, float>(void*, void const*, float",
        "void cudnn::ops::nchwToNhwcKernel<float, float, float, false, true, (cudnnKernelD",
        "cudnn_infer_volta_scudnn_128x64_relu_medium_nn_v1",
        "void cudnn::detail::dgrad_engine<float, 512, 6, 5, 3, 3, 3, false>(int",
        "void wgrad_alg0_engine<float, 128, 6, 8, 3, 3, 5, false, 512>(int, int",
        "void cudnn::ops::scalePackedTensor_kernel<float, float>(long, float*, ",
        # cuDNN's FFT convolution, on HTA's critical_path/alexnet trace (inside aten::cudnn_convolution)
        "void fft2d_r2c_32x32<float, false, 5u, true>(float2*, float const*, int, int, int, int, in",
        "void fft2d_c2r_32x32<float, false, false, 0u, false, false>(float*, float2 const*, int, in",
    ):
        assert kernel_category(kernel.lower()) == "matmul", kernel
    assert kernel_category("void cudnn::bn_fw_tr_1C11_singleread<float, 512, true, 1, 2, 0>(".lower()) == (
        "elementwise_norm"
    )
