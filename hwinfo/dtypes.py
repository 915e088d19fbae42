"""Which CPU features run a reduced-precision dtype natively; without them PyTorch converts to fp32 and
the dtype runs slower than fp32 itself. One table for the diagnosis and the tips (hwinfo.peaks prices the
same instructions)."""

CPU_NATIVE_FEATURES: dict[str, tuple[str, ...]] = {
    "bf16": ("avx512_bf16", "amx_bf16"),
    "fp16": ("avx512_fp16", "amx_fp16"),
}
