"""The variants `bench tune` measures around a recipe on one device, and why others cannot run there.
Device differences are asked of bench.devices.Device; this module never branches on a device string.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from bench.tune import levers
from bench.tune.verdict import THROUGHPUT, TIME_TO_LOSS

if TYPE_CHECKING:
    from bench.config import BenchConfig
    from bench.devices import Device

# Tip ids, in the order the report lists them. Words about each (the claim, the why) live in reports/tips.py.
TIPS = (
    "compile", "max_autotune", "max_autotune_no_cudagraphs", "cuda_graphs", "threads", "p_cores", "omp_affinity",
    "kmp_affinity", "numactl", "allocator", "bf16", "fp16", "tf32", "fused_adamw", "batch_x2", "batch_x4",
    "num_workers", "eval_iters",
)  # fmt: skip
# Tips answered from the default run's files (its profile, its evals), with no run of their own.
ANSWERED_TIPS = ("num_workers", "eval_iters")
DEFAULT = "default"
BEST = "best"
BEST_TO_LOSS = "best-to-loss"


@dataclass(frozen=True)
class Knobs:
    """What a variant runs with. threads None: PyTorch's choice (and None off the CPU); cpus None: no pinning."""

    dtype: str
    compile: str
    threads: int | None
    cpus: tuple[int, ...] | None
    fused_adamw: bool
    batch_size: int
    allocator: str = "system"  # or an ALLOCATORS name, preloaded into a process of its own
    omp_affinity: str | None = None  # or an OMP_AFFINITY name, set when a process of its own starts

    @property
    def needs_child(self) -> bool:
        """Whether these knobs take effect only in a process started with them (bench.tune.child)."""
        return self.allocator != "system" or self.omp_affinity is not None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cpus"] = list(self.cpus) if self.cpus is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Knobs:
        cpus = d.get("cpus")
        return cls(d["dtype"], d["compile"], d.get("threads"), tuple(cpus) if cpus is not None else None,
                   bool(d["fused_adamw"]), int(d["batch_size"]), str(d.get("allocator") or "system"),
                   d.get("omp_affinity"))  # fmt: skip

    def changed(self, default: Knobs) -> list[str]:
        """The knobs that differ from the default's, as "dtype bf16", "threads 1", ..."""
        out = []
        for k, v in asdict(self).items():
            if v != getattr(default, k):
                out.append(f"{k} {_show(v)}")
        return out


def _show(v: object) -> str:
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v)


@dataclass(frozen=True)
class Variant:
    """One configuration to measure on one device: which tip it tests and how it is measured.

    applies_tip: True when the variant turns the tip on; False when the recipe already follows the tip
    and the variant turns it off (its effect is then read the other way round). unavailable: why it
    cannot run on this device (then it is recorded, never run).
    """

    device: str
    tip: str
    name: str  # the part of the run id after the device label: "compile", "threads1", "batch24"
    group: str  # the knob group it changes (bench.tune.verdict.GROUPS), or "" for the default
    knobs: Knobs
    measure: str  # THROUGHPUT, TIME_TO_LOSS, or DEFAULT (the recipe's full run, the target of the others)
    applies_tip: bool = True
    unavailable: str | None = None

    def run_id(self, label: str) -> str:
        return f"{label}-{self.name}"

    def tune_meta(self, default: Knobs) -> dict:
        """run.json's "tune" block (the numbers measured are added to it by the runner)."""
        return {
            "tip": self.tip, "variant": self.name, "group": self.group, "measure": self.measure,
            "applies_tip": self.applies_tip, "knobs": self.knobs.to_dict(), "default_knobs": default.to_dict(),
            "changed": self.knobs.changed(default),
        }  # fmt: skip


def recipe_knobs(cfg: BenchConfig, device: Device) -> Knobs:
    """The recipe's own settings on this device: its one dtype, compile mode, thread count and batch size,
    and the device's default AdamW (nanoGPT: fused on CUDA, foreach elsewhere)."""
    s = cfg.sweep
    threads = s.threads[0] if device.uses_cpu_threads else None
    return Knobs(s.dtypes[0], s.compile[0], threads, None, device.fused_adamw_default, s.batch_sizes[0])


def plan_device(name: str, device: Device, cfg: BenchConfig, hw: dict, tips: Iterable[str] = TIPS,
                default_threads: int = 1) -> list[Variant]:  # fmt: skip
    """Every variant of the requested tips on this device, the unavailable ones included with their reason;
    first the default's full run (when a time-to-loss tip or an answered tip needs it), then the throughput
    variants, then the time-to-loss ones. default_threads: the thread count "PyTorch's choice" means here."""
    from bench.devices import DtypeUnsupported

    tips = [t for t in TIPS if t in set(tips)]
    base = recipe_knobs(cfg, device)
    out: list[Variant] = []

    def add(tip: str, vname: str, group: str, measure: str = THROUGHPUT, applies: bool = True,
            unavailable: str | None = None, **changes: object) -> None:  # fmt: skip
        out.append(Variant(name, tip, vname, group, replace(base, **changes), measure, applies, unavailable))

    if any(t.startswith("batch_") or t in ANSWERED_TIPS for t in tips):
        out.append(Variant(name, DEFAULT, DEFAULT, "", base, DEFAULT))
    for tip, mode in (("compile", "on"), ("max_autotune", "max-autotune"),
                      ("max_autotune_no_cudagraphs", "max-autotune-no-cudagraphs"), ("cuda_graphs", "reduce-overhead")):  # fmt: skip
        if tip not in tips:
            continue
        if base.compile == mode:  # the recipe already follows the tip: measure it without
            add(tip, "eager", "compile", applies=False, compile="off")
            continue
        try:
            device.check_compile_mode(mode)
            why = None
            if mode == "max-autotune-no-cudagraphs":
                # it is max-autotune less CUDA graphs: where a device has none, it is max-autotune itself
                device.check_compile_mode("reduce-overhead")
        except DtypeUnsupported as e:
            why = str(e)
            if mode == "max-autotune-no-cudagraphs":
                why = (f"max-autotune-no-cudagraphs differs from max-autotune only in leaving out CUDA graphs, "
                       f"which {device.type} has none of ({e}): here it is max-autotune, which the max_autotune "
                       "tip measures")  # fmt: skip
        add(tip, "compile" if mode == "on" else f"compile-{mode}", "compile", unavailable=why, compile=mode)
    if "threads" in tips:
        # a damaged hwinfo (a cached core count of 10**30) never plans more threads than this machine has CPUs
        counts = [n for n in device.tune_thread_counts(hw) if 1 <= n <= (os.cpu_count() or 1)]
        current = base.threads if base.threads is not None else default_threads
        if not counts:
            add(
                "threads", "threads", "threads", unavailable=f"{device.type} work does not run on CPU threads"
            )
        physical = max(counts) if counts else None
        for n in counts:
            if n != current:
                # the tip is "threads = physical cores": a variant applies it when it moves toward that count;
                # with the recipe already there (the default: PyTorch's choice), the variants measure it without
                toward = physical is not None and abs(n - physical) < abs(current - physical)
                add("threads", f"threads{n}", "threads", applies=toward, threads=n)
    if "omp_affinity" in tips:
        why = None if device.uses_cpu_threads else f"{device.type} work does not run on OpenMP threads"
        add("omp_affinity", "omp-close-cores", "affinity", unavailable=why, omp_affinity="close-cores")
    if "kmp_affinity" in tips:
        why = (levers.kmp_affinity_unavailable(levers.openmp_runtime()) if device.uses_cpu_threads
               else f"{device.type} work does not run on OpenMP threads")  # fmt: skip
        add("kmp_affinity", "kmp-compact", "affinity", unavailable=why, omp_affinity="kmp-compact")
    if "numactl" in tips:
        why = (levers.numactl_unavailable(shutil.which("numactl"), levers.numa_nodes()) if device.uses_cpu_threads
               else f"{device.type} work does not run on CPU threads: the host's NUMA binding is not its speed")  # fmt: skip
        add("numactl", "numa-node0", "affinity", unavailable=why, omp_affinity="numa-node0")
    if "allocator" in tips:
        for alloc, (names, _) in levers.ALLOCATORS.items():
            if not device.uses_cpu_threads:
                why = f"{device.type} tensors use the device's own caching allocator; LD_PRELOAD changes host malloc only"
            else:
                why = levers.allocator_unavailable(alloc, levers.find_library(names))
            add("allocator", alloc, "allocator", unavailable=why, allocator=alloc)
    if "p_cores" in tips:
        cpus, why = device.performance_cpus(hw)
        if cpus is None:
            add("p_cores", "pcores", "threads", unavailable=why)
        else:
            p_count = sum(int(g.get("count") or 0) for g in (hw.get("cpu") or {}).get("core_groups") or []
                          if isinstance(g, dict) and g.get("type") == "performance")  # fmt: skip
            add("p_cores", "pcores", "threads", threads=p_count or len(cpus), cpus=tuple(cpus))
    for tip in ("bf16", "fp16", "tf32"):
        if tip not in tips:
            continue
        if base.dtype == tip:
            add(tip, "fp32", "dtype", applies=False, dtype="fp32")
            continue
        try:
            device.check_dtype(tip)
            why = None
        except DtypeUnsupported as e:
            why = str(e)
        add(tip, tip, "dtype", unavailable=why, dtype=tip)
    if "fused_adamw" in tips:
        if not device.supports_fused_adamw():
            add("fused_adamw", "fused-adamw", "optimizer", fused_adamw=True,
                unavailable=f"this PyTorch has no fused AdamW kernel for {device.type}")  # fmt: skip
        elif base.fused_adamw:
            add("fused_adamw", "foreach-adamw", "optimizer", applies=False, fused_adamw=False)
        else:
            add("fused_adamw", "fused-adamw", "optimizer", fused_adamw=True)
    for tip, factor in (("batch_x2", 2), ("batch_x4", 4)):
        if tip in tips:
            bs = base.batch_size * factor
            add(tip, f"batch{bs}", "batch", TIME_TO_LOSS, batch_size=bs)
    return out


def best_knobs(default: Knobs, chosen: dict[str, dict]) -> Knobs:
    """The default with the knobs of each chosen variant ({group: its knobs}) put in."""
    fields = {
        "dtype": ("dtype",), "compile": ("compile",), "threads": ("threads", "cpus"),
        "optimizer": ("fused_adamw",), "batch": ("batch_size",), "allocator": ("allocator",),
        "affinity": ("omp_affinity",),
    }  # fmt: skip
    knobs = default
    for group, k in chosen.items():
        other = Knobs.from_dict(k)
        knobs = replace(knobs, **{f: getattr(other, f) for f in fields[group]})
    return knobs
