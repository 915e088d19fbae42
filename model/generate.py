"""Text from a GPT: autoregressive sampling with temperature and top-k, as nanoGPT's sample.py does.

The draws come from a seeded CPU generator over probabilities moved to the CPU, so one seed gives the
same text on every device wherever the logits agree.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from model.gpt import GPT

# nanoGPT sample.py's defaults for temperature and top_k; the prompt and length are devicebench's.
SAMPLE_TEMPERATURE = 0.8
SAMPLE_TOP_K = 200
SAMPLE_TOKENS = 200
SAMPLE_SEED = 1337
SAMPLE_PROMPT = "\n"


@torch.no_grad()
def generate(
    model: GPT,
    prompt_ids: list[int],
    max_new_tokens: int,
    temperature: float = SAMPLE_TEMPERATURE,
    top_k: int | None = SAMPLE_TOP_K,
    seed: int = SAMPLE_SEED,
    vocab_limit: int | None = None,
) -> list[int]:
    """The prompt's ids followed by max_new_tokens sampled ids. Each step feeds at most block_size tokens;
    ids at or above vocab_limit (rows of a padded vocabulary that the tokenizer cannot decode) are never drawn."""
    if not prompt_ids:
        raise ValueError("the prompt must hold at least one token")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    device = next(model.parameters()).device
    idx = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            context = idx[:, -model.config.block_size :]
            logits, _ = model(context)
            logits = logits[:, -1, :].float().cpu() / temperature
            if vocab_limit is not None and vocab_limit < logits.size(-1):
                logits[:, vocab_limit:] = -float("inf")
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                logits = logits.masked_fill(logits < kth, -float("inf"))
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat([idx, nxt.to(device)], dim=1)
    finally:
        model.train(was_training)
    return idx[0].tolist()
