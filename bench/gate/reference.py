"""The gate's frozen reference workload: a plain-PyTorch GPT-like training step, written on its own.

It imports nothing from devicebench, so a change to devicebench's model, data pipeline or trainer
never changes it: it only tracks the speed of the machine (and of PyTorch). Its shape is given in
numbers (layers, width, context, batch), the same numbers as the workload under test, so both do
comparable work with the same kernels and the ratio workload/reference cancels machine speed.

Frozen: change nothing here that changes its speed without bumping REFERENCE_VERSION (baselines
made with another version are refused).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

REFERENCE_VERSION = 1


@dataclass(frozen=True)
class ReferenceShape:
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    batch_size: int = 12
    vocab_size: int = 65

    def to_dict(self) -> dict:
        return asdict(self)


class ReferenceStep:
    """Functional pre-LayerNorm transformer on random tokens, AdamW, grad clip 1.0, fp32 on the CPU."""

    def __init__(self, shape: ReferenceShape, seed: int = 0) -> None:
        import torch

        if shape.n_embd % shape.n_head:
            raise ValueError(f"n_embd ({shape.n_embd}) must be divisible by n_head ({shape.n_head})")
        self.torch = torch
        self.shape = shape
        gen = torch.Generator().manual_seed(seed)
        c, v, t = shape.n_embd, shape.vocab_size, shape.block_size

        def weight(*size: int) -> torch.Tensor:
            return (torch.randn(*size, generator=gen) * 0.02).requires_grad_()

        def ones(n: int) -> torch.Tensor:
            return torch.ones(n).requires_grad_()

        self.embed = weight(v, c)
        self.pos = weight(t, c)
        self.layers = [
            {
                "ln1": ones(c), "qkv": weight(c, 3 * c), "proj": weight(c, c),
                "ln2": ones(c), "up": weight(c, 4 * c), "down": weight(4 * c, c),
            }
            for _ in range(shape.n_layer)
        ]  # fmt: skip
        self.ln_out = ones(c)
        self.params = [self.embed, self.pos, self.ln_out] + [
            p for layer in self.layers for p in layer.values()
        ]
        matrices = [p for p in self.params if p.dim() == 2]
        vectors = [p for p in self.params if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": matrices, "weight_decay": 0.1}, {"params": vectors, "weight_decay": 0.0}],
            lr=1e-3,
            betas=(0.9, 0.99),
        )
        self.tokens = torch.randint(v, (100_000,), generator=gen)
        self.batch_gen = torch.Generator().manual_seed(seed + 1)
        self.window = torch.arange(t + 1)

    def loss(self, x, y):
        """Mean next-token cross-entropy of the batch."""
        f = self.torch.nn.functional
        b, t = x.shape
        c, h = self.shape.n_embd, self.shape.n_head
        z = self.embed[x] + self.pos[:t]
        for layer in self.layers:
            a = f.layer_norm(z, (c,), layer["ln1"])
            q, k, v = (a @ layer["qkv"]).split(c, dim=-1)
            q, k, v = (m.reshape(b, t, h, c // h).transpose(1, 2) for m in (q, k, v))
            att = f.scaled_dot_product_attention(q, k, v, is_causal=True)
            z = z + att.transpose(1, 2).reshape(b, t, c) @ layer["proj"]
            m = f.layer_norm(z, (c,), layer["ln2"])
            z = z + f.gelu(m @ layer["up"]) @ layer["down"]
        logits = f.layer_norm(z, (c,), self.ln_out) @ self.embed.T
        return f.cross_entropy(logits.reshape(b * t, -1), y.reshape(b * t))

    def step(self) -> float:
        """One timed training step (batch, forward, backward, clip, update); returns milliseconds."""
        torch = self.torch
        t0 = time.perf_counter()
        starts = torch.randint(len(self.tokens) - self.shape.block_size - 1, (self.shape.batch_size,),
                               generator=self.batch_gen)  # fmt: skip
        chunk = self.tokens[starts[:, None] + self.window]
        x, y = chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()
        loss = self.loss(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return (time.perf_counter() - t0) * 1e3
