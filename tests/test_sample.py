"""model.generate: nanoGPT sample.py's sampling (temperature, top-k) from a seeded CPU generator."""

from __future__ import annotations

import pytest
import torch

from model.config import GPTConfig
from model.generate import generate
from model.gpt import GPT


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=12))


def test_same_seed_same_text_and_context_cropped(model):
    a = generate(model, [1, 2], 20, seed=5)  # 22 tokens: longer than block_size 8, so the context is cropped
    assert a == generate(model, [1, 2], 20, seed=5)
    assert a[:2] == [1, 2] and len(a) == 22
    assert a != generate(model, [1, 2], 20, seed=6)


def test_top_k_one_is_greedy(model):
    ids = [3]
    out = generate(model, ids, 6, top_k=1, seed=1)
    for i in range(1, len(out)):
        logits, _ = model(torch.tensor([out[max(0, i - 8) : i]]))
        assert out[i] == int(logits[0, -1].argmax())


def test_vocab_limit_is_never_drawn(model):
    out = generate(model, [0], 200, temperature=5.0, top_k=None, seed=2, vocab_limit=4)
    assert set(out) <= {0, 1, 2, 3} and len(set(out)) > 1


def test_bad_prompt_or_temperature(model):
    with pytest.raises(ValueError):
        generate(model, [], 3)
    with pytest.raises(ValueError):
        generate(model, [1], 3, temperature=0.0)
