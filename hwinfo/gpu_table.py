"""Dense (no sparsity) peak FLOP/s of GPUs, per dtype, with the source of every number.

One table, read by `hwinfo.peaks.lookup_gpu`. Figures are TFLOP/s. NVIDIA and AMD datasheets often
print tensor figures "with sparsity"; those are halved here. GeForce cards run FP16/BF16 tensor ops
with FP32 accumulation (what PyTorch uses) at half the FP16-accumulate rate NVIDIA advertises, so
their rows use the FP32-accumulate rate. `None` means the chip has no such arithmetic; `notes` says why.

Each row: `key` (the name shown), `match` (regexes searched in the normalised device name, first
row that matches wins, so more specific rows come first), `tflops` {fp32, tf32, bf16, fp16},
`source`, optional `notes` {dtype: why}, optional `gpu_cores` (Apple: figures are for this many
GPU cores and are scaled to the core count found).
"""

from __future__ import annotations

from typing import Any

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


def _geforce(key: str, pattern: str, sms: int, boost_ghz: float, source: str) -> dict[str, Any]:
    """A GeForce row: FP32 = TF32 = SMs x 256 x clock; FP16/BF16 (FP32 accumulate) = SMs x 512 x clock."""
    fp32 = round(sms * 256 * boost_ghz / 1000, 1)
    half = round(sms * 512 * boost_ghz / 1000, 1)
    return {
        "key": key,
        "match": [pattern],
        "tflops": {"fp32": fp32, "tf32": fp32, "bf16": half, "fp16": half},
        "source": f"{source} ({sms} SMs, {boost_ghz} GHz boost)",
        "notes": {"tf32": "GeForce TF32 tensor rate equals its FP32 rate"},
    }


def _apple(key: str, pattern: str, cores: int, fp32: float, source: str) -> dict[str, Any]:
    return {
        "key": key,
        "match": [pattern],
        "tflops": {"fp32": fp32, "tf32": None, "bf16": fp32, "fp16": fp32},
        "source": source,
        "notes": {"tf32": _TF32_CUDA_ONLY, "fp16": _APPLE_HALF, "bf16": _APPLE_BF16},
        "gpu_cores": cores,
    }


_APPLE_M1_M2_SRC = "Apple press release / product page ({} TFLOPS FP32, {}-core GPU)"
_APPLE_ESTIMATE = (
    "estimate: Apple publishes no TFLOPS figure; {} cores x 128 FP32 lanes x 2 x {} GHz GPU clock "
    "(clock as reported by public benchmarks)"
)


def _apple_published(key: str, pattern: str, cores: int, fp32: float) -> dict[str, Any]:
    return _apple(key, pattern, cores, fp32, _APPLE_M1_M2_SRC.format(fp32, cores))


def _apple_estimated(key: str, pattern: str, cores: int, clock_ghz: float) -> dict[str, Any]:
    fp32 = round(cores * 128 * 2 * clock_ghz / 1000, 2)
    return _apple(key, pattern, cores, fp32, _APPLE_ESTIMATE.format(cores, clock_ghz))


GPU_PEAKS: tuple[dict[str, Any], ...] = (
    # --- NVIDIA data centre -------------------------------------------------------------------------
    {
        "key": "H100 NVL",
        "match": [r"\bh100\b.*\bnvl\b"],
        "tflops": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
        "source": "NVIDIA H100 Tensor Core GPU datasheet, H100 NVL column (sparsity figures halved)",
    },
    {
        "key": "H100 PCIe",
        "match": [r"\bh100\b.*\b(pcie|hbm2e)\b"],
        "tflops": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
        "source": "NVIDIA H100 Tensor Core GPU Architecture whitepaper, table 3, H100 PCIe (dense)",
    },
    {
        "key": "H100 SXM",
        "match": [r"\bh100\b.*\b(sxm\d?|hbm3)\b"],
        "tflops": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
        "source": "NVIDIA H100 Tensor Core GPU Architecture whitepaper, table 3, H100 SXM5 (dense)",
    },
    {
        "key": "GH200",
        "match": [r"\bgh200\b"],
        "tflops": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
        "source": "NVIDIA GH200 Grace Hopper Superchip datasheet (H100 SXM compute; sparsity halved)",
    },
    {
        "key": "H200 NVL",
        "match": [r"\bh200\b.*\bnvl\b"],
        "tflops": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
        "source": "NVIDIA H200 Tensor Core GPU datasheet, H200 NVL column (sparsity figures halved)",
    },
    {
        "key": "H200",
        "match": [r"\bh200\b"],
        "tflops": {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5},
        "source": "NVIDIA H200 Tensor Core GPU datasheet, H200 SXM column (sparsity figures halved)",
    },
    {
        "key": "A100",
        "match": [r"\ba100\b"],
        "tflops": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
        "source": "NVIDIA A100 Tensor Core GPU datasheet (SXM and PCIe, 40 and 80 GB: same peaks, dense)",
    },
    {
        "key": "L40S",
        "match": [r"\bl40s\b"],
        "tflops": {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05, "fp16": 362.05},
        "source": "NVIDIA L40S GPU datasheet (dense column)",
    },
    {
        "key": "L40",
        "match": [r"\bl40\b"],
        "tflops": {"fp32": 90.5, "tf32": 90.5, "bf16": 181.05, "fp16": 181.05},
        "source": "NVIDIA L40 GPU datasheet (dense column)",
    },
    {
        "key": "L4",
        "match": [r"\bl4\b"],
        "tflops": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0},
        "source": "NVIDIA L4 Tensor Core GPU datasheet (sparsity figures halved)",
    },
    {
        "key": "A10",
        "match": [r"\ba10\b"],
        "tflops": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0},
        "source": "NVIDIA A10 Tensor Core GPU datasheet (dense)",
    },
    {
        "key": "A40",
        "match": [r"\ba40\b"],
        "tflops": {"fp32": 37.4, "tf32": 74.8, "bf16": 149.7, "fp16": 149.7},
        "source": "NVIDIA A40 datasheet (dense)",
    },
    {
        "key": "RTX A6000",
        "match": [r"\ba6000\b"],
        "tflops": {"fp32": 38.7, "tf32": 77.4, "bf16": 154.8, "fp16": 154.8},
        "source": "NVIDIA Ampere GA102 GPU Architecture whitepaper, RTX A6000 column (dense)",
    },
    {
        "key": "RTX 6000 Ada",
        "match": [r"\brtx 6000 ada\b"],
        "tflops": {"fp32": 91.1, "tf32": 182.1, "bf16": 364.2, "fp16": 364.2},
        "source": "NVIDIA Ada Lovelace GPU Architecture whitepaper, RTX 6000 Ada column (dense)",
    },
    {
        "key": "T4",
        "match": [r"\bt4\b"],
        "tflops": {"fp32": 8.1, "tf32": 8.1, "bf16": None, "fp16": 65.0},
        "source": "NVIDIA T4 Tensor Core GPU datasheet (FP32 8.1, mixed-precision FP16/FP32 65 TFLOPS)",
        "notes": {"tf32": _NO_TF32, "bf16": _NO_BF16_TURING_VOLTA},
    },
    {
        "key": "V100S PCIe",
        "match": [r"\bv100s\b"],
        "tflops": {"fp32": 16.4, "tf32": 16.4, "bf16": None, "fp16": 130.0},
        "source": "NVIDIA V100 Tensor Core GPU datasheet, V100S PCIe column",
        "notes": {"tf32": _NO_TF32, "bf16": _NO_BF16_TURING_VOLTA},
    },
    {
        "key": "V100 PCIe",
        "match": [r"\bv100\b.*\bpcie\b"],
        "tflops": {"fp32": 14.0, "tf32": 14.0, "bf16": None, "fp16": 112.0},
        "source": "NVIDIA V100 Tensor Core GPU datasheet, V100 PCIe column",
        "notes": {"tf32": _NO_TF32, "bf16": _NO_BF16_TURING_VOLTA},
    },
    {
        "key": "V100 SXM2",
        "match": [r"\bv100\b.*\bsxm\d?\b"],
        "tflops": {"fp32": 15.7, "tf32": 15.7, "bf16": None, "fp16": 125.0},
        "source": "NVIDIA V100 Tensor Core GPU datasheet, V100 SXM2 column",
        "notes": {"tf32": _NO_TF32, "bf16": _NO_BF16_TURING_VOLTA},
    },
    # --- NVIDIA GeForce (desktop cards; laptop parts are not matched) --------------------------------
    _geforce("RTX 3090 Ti", r"\brtx 3090 ti\b", 84, 1.86, _GEFORCE_AMPERE_SRC),
    _geforce("RTX 3090", r"\brtx 3090\b", 82, 1.695, _GEFORCE_AMPERE_SRC),
    _geforce("RTX 3080 Ti", r"\brtx 3080 ti\b", 80, 1.665, _GEFORCE_AMPERE_SRC),
    _geforce(
        "RTX 3080", r"\brtx 3080\b", 68, 1.71, _GEFORCE_AMPERE_SRC + "; 10 GB model, the 12 GB has 70 SMs"
    ),
    _geforce("RTX 3070 Ti", r"\brtx 3070 ti\b", 48, 1.77, _GEFORCE_AMPERE_SRC),
    _geforce("RTX 3070", r"\brtx 3070\b", 46, 1.725, _GEFORCE_AMPERE_SRC),
    _geforce("RTX 3060 Ti", r"\brtx 3060 ti\b", 38, 1.665, _GEFORCE_AMPERE_SRC),
    _geforce("RTX 3060", r"\brtx 3060\b", 28, 1.777, _GEFORCE_AMPERE_SRC),
    _geforce("RTX 4090", r"\brtx 4090\b", 128, 2.52, _GEFORCE_ADA_SRC),
    _geforce("RTX 4080 Super", r"\brtx 4080 super\b", 80, 2.55, _GEFORCE_ADA_SRC),
    _geforce("RTX 4080", r"\brtx 4080\b", 76, 2.505, _GEFORCE_ADA_SRC),
    _geforce("RTX 4070 Ti Super", r"\brtx 4070 ti super\b", 66, 2.61, _GEFORCE_ADA_SRC),
    _geforce("RTX 4070 Ti", r"\brtx 4070 ti\b", 60, 2.61, _GEFORCE_ADA_SRC),
    _geforce("RTX 4070 Super", r"\brtx 4070 super\b", 56, 2.475, _GEFORCE_ADA_SRC),
    _geforce("RTX 4070", r"\brtx 4070\b", 46, 2.475, _GEFORCE_ADA_SRC),
    _geforce("RTX 4060 Ti", r"\brtx 4060 ti\b", 34, 2.535, _GEFORCE_ADA_SRC),
    _geforce("RTX 4060", r"\brtx 4060\b", 24, 2.46, _GEFORCE_ADA_SRC),
    _geforce("RTX 5090", r"\brtx 5090\b", 170, 2.407, _GEFORCE_BLACKWELL_SRC),
    _geforce("RTX 5080", r"\brtx 5080\b", 84, 2.617, _GEFORCE_BLACKWELL_SRC),
    # --- AMD Instinct -------------------------------------------------------------------------------
    {
        "key": "MI325X",
        "match": [r"\bmi325x\b"],
        "tflops": {"fp32": 163.4, "tf32": 653.7, "bf16": 1307.4, "fp16": 1307.4},
        "source": "AMD Instinct MI325X data sheet (dense; FP32 matrix)",
    },
    {
        "key": "MI300X",
        "match": [r"\bmi300x\b"],
        "tflops": {"fp32": 163.4, "tf32": 653.7, "bf16": 1307.4, "fp16": 1307.4},
        "source": "AMD Instinct MI300X data sheet (dense; FP32 matrix)",
    },
    {
        "key": "MI300A",
        "match": [r"\bmi300a\b"],
        "tflops": {"fp32": 122.6, "tf32": 490.3, "bf16": 980.6, "fp16": 980.6},
        "source": "AMD Instinct MI300A data sheet (dense; FP32 matrix)",
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
    },
    {
        "key": "MI210",
        "match": [r"\bmi210\b"],
        "tflops": {"fp32": 45.3, "tf32": 45.3, "bf16": 181.0, "fp16": 181.0},
        "source": "AMD Instinct MI210 data sheet (FP32 matrix, FP16/BF16 dense)",
        "notes": {"tf32": "CDNA 2 has no TF32: a tf32 matmul runs in FP32, so this is the fp32 peak"},
    },
    # --- Apple silicon GPUs (through MPS); most specific first -----------------------------------------
    _apple_published("Apple M1 Ultra GPU", r"\bapple m1 ultra\b", 64, 21.0),
    _apple_published("Apple M1 Max GPU", r"\bapple m1 max\b", 32, 10.4),
    _apple_published("Apple M1 Pro GPU", r"\bapple m1 pro\b", 16, 5.2),
    _apple_published("Apple M1 GPU", r"\bapple m1\b", 8, 2.6),
    _apple_published("Apple M2 Ultra GPU", r"\bapple m2 ultra\b", 76, 27.2),
    _apple_published("Apple M2 Max GPU", r"\bapple m2 max\b", 38, 13.6),
    _apple_published("Apple M2 Pro GPU", r"\bapple m2 pro\b", 19, 6.8),
    _apple_published("Apple M2 GPU", r"\bapple m2\b", 10, 3.6),
    _apple_estimated("Apple M3 Ultra GPU", r"\bapple m3 ultra\b", 80, 1.38),
    _apple_estimated("Apple M3 Max GPU", r"\bapple m3 max\b", 40, 1.38),
    _apple_estimated("Apple M3 Pro GPU", r"\bapple m3 pro\b", 18, 1.38),
    _apple_estimated("Apple M3 GPU", r"\bapple m3\b", 10, 1.38),
    _apple_estimated("Apple M4 Max GPU", r"\bapple m4 max\b", 40, 1.578),
    _apple_estimated("Apple M4 Pro GPU", r"\bapple m4 pro\b", 20, 1.578),
    _apple_estimated("Apple M4 GPU", r"\bapple m4\b", 10, 1.578),
)
