"""bench.devices: the one place that knows how cpu, cuda, mps and xpu differ (CUDA paths with fakes)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from bench import devices
from bench.devices import Device, DeviceUnavailable, DtypeUnsupported, parse_device

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"cpu", "cuda", "mps", "xpu"}
# Device-specific torch modules: asked of bench.devices only.
DEVICE_MODULES = {("torch", "cuda"), ("torch", "mps"), ("torch", "xpu"), ("backends", "cuda"),
                  ("backends", "cudnn"), ("backends", "mps"), ("backends", "mkldnn")}  # fmt: skip


def _device_literal(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (node.value in KINDS or node.value.startswith(("cuda:", "xpu:")))
    )


def _branches(path: Path) -> list[str]:
    """Places in a file that decide something by a device string or reach a device-specific torch module."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        where = (
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{getattr(node, 'lineno', '?')}"
        )
        if isinstance(node, ast.Compare) and any(_device_literal(n) for n in [node.left, *node.comparators]):
            found.append(f"{where} compares with a device string")
        elif isinstance(node, ast.Compare) and any(
            isinstance(c, (ast.Tuple, ast.List, ast.Set)) and any(_device_literal(e) for e in c.elts)
            for c in node.comparators
        ):
            found.append(f"{where} tests membership in device strings")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("startswith", "endswith")
            and any(_device_literal(a) for a in node.args)
        ):
            found.append(f"{where} matches a device string")
        elif isinstance(node, ast.Dict) and any(k is not None and _device_literal(k) for k in node.keys):
            found.append(f"{where} keys a dict by device strings")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, (ast.Name, ast.Attribute))
            and ((getattr(node.value, "id", None) or getattr(node.value, "attr", None)), node.attr)
            in DEVICE_MODULES
        ):
            found.append(f"{where} uses {node.attr} directly")
    return found


def test_no_module_but_devices_branches_on_a_device_string():
    """DESIGN's rule is about what runs on a device: bench/ (but devices.py) and model/. Outside its scope, on
    purpose: reports/ words findings per device kind from results files (it never imports torch, so it has no
    Device to ask); hwinfo/ is the probe below bench (it may not import bench) and is where device kinds are
    found; bench/importers/ reads other tools' logs, whose device strings are text to interpret, not devices."""
    files = [
        p
        for p in sorted((ROOT / "bench").rglob("*.py"))
        if p.name != "devices.py" and "importers" not in p.parts
    ]
    files += sorted((ROOT / "model").glob("*.py"))
    assert len(files) > 10
    found = [b for p in files for b in _branches(p)]
    assert not found, "ask bench.devices instead:\n" + "\n".join(found)


def test_the_checker_catches_what_it_should(tmp_path):
    bad = tmp_path / "_device_branch_sample.py"  # never inside the repository
    bad.write_text(
        'import torch\nif d.type == "cuda":\n    pass\nif name.startswith("cpu"):\n    pass\n'
        'x = {"mps": 1}\ntorch.cuda.synchronize()\nif k in ("cuda", "xpu"):\n    pass\n'
    )
    assert len(_branches(bad)) == 5


# ---- parse_device ------------------------------------------------------------------------------------


def test_cpu_names():
    assert parse_device("cpu").name == "cpu"
    assert parse_device(" CPU ").name == "cpu" and parse_device("cpu:0").name == "cpu"
    assert parse_device("cpu").uses_cpu_threads and parse_device("cpu").label == "cpu"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("cpu:1", "the CPU is one device"),
        ("tpu", "unknown device"),
        ("cuda:abc", "unknown device"),
        ("hpu", "not supported"),
        ("meta", "not supported"),
        ("", "unknown device"),
    ],
)
def test_bad_names_are_one_line(name, says):
    with pytest.raises(DeviceUnavailable, match=says) as e:
        parse_device(name)
    assert "\n" not in str(e.value) and e.value.exit_code == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_accelerators_say_why():
    with pytest.raises(DeviceUnavailable, match="sees no CUDA GPU; it is a CPU-only build"):
        parse_device("cuda:1")
    with pytest.raises(DeviceUnavailable, match="MPS"):
        parse_device("mps")
    with pytest.raises(DeviceUnavailable, match="XPU"):
        parse_device("xpu")


def test_cuda_index_beyond_the_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert parse_device("cuda:1").name == "cuda:1" and parse_device("cuda:1").label == "cuda1"
    with pytest.raises(DeviceUnavailable, match=r"only 2 CUDA device\(s\)"):
        parse_device("cuda:2")


# ---- dtypes, with a fake CUDA device --------------------------------------------------------------------


def _fake_cuda(monkeypatch, capability: tuple[int, int], name: str = "Tesla T4") -> Device:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: name)
    monkeypatch.setattr(torch.version, "hip", None)
    return Device(torch.device("cuda", 0))


def test_bf16_on_a_t4_is_emulation_and_skipped(monkeypatch):
    """torch.cuda.is_bf16_supported() says True on a T4 (it counts emulation): the capability decides."""
    t4 = _fake_cuda(monkeypatch, (7, 5))
    with pytest.raises(DtypeUnsupported, match=r"Tesla T4 \(compute capability 7.5\) has no bf16 arithmetic"):
        t4.check_dtype("bf16")
    with pytest.raises(DtypeUnsupported, match="TF32"):
        t4.check_dtype("tf32")
    t4.check_dtype("fp16")  # tensor cores since Volta
    t4.check_dtype("fp32")


def test_bf16_and_tf32_native_from_ampere(monkeypatch):
    a100 = _fake_cuda(monkeypatch, (8, 0), "NVIDIA A100-SXM4-80GB")
    a100.check_dtype("bf16")
    a100.check_dtype("tf32")


def test_the_runs_own_device_is_asked(monkeypatch):
    """Capability of the run's device index, not of the current device."""
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: asked.append(index) or (8, 6))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "RTX 3090")
    Device(torch.device("cuda", 1)).check_dtype("bf16")
    assert asked == [1]


def test_cpu_dtypes():
    cpu = parse_device("cpu")
    cpu.check_dtype("bf16")  # runs (slowly without native instructions); the report says so
    cpu.check_dtype("fp16")
    with pytest.raises(DtypeUnsupported, match="tf32 is a CUDA"):
        cpu.check_dtype("tf32")
    assert Device.needs_grad_scaler("fp16") and not Device.needs_grad_scaler("bf16")
    assert cpu.grad_scaler("fp16").is_enabled() and not cpu.grad_scaler("fp32").is_enabled()
    with cpu.autocast("bf16"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    assert not torch.is_autocast_enabled("cpu")


def test_reduce_overhead_is_cuda_only():
    with pytest.raises(DtypeUnsupported, match="CUDA graphs"):
        parse_device("cpu").check_compile_mode("reduce-overhead")
    Device(torch.device("cuda")).check_compile_mode("reduce-overhead")


# ---- matmul precision -----------------------------------------------------------------------------------


def test_cuda_tf32_through_the_new_api_and_restored():
    """The legacy allow_tf32 flags raise once the fp32_precision API has been used (torch 2.13); the device
    layer uses only the new API and puts back what it found."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    matmul.fp32_precision = "ieee"  # something already used the new API
    cuda = Device(torch.device("cuda"))
    try:
        with cuda.matmul_precision("tf32"):
            assert matmul.fp32_precision == "tf32" and conv.fp32_precision == "tf32"
        assert matmul.fp32_precision == "ieee"
        with cuda.matmul_precision("fp32"):
            assert matmul.fp32_precision == "ieee" and conv.fp32_precision == "ieee"
    finally:
        matmul.fp32_precision = "none"


def test_cuda_tf32_keeps_the_legacy_matmul_precision_in_agreement():
    """torch.get_float32_matmul_precision() raises while cuda.matmul says tf32 and the legacy setting still says
    "highest"; Inductor's autotuning asks it (torch/_inductor/codecache.py, PersistentCache.lookup), so a tf32
    run compiled with max-autotune failed on the GPU. The run's setting agrees with it; all is put back."""

    def state() -> tuple[str, str, str]:
        knobs = (torch.backends.cuda.matmul, torch.backends.mkldnn.matmul)
        return (torch.get_float32_matmul_precision(), *(k.fp32_precision for k in knobs))

    before = state()
    cuda = Device(torch.device("cuda"))
    with cuda.matmul_precision("tf32"):
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
        assert torch.get_float32_matmul_precision() == "high"
    with cuda.matmul_precision("fp32"):
        assert torch.get_float32_matmul_precision() == "highest"
    assert state() == before


def test_cpu_fp32_run_is_ieee_even_if_the_user_allowed_bf16_matmuls():
    knob = torch.backends.mkldnn.matmul
    before = knob.fp32_precision
    knob.fp32_precision = "bf16"
    try:
        with parse_device("cpu").matmul_precision("fp32"):
            assert knob.fp32_precision == "ieee"
        assert knob.fp32_precision == "bf16"
    finally:
        knob.fp32_precision = before


def test_a_run_restores_matmul_precision(shakespeare):
    from bench.config import TrainConfig
    from bench.train import Trainer
    from model.gpt import GPTConfig

    knob = torch.backends.mkldnn.matmul
    before = knob.fp32_precision
    knob.fp32_precision = "bf16"
    try:
        trainer = Trainer(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8), TrainConfig(), "cpu",
                          batch_size=2, dataset=shakespeare)  # fmt: skip
        with trainer:
            assert knob.fp32_precision == "ieee"
            trainer.train_step(0)
        assert knob.fp32_precision == "bf16"
    finally:
        knob.fp32_precision = before


# ---- the rest of the surface ------------------------------------------------------------------------------


def test_profiler_activities_and_views():
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity

    cpu, cuda = parse_device("cpu"), Device(torch.device("cuda"))
    assert cpu.profiler_activities() == [ProfilerActivity.CPU] and cpu.trace_device_type is None
    assert cuda.profiler_activities() == [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    assert cuda.trace_device_type == DeviceType.CUDA
    assert Device(torch.device("xpu")).trace_device_type == DeviceType.XPU
    assert Device(torch.device("mps")).trace_device_type is None


def test_backends_and_optimizer_defaults():
    assert parse_device("cpu").dist_backend == "gloo"
    assert Device(torch.device("cuda")).dist_backend == "nccl"
    assert Device(torch.device("xpu")).dist_backend == "xccl"
    assert Device(torch.device("cuda")).fused_adamw_default and not parse_device("cpu").fused_adamw_default
    assert parse_device("cpu").supports_fused_adamw()


@pytest.mark.parametrize(
    ("exc", "oom"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 17 GB)"), True),
        (RuntimeError("XPU out of memory"), True),
        (MemoryError(), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_out_of_memory_is_recognised(exc, oom):
    assert Device.is_oom(exc) is oom


def test_cpu_memory_and_transfer():
    cpu = parse_device("cpu")
    watch = cpu.memory_watch()
    assert watch.kind == "process_rss" and watch.peak() > 10_000_000
    assert cpu.free_memory_bytes() > 0
    x = torch.ones(2)
    assert cpu.to_device(x)[0] is x


def test_clean_compiler_state_recompiles():
    from torch._dynamo.utils import counters

    @torch.compile(backend="eager")
    def f(x):
        return x * 2

    f(torch.ones(3))
    before = counters["frames"]["ok"]
    f(torch.ones(3))
    assert counters["frames"]["ok"] == before  # cached
    with Device.clean_compiler_state():
        f(torch.ones(3))
    assert counters["frames"]["ok"] == before + 1  # compiled afresh


def test_clean_compiler_state_builds_kernels_in_a_fresh_folder_each_time():
    """Inductor's compiled-kernel folder (and Triton's) used to persist across runs, so a later compiled run
    skipped its kernel builds and its compile cost was not its own."""
    import os

    seen = []
    for _ in range(2):
        with Device.clean_compiler_state():
            from torch._inductor.runtime.cache_dir_utils import cache_dir

            seen.append((cache_dir(), os.environ.get("TRITON_CACHE_DIR")))
            assert os.path.isdir(seen[-1][0])
    (first, triton_first), (second, _) = seen
    assert first != second and triton_first.startswith(first)
    assert not os.path.exists(first) and not os.path.exists(second)  # removed after the run


def test_software_versions_are_json():
    info = json.loads(json.dumps(devices.software_versions()))
    assert info["torch"] == torch.__version__


def test_resolve_devices_normalises_names_so_peaks_and_run_ids_match() -> None:
    """`--devices CPU` (or cpu:0) once ran as device 'CPU': hwinfo had no peak for it, so MFU read 'unknown'."""
    from bench.runner import resolve_devices

    devices, unavailable = resolve_devices(["CPU", " cpu:0", "cpu"])
    assert list(devices) == ["cpu"] and unavailable == {}
