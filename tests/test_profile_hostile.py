"""`bench profile` on hostile traces, as a new user might hand it: each is made in the test from a real trace
(tests/data/traces-wild) by one change, and each ends in a stated result (the figures a reader checks by
hand, the reason beside them), a stated partial result, or one line and exit 2; never a traceback.

The base is Kineto's V100 excerpt (torch 1.8 layout): ProfilerStep#2 is 13410 us; cuBLAS's gemmSN_TN_kernel
(3 us, correlation 333) was launched inside aten::mm; the batch's Memcpy HtoD (1 us) is busy but in no
category; the DataLoader's next batch (725 us) is data.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

from bench.cli import main
from bench.profile import fromtrace
from bench.profile.kineto import TraceError, read_trace

WILD = Path(__file__).resolve().parent / "data" / "traces-wild"
V100 = WILD / "kineto_v100_2021_excerpt.json"
A100 = WILD / "hta_backward_thread.json"
UNKNOWN = {"value": None, "source": "unknown", "detail": "test"}
STEP_US = 13410
GEMM_US, COPY_US = 3, 1


def _base(path: Path = V100) -> dict:
    return json.loads(path.read_text())


def _write(tmp_path: Path, name: str, data: dict | list) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def _profile(path: Path, marker: str | None = None) -> dict:
    trace = read_trace(path)
    return fromtrace.profile_trace(trace, UNKNOWN, fromtrace._dtype(trace), marker)


def _find(data: dict, pred) -> dict:
    return next(e for e in data["traceEvents"] if pred(e))


def _kernel(data: dict) -> dict:
    return _find(data, lambda e: str(e.get("cat")).lower() == "kernel")


def _step(data: dict) -> dict:
    return _find(data, lambda e: str(e.get("name")).startswith("ProfilerStep#"))


def _same_breakdown(a: dict, b: dict) -> None:
    assert [s["iter"] for s in a["steps"]] == [s["iter"] for s in b["steps"]]
    for key in ("step_ms", "device_idle_fraction", "kernel_launches_per_step"):
        assert a["mean"][key] == pytest.approx(b["mean"][key])
    for cat, ms in a["mean"]["ms"].items():
        assert ms == pytest.approx(b["mean"]["ms"][cat]), cat


def test_events_out_of_order_give_the_same_breakdown(tmp_path):
    """A trace's events in any order (merged or rewritten by a tool) read the same: the reader sorts them."""
    data = _base()
    shuffled = copy.deepcopy(data)
    random.Random(31).shuffle(shuffled["traceEvents"])
    reverse = copy.deepcopy(data)
    reverse["traceEvents"].reverse()
    base = _profile(V100)
    assert base["mean"]["device_idle_fraction"] == pytest.approx(1 - (GEMM_US + COPY_US) / STEP_US)
    _same_breakdown(_profile(_write(tmp_path, "shuffled.json", shuffled)), base)
    _same_breakdown(_profile(_write(tmp_path, "reversed.json", reverse)), base)


def test_two_gpus_in_one_file_are_read_one_at_a_time(tmp_path, capsys):
    """One process that drove two GPUs writes both GPUs' kernels (pid 0 and pid 1) in one file. Their union
    is no GPU's idle share: GPU 0 is read by default and the line says so; --device 1 reads the other. Here
    GPU 1 ran a copy of the GEMM 5 ms later (3 us): GPU 0 is busy 4 us of the step, GPU 1 3 us."""
    data = _base()
    other = copy.deepcopy(_kernel(data))
    other["pid"] = 1
    other["ts"] += 5000
    other["args"]["correlation"] = 9333
    data["traceEvents"].append(other)
    path = _write(tmp_path, "two_gpus.json", data)
    assert main(["profile", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert "kernels of 2 GPUs (0, 1)" in captured.err and "--device N" in captured.err
    gpu0 = json.loads(captured.out)
    assert gpu0["mean"]["device_idle_fraction"] == pytest.approx(1 - (GEMM_US + COPY_US) / STEP_US)
    assert gpu0["mean"]["kernel_launches_per_step"] == 1
    assert gpu0["device"] == "cuda:0"
    assert main(["profile", str(path), "--json", "--device", "1"]) == 0
    gpu1 = json.loads(capsys.readouterr().out)
    assert gpu1["mean"]["device_idle_fraction"] == pytest.approx(1 - GEMM_US / STEP_US)
    assert gpu1["device"] == "cuda:1"
    assert gpu1["trace"]["kernels_categorised_by_name"] == 1  # its launch is not in the trace
    assert main(["profile", str(path), "--device", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "GPUs 0, 1" in err


@pytest.mark.parametrize("change", ["missing", "negative", "nan", "zero"])
def test_a_kernel_without_a_usable_duration_is_counted_as_zero_and_said(tmp_path, capsys, change):
    """A kernel with no `dur`, a negative one, NaN (Python's json reads it) or 0: it ran for no time we know,
    so the GPU's busy time is the copy's 1 us; the line and profile.json say how many such events there
    were (a zero-length kernel is real and not flagged)."""
    data = _base()
    k = _kernel(data)
    if change == "missing":
        k.pop("dur")
    else:
        k["dur"] = {"negative": -3, "nan": float("nan"), "zero": 0}[change]
    path = _write(tmp_path, f"{change}.json", data)
    assert main(["profile", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    prof = json.loads(captured.out)
    assert prof["mean"]["device_idle_fraction"] == pytest.approx(1 - COPY_US / STEP_US)
    assert prof["mean"]["kernel_launches_per_step"] == 1
    bad = prof["trace"]["events_without_duration"]
    if change == "zero":
        assert bad == 0 and "duration" not in captured.err
    else:
        assert bad == 1
        assert "1 event has no usable duration" in captured.err


def test_a_step_without_duration_is_no_step(tmp_path, capsys):
    """ProfilerStep#2 without `dur`: its window is unknown, so there is no step to read: one line, exit 2."""
    data = _base()
    _step(data).pop("dur")
    path = _write(tmp_path, "step_no_dur.json", data)
    assert main(["profile", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no usable duration" in err[0]  # the count, then the one error line
    assert "ProfilerStep#2" in err[1] and "--whole-trace" in err[1]


def test_odd_field_types_never_raise(tmp_path, capsys):
    """Fields of the wrong JSON type (a list pid, an object tid, a string ts, Infinity) are read or left out,
    never a traceback: the kernel with a string ts and an infinite ts on an op are dropped and counted."""
    data = _base()
    _kernel(data)["pid"] = [0]
    _find(data, lambda e: e.get("name") == "aten::view")["tid"] = {"a": 1}
    _find(data, lambda e: e.get("name") == "aten::add_")["ts"] = "1621401187225449"
    _find(data, lambda e: e.get("name") == "aten::_unsafe_view")["ts"] = float("inf")
    path = _write(tmp_path, "odd.json", data)
    assert main(["profile", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    prof = json.loads(captured.out)
    assert prof["trace"]["events_without_time"] == 2
    assert "2 events have no usable start time" in captured.err
    assert prof["mean"]["step_ms"] == pytest.approx(STEP_US / 1e3)


def test_a_correlation_id_used_twice_links_each_kernel_to_the_launch_before_it(tmp_path):
    """Two launches share correlation 333 (two traces merged, or ids reused): the GEMM's in aten::mm and a
    second one inside Optimizer.step#SGD.step, whose kernel (a copy of the GEMM, 3 us) runs 10 us after it.
    A kernel starts after its launch: each kernel takes the latest launch with its id before it, so the
    first is matmul and the second optimizer, where one id -> one launch gave both the optimizer's."""
    data = _base()
    opt = _find(data, lambda e: e.get("name") == "Optimizer.step#SGD.step")
    launch = copy.deepcopy(_find(data, lambda e: e.get("name") == "cudaLaunchKernel"))
    launch["ts"] = opt["ts"] + 100
    kernel = copy.deepcopy(_kernel(data))
    kernel["ts"] = opt["ts"] + 110
    data["traceEvents"] += [launch, kernel]
    p = _profile(_write(tmp_path, "reused_id.json", data))
    assert p["mean"]["ms"]["matmul"] == pytest.approx(GEMM_US / 1e3)
    assert p["mean"]["ms"]["optimizer"] == pytest.approx(GEMM_US / 1e3)
    assert p["trace"]["kernels_categorised_by_launching_op"] == 2
    assert p["trace"]["reused_correlation_ids"] == 1
    assert any("correlation id" in n for n in p["notes"])


def test_a_profiler_step_around_other_steps_is_not_a_step(tmp_path):
    """A ProfilerStep#1 around ProfilerStep#2 (1 ms either side; a record_function named like one, or two
    profilers): it holds a step, so it is not one; counting both would count the kernels twice. The result is
    the original's, with a note."""
    data = _base()
    outer = copy.deepcopy(_step(data))
    outer["name"] = "ProfilerStep#1"
    outer["ts"] -= 1000
    outer["dur"] += 2000
    data["traceEvents"].append(outer)
    p = _profile(_write(tmp_path, "nested.json", data))
    _same_breakdown(p, _profile(V100))
    assert any("ProfilerStep#1" in n and "holds other steps" in n for n in p["notes"])


def test_two_ranks_with_different_step_counts_are_each_their_own(tmp_path, capsys):
    """rank 0 recorded one step (ProfilerStep#2), rank 1 two (its #3 a 13410 us step right after #2, with no
    device work: idle). Each rank is its own run of its own steps, and the line says the counts differ."""
    r0 = _base()
    r0["distributedInfo"] = {"backend": "nccl", "rank": 0, "world_size": 2}
    r1 = copy.deepcopy(r0)
    r1["distributedInfo"]["rank"] = 1
    nxt = copy.deepcopy(_step(r1))
    nxt["name"] = "ProfilerStep#3"
    nxt["ts"] += STEP_US
    r1["traceEvents"].append(nxt)
    p0, p1 = _write(tmp_path, "rank0.json", r0), _write(tmp_path, "rank1.json", r1)
    out = tmp_path / "res"
    assert main(["profile", str(p0), str(p1), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "different numbers of steps (rank 0: 1, rank 1: 2)" in err
    steps1 = (out / "runs" / "trace-rank1" / "steps.csv").read_text().strip().splitlines()
    steps0 = (out / "runs" / "trace-rank0" / "steps.csv").read_text().strip().splitlines()
    assert len(steps1) == len(steps0) + 1
    p = json.loads((out / "runs" / "trace-rank1" / "profile.json").read_text())
    assert [s["device_idle_fraction"] for s in p["steps"]] == pytest.approx([1 - 4 / STEP_US, 1.0])


@pytest.mark.parametrize(
    "layout",
    [
        {"kernel": "Kernel", "cpu_op": "Operator", "cuda_runtime": "Runtime", "user_annotation": "Operator"},
        {
            "kernel": "kernel",
            "cpu_op": "cpu_op",
            "cuda_runtime": "cuda_driver",
            "user_annotation": "user_annotation",
        },
    ],
    ids=["torch-1.x", "torch-2.5+"],
)
def test_older_and_newer_layouts_read_the_same(tmp_path, layout):
    """HTA's A100 trace (torch ~1.13: kernel, cpu_op, cuda_runtime) written as torch 1.x did (Kernel,
    Operator, Runtime) and as torch 2.5+ does for a driver launch (cuLaunchKernel in cuda_driver, as a
    Triton kernel's): the GEMM is matmul by its op either way, idle 1 - 45 / 413451."""
    data = _base(A100)
    for e in data["traceEvents"]:
        cat = e.get("cat")
        if cat in layout:
            e["cat"] = layout[cat]
        if e.get("name") == "cudaLaunchKernel" and layout["cuda_runtime"] == "cuda_driver":
            e["name"] = "cuLaunchKernel"
    p = _profile(_write(tmp_path, "layout.json", data))
    assert p["mean"]["ms"]["matmul"] == pytest.approx(0.045)
    assert p["trace"]["kernels_categorised_by_launching_op"] == 1
    assert p["mean"]["device_idle_fraction"] == pytest.approx(1 - 45 / 413451)


def test_only_cpu_ops_without_steps_is_one_line(tmp_path, capsys):
    """Only the host's ops and launches, and no ProfilerStep: the host view has no steps to read; the line
    names --step-marker and --whole-trace; with --whole-trace the host view follows."""
    data = _base()
    data["traceEvents"] = [
        e for e in data["traceEvents"] if e.get("cat") in ("Operator", "Runtime") and e is not _step(data)
    ]
    path = _write(tmp_path, "cpu_only.json", data)
    assert main(["profile", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "no device events" in err[0] and "--whole-trace" in err[-1] and len(err) == 2
    assert main(["profile", str(path), "--whole-trace", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["view"] == "host"


def test_not_a_trace_field_is_exit_2(tmp_path, capsys):
    with pytest.raises(TraceError):
        _profile(_write(tmp_path, "list.json", {"traceEvents": {"a": 1}}))


def test_an_rccl_kernel_with_correlation_0_is_communication_by_its_name(tmp_path):
    """roctracer gave RCCL's kernels correlation id 0 (https://github.com/ROCm/roctracer/issues/100, MI300X,
    ROCm 6.1: `ncclDevKernel_Generic(ncclDevComm*, channelMasks, ncclWork*)` while its hipExtLaunchKernel had
    29170), so no launch links them: the name decides, and NCCL/RCCL names say communication (the kernel
    names below are quoted from that issue, roctracer#101 and NVIDIA/nccl#1595)."""
    data = _base()
    k = _kernel(data)
    k["name"] = "ncclDevKernel_Generic(ncclDevComm*, channelMasks, ncclWork*)"
    k["args"]["correlation"] = 0
    data["traceEvents"] = [e for e in data["traceEvents"] if not (e.get("ph") == "f" and e.get("id") == 333)]
    p = _profile(_write(tmp_path, "rccl.json", data))
    assert p["mean"]["ms"]["communication"] == pytest.approx(GEMM_US / 1e3)
    assert p["trace"]["kernels_categorised_by_name"] == 1
    assert p["trace"]["kernels_categorised_by_launching_op"] == 0
    from bench.profile.analysis import kernel_category

    for name in (
        "ncclKernel_ReduceScatter_RING_LL_Sum___nv_bfloat16(ncclDevComm*, unsigned long, ncclWork*)",
        "ncclDevKernel_AllReduce_Sum_f16_RING_Simple",
    ):
        assert kernel_category(name.lower()) == "communication"


def test_overlapping_profiler_steps_are_cut_at_the_next_ones_start(tmp_path):
    """A ProfilerStep#3 that begins 1000 us before ProfilerStep#2 ends (clocks or a profiler bug; neither
    holds the other): the instant would count in both steps. #2 is cut at #3's start, so the steps add up
    to the time they cover: #2 is 12410 us, #3 its own 13410 us, and a note says so."""
    data = _base()
    nxt = copy.deepcopy(_step(data))
    nxt["name"] = "ProfilerStep#3"
    nxt["ts"] += STEP_US - 1000
    data["traceEvents"].append(nxt)
    p = _profile(_write(tmp_path, "overlap.json", data))
    assert [s["iter"] for s in p["steps"]] == [2, 3]
    assert [s["step_ms"] for s in p["steps"]] == pytest.approx([(STEP_US - 1000) / 1e3, STEP_US / 1e3])
    assert any("ProfilerStep#2 overlaps ProfilerStep#3" in n for n in p["notes"])


def test_cupti_profiler_ranges_are_said_not_called_no_kernel(tmp_path, capsys):
    """With `experimental_config(profiler_metrics=...)` the profiler replays each kernel to count its
    instructions and writes it as a `cuda_profiler_range` (HolisticTraceAnalysis' cupti_profiler trace: 77
    of them, A100). Those durations are the replays', not the run's: no device view, and the line says why
    instead of "no kernel ran". Made here from the V100 trace: its GEMM written as such a range."""
    data = _base()
    _kernel(data)["cat"] = "cuda_profiler_range"
    path = _write(tmp_path, "ranges.json", data)
    assert main(["profile", str(path)]) == 0
    err = capsys.readouterr().err
    assert "1 CUPTI profiler range" in err and "not the run's" in err
    assert "no kernel, copy or memset ran" not in err


def test_a_gpu_machines_trace_without_device_events_gives_no_flops_per_s(tmp_path):
    """The A100 trace with its CUDA events removed, and the deviceProperties the profiler writes on a GPU
    machine (as HTA's distributed_info_not_found trace has: 2424 ops, no kernel, an A100 listed): its aten::mm
    ran on the GPU, so its 58 us on the host are the launch's, not the matmul's. 2*2048*2048*256 FLOPs over
    58 us would read 37 TFLOP/s of host time: not shown, and a note says why; a trace of no GPU keeps it."""
    data = _base(A100)
    data["traceEvents"] = [e for e in data["traceEvents"] if e["cat"] not in ("kernel", "cuda_runtime")]
    plain = _profile(_write(tmp_path, "cpu.json", data))
    assert plain["roofline"]["categories"]["matmul"]["flops_per_s"] == pytest.approx(
        2 * 2048 * 2048 * 256 / 58e-6
    )
    data["deviceProperties"] = [
        {"id": 0, "name": "NVIDIA A100-PG509-200", "computeMajor": 8, "computeMinor": 0}
    ]
    gpu = _profile(_write(tmp_path, "gpu_host_only.json", data))
    assert gpu["view"] == "host"
    assert gpu["roofline"]["categories"]["matmul"]["flops_per_s"] is None
    assert gpu["matmul_flops_per_s"] is None
    assert gpu["mean"]["ms"]["matmul"] == pytest.approx(0.058)  # the host view itself stays
    assert any("launch" in n and "deviceProperties" in n for n in gpu["notes"])
