"""nanoGPT checkpoints onto the shared GPT: the model shape from `model_args`, the weights from `model`.

nanoGPT's train.py saves {"model", "optimizer", "model_args", "iter_num", "best_val_loss", "config"}; its GPT
names its parameters as ours does (transformer.wte.weight, transformer.h.0.attn.c_attn.weight, ...,
lm_head.weight), so the mapping is a check: prefixes left by torch.compile or DDP removed, the causal-mask
buffer of PyTorch < 2.0 dropped, every other key and shape required to match. What cannot be mapped is refused
in one line (CheckpointMismatch), never loaded in part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from model.config import GPTConfig
from model.gpt import GPT

MODEL_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "bias", "dropout")
_PREFIXES = ("_orig_mod.", "module.")  # torch.compile's wrapper, DistributedDataParallel's
# nanoGPT's causal mask without flash attention: a buffer, not a weight
_MASK_SUFFIXES = (".attn.bias", ".attn.masked_bias")
_TIED = ("transformer.wte.weight", "lm_head.weight")


class CheckpointMismatch(ValueError):
    """A checkpoint whose model the shared GPT cannot hold."""


def config_from_model_args(model_args: Any, where: str = "the checkpoint") -> GPTConfig:
    """The shared GPT's shape from nanoGPT's model_args (dropout defaults to 0, bias to False when absent)."""
    if not isinstance(model_args, Mapping):
        raise CheckpointMismatch(f"{where} has no model_args dict: not a nanoGPT train.py checkpoint")
    missing = [k for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size") if k not in model_args]
    if missing:
        raise CheckpointMismatch(f"{where}: model_args lacks {', '.join(missing)}")
    values = {k: model_args[k] for k in MODEL_ARGS if k in model_args}
    for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
        if isinstance(values[k], bool) or not isinstance(values[k], int) or values[k] < 1:
            raise CheckpointMismatch(f"{where}: model_args {k} = {values[k]!r} is not a positive integer")
    values["bias"] = bool(values.get("bias", False))
    values["dropout"] = float(values.get("dropout") or 0.0)
    try:
        return GPTConfig(**values)
    except ValueError as e:
        raise CheckpointMismatch(f"{where}: model_args cannot make a GPT: {e}") from None


def strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Keys without the `_orig_mod.` (torch.compile) and `module.` (DDP) prefixes nanoGPT may leave."""
    out = {}
    for key, value in state_dict.items():
        k = str(key)
        changed = True
        while changed:
            changed = False
            for p in _PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p) :], True
        out[k] = value
    return out


def _shape(t: Any) -> str:
    return "[" + ", ".join(str(d) for d in t.shape) + "]" if hasattr(t, "shape") else type(t).__name__


def _names(keys: list[str], n: int = 3) -> str:
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def map_state_dict(state_dict: Any, model: GPT, where: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """nanoGPT's model state dict as one the shared GPT loads strictly; CheckpointMismatch when it cannot."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointMismatch(f"{where} has no model state dict")
    sd = {k: v for k, v in strip_prefixes(state_dict).items() if not k.endswith(_MASK_SUFFIXES)}
    expected = model.state_dict()
    unknown = [k for k in sd if k not in expected]
    if unknown:
        raise CheckpointMismatch(
            f"{where} holds weights the shared GPT has no place for ({_names(unknown)}): a model of another "
            "architecture cannot be mapped"
        )
    for a, b in (_TIED, _TIED[::-1]):
        if a not in sd and b in sd:
            sd[a] = sd[b]
    missing = [k for k in expected if k not in sd]
    if missing:
        raise CheckpointMismatch(f"{where} lacks weights the shared GPT needs: {_names(missing)}")
    for k, want in expected.items():
        got = sd[k]
        if not isinstance(got, torch.Tensor):
            raise CheckpointMismatch(f"{where}: {k} is a {type(got).__name__}, not a tensor")
        if tuple(got.shape) != tuple(want.shape):
            raise CheckpointMismatch(
                f"{where}: {k} has shape {_shape(got)}, the GPT its model_args describe needs {_shape(want)}"
            )
        if not (got.is_floating_point() and torch.isfinite(got).all()):
            raise CheckpointMismatch(f"{where}: {k} holds non-finite or non-float values")
    if not torch.equal(sd[_TIED[0]].float(), sd[_TIED[1]].float()):
        raise CheckpointMismatch(
            f"{where}: {_TIED[0]} and {_TIED[1]} differ (an untied model); the shared GPT ties them, as nanoGPT does"
        )
    return {k: sd[k] for k in expected}
