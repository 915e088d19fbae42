"""A training step's memory, estimated from the model's shape: what `bench run --dry-run` warns with. No torch.

Parameters, gradients and AdamW's two moments are exact counts (fp32, 16 bytes per parameter). The
activations kept for the backward pass follow Korthikanti et al. 2022 ("Reducing Activation
Recomputation in Large Transformer Models", section 4.1): per layer and token about 34*C bytes at 16-bit,
i.e. 17*C values, plus 5*H*T bytes (2.5*H*T values) when attention materialises its T x T scores; the
logits and their gradient add 2*V values per token. An estimate, an upper bound more often than not.
"""

from __future__ import annotations

from model.config import GPTConfig
from model.flops import count_params

BYTES_PER_ACTIVATION = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2}


def estimate_train_bytes(config: GPTConfig, batch_size: int, dtype: str = "fp32") -> dict[str, int]:
    """{params, grads, optimizer, activations, total} in bytes for one training step."""
    c = config
    n_params = count_params(c) + c.block_size * c.n_embd  # plus the position embedding
    tokens = batch_size * c.block_size
    per_token_layer = 17 * c.n_embd + 2.5 * c.n_head * c.block_size  # values kept for backward
    values = tokens * (c.n_layer * per_token_layer + 2 * c.vocab_size + 2 * c.n_embd)
    out = {
        "params": 4 * n_params,
        "grads": 4 * n_params,
        "optimizer": 8 * n_params,
        "activations": int(values * BYTES_PER_ACTIVATION.get(dtype, 4)),
    }
    out["total"] = sum(out.values())
    return out
