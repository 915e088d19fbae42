"""FLOPs of one training token and step (PaLM appendix B, as nanoGPT's estimate_mfu). No torch."""

from __future__ import annotations

from model.config import GPTConfig


def count_params(config: GPTConfig) -> int:
    """Non-embedding parameter count (nanoGPT's) without building the model."""
    c = config
    per_layer = 12 * c.n_embd * c.n_embd + 2 * c.n_embd  # four matmuls + two LayerNorm weights
    if c.bias:
        per_layer += 11 * c.n_embd  # qkv 3C, attn proj C, fc 4C, mlp proj C, LayerNorm biases 2C
    ln_f = c.n_embd * (2 if c.bias else 1)
    n = c.n_layer * per_layer + ln_f + c.vocab_size * c.n_embd  # token embedding (tied with lm_head)
    return n


def flops_per_token(config: GPTConfig, n_params: int | None = None) -> int:
    """6N + 12*L*H*Q*T for one training token (forward and backward)."""
    n = count_params(config) if n_params is None else n_params
    head_dim = config.n_embd // config.n_head
    return 6 * n + 12 * config.n_layer * config.n_head * head_dim * config.block_size


def flops_per_iter(config: GPTConfig, batch_size: int) -> int:
    """Training FLOPs of one optimizer step at this batch size (no gradient accumulation)."""
    return flops_per_token(config) * batch_size * config.block_size
