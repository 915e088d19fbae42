"""Everything that differs between cpu, cuda (and ROCm), mps and xpu, asked of one place.

The rest of bench/ holds a `Device` (from `parse_device`) and calls its methods: synchronize, memory
statistics, dtype support, autocast and loss scaling, matmul precision, profiler activities, host-to-device
copies, the fused optimizer, the compiler state, the process-group backend. No other module of bench/
branches on a device string (tests/test_devices.py enforces it), so a new device kind is one class here.

Built on `torch.accelerator` (synchronize, memory statistics, empty_cache) where the installed torch
has it, with the per-backend module as the fallback.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import psutil
import torch
import torch.distributed as dist
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity

from hwinfo.cpu import parse_cpulist
from hwinfo.energy import open_energy_meter

KINDS = ("cpu", "cuda", "mps", "xpu")
USAGE = "use cpu, cuda, cuda:N, mps, xpu or xpu:N"


class DeviceUnavailable(RuntimeError):
    """The device asked for cannot be used on this machine."""

    exit_code = 2


class DtypeUnsupported(RuntimeError):
    """The dtype (or compile mode) asked for cannot run, or would only be emulated, on this device."""


def _accelerator() -> Any:
    """torch.accelerator when this torch has it (2.6+), else None."""
    return getattr(torch, "accelerator", None)


def _autocast_dtype(dtype: str) -> torch.dtype | None:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype)


@dataclass(frozen=True)
class Device:
    """One usable device. `torch_device` is what tensors go to; everything else is asked of this object."""

    torch_device: torch.device

    # ---- identity ---------------------------------------------------------------------------------
    @property
    def type(self) -> str:
        return self.torch_device.type

    @property
    def index(self) -> int | None:
        return self.torch_device.index

    @property
    def name(self) -> str:
        """'cpu', 'cuda', 'cuda:1', 'mps', 'xpu:0': the name a user gave, normalised."""
        return str(self.torch_device)

    @property
    def label(self) -> str:
        """The device part of a run id: 'cpu', 'cuda', 'cuda1'."""
        return self.name.replace(":", "")

    @property
    def is_cpu(self) -> bool:
        return self.type == "cpu"

    @property
    def uses_cpu_threads(self) -> bool:
        """Whether torch's intra-op thread count is this device's parallelism (a sweep axis)."""
        return self.is_cpu

    @property
    def is_rocm(self) -> bool:
        return self.type == "cuda" and getattr(torch.version, "hip", None) is not None

    def _module(self) -> Any:
        return getattr(torch, self.type)

    def _runtime(self) -> Any:
        """torch.accelerator where this torch has it and it is usable, else the backend's own module."""
        acc = _accelerator()
        return acc if acc is not None and acc.is_available() else self._module()

    def display_name(self, hw: dict) -> str:
        """The marketing name: the GPU's, or the CPU's model name from the hwinfo snapshot."""
        if self.type in ("cuda", "xpu"):
            with contextlib.suppress(Exception):
                return str(self._module().get_device_name(self.index or 0))
        for d in hw.get("devices", []):
            if d.get("kind") == self.type and d.get("kind") != "cpu" and d.get("name"):
                return str(d["name"])
        if self.is_cpu:
            return (hw.get("cpu") or {}).get("model_name") or platform.processor() or "cpu"
        return self.name

    # ---- time -------------------------------------------------------------------------------------
    def synchronize(self) -> None:
        """Wait until the device has finished all queued work (nothing to wait for on the CPU)."""
        if self.is_cpu:
            return
        acc = _accelerator()
        if acc is not None and acc.is_available():
            acc.synchronize(self.torch_device)
        else:
            self._module().synchronize()

    # ---- memory -----------------------------------------------------------------------------------
    def memory_watch(self) -> MemoryWatch:
        """A peak-memory tracker for one run: device allocator peak, or process RSS on the CPU."""
        return MemoryWatch(self)

    def free_memory_bytes(self) -> int | None:
        """Memory a new run can still use: the device's free memory, or the host's available RAM."""
        try:
            if self.is_cpu:
                return int(psutil.virtual_memory().available)
            if self.type == "mps":
                return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
            acc = _accelerator()
            if acc is not None and hasattr(acc, "get_memory_info"):
                return int(acc.get_memory_info(self.index or 0)[0])
            return int(self._module().mem_get_info(self.index or 0)[0])
        except Exception:  # noqa: BLE001 - an estimate we cannot make is None, never a crash
            return None

    def empty_cache(self) -> None:
        """Give cached allocator blocks back, so the next run's memory figures are its own."""
        gc.collect()
        if self.is_cpu:
            return
        with contextlib.suppress(Exception):
            self._runtime().empty_cache()

    @staticmethod
    def is_oom(exc: BaseException) -> bool:
        """Whether an exception is the device (or host) running out of memory."""
        if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
            return True
        return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()

    # ---- precision --------------------------------------------------------------------------------
    def check_dtype(self, dtype: str) -> None:
        """Raise DtypeUnsupported with the reason when this device cannot train natively in dtype.

        Emulated arithmetic counts as unsupported on GPUs (a bf16 run on a T4 would time emulation);
        on the CPU reduced precision runs (slowly, without native instructions) and the report says so.
        """
        if dtype == "fp32":
            return
        if dtype not in ("tf32", "bf16", "fp16"):
            raise DtypeUnsupported(f"unknown dtype {dtype!r}")
        if self.type == "cuda":
            self._check_cuda_dtype(dtype)
        elif dtype == "tf32":
            raise DtypeUnsupported(f"tf32 is a CUDA tensor-core matmul mode; {self.type} has none")
        elif self.type == "mps":
            try:
                torch.zeros(1, device=self.torch_device, dtype=_autocast_dtype(dtype))
            except (RuntimeError, TypeError) as e:
                raise DtypeUnsupported(f"mps: {dtype} not supported ({e})") from None
        elif self.type == "xpu" and dtype == "bf16":
            with contextlib.suppress(AttributeError):
                if not torch.xpu.is_bf16_supported():
                    raise DtypeUnsupported(f"{self.display_name({})} has no bf16 arithmetic")

    def cuda_capability(self) -> tuple[int, int]:
        """(major, minor) compute capability of this CUDA device (ROCm reports its own numbering)."""
        return tuple(torch.cuda.get_device_capability(self.index or 0))  # type: ignore[return-value]

    def _check_cuda_dtype(self, dtype: str) -> None:
        name = self.display_name({})
        if self.is_rocm:
            if dtype == "bf16":
                with torch.cuda.device(self.index or 0):
                    native = torch.cuda.is_bf16_supported(including_emulation=False)
                if not native:
                    raise DtypeUnsupported(f"{name} has no native bf16: it would be emulated")
            if dtype == "tf32":
                arch = str(getattr(torch.cuda.get_device_properties(self.index or 0), "gcnArchName", ""))
                if not arch.startswith(("gfx94", "gfx95")):
                    raise DtypeUnsupported(f"{name} ({arch or 'unknown arch'}) has no TF32 matmul")
            return
        major, minor = self.cuda_capability()
        if dtype in ("bf16", "tf32") and major < 8:
            what = "bf16 arithmetic" if dtype == "bf16" else "TF32 tensor cores"
            hint = "use fp16 (with loss scaling) or fp32" if dtype == "bf16" else "tf32 would run as fp32"
            raise DtypeUnsupported(
                f"{name} (compute capability {major}.{minor}) has no {what}: {dtype} would be emulated; {hint}"
            )

    def autocast(self, dtype: str) -> contextlib.AbstractContextManager:
        """The autocast context of a reduced-precision run; nothing for fp32 and tf32."""
        low = _autocast_dtype(dtype)
        if low is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.type, dtype=low)

    @staticmethod
    def needs_grad_scaler(dtype: str) -> bool:
        """fp16's narrow exponent range needs loss scaling; bf16, tf32 and fp32 do not."""
        return dtype == "fp16"

    def grad_scaler(self, dtype: str) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.type, enabled=self.needs_grad_scaler(dtype))

    def _precision_knobs(self) -> list[Any]:
        """The fp32_precision settings that decide how this device runs an fp32 matmul or conv."""
        b = torch.backends
        if self.type == "cuda":
            return [b.cuda.matmul, b.cudnn.conv, b.cudnn.rnn]
        if self.type in ("cpu", "xpu"):
            return [b.mkldnn.matmul, b.mkldnn.conv]
        return []

    @contextlib.contextmanager
    def matmul_precision(self, dtype: str) -> Iterator[None]:
        """fp32 matmuls as the run's dtype says (tf32 only for dtype tf32, IEEE fp32 otherwise), set through
        the fp32_precision API (never the legacy allow_tf32 flags, which raise once the new API is used)
        and restored afterwards.

        On CUDA the legacy float32 matmul precision is kept in agreement ("high" with tf32, "highest"
        otherwise): torch.get_float32_matmul_precision() raises while cuda.matmul says tf32 and it says
        "highest", and Inductor's autotuning (compile mode max-autotune) asks it."""
        want = "tf32" if dtype == "tf32" else "ieee"
        knobs = [k for k in self._precision_knobs() if hasattr(k, "fp32_precision")]
        legacy = _legacy_matmul_precision() if self.type == "cuda" else None
        # torch.set_float32_matmul_precision sets mkldnn.matmul too: it is put back with the rest
        touched = knobs + ([torch.backends.mkldnn.matmul] if legacy is not None else [])
        saved = [k.fp32_precision for k in touched]
        try:
            if legacy is not None:
                torch.set_float32_matmul_precision("high" if want == "tf32" else "highest")
            for k in knobs:
                k.fp32_precision = want
            yield
        finally:
            if legacy is not None:
                torch.set_float32_matmul_precision(legacy)
            for k, v in zip(touched, saved, strict=True):
                k.fp32_precision = v

    # ---- data and optimizer -------------------------------------------------------------------------
    def to_device(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """CPU tensors to this device: pinned and asynchronous on CUDA/XPU, plain elsewhere."""
        if self.is_cpu:
            return tensors
        if self.type in ("cuda", "xpu"):
            return tuple(t.pin_memory().to(self.torch_device, non_blocking=True) for t in tensors)
        return tuple(t.to(self.torch_device) for t in tensors)

    @property
    def fused_adamw_default(self) -> bool:
        """nanoGPT's choice: the fused AdamW kernel on CUDA, the default (foreach) one elsewhere."""
        return self.type == "cuda"

    def supports_fused_adamw(self) -> bool:
        try:
            from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

            return self.type in _get_fused_kernels_supported_devices()
        except ImportError:
            return self.type == "cuda"

    # ---- compiler ---------------------------------------------------------------------------------
    def check_compile_mode(self, mode: str) -> None:
        if mode == "reduce-overhead" and self.type != "cuda":
            raise DtypeUnsupported(
                f"compile mode reduce-overhead uses CUDA graphs: CUDA only, not {self.type}"
            )

    @staticmethod
    @contextlib.contextmanager
    def clean_compiler_state() -> Iterator[None]:
        """A compiled run's own compiler state: Dynamo's caches (and CUDA-graph trees) reset before and after,
        Inductor's FX-graph and autotune caches off, and its kernel build folders (Inductor's C++/Triton
        code cache, Triton's cache) a fresh temporary directory removed afterwards, so its compile cost,
        kernels and memory are its own whatever ran before it in the sweep or in an earlier sweep."""
        import torch._dynamo
        import torch._inductor.config as inductor_config

        try:
            from torch._inductor.utils import fresh_cache  # torch >= 2.8; sets TORCHINDUCTOR/TRITON_CACHE_DIR
        except ImportError:  # older torch: the same under its former name
            from torch._inductor.utils import fresh_inductor_cache as fresh_cache

        off = {
            k: False
            for k in ("fx_graph_cache", "fx_graph_remote_cache", "autotune_local_cache", "autotune_remote_cache",
                      "bundled_autotune_remote_cache")
            if hasattr(inductor_config, k)
        }  # fmt: skip
        torch._dynamo.reset()
        try:
            with inductor_config.patch(off), fresh_cache():
                yield
        finally:
            torch._dynamo.reset()

    # ---- what `bench tune` may try here -------------------------------------------------------------
    def tune_thread_counts(self, hw: dict) -> list[int]:
        """Intra-op thread counts `bench tune` tries: 1, 2, 4, ... up to the physical cores, and the physical
        cores themselves; none where the device's parallelism is not CPU threads."""
        if not self.uses_cpu_threads:
            return []
        cpu = hw.get("cpu") or {}
        physical = cpu.get("physical_cores") or torch.get_num_threads()
        counts = {int(physical)}
        n = 1
        while n < physical:
            counts.add(n)
            n *= 2
        return sorted(counts)

    def performance_cpus(self, hw: dict, root: str | Path = "/") -> tuple[list[int] | None, str]:
        """(the logical CPUs of the performance cores, and how many P-cores there are, in words) on a hybrid
        CPU, or (None, why "P-cores only" cannot be tried here).

        hwinfo's core_groups say whether the CPU is hybrid; Linux lists the P-cores' logical CPUs in
        /sys/devices/cpu_core/cpus (Intel hybrid parts). Pinning needs sched_setaffinity (Linux).
        """
        if not self.uses_cpu_threads:
            return None, f"{self.type} work does not run on the CPU's cores"
        groups = [g for g in ((hw.get("cpu") or {}).get("core_groups") or []) if isinstance(g, dict)]
        kinds = {g.get("type") for g in groups}
        if not {"performance", "efficiency"} <= kinds:
            return None, "not a hybrid CPU: all its cores are of one kind"
        p_count = sum(int(g.get("count") or 0) for g in groups if g.get("type") == "performance")
        if not hasattr(os, "sched_setaffinity"):
            return None, f"{platform.system()} offers no CPU affinity to pin threads to the P-cores"
        try:
            text = (Path(root) / "sys/devices/cpu_core/cpus").read_text()
        except OSError:
            return None, "the kernel does not list the P-cores (no /sys/devices/cpu_core/cpus)"
        cpus = parse_cpulist(text)
        allowed = os.sched_getaffinity(0)
        cpus = [c for c in cpus if c in allowed]
        if not cpus:
            return None, "none of the P-cores is available to this process (affinity or cgroup)"
        return cpus, f"{p_count} P-cores (logical CPUs {text.strip()})"

    @staticmethod
    @contextlib.contextmanager
    def cpu_affinity(cpus: list[int] | tuple[int, ...] | None) -> Iterator[None]:
        """Every thread of this process (PyTorch's OpenMP workers included) pinned to `cpus`, restored after;
        None: nothing changes."""
        if cpus is None:
            yield
            return
        saved: dict[int, set[int]] = {}
        try:
            for tid in _thread_ids():
                with contextlib.suppress(OSError):  # a thread that ended meanwhile
                    saved[tid] = os.sched_getaffinity(tid)
                    os.sched_setaffinity(tid, cpus)
            yield
        finally:
            for tid, mask in saved.items():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, mask)

    # ---- profiler ---------------------------------------------------------------------------------
    def profiler_activities(self) -> list:
        extra = {"cuda": "CUDA", "xpu": "XPU"}.get(self.type)
        activities = [ProfilerActivity.CPU]
        if extra and hasattr(ProfilerActivity, extra):
            activities.append(getattr(ProfilerActivity, extra))
        return activities

    @property
    def profile_view(self) -> str:
        """How a profile sees a step here: "device" (kernel times on the trace), "host" (ops run on the host,
        so their times are the work), or "host_async" (ops only queue work: their times are launch costs)."""
        if self.trace_device_type is not None:
            return "device"
        return "host" if self.is_cpu else "host_async"

    @property
    def trace_device_type(self) -> Any:
        """The autograd DeviceType of this device's kernels in a profiler trace; None: host view only."""
        return {"cuda": DeviceType.CUDA, "xpu": DeviceType.XPU}.get(self.type)

    # ---- RNG ----------------------------------------------------------------------------------------
    def rng_state(self) -> torch.Tensor | None:
        if self.is_cpu:
            return None
        if self.type == "mps":
            return torch.mps.get_rng_state()
        return self._module().get_rng_state(self.torch_device)

    def set_rng_state(self, state: torch.Tensor | None) -> None:
        if state is None or self.is_cpu:
            return
        if self.type == "mps":
            torch.mps.set_rng_state(state)
        else:
            self._module().set_rng_state(state, self.torch_device)

    # ---- energy -------------------------------------------------------------------------------------
    def energy_meter(self) -> Any:
        """This device's energy counter (hwinfo.energy): RAPL package+DRAM for the CPU, NVML for an NVIDIA GPU;
        elsewhere a meter that says it is unavailable and why."""
        return open_energy_meter(self.type, self.index)

    # ---- distributed --------------------------------------------------------------------------------
    @property
    def dist_backend(self) -> str:
        """torch.distributed's backend for this device: gloo on the CPU, NCCL (RCCL on ROCm) on CUDA, xccl on XPU."""
        return {"cuda": "nccl", "xpu": "xccl"}.get(self.type, "gloo")

    def check_distributed(self) -> None:
        """Raise DeviceUnavailable when this PyTorch cannot train data-parallel on this device."""
        if self.type == "mps":
            raise DeviceUnavailable(
                "mps: torch.distributed has no MPS backend; run mps without torchrun or --nproc"
            )
        available = {"gloo": dist.is_gloo_available, "nccl": dist.is_nccl_available,
                     "xccl": getattr(dist, "is_xccl_available", lambda: False)}[self.dist_backend]  # fmt: skip
        if not available():
            raise DeviceUnavailable(
                f"{self.name}: this PyTorch ({torch.__version__}) has no {self.dist_backend} backend for torch.distributed"
            )

    def for_local_rank(self, local_rank: int, local_world_size: int) -> Device:
        """The device one rank of a node trains on: the CPU for every rank (they share its cores), cuda:LOCAL_RANK
        (xpu:LOCAL_RANK) on accelerators. An explicit index is kept only when the node runs one rank."""
        if not self.ranks_share_device and self.index is not None and local_world_size > 1:
            raise DeviceUnavailable(
                f"{self.name}: with {local_world_size} ranks per node each rank uses {self.type}:LOCAL_RANK; "
                f"give {self.type} (choose the GPUs with CUDA_VISIBLE_DEVICES / ZE_AFFINITY_MASK)"
            )
        if self.ranks_share_device or (local_world_size == 1 and self.index is not None):
            return self
        count = self._module().device_count()
        if local_rank >= count:
            raise DeviceUnavailable(
                f"{self.type}: local rank {local_rank} needs {self.type}:{local_rank} but this node has {count} "
                f"{self.type} device(s): start at most {count} rank(s) per node"
            )
        return Device(torch.device(self.type, local_rank))

    def make_current(self) -> None:
        """Make this the current device of the process (NCCL and XCCL collectives run on it)."""
        if self.type in ("cuda", "xpu"):
            self._module().set_device(self.index or 0)

    @property
    def ddp_device_ids(self) -> list[int] | None:
        """DistributedDataParallel's device_ids: this accelerator's index; None on the CPU."""
        return [self.index or 0] if self.type in ("cuda", "xpu") else None

    @property
    def ranks_share_device(self) -> bool:
        """Whether the ranks of one node share this device (the CPU and its cores) instead of one device each."""
        return self.is_cpu or self.type == "mps"

    def stamp(self) -> Any:
        """A point on this device's timeline: an event recorded on the current stream (CUDA, XPU), the host clock
        elsewhere. Read two with ms_between once the device is synchronised."""
        if self.type in ("cuda", "xpu"):
            event = self._module().Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    @staticmethod
    def ms_between(start: Any, end: Any) -> float:
        """Milliseconds from one stamp to another (device events or host clock readings)."""
        if isinstance(start, float):
            return (end - start) * 1e3
        return float(start.elapsed_time(end))


def _legacy_matmul_precision() -> str | None:
    """torch.get_float32_matmul_precision(), or None where this torch has none or its settings already
    disagree (then it raises, and they are left as found)."""
    try:
        return str(torch.get_float32_matmul_precision())
    except (AttributeError, RuntimeError):
        return None


def _thread_ids() -> list[int]:
    """The ids of this process's threads (Linux /proc/self/task), the calling thread alone elsewhere."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


class MemoryWatch:
    """Peak memory of one run: the device allocator's peak, or the process's RSS sampled per step on the CPU
    (and MPS, whose allocator keeps no peak)."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.peak_bytes: int | None = None
        self._sampler: Callable[[], int] | None = None
        if device.is_cpu:
            proc = psutil.Process()
            self._sampler = lambda: int(proc.memory_info().rss)
            self.kind = "process_rss"
        elif device.type == "mps":
            self._sampler = lambda: int(torch.mps.driver_allocated_memory())
            self.kind = "mps_driver_allocated"
        else:
            self.kind = f"{device.type}_max_memory_allocated"
            with contextlib.suppress(Exception):
                device._runtime().reset_peak_memory_stats(device.torch_device)
        self.sample()

    def sample(self) -> None:
        """Cheap; called after each step, outside the step's timer."""
        if self._sampler is not None:
            value = self._sampler()
            self.peak_bytes = value if self.peak_bytes is None else max(self.peak_bytes, value)

    def peak(self) -> int | None:
        if self._sampler is not None:
            self.sample()
            return self.peak_bytes
        with contextlib.suppress(Exception):
            return int(self.device._runtime().max_memory_allocated(self.device.torch_device))
        return None


def parse_device(name: str) -> Device:
    """'cpu', 'cuda', 'cuda:1', 'mps', 'xpu', 'xpu:0' -> a Device, checked to be usable here.

    Raises DeviceUnavailable (exit code 2) with what to do.
    """
    text = str(name).strip().lower()
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise DeviceUnavailable(f"unknown device {name!r}: {USAGE}") from None
    if dev.type not in KINDS:
        raise DeviceUnavailable(f"device type {dev.type!r} is not supported: {USAGE}")
    if dev.type == "cpu":
        if dev.index not in (None, 0):
            raise DeviceUnavailable(
                f"{name!r}: the CPU is one device (all its cores); use cpu, and --threads N"
            )
        return Device(torch.device("cpu"))
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            cpu_only = torch.version.cuda is None and getattr(torch.version, "hip", None) is None
            build = "; it is a CPU-only build" if cpu_only else ""
            raise DeviceUnavailable(f"{name}: this PyTorch ({torch.__version__}) sees no CUDA GPU{build}")
        count = torch.cuda.device_count()
        if (dev.index or 0) >= count:
            raise DeviceUnavailable(f"{name}: only {count} CUDA device(s) here (cuda:0 .. cuda:{count - 1})")
        return Device(dev)
    if dev.type == "mps":
        if dev.index not in (None, 0):
            raise DeviceUnavailable(f"{name!r}: there is one MPS device; use mps")
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceUnavailable(f"{name}: Apple MPS is not available on this machine")
        return Device(torch.device("mps"))
    if not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise DeviceUnavailable(f"{name}: no Intel XPU is available to this PyTorch")
    count = torch.xpu.device_count()
    if (dev.index or 0) >= count:
        raise DeviceUnavailable(f"{name}: only {count} XPU device(s) here")
    return Device(dev)


def software_versions() -> dict:
    """The software stack a run used: Python, torch, its CUDA/ROCm/cuDNN builds, NumPy, the OS."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def device_kind(name: str) -> str:
    """'cuda:1' -> 'cuda' without checking availability (labels, planning)."""
    return str(name).strip().lower().split(":", 1)[0]


def available_devices() -> list[str]:
    """Every device PyTorch can use here, CPU first."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        devices += [f"cuda:{i}" for i in range(n)] if n > 1 else ["cuda"]
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        devices.append("mps")
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        n = torch.xpu.device_count()
        devices += [f"xpu:{i}" for i in range(n)] if n > 1 else ["xpu"]
    return devices
