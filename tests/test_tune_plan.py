"""bench tune's plan: the variants each device kind offers around a recipe, and why others are not available
(cpu for real; CUDA, a hybrid CPU, MPS and XPU with fakes)."""

from __future__ import annotations

import os

import pytest
import torch

from bench.config import BenchConfig, apply_values
from bench.devices import Device, DtypeUnsupported, parse_device
from bench.tune.plan import TIPS, Knobs, best_knobs, plan_device, recipe_knobs
from bench.tune.verdict import THROUGHPUT, TIME_TO_LOSS


def hw(physical: int = 8, groups: list[dict] | None = None) -> dict:
    return {"cpu": {"physical_cores": physical, "logical_cores": physical * 2,
                    "core_groups": groups or [{"type": "core", "count": physical}]}}  # fmt: skip


def by_name(variants) -> dict:
    return {v.name: v for v in variants}


def cfg(**sweep) -> BenchConfig:
    return apply_values(BenchConfig(), {"sweep": sweep})


def test_cpu_plan_threads_dtypes_compile_optimizer_batch():
    cpu = parse_device("cpu")
    plan = by_name(plan_device("cpu", cpu, cfg(), hw(8), TIPS, default_threads=8))
    assert plan["default"].measure == "default" and plan["default"].knobs == recipe_knobs(cfg(), cpu)
    # threads 1, 2, 4 (8 is PyTorch's choice here, the default itself)
    assert [v.knobs.threads for v in plan.values() if v.tip == "threads"] == [1, 2, 4]
    assert plan["compile"].knobs.compile == "on" and plan["compile"].unavailable is None
    assert plan["compile-max-autotune"].unavailable is None
    assert "CUDA only" in plan["compile-reduce-overhead"].unavailable
    assert plan["bf16"].unavailable is None and plan["fp16"].unavailable is None
    assert "tf32 is a CUDA" in plan["tf32"].unavailable
    assert "not a hybrid CPU" in plan["pcores"].unavailable
    fused = plan["fused-adamw"]  # foreach is the CPU's default: the variant turns the tip on
    assert fused.knobs.fused_adamw and fused.applies_tip and fused.unavailable is None
    assert plan["batch24"].measure == TIME_TO_LOSS and plan["batch48"].knobs.batch_size == 48
    assert {v.measure for v in plan.values() if v.tip in ("compile", "threads", "bf16")} == {THROUGHPUT}
    # every variant changes only its own group of knobs
    default = plan["default"].knobs
    assert plan["threads2"].knobs.changed(default) == ["threads 2"]
    assert plan["batch24"].knobs.changed(default) == ["batch_size 24"]


def test_a_recipe_that_already_follows_a_tip_is_measured_without_it():
    cpu = parse_device("cpu")
    plan = by_name(plan_device("cpu", cpu, cfg(compile=["on"], dtypes=["bf16"], threads=[2]), hw(2), TIPS, 2))
    eager = plan["eager"]
    assert eager.tip == "compile" and eager.knobs.compile == "off" and not eager.applies_tip
    assert plan["fp32"].tip == "bf16" and not plan["fp32"].applies_tip
    assert plan["fp16"].knobs.dtype == "fp16" and plan["fp16"].applies_tip  # relative to the recipe's bf16
    assert [v.knobs.threads for v in plan.values() if v.tip == "threads"] == [1]
    # threads 2 on 2 cores already is "threads = physical cores": 1 thread measures the recipe without it
    assert not plan["threads1"].applies_tip


@pytest.fixture(autouse=True)
def _many_cpus(monkeypatch):
    """The plans below are of machines with more CPUs than the one running the tests."""
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 64)


def test_a_damaged_core_count_never_plans_more_threads_than_the_machine_has(monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    plan = by_name(plan_device("cpu", parse_device("cpu"), cfg(threads=[1]), hw(10**30), ["threads"], 1))
    assert set(plan) == {"threads2", "threads4"}


def test_thread_variants_apply_the_tip_only_when_they_move_toward_the_physical_cores():
    cpu = parse_device("cpu")
    # a recipe at 1 thread on 8 cores: 2, 4 and 8 threads each move toward the tip
    plan = by_name(plan_device("cpu", cpu, cfg(threads=[1]), hw(8), ["threads"], default_threads=8))
    assert {n: v.applies_tip for n, v in plan.items()} == {
        "threads2": True,
        "threads4": True,
        "threads8": True,
    }
    # PyTorch's choice (8 on 8 cores) is the tip itself: fewer threads measure it turned off
    plan = by_name(plan_device("cpu", cpu, cfg(), hw(8), ["threads"], default_threads=8))
    assert {n: v.applies_tip for n, v in plan.items()} == {
        "threads1": False,
        "threads2": False,
        "threads4": False,
    }


def test_only_the_tips_asked_for_and_no_default_run_without_a_time_to_loss_tip():
    plan = plan_device("cpu", parse_device("cpu"), cfg(), hw(2), ["threads", "fused_adamw"], 2)
    assert [v.name for v in plan] == ["threads1", "fused-adamw"]
    plan = plan_device("cpu", parse_device("cpu"), cfg(), hw(2), ["eval_iters"], 2)
    assert [v.name for v in plan] == ["default"]  # answered from the default's own evals


def _fake_cuda(monkeypatch, capability=(8, 0), name="NVIDIA A100-SXM4-80GB") -> Device:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: name)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(Device, "supports_fused_adamw", lambda self: True)
    return Device(torch.device("cuda", 0))


def test_cuda_plan_graphs_tf32_and_foreach(monkeypatch):
    cuda = _fake_cuda(monkeypatch)
    plan = by_name(plan_device("cuda", cuda, cfg(), hw(8), TIPS))
    assert plan["compile-reduce-overhead"].unavailable is None
    assert plan["compile-max-autotune"].unavailable is None
    assert plan["tf32"].unavailable is None and plan["bf16"].unavailable is None
    # nanoGPT uses the fused AdamW on CUDA: the variant is foreach, measured the other way round
    foreach = plan["foreach-adamw"]
    assert not foreach.knobs.fused_adamw and not foreach.applies_tip
    assert plan["threads"].unavailable and "CPU threads" in plan["threads"].unavailable
    assert "does not run on the CPU" in plan["pcores"].unavailable
    assert plan["default"].knobs.threads is None


def test_a_t4_has_no_bf16_or_tf32(monkeypatch):
    t4 = _fake_cuda(monkeypatch, (7, 5), "Tesla T4")
    plan = by_name(plan_device("cuda", t4, cfg(), hw(8), TIPS))
    assert "compute capability 7.5" in plan["bf16"].unavailable
    assert "TF32" in plan["tf32"].unavailable
    assert plan["fp16"].unavailable is None


def test_hybrid_cpu_pins_threads_to_the_p_cores(tmp_path, monkeypatch):
    (tmp_path / "sys/devices/cpu_core").mkdir(parents=True)
    (tmp_path / "sys/devices/cpu_core/cpus").write_text("0-11\n")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(20)), raising=False)
    monkeypatch.setattr("os.sched_setaffinity", lambda pid, cpus: None, raising=False)
    groups = [{"type": "performance", "count": 6}, {"type": "efficiency", "count": 8}]
    info = hw(14, groups)
    cpu = parse_device("cpu")
    cpus, why = cpu.performance_cpus(info, root=tmp_path)
    assert cpus == list(range(12)) and "6 P-cores" in why
    # without the sysfs list (another kernel), and on a CPU of one kind: not available, with the reason
    assert "no /sys/devices/cpu_core/cpus" in cpu.performance_cpus(info, root=tmp_path / "none")[1]
    assert "not a hybrid CPU" in cpu.performance_cpus(hw(8))[1]
    monkeypatch.setattr(Device, "performance_cpus", lambda self, h, root="/": (list(range(12)), "6 P-cores"))
    plan = by_name(plan_device("cpu", cpu, cfg(), info, TIPS, default_threads=14))
    p = plan["pcores"]
    assert p.unavailable is None and p.knobs.threads == 6 and p.knobs.cpus == tuple(range(12))
    assert p.group == "threads" and p.knobs.changed(plan["default"].knobs) == [
        "threads 6",
        "cpus 0,1,2,3,4,5,6,7,8,9,10,11",
    ]


def test_cpu_affinity_pins_every_thread_and_restores():
    import os

    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this OS")
    before = os.sched_getaffinity(0)
    one = {min(before)}
    with Device.cpu_affinity(sorted(one)):
        assert os.sched_getaffinity(0) == one
    assert os.sched_getaffinity(0) == before
    with Device.cpu_affinity(None):
        assert os.sched_getaffinity(0) == before


@pytest.mark.parametrize("kind", ["mps", "xpu"])
def test_mps_and_xpu_plans(monkeypatch, kind):
    monkeypatch.setattr(Device, "check_dtype", lambda self, d: None if d != "tf32" else (_ for _ in ()).throw(
        DtypeUnsupported(f"tf32 is a CUDA tensor-core matmul mode; {kind} has none")))  # fmt: skip
    monkeypatch.setattr(Device, "supports_fused_adamw", lambda self: kind == "xpu")
    dev = Device(torch.device(kind))
    plan = by_name(plan_device(kind, dev, cfg(), hw(8), TIPS))
    assert "CUDA only" in plan["compile-reduce-overhead"].unavailable
    assert plan["compile"].unavailable is None and plan["bf16"].unavailable is None
    assert "has none" in plan["tf32"].unavailable
    assert plan["threads"].unavailable and plan["pcores"].unavailable
    assert (plan["fused-adamw"].unavailable is None) == (kind == "xpu")
    assert plan["batch24"].unavailable is None


def test_best_knobs_takes_each_chosen_group():
    default = Knobs("fp32", "off", None, None, False, 12)
    chosen = {"threads": Knobs("fp32", "off", 1, (0,), False, 12).to_dict(),
              "compile": Knobs("fp32", "on", None, None, False, 12).to_dict()}  # fmt: skip
    best = best_knobs(default, chosen)
    assert best == Knobs("fp32", "on", 1, (0,), False, 12)
    assert Knobs.from_dict(best.to_dict()) == best


def test_tune_help_and_the_report_side_do_not_import_torch():
    """`bench tune --help` is instant, and reports/ reads a tune (verdicts, tips, time to loss) without torch."""
    import subprocess
    import sys

    code = (
        "import sys, contextlib, io\nfrom bench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        " try:\n  main(['tune', '--help'])\n except SystemExit: pass\n"
        "assert '--tips' in out.getvalue() and '--iters' in out.getvalue()\n"
        "import reports.tips, reports.time_to_loss, bench.tune.verdict, bench.tune.plan\n"
        "assert 'torch' not in sys.modules, 'imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_compile_modes_that_only_help_gpus_are_not_available_on_cpu_and_planned_on_cuda(monkeypatch):
    """max-autotune-no-cudagraphs is max-autotune less CUDA graphs: on the CPU it is max-autotune itself (said,
    not measured twice); on CUDA it is a variant of its own, beside reduce-overhead."""
    cpu_plan = by_name(plan_device("cpu", parse_device("cpu"), cfg(), hw(2), TIPS, 2))
    why = cpu_plan["compile-max-autotune-no-cudagraphs"].unavailable
    assert "only in leaving out CUDA graphs" in why and "max_autotune tip measures" in why
    assert cpu_plan["compile-max-autotune"].unavailable is None
    cuda_plan = by_name(plan_device("cuda", _fake_cuda(monkeypatch), cfg(), hw(8), TIPS))
    v = cuda_plan["compile-max-autotune-no-cudagraphs"]
    assert v.unavailable is None and v.knobs.compile == "max-autotune-no-cudagraphs" and v.group == "compile"
    assert "max-autotune-no-cudagraphs" in torch._inductor.list_mode_options()  # a mode torch.compile knows


GNU_MAPS = "7f00-7f01 r-xp 0 08:01 1 /venv/lib/python3.11/site-packages/torch/lib/libgomp.so.1\n"
INTEL_MAPS = (
    "7f00-7f01 r-xp 0 08:01 1 /opt/intel/lib/libiomp5.so\n7f02-7f03 r-xp 0 08:01 2 /usr/lib/libc.so.6\n"
)


def test_kmp_affinity_only_where_intel_openmp_is_the_runtime(monkeypatch):
    from bench.tune import levers

    assert levers.openmp_runtime(GNU_MAPS) == "GNU OpenMP (libgomp)"
    assert levers.openmp_runtime(INTEL_MAPS) == "Intel OpenMP (libiomp5)"
    assert levers.openmp_runtime("7f00-7f01 r-xp 0 08:01 1 /usr/lib/libc.so.6\n") is None
    assert "GNU OpenMP (libgomp), which ignores it" in levers.kmp_affinity_unavailable("GNU OpenMP (libgomp)")
    assert levers.kmp_affinity_unavailable("Intel OpenMP (libiomp5)") is None
    cpu = parse_device("cpu")
    monkeypatch.setattr(levers, "openmp_runtime", lambda maps_text=None: "Intel OpenMP (libiomp5)")
    v = by_name(plan_device("cpu", cpu, cfg(), hw(2), ["kmp_affinity"], 2))["kmp-compact"]
    assert v.unavailable is None and v.knobs.needs_child and v.group == "affinity"
    from bench.tune.child import child_env

    assert child_env(v.knobs, None) == {"KMP_AFFINITY": "granularity=fine,compact,1,0", "KMP_BLOCKTIME": "1"}
    monkeypatch.setattr(levers, "openmp_runtime", lambda maps_text=None: "GNU OpenMP (libgomp)")
    v = by_name(plan_device("cpu", cpu, cfg(), hw(2), ["kmp_affinity"], 2))["kmp-compact"]
    assert "read by Intel's OpenMP (libiomp5) only" in v.unavailable


def test_numactl_only_with_two_numa_nodes_and_numactl_installed(tmp_path, monkeypatch):
    from bench.tune import levers

    for n in (0, 1):
        (tmp_path / f"node{n}").mkdir()
    (tmp_path / "online").write_text("0-1\n")
    assert levers.numa_nodes(str(tmp_path)) == 2 and levers.numa_nodes(str(tmp_path / "none")) is None
    assert "one NUMA node" in levers.numactl_unavailable("/usr/bin/numactl", 1)
    assert "one NUMA node" in levers.numactl_unavailable(
        None, 1
    )  # nothing to install for: it changes nothing
    assert "apt install numactl" in levers.numactl_unavailable(None, 2)
    assert levers.numactl_unavailable("/usr/bin/numactl", 2) is None
    monkeypatch.setattr(levers, "numa_nodes", lambda root="": 2)
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    v = by_name(plan_device("cpu", parse_device("cpu"), cfg(), hw(2), ["numactl"], 2))["numa-node0"]
    assert v.unavailable is None and v.knobs.needs_child


def test_a_numactl_variant_starts_its_process_under_numactl(monkeypatch):
    """The child's command line begins with numactl's binding; the environment variants add no launcher."""
    from bench.tune import child

    started = []

    class Refused(Exception):
        pass

    def popen(cmd, **kw):
        started.append((cmd, kw["env"]))
        raise Refused

    monkeypatch.setattr(child.subprocess, "Popen", popen)
    for aff in ("numa-node0", "close-cores"):
        knobs = Knobs("fp32", "off", None, None, False, 4, omp_affinity=aff)
        with pytest.raises(Refused):
            child.ChildTrainer(BenchConfig(), knobs, parse_device("cpu"), child.child_env(knobs, None))
    (numa, numa_env), (close, close_env) = started
    assert numa[:3] == ["numactl", "--cpunodebind=0", "--membind=0"] and numa[-2:] == [
        "-m",
        "bench.tune.child",
    ]
    assert close[-2:] == ["-m", "bench.tune.child"] and "numactl" not in close
    assert close_env["OMP_PROC_BIND"] == "close"
    assert numa_env.get("OMP_PROC_BIND") == os.environ.get("OMP_PROC_BIND")  # numactl's variant sets none
