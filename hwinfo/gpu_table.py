"""Dense (no sparsity) peak FLOP/s of GPUs, per dtype, with the source of every number: the data is
hwinfo/gpu_table.toml, read by `gpu_table()` (once per process) and used by `hwinfo.peaks`. Figures are TFLOP/s. NVIDIA and AMD datasheets often
print tensor figures "with sparsity"; those are halved here. GeForce cards run FP16/BF16 tensor ops
with FP32 accumulation (what PyTorch uses) at half the FP16-accumulate rate NVIDIA advertises, so
their rows use the FP32-accumulate rate. A dtype missing from a row (None once read) means the chip has no such arithmetic; `notes` says why.

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

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).with_name("gpu_table.toml")
_DTYPES = ("fp32", "tf32", "bf16", "fp16")


@dataclass(frozen=True)
class GpuTable:
    """The rows (GPU_PEAKS shape, see above), the per-SM and per-CU rates, and the two NVIDIA notes."""

    rows: tuple[dict[str, Any], ...]
    nvidia_sm_rates: dict[str, dict[str, Any]]
    amd_cu_rates: dict[str, dict[str, Any]]
    geforce_note: str
    pro_note: str


def _all_dtypes(figures: dict[str, Any]) -> dict[str, Any]:
    return {d: figures.get(d) for d in _DTYPES}


@functools.cache
def gpu_table(path: Path = TABLE_PATH) -> GpuTable:
    """hwinfo/gpu_table.toml, read once: every dtype present in "tflops"/"rates" (None when the file has
    none), bandwidth variants as (regex, GB/s) tuples."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rows = []
    for row in data["gpu"]:
        row = {**row, "tflops": _all_dtypes(row["tflops"])}
        if "bandwidth" in row:
            row["bandwidth"] = [(pattern, gbs) for pattern, gbs in row["bandwidth"]]
        rows.append(row)

    def rates(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {key: {**row, "rates": _all_dtypes(row["rates"])} for key, row in table.items()}

    return GpuTable(
        rows=tuple(rows),
        nvidia_sm_rates=rates(data["nvidia_sm"]),
        amd_cu_rates=rates(data["amd_cu"]),
        geforce_note=data["notes"]["geforce"],
        pro_note=data["notes"]["pro"],
    )
