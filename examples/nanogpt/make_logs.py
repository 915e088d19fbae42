"""Write the two example logs of docs/import.md: what nanoGPT's train.py prints, line for line, for a
laptop-CPU run (the README's CPU recipe) and a desktop-GPU run (config/train_shakespeare_char.py).

The times and losses are made up to match what users report (issue 14): the laptop at ~138 ms/iter with
"mfu 0.01%", train 1.76 / val 1.89; the RTX 4070 Ti at ~33 ms/iter, a 31.8 s first iteration (compile
plus the step-0 eval), ~4.4 s evals, train 0.62 / val 1.70 after overfitting from iter ~2250. Everything
else (config echo, warnings, the running mfu, when checkpoints are saved) follows karpathy/nanoGPT's
train.py, configurator.py and model.py. The hwinfo JSON beside them was made by hwinfo's own probe on
fake /proc and /sys trees of those two machines.

    python examples/nanogpt/make_logs.py examples/nanogpt
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

CONFIG_FILE = """\
# train a miniature character-level shakespeare model
# good for debugging and playing on macbooks and such

out_dir = 'out-shakespeare-char'
eval_interval = 250 # keep frequent because we'll overfit
eval_iters = 200
log_interval = 10 # don't print too too often

# we expect to overfit on this small dataset, so only save when val improves
always_save_checkpoint = False

wandb_log = False # override via command line if you like
wandb_project = 'shakespeare-char'
wandb_run_name = 'mini-gpt'

dataset = 'shakespeare_char'
gradient_accumulation_steps = 1
batch_size = 64
block_size = 256 # context of up to 256 previous characters

# baby GPT model :)
n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.2

learning_rate = 1e-3 # with baby networks can afford to go a bit higher
max_iters = 5000
lr_decay_iters = 5000 # make equal to max_iters usually
min_lr = 1e-4 # learning_rate / 10 usually
beta2 = 0.99 # make a bit bigger because number of tokens per iter is small

warmup_iters = 100 # not super necessary potentially

# on macbook also add
# device = 'cpu'  # run on cpu only
# compile = False # do not torch compile the model
"""

CPU_ARGS = [("device", "cpu"), ("compile", False), ("eval_iters", 20), ("log_interval", 1), ("block_size", 64),
            ("batch_size", 12), ("n_layer", 4), ("n_head", 4), ("n_embd", 128), ("max_iters", 2000),
            ("lr_decay_iters", 2000), ("dropout", 0.0)]  # fmt: skip

CPU_WARNINGS = [
    "/home/ana/nanoGPT/train.py:196: FutureWarning: `torch.cuda.amp.GradScaler(args...)` is deprecated. "
    "Please use `torch.amp.GradScaler('cuda', args...)` instead.",
    "  scaler = torch.cuda.amp.GradScaler(enabled=(dtype == 'float16'))",
    "/home/ana/.venv/lib/python3.11/site-packages/torch/amp/grad_scaler.py:132: UserWarning: torch.cuda.amp."
    "GradScaler is enabled, but CUDA is not available.  Disabling.",
    "  warnings.warn(",
]

# (iter, train loss, val loss) at each eval: the laptop's README figures, the desktop overfitting after ~2250
CPU_EVALS = [(0, 4.1783, 4.1727), (250, 2.4251, 2.4466), (500, 2.1654, 2.1962), (750, 2.0226, 2.0819),
             (1000, 1.9376, 2.0275), (1250, 1.8718, 1.9817), (1500, 1.8140, 1.9378), (1750, 1.7849, 1.9096),
             (2000, 1.7612, 1.8891)]  # fmt: skip
GPU_EVALS = [(0, 4.2793, 4.2752), (250, 1.9709, 2.0684), (500, 1.5362, 1.7297), (750, 1.3677, 1.5932),
             (1000, 1.2628, 1.5339), (1250, 1.1845, 1.5005), (1500, 1.1214, 1.4806), (1750, 1.0689, 1.4712),
             (2000, 1.0195, 1.4643), (2250, 0.9741, 1.4598), (2500, 0.9302, 1.4630), (2750, 0.8904, 1.4791),
             (3000, 0.8533, 1.4997), (3250, 0.8182, 1.5262), (3500, 0.7857, 1.5524), (3750, 0.7558, 1.5787),
             (4000, 0.7282, 1.6034), (4250, 0.7017, 1.6298), (4500, 0.6763, 1.6553), (4750, 0.6476, 1.6801),
             (5000, 0.6213, 1.7012)]  # fmt: skip


def shape_lines(n_layer: int, n_embd: int, block: int, vocab: int) -> tuple[int, list[str]]:
    """model.py's parameter count line and configure_optimizers' lines; returns N (get_num_params)."""
    n = n_layer * (12 * n_embd * n_embd + 2 * n_embd) + n_embd + vocab * n_embd
    decay = vocab * n_embd + block * n_embd + n_layer * 12 * n_embd * n_embd
    nodecay = (2 * n_layer + 1) * n_embd
    return n, [
        f"number of parameters: {n / 1e6:.2f}M",
        f"num decayed parameter tensors: {4 * n_layer + 2}, with {decay:,} parameters",
        f"num non-decayed parameter tensors: {2 * n_layer + 1}, with {nodecay:,} parameters",
    ]


def train_curve(evals: list[tuple[int, float, float]], it: int) -> float:
    for (a, ta, _), (b, tb, _) in zip(evals, evals[1:], strict=False):
        if a <= it <= b:
            # falls fast early: interpolate in log space
            f = (it - a) / (b - a)
            return math.exp(math.log(ta) * (1 - f) + math.log(tb) * f)
    return evals[-1][1]


def write_log(
    path: Path, *, args: list, warnings: list[str], evals: list, step_ms, eval_ms, ckpt_ms: float,
    first_ms: float, forced: dict[int, float], loss_noise: float, dropout_gap: float, seed: int,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    cfg = {"log_interval": 10, "eval_interval": 250, "max_iters": 5000, "batch_size": 64, "block_size": 256,
           "n_layer": 6, "n_head": 6, "n_embd": 384, "compile": True, "device": "cuda"}  # fmt: skip
    cfg.update(dict(args))
    out = ["Overriding config with config/train_shakespeare_char.py:", *(CONFIG_FILE + "\n").splitlines()]
    out += [f"Overriding: {k} = {v}" for k, v in args]
    tokens = cfg["batch_size"] * cfg["block_size"]
    out.append(f"tokens per iteration will be: {tokens:,}")
    out.append("found vocab_size = 65 (inside data/shakespeare_char/meta.pkl)")
    out.append("Initializing a new model from scratch")
    n, shape = shape_lines(cfg["n_layer"], cfg["n_embd"], cfg["block_size"], 65)
    out.append(shape[0])
    out += warnings
    out += shape[1:]
    out.append(f"using fused AdamW: {cfg['device'] != 'cpu'}")
    if cfg["compile"]:
        out.append("compiling the model... (takes a ~minute)")
    L, C, T = cfg["n_layer"], cfg["n_embd"], cfg["block_size"]
    flops_per_iter = (6 * n + 12 * L * C * T) * T * cfg["batch_size"]  # estimate_mfu
    by_iter = {e[0]: e for e in evals}
    best, running, local = 1e9, -1.0, 0
    for it in range(cfg["max_iters"] + 1):
        extra = 0.0
        if it in by_iter:
            _, tr, va = by_iter[it]
            out.append(f"step {it}: train loss {tr:.4f}, val loss {va:.4f}")
            extra += eval_ms(rng)
            if va < best:
                best = va
                if it > 0:
                    out.append("saving checkpoint to out-shakespeare-char")
                    extra += ckpt_ms
        dt = forced.get(it) or (first_ms if it == 0 else step_ms(rng, local) + extra)
        if it % cfg["log_interval"] == 0:
            loss = train_curve(evals, it) + (dropout_gap if it > 100 else 0.0) + rng.gauss(0, loss_noise)
            if local >= 5:
                mfu = flops_per_iter / (dt / 1e3) / 312e12
                running = mfu if running == -1.0 else 0.9 * running + 0.1 * mfu
            out.append(f"iter {it}: loss {loss:.4f}, time {dt:.2f}ms, mfu {running * 100:.2f}%")
        local += 1
    path.write_text("\n".join(out) + "\n")


def main(folder: str) -> None:
    root = Path(folder)

    def cpu_step(rng: random.Random, local: int) -> float:
        if 1 <= local <= 4:
            return rng.uniform(150, 162)
        ms = 138.0 * math.exp(rng.gauss(0, 0.06))
        if rng.random() < 0.01:
            ms *= rng.uniform(1.15, 1.35)  # the laptop doing something else for a moment
        return max(116.0 + rng.uniform(0, 0.9), ms)

    write_log(
        root / "laptop-cpu.log", args=CPU_ARGS, warnings=CPU_WARNINGS, evals=CPU_EVALS, step_ms=cpu_step,
        eval_ms=lambda rng: rng.uniform(1215, 1255), ckpt_ms=18.0, first_ms=1505.12, forced={},
        loss_noise=0.06, dropout_gap=0.0, seed=12700,
    )  # fmt: skip

    def gpu_step(rng: random.Random, local: int) -> float:
        return rng.uniform(32.5, 33.1) if local > 4 else rng.uniform(34.0, 36.0)

    write_log(
        root / "desktop-gpu.log", args=[], warnings=[], evals=GPU_EVALS, step_ms=gpu_step,
        eval_ms=lambda rng: rng.uniform(4396, 4432), ckpt_ms=148.0, first_ms=31829.46,
        forced={2500: 4447.31}, loss_noise=0.02, dropout_gap=0.13, seed=4070,
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent))
