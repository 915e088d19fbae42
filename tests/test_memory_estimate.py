"""model.memory: the dry-run's memory estimate against what PyTorch really allocates on the CPU."""

from __future__ import annotations

import pytest
import torch

from model.gpt import GPT, GPTConfig
from model.memory import estimate_train_bytes


def test_parameter_state_is_exact():
    cfg = GPTConfig()
    est = estimate_train_bytes(cfg, 12)
    n = sum(p.numel() for p in GPT(cfg).parameters())
    assert est["params"] == 4 * n and est["grads"] == 4 * n and est["optimizer"] == 8 * n
    assert est["total"] == sum(v for k, v in est.items() if k != "total")


def test_activations_grow_with_batch_and_halve_in_16_bit():
    cfg = GPTConfig()
    small, large = estimate_train_bytes(cfg, 12), estimate_train_bytes(cfg, 48)
    assert large["activations"] == pytest.approx(4 * small["activations"], rel=1e-6)
    assert estimate_train_bytes(cfg, 12, "bf16")["activations"] * 2 == pytest.approx(
        small["activations"], rel=1e-6
    )


def test_activation_estimate_bounds_what_autograd_saves():
    """The activations autograd keeps for backward (saved-tensor hooks count them) stay within the estimate
    and above a third of it: an upper bound, but not a wild one."""
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=32)
    model = GPT(cfg)
    x = torch.randint(0, cfg.vocab_size, (8, cfg.block_size))
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x, x)
    real = sum(n for ptr, n in saved.items() if ptr not in params)
    est = estimate_train_bytes(cfg, 8)["activations"]
    assert est / 3 < real <= est, (real, est)
