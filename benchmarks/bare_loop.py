"""A bare PyTorch training loop of the reference recipe, nanoGPT-style, for harness_vs_bare.py.

No devicebench harness: a plain loop with nanoGPT's get_batch, AdamW, clipping and a loss.item()
per step (nanoGPT's log_interval=1). Prints JSON: per-step ms and the loop's wall time.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from model.dataset import CharDataset
from model.gpt import GPT, GPTConfig


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=12)
    args = p.parse_args()
    cfg = GPTConfig()
    data = CharDataset.shakespeare().train
    torch.manual_seed(1337)
    model = GPT(cfg)
    opt = model.configure_optimizer(0.1, 1e-3, (0.9, 0.99))

    def get_batch():
        ix = torch.randint(len(data) - cfg.block_size, (args.batch_size,))
        x = torch.stack([data[i : i + cfg.block_size] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + cfg.block_size] for i in ix])
        return x, y

    ms = []
    loop0 = time.perf_counter()
    for _ in range(args.iters):
        t0 = time.perf_counter()
        x, y = get_batch()
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ms.append((time.perf_counter() - t0) * 1e3)
        loss.item()
    print(json.dumps({"ms": ms, "loop_s": time.perf_counter() - loop0}))


if __name__ == "__main__":
    main()
