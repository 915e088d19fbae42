"""Bytes and FLOPs of every aten op of one train step, per category: what the roofline places.

`OpCounter` (a TorchDispatchMode, below autograd: nothing counted twice) adds each op's unique bytes read and
written (a lower bound of the traffic) and its FLOPs (torch's formulas, the CPU flash-attention one it lacks,
else one per element: `flops_floor`). `count_step` runs one untimed, marked train step under it and restores
the Trainer; a compiled model is counted as its eager ops. docs/roofline.md has the details.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry, sdpa_backward_flop_count, sdpa_flop_count

from bench.profile.analysis import CATEGORIES, MARK, op_category
from bench.profile.capture import Snapshot

# Ops that only allocate or read metadata: no bytes, no FLOPs.
_NO_TRAFFIC = {
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "_local_scalar_dense_meta",
    "is_nonzero", "size", "stride", "sym_size", "sym_stride", "sym_numel", "set_", "resize_",
    "_record_function_enter_new", "_record_function_exit", "record_stream",
    # views whose schema does not say so (the "unsafe" ones) and the view ops of the time breakdown
    "_unsafe_view", "_reshape_alias", "view", "reshape", "transpose", "t", "permute", "as_strided", "expand",
    "slice", "select", "narrow", "split", "split_with_sizes", "chunk", "unbind", "unsqueeze", "squeeze",
    "detach", "alias", "lift_fresh", "view_as", "flatten", "unflatten", "numpy_T", "resolve_conj", "resolve_neg",
}  # fmt: skip
# Ops that read only the elements they gather from their first argument (a table or a tensor indexed).
_GATHER = {"index", "index_select", "gather", "take", "embedding", "take_along_dim"}
# In-place ops that overwrite self without reading it; ops that read only their inputs' metadata.
_WRITE_ONLY_SELF = {"fill_", "zero_", "copy_", "normal_", "uniform_", "random_", "bernoulli_", "exponential_"}
_METADATA_INPUTS = {
    "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "randint_like", "new_zeros", "new_ones",
    "new_full", "scalar_tensor",
}  # fmt: skip
# Ops that move or create data but compute nothing.
_NO_FLOPS = _WRITE_ONLY_SELF | _METADATA_INPUTS | {
    "clone", "_to_copy", "to", "contiguous", "cat", "stack", "index_select", "index", "gather", "embedding",
    "slice_scatter", "select_scatter", "as_strided_scatter", "constant_pad_nd", "repeat", "_unsafe_view",
    "zeros", "ones", "full", "arange", "linspace", "randint", "rand", "randn", "randperm", "_local_scalar_dense",
    "lift_fresh_copy", "masked_fill", "masked_fill_", "where", "tril", "triu", "flip", "roll", "copy",
    "expand_copy", "permute_copy", "view_copy", "t_copy", "transpose_copy", "alias_copy", "detach_copy",
    "_pin_memory", "pin_memory", "unfold",
}  # fmt: skip


def _unique_elements(t: torch.Tensor) -> int:
    """Elements a tensor's data occupies: its numel, less the broadcast (stride-0) dimensions."""
    if t.numel() == 0:
        return 0
    return math.prod(s for s, st in zip(t.shape, t.stride(), strict=True) if st != 0)


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes of a tensor's distinct elements (an expanded tensor counts the data it expands)."""
    return _unique_elements(t) * t.element_size()


def _tensors(x: Any) -> Iterator[torch.Tensor]:
    leaves, _ = tree_flatten(x)
    return (v for v in leaves if isinstance(v, torch.Tensor))


def _returns_view(func: Any) -> bool:
    """The op returns an alias of an input it does not write (view, transpose, detach, ...)."""
    return any(r.alias_info is not None and not r.alias_info.is_write for r in func._schema.returns)


def op_bytes(func: Any, args: tuple, kwargs: dict, out: Any) -> int:
    """Bytes an op reads and writes at least: each tensor input once (out= buffers and the self of a
    write-only in-place op are not read), each output once; views and allocations move nothing."""
    schema = func._schema
    base = schema.name.split("::", 1)[-1]
    if base in _NO_TRAFFIC or _returns_view(func):
        return 0
    written_bytes = sum(tensor_bytes(t) for t in _tensors(out))
    read = 0
    if base not in _METADATA_INPUTS:
        for i, arg in enumerate(schema.arguments):
            value = kwargs.get(arg.name) if arg.kwarg_only or i >= len(args) else args[i]
            if value is None:
                continue
            written = arg.alias_info is not None and arg.alias_info.is_write
            if written and (arg.kwarg_only or (base in _WRITE_ONLY_SELF and i == 0)):
                continue  # an out= buffer, or self of fill_/zero_/copy_: written, not read
            nbytes = sum(tensor_bytes(t) for t in _tensors(value))
            if i == 0 and base in _GATHER:
                nbytes = min(nbytes, written_bytes)  # only the gathered elements are read
            read += nbytes
    return read + written_bytes


def _sdpa_cpu_flops(func: Any, args: tuple, kwargs: dict) -> int | None:
    """FLOPs of the CPU's fused attention (forward and backward), which flop_counter's registry lacks."""
    base = func._schema.name.split("::", 1)[-1]
    if base == "_scaled_dot_product_flash_attention_for_cpu":
        q, k, v = args[:3]
        return int(sdpa_flop_count(q.shape, k.shape, v.shape))
    if base == "_scaled_dot_product_flash_attention_for_cpu_backward":
        grad_out, q, k, v = args[:4]
        return int(sdpa_backward_flop_count(grad_out.shape, q.shape, k.shape, v.shape))
    return None


def op_flops(func: Any, args: tuple, kwargs: dict, out: Any) -> tuple[int, bool]:
    """(FLOPs, floored): flop_counter's formula when it has one (or the CPU attention's), else one per
    element of the largest operand (floored=True); 0 for views, allocations and data movement."""
    formula = flop_registry.get(func._overloadpacket)
    if formula is not None:
        return int(formula(*args, **kwargs, out_val=out)), False
    attention = _sdpa_cpu_flops(func, args, kwargs)
    if attention is not None:
        return attention, False
    base = func._schema.name.split("::", 1)[-1]
    if base in _NO_TRAFFIC or base in _NO_FLOPS or _returns_view(func):
        return 0, False
    largest = 0
    for operand in (*args, *kwargs.values(), *(out if isinstance(out, tuple) else (out,))):
        # a tensor list (a foreach op's operand) is one operand: its elements are summed
        largest = max(largest, sum(_unique_elements(t) for t in _tensors(operand)))
    return largest, True


@dataclass
class Tally:
    """What the ops of one category did in the counted step."""

    flops: int = 0
    flops_floor: int = 0  # the part of `flops` counted as one per element (ops without a formula)
    bytes: int = 0
    ops: int = 0

    def add(self, flops: int, floored: bool, nbytes: int) -> None:
        self.flops += flops
        self.flops_floor += flops if floored else 0
        self.bytes += nbytes
        self.ops += 1


@dataclass
class Counts:
    """The counted step: a Tally per category and per op name (all of them)."""

    categories: dict[str, Tally] = field(default_factory=lambda: {c: Tally() for c in CATEGORIES})
    ops: dict[tuple[str, str], Tally] = field(default_factory=dict)
    uncounted: dict[str, str] = field(default_factory=dict)  # op name -> why it could not be counted

    def to_dict(self, top: int = 15) -> dict:
        """{"categories": {cat: {flops, flops_floor, bytes, ops}}, "top_ops": the `top` ops moving most bytes}."""
        ranked = sorted(self.ops.items(), key=lambda kv: -kv[1].bytes)[:top]
        return {
            "categories": {c: vars(t).copy() for c, t in self.categories.items()},
            "top_ops": [{"name": name, "category": cat, **vars(t)} for (name, cat), t in ranked],
            "uncounted_ops": dict(self.uncounted),
        }


def category_of(op_name: str, phase: str | None) -> str:
    """The category an op's bytes and FLOPs go to, as the time breakdown does: the data phase is data,
    the clip and optimizer phases are optimizer, forward and backward ops go by name."""
    if phase == "data":
        return "data"
    if phase in ("clip", "optimizer"):
        return "optimizer"
    return op_category(op_name)


class OpCounter(TorchDispatchMode):
    """Counts the bytes and FLOPs of every aten op run under it, per category (see the module doc).

    The phase is the innermost "devicebench.<phase>" record_function marker open: record_function's
    enter and exit are dispatcher ops, so this mode sees them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts = Counts()
        self._marks: list[str] = []

    @property
    def phase(self) -> str | None:
        return next((m[len(MARK) :] for m in reversed(self._marks) if m.startswith(MARK)), None)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._schema.name
        if name == "profiler::_record_function_enter_new":
            self._marks.append(str(args[0]) if args else "")
            return out
        if name.startswith("profiler::_record_function_exit"):
            if self._marks:
                self._marks.pop()
            return out
        if name.startswith("profiler::"):
            return out
        cat = category_of(name, self.phase)
        try:
            nbytes = op_bytes(func, args, kwargs, out)
            flops, floored = op_flops(func, args, kwargs, out)
        except Exception as e:  # noqa: BLE001 - an op that cannot be counted is left out, and said so
            self.counts.uncounted.setdefault(name, f"{type(e).__name__}: {e}"[:200])
            return out
        if nbytes or flops:
            self.counts.categories[cat].add(flops, floored, nbytes)
            self.counts.ops.setdefault((name, cat), Tally()).add(flops, floored, nbytes)
        return out


def count_step(trainer: Any, it: int) -> dict:
    """Bytes and FLOPs per category of one real train step (iteration `it`), the Trainer restored after.

    Returns Counts.to_dict() with "iter": it. The step runs with its phase markers on and is not timed.
    """
    snapshot = Snapshot(trainer)
    forward = trainer.forward
    # a compiled model is counted as the eager module it wraps, whatever the torch version does under a mode
    trainer.forward = getattr(forward, "_orig_mod", forward)
    trainer.marks = True
    try:
        with OpCounter() as counter:
            trainer.train_step(it)
    finally:
        trainer.marks = False
        trainer.forward = forward
        snapshot.restore(trainer)
    return {"iter": it, **counter.counts.to_dict()}
