"""Peak FLOP/s per dtype (CPU: cores x clock x FLOP/cycle; GPUs: the spec table, else derived from
SMs x clock x the per-SM rate) and memory bandwidth; peak_for / bandwidth_for read them from a snapshot.

Never imports torch: reports/ calls `peak_for` on machines without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hwinfo.gpu_table import gpu_table
from hwinfo.units import bytes_per_s, flops, is_num, is_positive

DTYPES: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16")

# nanoGPT's estimate_mfu denominator (A100 BF16 dense), used only for the labelled comparison.
A100_BF16_PEAK_FLOPS = 312e12

# AMX: 16x32 BF16 tile multiply per 16 cycles = 1024 BF16 FLOP/cycle/core (Intel 64 and IA-32
# Architectures Optimization Reference Manual, AMX chapter).
AMX_FLOP_PER_CYCLE = 1024
_AMX_SRC = "AMX TMUL: 1024 FLOP/cycle/core (Intel Optimization Reference Manual, AMX chapter)"


@dataclass(frozen=True)
class CoreRate:
    """FP32 FLOP per cycle of one core of a given type (FMA = 2 FLOP)."""

    fp32: int
    why: str


@dataclass(frozen=True)
class CpuUarch:
    """FLOP/cycle per core type ("core", or "performance"/"efficiency" on hybrid chips)."""

    name: str
    rates: dict[str, CoreRate]
    source: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def _one(name: str, fp32: int, why: str, source: str) -> CpuUarch:
    return CpuUarch(name, {"core": CoreRate(fp32, why)}, source)


def _hybrid(name: str, p: tuple[int, str], e: tuple[int, str], source: str) -> CpuUarch:
    p_rate = CoreRate(*p)
    return CpuUarch(name, {"core": p_rate, "performance": p_rate, "efficiency": CoreRate(*e)}, source)


_INTEL_SRC = "Intel 64 and IA-32 Architectures Optimization Reference Manual"
_AMD_17H = "AMD Software Optimization Guide for Family 17h"
_AMD_19H = "AMD Software Optimization Guide for Family 19h"
_AMD_1AH = "AMD Software Optimization Guide for Family 1Ah"
_ARM_SRC = "Arm Software Optimization Guide for the core"
_APPLE_SRC = "Apple silicon: public microbenchmarks (Dougall Johnson's Firestorm/Icestorm tables)"
_AVX2 = "AVX2, 2 x 256-bit FMA"
_AVX512_1 = "AVX-512, 1 x 512-bit FMA"
_AVX512_2 = "AVX-512, 2 x 512-bit FMA"
_GOLDEN = (32, "P-core: AVX2, 2 x 256-bit FMA")
_GRACEMONT = (16, "E-core: 2 x 128-bit FMA")

CPU_UARCHS: dict[str, CpuUarch] = {
    u.name: u
    for u in (
        _one("Haswell", 32, _AVX2, _INTEL_SRC),
        _one("Broadwell", 32, _AVX2, _INTEL_SRC),
        _one("Skylake", 32, _AVX2, _INTEL_SRC),
        _one("Skylake-SP", 64, _AVX512_2, _INTEL_SRC),
        _one("Cascade Lake", 64, _AVX512_2, _INTEL_SRC),
        _one("Cooper Lake", 64, _AVX512_2, _INTEL_SRC),
        _one("Cannon Lake", 32, _AVX512_1, _INTEL_SRC),
        _one("Ice Lake", 32, _AVX512_1 + " (client core)", _INTEL_SRC),
        _one("Tiger Lake", 32, _AVX512_1 + " (client core)", _INTEL_SRC),
        _one("Rocket Lake", 32, _AVX512_1 + " (client core)", _INTEL_SRC),
        _one("Ice Lake-SP", 64, _AVX512_2, _INTEL_SRC),
        _one("Sapphire Rapids", 64, _AVX512_2, _INTEL_SRC),
        _one("Emerald Rapids", 64, _AVX512_2, _INTEL_SRC),
        _one("Granite Rapids", 64, _AVX512_2, _INTEL_SRC),
        _one("Sierra Forest", 16, "E-core: 2 x 128-bit FMA", _INTEL_SRC),
        _one("Alder Lake-N", 16, "E-core: 2 x 128-bit FMA", _INTEL_SRC),
        _hybrid("Alder Lake", _GOLDEN, _GRACEMONT, _INTEL_SRC),
        _hybrid("Raptor Lake", _GOLDEN, _GRACEMONT, _INTEL_SRC),
        _hybrid("Meteor Lake", _GOLDEN, (16, "E-core: 2 x 128-bit FMA"), _INTEL_SRC),
        _hybrid("Lunar Lake", _GOLDEN, (32, "E-core (Skymont): 4 x 128-bit FMA"), _INTEL_SRC),
        _hybrid("Arrow Lake", _GOLDEN, (32, "E-core (Skymont): 4 x 128-bit FMA"), _INTEL_SRC),
        _one("Zen", 16, "AVX2 split into 2 x 128-bit FMA", _AMD_17H),
        _one("Zen 2", 32, _AVX2, _AMD_17H),
        _one("Zen 3", 32, _AVX2, _AMD_19H),
        _one("Zen 4", 32, "AVX-512 on a 256-bit datapath, 2 x 256-bit FMA", _AMD_19H),
        _one("Zen 5", 64, "AVX-512 on a full 512-bit datapath, 2 x 512-bit FMA", _AMD_1AH),
        _one("Zen 5 (256-bit datapath)", 32, "AVX-512 on a 256-bit datapath (mobile Zen 5)", _AMD_1AH),
        _one("Cortex-A53", 8, "NEON, one 128-bit FMLA per cycle", _ARM_SRC),
        _one("Cortex-A55", 8, "NEON, one 128-bit FMLA per cycle", _ARM_SRC),
        # A57/A72/A73: two 64-bit FP/NEON pipes, a 128-bit FMLA takes both: 4 FP32 FMA per cycle
        _one("Cortex-A57", 8, "NEON, 2 x 64-bit pipes: one 128-bit FMLA per cycle", _ARM_SRC),
        _one("Cortex-A72", 8, "NEON, 2 x 64-bit pipes: one 128-bit FMLA per cycle", _ARM_SRC),
        _one("Cortex-A73", 8, "NEON, 2 x 64-bit pipes: one 128-bit FMLA per cycle", _ARM_SRC),
        _one("Cortex-A77", 16, "NEON, 2 x 128-bit FMA", _ARM_SRC),
        _one("Cortex-A710", 16, "NEON/SVE2, 2 x 128-bit FMA", _ARM_SRC),
        _one("Cortex-A715", 16, "NEON/SVE2, 2 x 128-bit FMA", _ARM_SRC),
        _one("Cortex-X2", 32, "NEON/SVE2, 4 x 128-bit FMA", _ARM_SRC),
        _one("Cortex-X3", 32, "NEON/SVE2, 4 x 128-bit FMA", _ARM_SRC),
        _one("Neoverse V3", 32, "NEON/SVE2, 4 x 128-bit FMA", _ARM_SRC),
        _one("Neoverse N3", 16, "NEON/SVE2, 2 x 128-bit FMA", _ARM_SRC),
        _one("Cortex-A720", 16, "NEON/SVE2, 2 x 128-bit FMA", _ARM_SRC),
        _one("Cortex-A725", 16, "NEON/SVE2, 2 x 128-bit FMA", _ARM_SRC),
        _one("Cortex-X4", 32, "NEON/SVE2, 4 x 128-bit FMA", _ARM_SRC),
        _one("Cortex-X925", 48, "NEON/SVE2, 6 x 128-bit FMA", _ARM_SRC),
        _one("Oryon", 32, "NEON, 4 x 128-bit FMA", "Qualcomm Oryon CPU (Hot Chips 2024)"),
        _one("AmpereOne", 16, "NEON, 2 x 128-bit FMA", "Ampere: AmpereOne product brief"),
        _one("Cortex-A76", 16, "NEON, 2 x 128-bit FMA", _ARM_SRC),
        _one("Cortex-A78", 16, "NEON, 2 x 128-bit FMA", _ARM_SRC),
        _one("Cortex-X1", 32, "NEON, 4 x 128-bit FMA", _ARM_SRC),
        _one("Neoverse N1", 16, "NEON, 2 x 128-bit FMA", _ARM_SRC),
        _one("Neoverse N2", 16, "NEON/SVE2, 2 x 128-bit FMA", _ARM_SRC),
        _one("Neoverse V1", 32, "NEON 4 x 128-bit or SVE 2 x 256-bit FMA", _ARM_SRC),
        _one("Neoverse V2", 32, "NEON/SVE2, 4 x 128-bit FMA", _ARM_SRC),
        *(
            _hybrid(
                f"Apple {gen}",
                (32, "P-core: NEON, 4 x 128-bit FMA"),
                (16, "E-core: NEON, 2 x 128-bit FMA"),
                _APPLE_SRC,
            )
            for gen in ("M1", "M2", "M3", "M4")
        ),
    )
}

# Apple chips: (performance cores, efficiency cores) configurations, full first, and P/E max clocks (MHz).
APPLE_CHIPS: dict[str, dict[str, Any]] = {
    "Apple M1": {"configs": [(4, 4)], "p_mhz": 3204, "e_mhz": 2064},
    "Apple M1 Pro": {"configs": [(8, 2), (6, 2)], "p_mhz": 3228, "e_mhz": 2064},
    "Apple M1 Max": {"configs": [(8, 2)], "p_mhz": 3228, "e_mhz": 2064},
    "Apple M1 Ultra": {"configs": [(16, 4)], "p_mhz": 3228, "e_mhz": 2064},
    "Apple M2": {"configs": [(4, 4)], "p_mhz": 3504, "e_mhz": 2424},
    "Apple M2 Pro": {"configs": [(8, 4), (6, 4)], "p_mhz": 3504, "e_mhz": 2424},
    "Apple M2 Max": {"configs": [(8, 4)], "p_mhz": 3696, "e_mhz": 2424},
    "Apple M2 Ultra": {"configs": [(16, 8)], "p_mhz": 3696, "e_mhz": 2424},
    "Apple M3": {"configs": [(4, 4)], "p_mhz": 4056, "e_mhz": 2748},
    "Apple M3 Pro": {"configs": [(6, 6), (5, 6)], "p_mhz": 4056, "e_mhz": 2748},
    "Apple M3 Max": {"configs": [(12, 4), (10, 4)], "p_mhz": 4056, "e_mhz": 2748},
    "Apple M3 Ultra": {"configs": [(24, 8), (20, 8)], "p_mhz": 4056, "e_mhz": 2748},
    "Apple M4": {"configs": [(4, 6), (4, 4)], "p_mhz": 4400, "e_mhz": 2850},
    "Apple M4 Pro": {"configs": [(10, 4), (8, 4)], "p_mhz": 4512, "e_mhz": 2592},
    "Apple M4 Max": {"configs": [(12, 4), (10, 4)], "p_mhz": 4512, "e_mhz": 2592},
}


def apple_chip(model_name: str | None) -> str | None:
    """The APPLE_CHIPS key for a brand string such as "Apple M2 Pro", else None."""
    m = re.search(r"\bApple (M\d)(?: (Pro|Max|Ultra))?\b", model_name or "")
    if not m:
        return None
    key = f"Apple {m.group(1)}" + (f" {m.group(2)}" if m.group(2) else "")
    return key if key in APPLE_CHIPS else None


# ---------------------------------------------------------------------------------------------------
# CPU


def _unknown(detail: str) -> dict[str, Any]:
    return {"value": None, "source": "unknown", "detail": detail}


_SUFFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_PEAK_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kMGTP]?)\s*(?:FLOP/?s?|FLOPS)?\s*$")


_MAX_USER_PEAK = 1e19  # 10 EFLOP/s: far above any one device; a larger figure is a typo


def parse_peak_flops(items: list[str] | str) -> dict[str, float]:
    """User peaks from "DTYPE=VALUE" items ("fp32=1.35e12", "bf16=2.7T", "fp16=900 GFLOP/s").

    Comma-separated items are split too. Raises ValueError with one line naming what is wrong.
    """
    if isinstance(items, str):
        items = [items]
    out: dict[str, float] = {}
    for item in (part.strip() for text in items for part in str(text).split(",")):
        if not item:
            continue
        dtype, sep, text = item.partition("=")
        dtype = dtype.strip().lower()
        if not sep or dtype not in DTYPES:
            raise ValueError(
                f"--peak-flops takes DTYPE=VALUE with DTYPE one of {', '.join(DTYPES)}, e.g. fp32=1.35e12 or "
                f"bf16=2.7T; got {item!r}"
            )
        m = _PEAK_RE.match(text)
        value = float(m.group(1)) * _SUFFIX[m.group(2)] if m else float("nan")
        if not (value > 0 and value < _MAX_USER_PEAK):
            raise ValueError(
                f"--peak-flops {dtype}: {text.strip()!r} is not a FLOP/s figure above 0 and below 1e19 (10 EFLOP/s; "
                "e.g. 1.35e12, 1.35T, 1350G)"
            )
        out[dtype] = value
    return out


def user_peak(value: float, dtype: str, what: str = "") -> dict[str, Any]:
    """A peak the user gave (--peak-flops), labelled `user`."""
    where = f" for {what}" if what else ""
    return {
        "value": float(value),
        "source": "user",
        "detail": f"given by the user{where}: {dtype} {flops(value)}",
    }


def _avx512_fma_units(model_name: str) -> int:
    """Skylake-SP/Cascade Lake: Bronze, Silver and most Gold 5xxx have one AVX-512 FMA unit."""
    if re.search(r"\b(Bronze|Silver)\b", model_name):
        return 1
    m = re.search(r"\bGold (5\d{3})", model_name)
    if m and m.group(1) not in ("5122", "5222"):
        return 1
    if re.search(r"i7-78[02]0X", model_name):
        return 1
    return 2


def _clock(cpu: dict[str, Any]) -> tuple[float | None, str, str]:
    """(MHz, words, provenance) of the clock the peak uses: max/boost when known ("spec"), else base, else
    the current clock ("derived": a lower bound on the peak, the clock's source named)."""
    sources = cpu.get("clock_sources") or {}
    for key, label in (("max_mhz", "max/boost"), ("base_mhz", "base"), ("current_mhz", "current")):
        mhz = cpu.get(key)
        if mhz:
            where = sources.get(key, "unknown source")
            caveat = "" if key == "max_mhz" else "; no max/boost clock known, so the true peak may be higher"
            spec = key == "max_mhz" and cpu.get("max_mhz_is_spec", True) is not False
            if key == "max_mhz" and not spec:
                caveat = "; one max clock for all core types, not each type's own"
            return (
                float(mhz),
                f"{label} clock {mhz:.0f} MHz from {where}{caveat}",
                "spec" if spec else "derived",
            )
    return None, "no clock known", "unknown"


def _core_groups(cpu: dict[str, Any]) -> list[dict[str, Any]]:
    groups = cpu.get("core_groups")
    if groups:
        return groups
    return [{"type": "core", "count": cpu.get("physical_cores"), "max_mhz": None}]


_NO_CPU_TF32 = "tf32 is a CUDA tensor-core matmul mode, not a CPU dtype"


def _cpu_unknown(why: str) -> dict[str, dict[str, Any]]:
    return {d: _unknown(_NO_CPU_TF32 if d == "tf32" else why) for d in DTYPES}


def cpu_peaks(cpu: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Peak FLOP/s of a CPU per dtype from cores x clock x FLOP/cycle (see CPU_UARCHS for sources)."""
    out: dict[str, dict[str, Any]] = {"tf32": _unknown(_NO_CPU_TF32)}
    uarch_name = cpu.get("microarchitecture")
    uarch = CPU_UARCHS.get(uarch_name or "")
    ident = cpu.get("model_name") or "this CPU"
    if uarch is None:
        why = (
            f"microarchitecture of {ident} not in the FLOP/cycle table"
            if uarch_name is None
            else f"no FLOP/cycle entry for {uarch_name}"
        )
        return _cpu_unknown(why + "; run hwinfo --measure for a measured figure")
    mhz, clock_desc, provenance = _clock(cpu)
    groups = _core_groups(cpu)
    if groups and all(g.get("max_mhz") for g in groups):  # each core type's own max clock (sysfs, table)
        provenance, mhz = "spec", mhz or max(float(g["max_mhz"]) for g in groups)
    if mhz is None or any(not g.get("count") for g in groups):
        why = "clock unknown" if mhz is None else "core count unknown"
        return _cpu_unknown(f"{why} for {ident}")
    rates_of = {id(g): _group_rate(uarch, g) for g in groups}
    missing = [
        g.get("part") or g.get("microarchitecture") or g["type"] for g in groups if rates_of[id(g)] is None
    ]
    if missing:
        why = (
            f"no FLOP/cycle entry for {', '.join(str(m) for m in missing)} (a core group of {ident}); the peak "
            "of the other groups alone would understate the chip; run hwinfo --measure for a measured figure"
        )
        return _cpu_unknown(why)
    features = set(cpu.get("features") or [])
    caveats: list[str] = []
    isa_cap, halve = _isa_limits(cpu, features, uarch, caveats)
    if cpu.get("virtual_machine"):
        provenance = "derived"
        caveats.append(
            "a virtual machine (hypervisor flag): each vCPU is counted as a full host core at the host's "
            "clock; vCPUs that are SMT siblings or shared with other guests give less"
        )
    if "efficiency" in uarch.rates and any(g.get("type") == "core" for g in groups):
        provenance = "derived"
        caveats.append(
            f"{uarch.name} is a hybrid chip whose P/E core split is not known here: every core is counted at the "
            "P-core rate, an upper bound"
        )
    if halve:
        provenance = "derived"
    label = "" if provenance == "spec" else "derived: "

    fp32_terms: list[tuple[int, float, int, str]] = []  # (cores, mhz, flop/cycle, core type)
    for g in groups:
        rate = rates_of[id(g)]
        assert rate is not None
        flop = rate.fp32
        if (
            uarch.name in ("Skylake-SP", "Cascade Lake")
            and _avx512_fma_units(cpu.get("model_name") or "") == 1
        ):
            flop = 32
        flop = min(flop, isa_cap) if isa_cap else flop
        flop = flop // 2 if halve else flop
        fp32_terms.append((int(g["count"]), float(g.get("max_mhz") or mhz), flop, _group_label(g)))

    fma_why = "; ".join(dict.fromkeys(f"{_group_label(g)}: {r.why}" if len(groups) > 1 else r.why
                                      for g in groups if (r := rates_of[id(g)])))  # fmt: skip
    if uarch.name in ("Skylake-SP", "Cascade Lake"):
        units = _avx512_fma_units(cpu.get("model_name") or "")
        fma_why = f"AVX-512, {units} x 512-bit FMA (Bronze/Silver/Gold 5xxx have 1, Gold 6xxx/Platinum 2)"
    clock_note = clock_desc if len({m for _, m, _, _ in fp32_terms}) == 1 else "per-core-type max clocks"
    if caveats:
        clock_note += "; " + "; ".join(caveats)
    fp32 = _sum_terms(fp32_terms, 1)
    out["fp32"] = {
        "value": fp32,
        "source": provenance,
        "detail": f"{label}{_terms_text(fp32_terms, 1, 'FP32')} = {flops(fp32)}; {clock_note}; "
        f"{'' if len({g.get('microarchitecture') for g in groups}) > 1 else uarch.name + ': '}{fma_why} "
        f"({uarch.source})",
    }
    emulated = f"at most the fp32 peak ({flops(fp32)}); PyTorch's CPU kernels for it may be far slower"
    is_arm = bool(features & {"asimd", "sve"}) or uarch.name.startswith(("Apple", "Cortex", "Neoverse"))

    # (AMX flag, native x86 flag, native Arm flag, how it is native on each, why the rate doubles)
    half = {
        "bf16": ("amx_bf16", "avx512_bf16", "bf16", ("avx512_bf16 VDPBF16PS", "Arm BFDOT"),
                 "two multiply-adds per FP32 lane, 2x the FP32 rate", "avx512_bf16/AMX-BF16", "BF16"),
        "fp16": ("amx_fp16", "avx512_fp16", "asimdhp", ("AVX512-FP16", "Arm FP16 NEON (asimdhp)"),
                 "twice the lanes of FP32", "avx512_fp16/AMX-FP16", "asimdhp"),
    }  # fmt: skip
    for dtype, (amx, x86, arm, (x86_how, arm_how), why, x86_names, arm_names) in half.items():
        if amx in features:
            out[dtype] = _amx(fp32_terms, clock_note, provenance, label)
        elif x86 in features or (is_arm and arm in features):
            value = _sum_terms(fp32_terms, 2)
            how = x86_how if x86 in features else arm_how
            out[dtype] = {
                "value": value,
                "source": provenance,
                "detail": f"{label}{_terms_text(fp32_terms, 2, dtype.upper())} = {flops(value)} ({how}: {why}); "
                f"{clock_note}",
            }
        else:
            out[dtype] = {
                "value": fp32,
                "source": provenance,
                "detail": f"{label}emulated: no {x86_names} (x86) or {arm_names} (Arm) instructions, {dtype} is "
                f"converted to fp32; {emulated}",
                "emulated": True,
            }
    return _ordered(out)


def _isa_limits(
    cpu: dict[str, Any], features: set[str], uarch: CpuUarch, caveats: list[str]
) -> tuple[int | None, bool]:
    """(a FLOP/cycle cap, whether to halve the rate) from what the x86 flags expose. The table's rates
    assume the core's widest FMA; a hypervisor or firmware may hide AVX-512 or even FMA (the flags then
    lack avx512f / fma), and code can only use what the flags show. Nothing when no flags were read."""
    if not cpu.get("flags_read") or cpu.get("vendor") not in ("Intel", "AMD", "Hygon"):
        return None, False
    cap = None
    if "avx512f" not in features and any(r.fp32 > 32 for r in uarch.rates.values()):
        cap = 32
        caveats.append(
            "no avx512f flag (AVX-512 off or hidden by a hypervisor): AVX2, 2 x 256-bit FMA at most"
        )
    halve = "fma" not in features and any(r.fp32 >= 16 for r in uarch.rates.values())
    if halve:
        caveats.append(
            "no fma flag (hidden by a hypervisor or absent): a multiply and an add instead of one FMA, half the "
            "FMA rate, an estimate"
        )
    return cap, halve


def _amx(
    terms: list[tuple[int, float, int, str]], clock_note: str, provenance: str = "spec", label: str = ""
) -> dict[str, Any]:
    amx_terms = [(n, mhz, AMX_FLOP_PER_CYCLE, t) for n, mhz, _, t in terms]
    value = _sum_terms(amx_terms, 1)
    return {
        "value": value,
        "source": provenance,
        "detail": f"{label}{_terms_text(amx_terms, 1, 'AMX')} = {flops(value)}; {clock_note} (AMX runs "
        f"at a lower licence clock under load); {_AMX_SRC}",
    }


def _group_label(g: dict[str, Any]) -> str:
    """ "performance" / "efficiency" / "core", or the Arm part of a cluster ("Cortex-A76")."""
    return str(g.get("part") or g["type"])


def _group_rate(uarch: CpuUarch, g: dict[str, Any]) -> CoreRate | None:
    """The FP32 rate of one core group: its own microarchitecture's (Arm clusters) or the chip's."""
    own = g.get("microarchitecture")
    if own and own != uarch.name:
        other = CPU_UARCHS.get(own)
        if other is None:
            return None
        return other.rates.get(g["type"]) or other.rates.get("core")
    if g.get("part") and not own:
        return None  # an Arm part not in the table
    return uarch.rates.get(g["type"]) or uarch.rates.get("core")


def _sum_terms(terms: list[tuple[int, float, int, str]], factor: int) -> float:
    return float(sum(n * mhz * 1e6 * flop * factor for n, mhz, flop, _ in terms))


def _terms_text(terms: list[tuple[int, float, int, str]], factor: int, what: str) -> str:
    names = {"core": "cores", "performance": "P-cores", "efficiency": "E-cores"}
    return " + ".join(
        f"{n} {names.get(t, t + ' cores')} x {mhz:.0f} MHz x {flop * factor} {what} FLOP/cycle"
        for n, mhz, flop, t in terms
    )


def _ordered(peaks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d: peaks[d] for d in DTYPES if d in peaks}


# ---------------------------------------------------------------------------------------------------
# GPUs

_MOBILE = re.compile(r"\b(laptop|mobile|max q|maxq)\b")
_MIG = re.compile(r"\bmig\b")
_CORES = re.compile(r"(\d+)[- ]core")


def normalise_gpu_name(name: str) -> str:
    """Lower case, vendor words and punctuation dropped: "NVIDIA A100-SXM4-80GB" -> "a100 sxm4 80gb"."""
    text = str(name or "").lower().replace("(tm)", " ").replace("(r)", " ")
    text = re.sub(r"[^a-z0-9]+", " ", text)
    text = re.sub(r"\b(nvidia|geforce|tesla|quadro|amd|instinct|radeon)\b", " ", text)
    return " ".join(text.split())


def lookup_gpu(name: str) -> dict[str, Any] | None:
    """The spec-table entry for a device name (exact key or pattern match), or None when unknown.

    Returns {"key", "peaks": {dtype: FLOP/s | None}, "notes": {dtype: str}, "source", "match", "sms",
    "bandwidth" (bytes/s | None), "bandwidth_source"}. Apple rows are scaled to the GPU core count when
    the name says "(N-core GPU)".
    """
    if not isinstance(name, str) or not name.strip():
        return None
    wanted = name.strip().lower()
    norm = normalise_gpu_name(name)
    mobile = bool(_MOBILE.search(norm))
    for row in gpu_table().rows:
        if row["key"].lower() == wanted:
            return _entry(row, name, "exact")
    for row in gpu_table().rows:
        if mobile:
            continue  # laptop parts run at other clocks and power limits: no desktop figure for them
        if any(re.search(p, norm) for p in row["match"]):
            return _entry(row, name, "pattern")
    return None


def _entry(row: dict[str, Any], name: str, how: str) -> dict[str, Any]:
    scale = 1.0
    source = row["source"]
    cores = row.get("gpu_cores")
    m = _CORES.search(name.lower())
    if cores and m and 0 < int(m.group(1)) != cores:
        scale = int(m.group(1)) / cores
        source = f"{source}; scaled from {cores} to {m.group(1)} GPU cores"
    elif cores and not m:
        source = (
            f"{source}; for the {cores}-core GPU: this GPU's core count is unknown (binned chips have fewer)"
        )
    peaks = {d: (None if row["tflops"].get(d) is None else row["tflops"][d] * 1e12 * scale) for d in DTYPES}
    norm = normalise_gpu_name(name)
    gbs = next((v for pattern, v in row.get("bandwidth", []) if re.search(pattern, norm)), None)
    return {
        "key": row["key"],
        "peaks": peaks,
        "notes": dict(row.get("notes", {})),
        "source": source,
        "match": how,
        "sms": row.get("sms"),
        "bandwidth": None if gbs is None else gbs * 1e9,
        "bandwidth_source": row.get("bandwidth_source"),
    }


def _is_mig(name: str) -> bool:
    return bool(_MIG.search(normalise_gpu_name(name)))


def gpu_peaks(
    name: str,
    *,
    sm_count: int | None = None,
    max_clock_mhz: float | None = None,
    capability: str | None = None,
    gcn_arch: str | None = None,
    clock_source: str = "NVML",
) -> dict[str, dict[str, Any]]:
    """Per-dtype {"value", "source", "detail"} for a GPU.

    The spec-table row when the name has one ("spec"); its SM share when the device reports fewer or
    more SMs than the row's chip, as a MIG slice does ("derived"); else, for a GPU with no row, SMs x
    max clock x the per-SM rate of its architecture ("derived", see derived_gpu_peaks); else "unknown"
    with the reason. Never a figure borrowed from another chip.
    """
    name = name if isinstance(name, str) else ""
    entry = lookup_gpu(name)
    sm_count = _positive_int(sm_count)
    if entry is None:
        return derived_gpu_peaks(
            name,
            sm_count=sm_count,
            max_clock_mhz=max_clock_mhz,
            capability=capability,
            gcn_arch=gcn_arch,
            clock_source=clock_source,
        )
    if entry["sms"] and sm_count and sm_count != entry["sms"]:
        return _sm_share(entry, name, sm_count)
    if _is_mig(name) and not (entry["sms"] and sm_count == entry["sms"]):
        why = (
            f"{name}: a MIG slice of the {entry['key']} whose SM count is unknown (PyTorch did not report it); "
            "the whole GPU's peak would overstate it"
        )
        return {d: _unknown(why) for d in DTYPES}
    return _row_peaks(
        entry,
        lambda spec, note: {
            "value": spec,
            "source": "spec",
            "detail": f"{entry['key']} ({entry['source']})" + (f"; {note}" if note else ""),
        },
    )


def _row_peaks(entry: dict[str, Any], known: Callable[[float, str | None], dict[str, Any]]) -> dict[str, Any]:
    """Per dtype: `known(spec figure, note)` where the row has a figure, else unknown with the row's note."""
    return {
        d: _unknown(f"{entry['key']}: {entry['notes'].get(d) or 'no spec figure'}")
        if entry["peaks"][d] is None
        else known(entry["peaks"][d], entry["notes"].get(d))
        for d in DTYPES
    }


def _sm_share(entry: dict[str, Any], name: str, sm_count: int) -> dict[str, dict[str, Any]]:
    """The row's figures scaled to this device's SM count: a MIG slice, a partition, or another SKU."""
    what = "a MIG slice" if _is_mig(name) else "a partition or a variant of the chip"

    def share(spec: float, _note: str | None) -> dict[str, Any]:
        value = spec * sm_count / entry["sms"]
        return {
            "value": value,
            "source": "derived",
            "detail": f"derived: {entry['key']} spec {flops(spec)} x {sm_count}/{entry['sms']} SMs = "
            f"{flops(value)}: this device reports {sm_count} SMs ({what}), the row's chip has "
            f"{entry['sms']} ({entry['source']})",
        }

    return _row_peaks(entry, share)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return n if n > 0 and n == value else None


def _clock_mhz(value: Any) -> float | None:
    """A plausible GPU clock in MHz (50 MHz .. 10 GHz), else None."""
    if not is_num(value):
        return None
    mhz = float(value)
    return mhz if 50 <= mhz <= 10_000 else None


def _arch_rates(capability: str | None, gcn_arch: str | None) -> tuple[dict[str, Any] | None, str, str]:
    """(rates row, unit, why not) for a CUDA compute capability ("8.9") or a ROCm gfx arch ("gfx90a:xnack-")."""
    if gcn_arch:
        base = str(gcn_arch).split(":")[0].strip().lower()
        row = gpu_table().amd_cu_rates.get(base)
        return row, "CU", "" if row else f"no per-CU rate for {base} in hwinfo/gpu_table.toml"
    if capability:
        cap = str(capability).strip()
        row = gpu_table().nvidia_sm_rates.get(cap)
        return (
            row,
            "SM",
            "" if row else f"no per-SM rate for compute capability {cap} in hwinfo/gpu_table.toml",
        )
    return None, "SM", "architecture unknown (no CUDA compute capability or gfx arch from PyTorch)"


def derived_gpu_peaks(  # the same keywords as gpu_peaks on purpose: it passes them through
    name: str,
    *,
    sm_count: int | None = None,
    max_clock_mhz: float | None = None,
    capability: str | None = None,
    gcn_arch: str | None = None,
    clock_source: str = "NVML",
) -> dict[str, dict[str, Any]]:
    """SMs (or CUs) x max clock x the architecture's per-SM FLOP/clock (hwinfo/gpu_table.toml,
    per-SM and per-CU rates), labelled "derived" with the arithmetic; "unknown" with the reason when a factor is
    missing."""
    not_in_table = (
        f"'{name}' is not in the GPU spec table (hwinfo/gpu_table.toml); no figure borrowed from another chip"
    )
    mobile = bool(_MOBILE.search(normalise_gpu_name(name)))
    row, unit, why_not = _arch_rates(capability, gcn_arch)
    sm_count = _positive_int(sm_count)
    mhz = _clock_mhz(max_clock_mhz)
    missing = [why_not] if row is None else []
    if not sm_count:
        missing.append(f"{unit} count unknown")
    if mhz is None:
        missing.append("max clock unknown")
    if missing:
        why = f"{not_in_table}; no derived peak: {', '.join(missing)}"
        if mobile:
            why += " (laptop GPUs run at their own clocks and power limits)"
        return {d: _unknown(why) for d in DTYPES}
    assert row is not None and sm_count is not None and mhz is not None
    geforce = unit == "SM" and "geforce" in name.lower() and "geforce" in row
    rates = {**row["rates"], **(row["geforce"] if geforce else {})}
    ident = f"compute capability {capability}" if unit == "SM" else str(gcn_arch).split(":")[0]
    line = ""
    if unit == "SM" and "geforce" in row:
        line = f"; {gpu_table().geforce_note}" if geforce else f"; {gpu_table().pro_note}"
    caveat = (
        f"{unit} count from PyTorch, max clock {mhz:.0f} MHz from {clock_source}: an upper bound, the GPU "
        "may not hold its max clock under load"
    )
    if mobile:
        caveat += "; laptop GPUs rarely hold it within their power limit"
    if _is_mig(name):
        caveat += "; a MIG slice: its own SM count"
    out: dict[str, dict[str, Any]] = {}
    for dtype in DTYPES:
        rate = rates.get(dtype)
        note = (row.get("notes") or {}).get(dtype)
        if rate is None:
            out[dtype] = _unknown(f"{name} ({row['arch']}, {ident}): {note or 'no per-' + unit + ' rate'}")
            continue
        value = float(sm_count * mhz * 1e6 * rate)
        extra = f"; {note}" if note else ""
        out[dtype] = {
            "value": value,
            "source": "derived",
            "detail": f"derived: {sm_count} {unit}s x {mhz:.0f} MHz x {rate} {dtype.upper()} FLOP/clock/{unit} = "
            f"{flops(value)} ({row['arch']}, {ident}{line}){extra}; {caveat}; {row['source']}",
        }
    return out


def gpu_bandwidth(
    name: str, *, memory_clock_mhz: float | None = None, memory_bus_width_bits: int | None = None
) -> dict[str, Any]:
    """{"value" (bytes/s), "source", "detail"}: the datasheet figure ("spec"), else the memory interface's
    raw rate from the CUDA device properties ("derived": 2 x memory clock x bus width / 8), else unknown."""
    name = name if isinstance(name, str) else ""
    entry = lookup_gpu(name)
    if _is_mig(name):
        return _unknown(
            f"{name}: a MIG slice gets a share of the GPU's memory bandwidth that its name does not tell; "
            "hwinfo --measure measures it"
        )
    if entry is not None:
        if entry["bandwidth"] is not None:
            return {
                "value": entry["bandwidth"],
                "source": "spec",
                "detail": f"{entry['key']}: {bytes_per_s(entry['bandwidth'])} ({entry['bandwidth_source']})",
            }
        if entry["bandwidth_source"]:
            return _unknown(
                f"{entry['key']}: the bandwidth depends on the memory fitted, which the name '{name}' does not "
                f"tell ({entry['bandwidth_source']}); hwinfo --measure measures it"
            )
    mhz, bits = _clock_mhz(memory_clock_mhz), _positive_int(memory_bus_width_bits)
    if mhz is not None and bits is not None:
        value = 2 * mhz * 1e6 * bits / 8
        if 1e9 <= value <= 1e14:
            return {
                "value": value,
                "source": "derived",
                "detail": f"derived: 2 x {mhz:.0f} MHz x {bits}-bit bus / 8 = {bytes_per_s(value)} (double data "
                "rate; memory clock and bus width from the CUDA device properties): the interface's raw "
                "rate, an upper bound",
            }
    return _unknown(
        f"'{name}' has no memory bandwidth in the GPU spec table and no memory clock and bus width were "
        "reported; hwinfo --measure measures it"
    )


# ---------------------------------------------------------------------------------------------------
# Reading a snapshot


def _find_device(snapshot: dict[str, Any], device: str) -> dict[str, Any] | None:
    devices = snapshot.get("devices") if isinstance(snapshot, dict) else None
    if not isinstance(devices, list):
        return None
    wanted = {device}
    if ":" not in device:
        wanted.add(f"{device}:0")
    elif device.endswith(":0"):
        wanted.add(device.split(":")[0])
    for entry in devices:
        if isinstance(entry, dict) and entry.get("device") in wanted:
            return entry
    return None


def _derive_from_entry(entry: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Derived peaks from the fields a snapshot stores for a GPU (for snapshots made before hwinfo
    derived them)."""
    if entry.get("kind") in (None, "cpu", "mps") or not entry.get("sm_count"):
        return None
    return gpu_peaks(
        str(entry.get("name") or ""),
        sm_count=entry.get("sm_count"),
        max_clock_mhz=entry.get("max_clock_mhz"),
        capability=entry.get("capability"),
        gcn_arch=entry.get("gcn_arch"),
        clock_source=entry.get("clock_source") or "the snapshot",
    )


def peak_for(snapshot: dict[str, Any], device: str, dtype: str) -> dict[str, Any]:
    """The peak to divide by: spec when known, else derived, else the measured one, else unknown.

    `device` is "cpu", "cuda" (= cuda:0), "cuda:1", "mps", "xpu:0", ... Returns {"value", "source", "detail"}.
    """
    entry = _find_device(snapshot, device)
    if entry is None:
        return _unknown(f"device {device} is not in the hwinfo snapshot")
    peaks = entry.get("peaks") if isinstance(entry.get("peaks"), dict) else {}
    peak = peaks.get(dtype)
    if not isinstance(peak, dict):
        return _unknown(f"no {dtype} peak recorded for {device}")
    if is_positive(peak.get("value")) and peak.get("source") in ("spec", "derived"):
        return {"value": float(peak["value"]), "source": peak["source"], "detail": peak.get("detail", "")}
    derived = (_derive_from_entry(entry) or {}).get(dtype)
    if derived and derived["value"] is not None:
        return derived
    if is_positive(peak.get("measured")):
        return {
            "value": float(peak["measured"]),
            "source": "measured",
            "detail": f"measured {dtype} matmul on {entry.get('name') or device} (no spec or derived peak: "
            f"{peak.get('detail', 'unknown')})",
        }
    return _unknown(peak.get("detail") or f"no {dtype} peak for {device}")


def bandwidth_for(snapshot: dict[str, Any], device: str) -> dict[str, Any]:
    """The memory bandwidth of a device in a snapshot: {"value" (bytes/s), "source", "detail"}.

    spec (or derived) when known, else measured (hwinfo --measure), else unknown with the reason.
    """
    entry = _find_device(snapshot, device)
    if entry is None:
        return _unknown(f"device {device} is not in the hwinfo snapshot")
    bw = entry.get("memory_bandwidth")
    if not isinstance(bw, dict):
        return _unknown(
            f"no memory bandwidth recorded for {device} (snapshot made before hwinfo recorded it)"
        )
    if is_positive(bw.get("value")) and bw.get("source") in ("spec", "derived", "measured"):
        return {"value": float(bw["value"]), "source": bw["source"], "detail": str(bw.get("detail") or "")}
    if is_positive(bw.get("measured")):
        return {
            "value": float(bw["measured"]),
            "source": "measured",
            "detail": str(bw.get("measured_detail") or ""),
        }
    return _unknown(str(bw.get("detail") or f"memory bandwidth of {device} unknown"))


def ridge_point(peak_flops_per_s: Any, bandwidth_bytes_per_s: Any) -> float | None:
    """The roofline's ridge: peak FLOP/s / bandwidth (FLOP/byte); None when either is unknown."""
    if not (is_num(peak_flops_per_s) and is_num(bandwidth_bytes_per_s)) or float(bandwidth_bytes_per_s) <= 0:
        return None
    return float(peak_flops_per_s) / float(bandwidth_bytes_per_s)


def ridge_for(snapshot: dict[str, Any], device: str, dtype: str) -> dict[str, Any]:
    """{"value" (FLOP/byte or None), "detail"}: peak_for / bandwidth_for, both sources named."""
    peak, bw = peak_for(snapshot, device, dtype), bandwidth_for(snapshot, device)
    value = ridge_point(peak["value"], bw["value"])
    if value is None:
        missing = "peak" if peak["value"] is None else "memory bandwidth"
        return {"value": None, "detail": f"{dtype} {missing} unknown for {device}"}
    return {
        "value": value,
        "detail": f"{flops(peak['value'])} ({peak['source']}) / {bytes_per_s(bw['value'])} ({bw['source']}) "
        f"= {value:.3g} FLOP/byte",
    }
