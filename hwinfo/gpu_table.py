"""Dense (no sparsity) peak FLOP/s of GPUs, per dtype, with the source of every number.

One table, read by `hwinfo.peaks.lookup_gpu`. Figures are TFLOP/s. NVIDIA and AMD datasheets often
print tensor figures "with sparsity"; those are halved here. GeForce cards run FP16/BF16 tensor ops
with FP32 accumulation (what PyTorch uses) at half the FP16-accumulate rate NVIDIA advertises, so
their rows use the FP32-accumulate rate. `None` means the chip has no such arithmetic; `notes` says why.

Each row: `key` (the name shown), `match` (regexes searched in the normalised device name, first
row that matches wins, so more specific rows come first), `tflops` {fp32, tf32, bf16, fp16},
`source`, optional `notes` {dtype: why}, optional `gpu_cores` (Apple: figures are for this many
GPU cores and are scaled to the core count found), optional `sms` (the SM or CU count the figures
are for: a device reporting another count, such as a MIG slice, gets its share), `bandwidth`
((regex on the normalised name, GB/s) variants, the first that matches wins; "" matches any) and
`bandwidth_source`.

Below the rows: the per-SM (NVIDIA, by CUDA compute capability) and per-CU (AMD, by gfx arch) FLOP
per clock that give a *derived* peak to a GPU with no row (hwinfo.peaks.derived_gpu_peaks).
"""

from __future__ import annotations

from typing import Any

# The rows below share one shape on purpose: it is a table of sourced figures, one dict per chip, read by
# hwinfo.peaks.lookup_gpu (the duplicates check lists them as same-shape pairs).

_NO_TF32 = "no TF32 tensor cores: with TF32 allowed a matmul still runs in FP32, so this is the fp32 peak"
_NO_BF16_TURING_VOLTA = "no BF16 arithmetic on this chip (Volta/Turing); PyTorch emulates bf16, no spec peak"
_TF32_CUDA_ONLY = "tf32 is an NVIDIA (and ROCm) matmul mode; MPS has none"
_APPLE_HALF = "Apple GPUs run FP16 at the FP32 rate (no 2x half-precision rate)"
_APPLE_BF16 = "no faster BF16 path than FP32 on Apple GPUs; at most the fp32 peak"

_GEFORCE_AMPERE_SRC = (
    "computed: SMs x boost clock x (256 FP32 / 512 FP16-BF16-with-FP32-accumulate) FLOP/clk/SM, "
    "per the NVIDIA Ampere GA102 GPU Architecture whitepaper; SM count and boost clock from NVIDIA's "
    "product page"
)
_GEFORCE_ADA_SRC = (
    "computed: SMs x boost clock x (256 FP32 / 512 FP16-BF16-with-FP32-accumulate) FLOP/clk/SM, "
    "per the NVIDIA Ada Lovelace GPU Architecture whitepaper; SM count and boost clock from NVIDIA's "
    "product page"
)
_GEFORCE_BLACKWELL_SRC = (
    "computed: SMs x boost clock x (256 FP32 / 512 FP16-BF16-with-FP32-accumulate) FLOP/clk/SM, "
    "per the NVIDIA RTX Blackwell GPU Architecture whitepaper; SM count and boost clock from NVIDIA's "
    "product page"
)


def _geforce(
    key: str, pattern: str, sms: int, boost_ghz: float, source: str, bandwidth_gbs: float
) -> dict[str, Any]:
    """A GeForce row: FP32 = TF32 = SMs x 256 x clock; FP16/BF16 (FP32 accumulate) = SMs x 512 x clock."""
    fp32 = round(sms * 256 * boost_ghz / 1000, 1)
    half = round(sms * 512 * boost_ghz / 1000, 1)
    return {
        "key": key,
        "match": [pattern],
        "tflops": {"fp32": fp32, "tf32": fp32, "bf16": half, "fp16": half},
        "source": f"{source} ({sms} SMs, {boost_ghz} GHz boost)",
        "notes": {"tf32": "GeForce TF32 tensor rate equals its FP32 rate"},
        "sms": sms,
        "bandwidth": [("", bandwidth_gbs)],
        "bandwidth_source": "NVIDIA product page (memory bandwidth)",
    }


def _apple(
    key: str, pattern: str, cores: int, fp32: float, source: str, bandwidth: list[tuple[str, float]]
) -> dict[str, Any]:
    return {
        "key": key,
        "match": [pattern],
        "tflops": {"fp32": fp32, "tf32": None, "bf16": fp32, "fp16": fp32},
        "source": source,
        "notes": {"tf32": _TF32_CUDA_ONLY, "fp16": _APPLE_HALF, "bf16": _APPLE_BF16},
        "gpu_cores": cores,
        "bandwidth": bandwidth,
        "bandwidth_source": "Apple product page / press release (unified memory bandwidth, shared with the CPU)",
    }


_APPLE_M1_M2_SRC = "Apple press release / product page ({} TFLOPS FP32, {}-core GPU)"
_APPLE_ESTIMATE = (
    "estimate: Apple publishes no TFLOPS figure; {} cores x 128 FP32 lanes x 2 x {} GHz GPU clock "
    "(clock as reported by public benchmarks)"
)


def _gbs(value: float | list[tuple[str, float]]) -> list[tuple[str, float]]:
    return value if isinstance(value, list) else [("", value)]


def _apple_published(
    key: str, pattern: str, cores: int, fp32: float, gbs: float | list[tuple[str, float]]
) -> dict[str, Any]:
    return _apple(key, pattern, cores, fp32, _APPLE_M1_M2_SRC.format(fp32, cores), _gbs(gbs))


def _apple_estimated(
    key: str, pattern: str, cores: int, clock_ghz: float, gbs: float | list[tuple[str, float]]
) -> dict[str, Any]:
    fp32 = round(cores * 128 * 2 * clock_ghz / 1000, 2)
    return _apple(key, pattern, cores, fp32, _APPLE_ESTIMATE.format(cores, clock_ghz), _gbs(gbs))


_NV_DS = "NVIDIA {} datasheet"
_AMD_DS = "AMD Instinct {} data sheet"

GPU_PEAKS: tuple[dict[str, Any], ...] = (
    # --- NVIDIA data centre -------------------------------------------------------------------------
    {
        "key": "H100 NVL",
        "match": [r"\bh100\b.*\bnvl\b"],
        "tflops": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
        "source": "NVIDIA H100 Tensor Core GPU datasheet, H100 NVL column (sparsity figures halved)",
        "sms": 132,
        "bandwidth": [("", 3900)],
        "bandwidth_source": _NV_DS.format("H100 Tensor Core GPU"),
    },
    {
        "key": "H100 PCIe",
        "match": [r"\bh100\b.*\b(pcie|hbm2e)\b"],
        "tflops": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
        "source": "NVIDIA H100 Tensor Core GPU Architecture whitepaper, table 3, H100 PCIe (dense)",
        "sms": 114,
        "bandwidth": [("", 2000)],
        "bandwidth_source": _NV_DS.format("H100 Tensor Core GPU"),
    },
    {
        "key": "H100 SXM",
        "match": [r"\bh100\b.*\b(sxm\d?|hbm3)\b"],
        "tflops": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
        "source": "NVIDIA H100 Tensor Core GPU Architecture whitepaper, table 3, H100 SXM5 (dense)",
        "sms": 132,
        "bandwidth": [("", 3350)],
        "bandwidth_source": _NV_DS.format("H100 Tensor Core GPU"),
    },
    {
        "key": "GH200",
        "match": [r"\bgh200\b"],
        "tflops": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
        "source": "NVIDIA GH200 Grace Hopper Superchip datasheet (H100 SXM compute; sparsity halved)",
        "sms": 132,
        # 96 GB HBM3: 4.0 TB/s; 144 GB HBM3e: 4.9 TB/s
        "bandwidth": [(r"\b144gb\b|\b14\dgb\b", 4900), (r"\b96gb\b|\b9\dgb\b", 4000)],
        "bandwidth_source": "NVIDIA GH200 Grace Hopper Superchip datasheet (96 GB HBM3 4.0 TB/s, 144 GB HBM3e 4.9 TB/s)",
    },
    {
        "key": "H200 NVL",
        "match": [r"\bh200\b.*\bnvl\b"],
        "tflops": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
        "source": "NVIDIA H200 Tensor Core GPU datasheet, H200 NVL column (sparsity figures halved)",
        "sms": 132,
        "bandwidth": [("", 4800)],
        "bandwidth_source": _NV_DS.format("H200 Tensor Core GPU"),
    },
    {
        "key": "H200",
        "match": [r"\bh200\b"],
        "tflops": {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5},
        "source": "NVIDIA H200 Tensor Core GPU datasheet, H200 SXM column (sparsity figures halved)",
        "sms": 132,
        "bandwidth": [("", 4800)],
        "bandwidth_source": _NV_DS.format("H200 Tensor Core GPU"),
    },
    {
        "key": "A100",
        "match": [r"\ba100\b"],
        "tflops": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
        "source": "NVIDIA A100 Tensor Core GPU datasheet (SXM and PCIe, 40 and 80 GB: same peaks, dense)",
        "sms": 108,
        # 80 GB SXM 2039 GB/s, 80 GB PCIe 1935 GB/s, 40 GB (SXM and PCIe) 1555 GB/s
        "bandwidth": [
            (r"\bsxm\d?\b.*\b80gb\b|\b80gb\b.*\bsxm\d?\b", 2039),
            (r"\b80gb\b", 1935),
            (r"\b40gb\b", 1555),
        ],
        "bandwidth_source": "NVIDIA A100 Tensor Core GPU datasheet (80 GB SXM 2039, 80 GB PCIe 1935, 40 GB 1555 GB/s)",
    },
    {
        "key": "L40S",
        "match": [r"\bl40s\b"],
        "tflops": {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05, "fp16": 362.05},
        "source": "NVIDIA L40S GPU datasheet (dense column)",
        "sms": 142,
        "bandwidth": [("", 864)],
        "bandwidth_source": _NV_DS.format("L40S GPU"),
    },
    {
        "key": "L40",
        "match": [r"\bl40\b"],
        "tflops": {"fp32": 90.5, "tf32": 90.5, "bf16": 181.05, "fp16": 181.05},
        "source": "NVIDIA L40 GPU datasheet (dense column)",
        "sms": 142,
        "bandwidth": [("", 864)],
        "bandwidth_source": _NV_DS.format("L40 GPU"),
    },
    {
        "key": "L4",
        "match": [r"\bl4\b"],
        "tflops": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0},
        "source": "NVIDIA L4 Tensor Core GPU datasheet (sparsity figures halved)",
        "sms": 58,
        "bandwidth": [("", 300)],
        "bandwidth_source": _NV_DS.format("L4 Tensor Core GPU"),
    },
    {
        "key": "A10",
        "match": [r"\ba10\b"],
        "tflops": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0},
        "source": "NVIDIA A10 Tensor Core GPU datasheet (dense)",
        "sms": 72,
        "bandwidth": [("", 600)],
        "bandwidth_source": _NV_DS.format("A10 Tensor Core GPU"),
    },
    {
        "key": "A40",
        "match": [r"\ba40\b"],
        "tflops": {"fp32": 37.4, "tf32": 74.8, "bf16": 149.7, "fp16": 149.7},
        "source": "NVIDIA A40 datasheet (dense)",
        "sms": 84,
        "bandwidth": [("", 696)],
        "bandwidth_source": _NV_DS.format("A40"),
    },
    {
        "key": "RTX A6000",
        "match": [r"\ba6000\b"],
        "tflops": {"fp32": 38.7, "tf32": 77.4, "bf16": 154.8, "fp16": 154.8},
        "source": "NVIDIA Ampere GA102 GPU Architecture whitepaper, RTX A6000 column (dense)",
        "sms": 84,
        "bandwidth": [("", 768)],
        "bandwidth_source": _NV_DS.format("RTX A6000"),
    },
    {
        "key": "RTX 6000 Ada",
        "match": [r"\brtx 6000 ada\b"],
        "tflops": {"fp32": 91.1, "tf32": 182.1, "bf16": 364.2, "fp16": 364.2},
        "source": "NVIDIA Ada Lovelace GPU Architecture whitepaper, RTX 6000 Ada column (dense)",
        "sms": 142,
        "bandwidth": [("", 960)],
        "bandwidth_source": _NV_DS.format("RTX 6000 Ada Generation"),
    },
    {
        "key": "T4",
        "match": [r"\bt4\b"],
        "tflops": {"fp32": 8.1, "tf32": 8.1, "bf16": None, "fp16": 65.0},
        "source": "NVIDIA T4 Tensor Core GPU datasheet (FP32 8.1, mixed-precision FP16/FP32 65 TFLOPS)",
        "notes": {"tf32": _NO_TF32, "bf16": _NO_BF16_TURING_VOLTA},
        "sms": 40,
        "bandwidth": [("", 320)],
        "bandwidth_source": _NV_DS.format("T4 Tensor Core GPU"),
    },
    {
        "key": "V100S PCIe",
        "match": [r"\bv100s\b"],
        "tflops": {"fp32": 16.4, "tf32": 16.4, "bf16": None, "fp16": 130.0},
        "source": "NVIDIA V100 Tensor Core GPU datasheet, V100S PCIe column",
        "notes": {"tf32": _NO_TF32, "bf16": _NO_BF16_TURING_VOLTA},
        "sms": 80,
        "bandwidth": [("", 1134)],
        "bandwidth_source": _NV_DS.format("V100 Tensor Core GPU"),
    },
    {
        "key": "V100 PCIe",
        "match": [r"\bv100\b.*\bpcie\b"],
        "tflops": {"fp32": 14.0, "tf32": 14.0, "bf16": None, "fp16": 112.0},
        "source": "NVIDIA V100 Tensor Core GPU datasheet, V100 PCIe column",
        "notes": {"tf32": _NO_TF32, "bf16": _NO_BF16_TURING_VOLTA},
        "sms": 80,
        "bandwidth": [("", 900)],
        "bandwidth_source": _NV_DS.format("V100 Tensor Core GPU"),
    },
    {
        "key": "V100 SXM2",
        "match": [r"\bv100\b.*\bsxm\d?\b"],
        "tflops": {"fp32": 15.7, "tf32": 15.7, "bf16": None, "fp16": 125.0},
        "source": "NVIDIA V100 Tensor Core GPU datasheet, V100 SXM2 column",
        "notes": {"tf32": _NO_TF32, "bf16": _NO_BF16_TURING_VOLTA},
        "sms": 80,
        "bandwidth": [("", 900)],
        "bandwidth_source": _NV_DS.format("V100 Tensor Core GPU"),
    },
    # --- NVIDIA GeForce (desktop cards; laptop parts are not matched) --------------------------------
    _geforce("RTX 3090 Ti", r"\brtx 3090 ti\b", 84, 1.86, _GEFORCE_AMPERE_SRC, 1008),
    _geforce("RTX 3090", r"\brtx 3090\b", 82, 1.695, _GEFORCE_AMPERE_SRC, 936),
    _geforce("RTX 3080 Ti", r"\brtx 3080 ti\b", 80, 1.665, _GEFORCE_AMPERE_SRC, 912),
    _geforce(
        "RTX 3080",
        r"\brtx 3080\b",
        68,
        1.71,
        _GEFORCE_AMPERE_SRC + "; 10 GB model, the 12 GB has 70 SMs",
        760,
    ),
    _geforce("RTX 3070 Ti", r"\brtx 3070 ti\b", 48, 1.77, _GEFORCE_AMPERE_SRC, 608),
    _geforce("RTX 3070", r"\brtx 3070\b", 46, 1.725, _GEFORCE_AMPERE_SRC, 448),
    _geforce("RTX 3060 Ti", r"\brtx 3060 ti\b", 38, 1.665, _GEFORCE_AMPERE_SRC, 448),
    _geforce("RTX 3060", r"\brtx 3060\b", 28, 1.777, _GEFORCE_AMPERE_SRC, 360),
    # the 4090 D (China) is its own chip configuration: 114 SMs, not the 4090's 128
    _geforce("RTX 4090 D", r"\brtx 4090 d\b", 114, 2.52, _GEFORCE_ADA_SRC, 1008),
    _geforce("RTX 4090", r"\brtx 4090\b", 128, 2.52, _GEFORCE_ADA_SRC, 1008),
    _geforce("RTX 4080 Super", r"\brtx 4080 super\b", 80, 2.55, _GEFORCE_ADA_SRC, 736),
    _geforce("RTX 4080", r"\brtx 4080\b", 76, 2.505, _GEFORCE_ADA_SRC, 716.8),
    _geforce("RTX 4070 Ti Super", r"\brtx 4070 ti super\b", 66, 2.61, _GEFORCE_ADA_SRC, 672),
    _geforce("RTX 4070 Ti", r"\brtx 4070 ti\b", 60, 2.61, _GEFORCE_ADA_SRC, 504),
    _geforce("RTX 4070 Super", r"\brtx 4070 super\b", 56, 2.475, _GEFORCE_ADA_SRC, 504),
    _geforce("RTX 4070", r"\brtx 4070\b", 46, 2.475, _GEFORCE_ADA_SRC, 504),
    _geforce("RTX 4060 Ti", r"\brtx 4060 ti\b", 34, 2.535, _GEFORCE_ADA_SRC, 288),
    _geforce("RTX 4060", r"\brtx 4060\b", 24, 2.46, _GEFORCE_ADA_SRC, 272),
    _geforce("RTX 5090", r"\brtx 5090\b", 170, 2.407, _GEFORCE_BLACKWELL_SRC, 1792),
    _geforce("RTX 5080", r"\brtx 5080\b", 84, 2.617, _GEFORCE_BLACKWELL_SRC, 960),
    # --- AMD Instinct -------------------------------------------------------------------------------
    {
        "key": "MI325X",
        "match": [r"\bmi325x\b"],
        "tflops": {"fp32": 163.4, "tf32": 653.7, "bf16": 1307.4, "fp16": 1307.4},
        "source": "AMD Instinct MI325X data sheet (dense; FP32 matrix)",
        "sms": 304,
        "bandwidth": [("", 6000)],
        "bandwidth_source": _AMD_DS.format("MI325X"),
    },
    {
        "key": "MI300X",
        "match": [r"\bmi300x\b"],
        "tflops": {"fp32": 163.4, "tf32": 653.7, "bf16": 1307.4, "fp16": 1307.4},
        "source": "AMD Instinct MI300X data sheet (dense; FP32 matrix)",
        "sms": 304,
        "bandwidth": [("", 5300)],
        "bandwidth_source": _AMD_DS.format("MI300X"),
    },
    {
        "key": "MI300A",
        "match": [r"\bmi300a\b"],
        "tflops": {"fp32": 122.6, "tf32": 490.3, "bf16": 980.6, "fp16": 980.6},
        "source": "AMD Instinct MI300A data sheet (dense; FP32 matrix)",
        "sms": 228,
        "bandwidth": [("", 5300)],
        "bandwidth_source": _AMD_DS.format("MI300A"),
    },
    {
        "key": "MI250X (one GCD)",
        "match": [r"\bmi250x\b"],
        "tflops": {"fp32": 47.85, "tf32": 47.85, "bf16": 191.5, "fp16": 191.5},
        "source": (
            "AMD Instinct MI250X data sheet (FP32 matrix 95.7, FP16/BF16 383 TFLOPS per card), halved: "
            "PyTorch sees each of the card's two GCDs as its own device"
        ),
        "notes": {"tf32": "CDNA 2 has no TF32: a tf32 matmul runs in FP32, so this is the fp32 peak"},
        "sms": 110,
        "bandwidth": [("", 1638.4)],
        "bandwidth_source": _AMD_DS.format("MI250X") + " (3276.8 GB/s per card, halved per GCD)",
    },
    {
        "key": "MI250 (one GCD)",
        "match": [r"\bmi250\b"],
        "tflops": {"fp32": 45.25, "tf32": 45.25, "bf16": 181.0, "fp16": 181.0},
        "source": (
            "AMD Instinct MI250 data sheet (FP32 matrix 90.5, FP16/BF16 362.1 TFLOPS per card), halved: "
            "PyTorch sees each of the card's two GCDs as its own device"
        ),
        "notes": {"tf32": "CDNA 2 has no TF32: a tf32 matmul runs in FP32, so this is the fp32 peak"},
        "sms": 104,
        "bandwidth": [("", 1638.4)],
        "bandwidth_source": _AMD_DS.format("MI250") + " (3276.8 GB/s per card, halved per GCD)",
    },
    {
        "key": "MI210",
        "match": [r"\bmi210\b"],
        "tflops": {"fp32": 45.3, "tf32": 45.3, "bf16": 181.0, "fp16": 181.0},
        "source": "AMD Instinct MI210 data sheet (FP32 matrix, FP16/BF16 dense)",
        "notes": {"tf32": "CDNA 2 has no TF32: a tf32 matmul runs in FP32, so this is the fp32 peak"},
        "sms": 104,
        "bandwidth": [("", 1638.4)],
        "bandwidth_source": _AMD_DS.format("MI210"),
    },
    # --- Apple silicon GPUs (through MPS); most specific first -----------------------------------------
    _apple_published("Apple M1 Ultra GPU", r"\bapple m1 ultra\b", 64, 21.0, 800),
    _apple_published("Apple M1 Max GPU", r"\bapple m1 max\b", 32, 10.4, 400),
    _apple_published("Apple M1 Pro GPU", r"\bapple m1 pro\b", 16, 5.2, 200),
    _apple_published("Apple M1 GPU", r"\bapple m1\b", 8, 2.6, 68.25),
    _apple_published("Apple M2 Ultra GPU", r"\bapple m2 ultra\b", 76, 27.2, 800),
    _apple_published("Apple M2 Max GPU", r"\bapple m2 max\b", 38, 13.6, 400),
    _apple_published("Apple M2 Pro GPU", r"\bapple m2 pro\b", 19, 6.8, 200),
    _apple_published("Apple M2 GPU", r"\bapple m2\b", 10, 3.6, 100),
    _apple_estimated("Apple M3 Ultra GPU", r"\bapple m3 ultra\b", 80, 1.38, 819),
    # the binned M3 Max and M4 Max have narrower memory too: their bandwidth follows the GPU core count
    _apple_estimated(
        "Apple M3 Max GPU", r"\bapple m3 max\b", 40, 1.38, [(r"\b40 core\b", 400), (r"\b30 core\b", 300)]
    ),
    _apple_estimated("Apple M3 Pro GPU", r"\bapple m3 pro\b", 18, 1.38, 150),
    _apple_estimated("Apple M3 GPU", r"\bapple m3\b", 10, 1.38, 100),
    _apple_estimated(
        "Apple M4 Max GPU", r"\bapple m4 max\b", 40, 1.578, [(r"\b40 core\b", 546), (r"\b32 core\b", 410)]
    ),
    _apple_estimated("Apple M4 Pro GPU", r"\bapple m4 pro\b", 20, 1.578, 273),
    _apple_estimated("Apple M4 GPU", r"\bapple m4\b", 10, 1.578, 120),
)

# ---------------------------------------------------------------------------------------------------
# Per-SM / per-CU rates for derived peaks: dense FLOP per clock of one SM (NVIDIA) or CU (AMD), FMA = 2.
#
# NVIDIA tensor rates follow the approach of karpathy/llm.c (llmc/mfu.h): chips of one architecture
# use the same tensor cores, so a peak is SMs x clock x a per-SM rate; mfu.h's reference figures
# (V100 125 TFLOPS at 80 SMs x 1530 MHz, A100 312 at 108 x 1410, GA102 FP32-accumulate 80 at 84 x
# 1860, H100 PCIe 756 at 114 x 1620, AD102 165.2 at 128 x 2520) give 1024, 2048, 512, 4096 and 512
# BF16/FP16 FLOP/clock/SM, and TF32 half that. mfu.h rates professional and data-centre GA10x/AD10x
# parts at the GeForce rate; their whitepapers and datasheets (RTX A6000, A10, A40, L4, L40S,
# RTX 6000 Ada) show twice that (FP16/BF16 with FP32 accumulate at the full rate), so "geforce" holds
# the GeForce rates. Turing: NVIDIA Turing GPU Architecture whitepaper and the T4 datasheet (65
# TFLOPS = 40 SMs x 1590 MHz x 1024). FP32 (CUDA cores): the CUDA C++ Programming Guide's table of
# arithmetic-instruction throughput (32-bit FMA per clock per SM: 64 on 7.x and 8.0, 128 on 8.6+).
# None: the chip has no such arithmetic, or no sourced rate (see "notes").
_NV_TENSOR_SRC = "per-SM tensor rate as in karpathy/llm.c llmc/mfu.h (NVIDIA architecture whitepapers)"
_NV_FP32_SRC = "FP32 rate from the CUDA C++ Programming Guide (arithmetic instruction throughput)"
_NO_TF32_DERIVED = "no TF32 tensor cores: a tf32 matmul runs in FP32, so this is the fp32 rate"

NVIDIA_SM_RATES: dict[str, dict[str, Any]] = {
    "7.0": {
        "arch": "Volta",
        "rates": {"fp32": 128, "tf32": 128, "bf16": None, "fp16": 1024},
        "notes": {"tf32": _NO_TF32_DERIVED, "bf16": _NO_BF16_TURING_VOLTA},
        "source": f"{_NV_TENSOR_SRC}; {_NV_FP32_SRC}",
    },
    "7.5": {
        "arch": "Turing",
        "rates": {"fp32": 128, "tf32": 128, "bf16": None, "fp16": 1024},
        "geforce": {"fp16": 512},
        "notes": {"tf32": _NO_TF32_DERIVED, "bf16": _NO_BF16_TURING_VOLTA},
        "source": f"NVIDIA Turing GPU Architecture whitepaper and T4 datasheet; {_NV_FP32_SRC}",
    },
    "8.0": {
        "arch": "Ampere (GA100)",
        "rates": {"fp32": 128, "tf32": 1024, "bf16": 2048, "fp16": 2048},
        "source": f"{_NV_TENSOR_SRC}; {_NV_FP32_SRC}",
    },
    "8.6": {
        "arch": "Ampere (GA10x)",
        "rates": {"fp32": 256, "tf32": 512, "bf16": 1024, "fp16": 1024},
        "geforce": {"tf32": 256, "bf16": 512, "fp16": 512},
        "source": f"{_NV_TENSOR_SRC}; NVIDIA Ampere GA102 whitepaper; {_NV_FP32_SRC}",
    },
    "8.9": {
        "arch": "Ada Lovelace",
        "rates": {"fp32": 256, "tf32": 512, "bf16": 1024, "fp16": 1024},
        "geforce": {"tf32": 256, "bf16": 512, "fp16": 512},
        "source": f"{_NV_TENSOR_SRC}; NVIDIA Ada Lovelace whitepaper; {_NV_FP32_SRC}",
    },
    "9.0": {
        "arch": "Hopper",
        "rates": {"fp32": 256, "tf32": 2048, "bf16": 4096, "fp16": 4096},
        "source": f"{_NV_TENSOR_SRC}; {_NV_FP32_SRC}",
    },
    "12.0": {
        "arch": "Blackwell (GB20x)",
        "rates": {"fp32": 256, "tf32": None, "bf16": None, "fp16": None},
        "geforce": {"tf32": 256, "bf16": 512, "fp16": 512},
        "notes": {
            d: "no sourced per-SM tensor rate for non-GeForce Blackwell (GB20x) parts"
            for d in ("tf32", "bf16", "fp16")
        },
        "source": f"NVIDIA RTX Blackwell GPU Architecture whitepaper (GeForce); {_NV_FP32_SRC}",
    },
}
NVIDIA_GEFORCE_NOTE = (
    "GeForce: FP16/BF16 tensor ops with FP32 accumulate (what PyTorch uses) at half the professional rate, "
    "TF32 at the FP32 rate"
)
NVIDIA_PRO_NOTE = (
    "the professional/data-centre rate: some such parts (e.g. L40) run FP16/BF16 with FP32 accumulate at "
    "half this rate, so this is an upper bound"
)

# AMD Instinct, by gfx arch (per CU per clock, matrix cores, dense): CDNA (gfx908, MI100: 120 CUs x
# 1502 MHz gives its data sheet's 46.1 FP32-matrix, 92.3 BF16, 184.6 FP16 TFLOPS), CDNA 2 (gfx90a:
# MI250X 220 CUs x 1700 MHz gives 95.7 / 383), CDNA 3 (gfx942: MI300X 304 CUs x 2100 MHz gives
# 163.4 / 653.7 / 1307.4): the AMD CDNA, CDNA 2 and CDNA 3 architecture whitepapers and data sheets.
_CDNA_SRC = "AMD CDNA{} architecture whitepaper; per-CU rate checked against the {} data sheet"
AMD_CU_RATES: dict[str, dict[str, Any]] = {
    "gfx908": {
        "arch": "CDNA (MI100)",
        "rates": {"fp32": 256, "tf32": 256, "bf16": 512, "fp16": 1024},
        "notes": {"tf32": "CDNA has no TF32: a tf32 matmul runs in FP32, so this is the fp32 rate"},
        "source": _CDNA_SRC.format("", "MI100"),
    },
    "gfx90a": {
        "arch": "CDNA 2 (MI200)",
        "rates": {"fp32": 256, "tf32": 256, "bf16": 1024, "fp16": 1024},
        "notes": {"tf32": "CDNA 2 has no TF32: a tf32 matmul runs in FP32, so this is the fp32 rate"},
        "source": _CDNA_SRC.format(" 2", "MI250X"),
    },
    "gfx942": {
        "arch": "CDNA 3 (MI300)",
        "rates": {"fp32": 256, "tf32": 1024, "bf16": 2048, "fp16": 2048},
        "source": _CDNA_SRC.format(" 3", "MI300X"),
    },
    **{
        arch: {
            "arch": f"RDNA 3 ({chip})",
            "rates": {"fp32": 256, "tf32": 256, "bf16": 512, "fp16": 512},
            "notes": {
                "fp32": "256 counts RDNA 3's dual-issue, which matmul kernels rarely reach; 128 without it",
                "tf32": "RDNA 3 has no TF32: a tf32 matmul runs in FP32, so this is the fp32 rate",
            },
            "source": "AMD Radeon RX 7900 XTX specifications: 61.4 TFLOPS FP32 and 122.8 TFLOPS FP16 (WMMA) "
            "from 96 CUs at 2.5 GHz = 256 and 512 FLOP/clock/CU (amd.com/en/products/graphics/desktops/radeon/"
            "7000-series/amd-radeon-rx-7900xtx.html)",
        }
        for arch, chip in (("gfx1100", "Navi 31"), ("gfx1101", "Navi 32"), ("gfx1102", "Navi 33"))
    },
}
