"""`bench import nanogpt`: logs written here in train.py's exact line formats, parsed back, reported on.

`train_py_log` replays nanoGPT's train.py loop (configurator echo, eval every eval_interval, checkpoint
when val improves, dt spanning eval and checkpoint, the 0.9/0.1 running mfu from the 5th iteration,
log_interval) with made-up times and losses, so every figure the import derives is known here.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import random
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.cli import main
from bench.importers import nanogpt
from bench.results import read_json

SHAKESPEARE_CHAR_PY = """\
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

# nanoGPT README's CPU recipe, as the command line gives them (configurator prints each)
CPU_RECIPE_ARGS = [
    ("device", "cpu"), ("compile", False), ("eval_iters", 20), ("log_interval", 1), ("block_size", 64),
    ("batch_size", 12), ("n_layer", 4), ("n_head", 4), ("n_embd", 128), ("max_iters", 2000),
    ("lr_decay_iters", 2000), ("dropout", 0.0),
]  # fmt: skip

GRADSCALER_WARNING = [
    "/home/me/.venv/lib/python3.11/site-packages/torch/amp/grad_scaler.py:132: UserWarning: "
    "torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
    "  warnings.warn(",
]
THREAD_TRACEBACK = [
    "Exception in thread Thread-3 (_pin_memory_loop):",
    "Traceback (most recent call last):",
    '  File "/usr/lib/python3.11/threading.py", line 1045, in _bootstrap_inner',
    "    self.run()",
    "ConnectionResetError: [Errno 104] Connection reset by peer",
]


@dataclass
class Recipe:
    """What train.py was run with, and how the made-up machine behaves."""

    config_file: str | None = "config/train_shakespeare_char.py"
    args: list = field(default_factory=list)
    step_ms: float = 34.0  # one train step
    noise: float = 0.02  # relative, uniform
    eval_ms: float = 445.0  # estimate_loss, both splits
    checkpoint_ms: float = 60.0
    startup_ms: float = 25000.0  # iter 0: compile and first-call overhead
    cut_after: int | None = None  # stop printing after this iteration
    tail: list[str] = field(default_factory=list)  # lines after the cut (a traceback)
    noise_lines_at: dict = field(default_factory=dict)  # iter -> lines printed after it
    seed: int = 0


def _config(recipe: Recipe) -> dict:
    cfg = dict(nanogpt.TRAIN_PY_DEFAULTS)
    if recipe.config_file:
        for line in SHAKESPEARE_CHAR_PY.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                cfg[key.strip()] = eval(value.split("#")[0])  # noqa: S307 - our own literal config file
    cfg.update(dict(recipe.args))
    return cfg


def train_py_log(recipe: Recipe) -> tuple[str, dict]:
    """train.py's stdout for this recipe, and the truth behind it (per-iteration times, evals)."""
    from model.gpt import GPTConfig, count_params, flops_per_token

    cfg = _config(recipe)
    rng = random.Random(recipe.seed)
    out: list[str] = []
    if recipe.config_file:
        out.append(f"Overriding config with {recipe.config_file}:")
        out.extend((SHAKESPEARE_CHAR_PY + "\n").splitlines())  # print(config_content) adds a newline
    for key, value in recipe.args:
        out.append(f"Overriding: {key} = {value}")
    tokens = cfg["gradient_accumulation_steps"] * cfg["batch_size"] * cfg["block_size"]
    out.append(f"tokens per iteration will be: {tokens:,}")
    out.append("found vocab_size = 65 (inside data/shakespeare_char/meta.pkl)")
    out.append("Initializing a new model from scratch")
    g = GPTConfig(
        cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["block_size"], 65, cfg["dropout"], cfg["bias"]
    )
    n_params = count_params(g)
    out.append(f"number of parameters: {n_params / 1e6:.2f}M")  # model.py: "%.2fM" % (n/1e6,)
    if cfg["device"] == "cpu":
        out.extend(GRADSCALER_WARNING)
    out.append(f"num decayed parameter tensors: {4 * cfg['n_layer'] + 2}, with {n_params:,} parameters")
    out.append(
        f"num non-decayed parameter tensors: {2 * cfg['n_layer'] + 1}, with {cfg['n_embd']:,} parameters"
    )
    out.append(f"using fused AdamW: {cfg['device'] != 'cpu'}")
    if cfg["compile"]:
        out.append("compiling the model... (takes a ~minute)")
    flops_per_iter = flops_per_token(g) * tokens

    truth = {
        "ms": {},
        "eval_iters": [],
        "checkpoint_iters": [],
        "timed_ms": [],
        "flops_per_iter": flops_per_iter,
    }
    iter_num, local_iter_num, best_val, running_mfu = 0, 0, 1e9, -1.0
    while True:
        extra_ms = recipe.startup_ms if local_iter_num == 0 else 0.0
        if iter_num % cfg["eval_interval"] == 0:
            train_loss, val_loss = _losses(iter_num, rng)
            out.append(f"step {iter_num}: train loss {train_loss:.4f}, val loss {val_loss:.4f}")
            truth["eval_iters"].append(iter_num)
            truth["final"] = (round(train_loss, 4), round(val_loss, 4))
            extra_ms += recipe.eval_ms
            if val_loss < best_val or cfg["always_save_checkpoint"]:
                best_val = val_loss
                if iter_num > 0:
                    out.append(f"saving checkpoint to {cfg['out_dir']}")
                    truth["checkpoint_iters"].append(iter_num)
                    extra_ms += recipe.checkpoint_ms
        step_ms = recipe.step_ms * (1 + rng.uniform(-recipe.noise, recipe.noise))
        dt = (step_ms + extra_ms) / 1e3
        if iter_num % cfg["log_interval"] == 0:
            lossf = _losses(iter_num, rng)[0] + 0.05
            if local_iter_num >= 5:
                mfu = flops_per_iter / dt / 312e12
                running_mfu = mfu if running_mfu == -1.0 else 0.9 * running_mfu + 0.1 * mfu
            out.append(
                f"iter {iter_num}: loss {lossf:.4f}, time {dt * 1000:.2f}ms, mfu {running_mfu * 100:.2f}%"
            )
            truth["ms"][iter_num] = round(dt * 1000, 2)
            if extra_ms == 0 and local_iter_num >= 5:
                truth["timed_ms"].append(round(dt * 1000, 2))
        out.extend(recipe.noise_lines_at.get(iter_num, []))
        if recipe.cut_after is not None and iter_num >= recipe.cut_after:
            out.extend(recipe.tail)
            break
        iter_num += 1
        local_iter_num += 1
        if iter_num > cfg["max_iters"]:
            break
    return "\n".join(out) + "\n", truth


def _losses(it: int, rng: random.Random) -> tuple[float, float]:
    """Train loss falls; val loss falls, then rises from iter 3500 (overfitting: no more checkpoints)."""
    train = 1.0 + 3.2 * math.exp(-it / 400) + rng.uniform(-0.01, 0.01)
    val = 1.45 + 2.7 * math.exp(-it / 400) + max(0, it - 3500) * 2e-4 + rng.uniform(-0.005, 0.005)
    return train, val


def cpu_recipe(**kw) -> Recipe:
    """The laptop: nanoGPT's README CPU recipe, ~120 ms/iter, so nanoGPT prints 'mfu 0.01%'."""
    return Recipe(args=CPU_RECIPE_ARGS, step_ms=120.0, eval_ms=1400.0, startup_ms=300.0, **kw)


def gpu_recipe(**kw) -> Recipe:
    """The desktop GPU: the default shakespeare_char recipe, compiled, 34 ms/iter, 445 ms evals."""
    return Recipe(**kw)


def have_hwinfo_peaks() -> bool:
    try:
        import hwinfo.peaks  # noqa: F401
    except ImportError:
        return False
    return True


def write(tmp_path: Path, name: str, text: str, newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def do_import(tmp_path: Path, logs: list[Path], *extra: str, out: str = "out") -> tuple[int, Path]:
    out_dir = tmp_path / out
    code = main(["import", "nanogpt", *map(str, logs), "--out", str(out_dir), *extra])
    return code, out_dir


def only_run(out_dir: Path) -> tuple[dict, list[dict], list[dict]]:
    (run_dir,) = sorted((out_dir / "runs").iterdir())
    with open(run_dir / "steps.csv", newline="") as f:
        steps = list(csv.DictReader(f))
    with open(run_dir / "evals.csv", newline="") as f:
        evals = list(csv.DictReader(f))
    return read_json(run_dir / "run.json"), steps, evals


# --- FLOPs and parameters: the pure-Python count equals model.gpt's -----------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        dict(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65, dropout=0.0, bias=False),
        dict(n_layer=6, n_head=6, n_embd=384, block_size=256, vocab_size=65, dropout=0.2, bias=False),
        dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50304, dropout=0.0, bias=True),
    ],
)
def test_flop_count_equals_model_gpt(shape):
    from model.gpt import GPT, GPTConfig, count_params, flops_per_token

    config = GPTConfig(**shape)
    assert nanogpt.count_params(shape) == count_params(config)
    assert nanogpt.flops_per_token(shape) == flops_per_token(config)
    if shape["n_embd"] <= 384:  # the built model agrees too (nanoGPT's get_num_params)
        assert nanogpt.count_params(shape) == GPT(config).num_params()


# --- the two logs of the question: a laptop CPU log and a desktop GPU log ------------------------------


def test_cpu_recipe_log(tmp_path, capsys):
    text, truth = train_py_log(cpu_recipe())
    code, out = do_import(tmp_path, [write(tmp_path, "laptop-cpu.log", text)], "--host", "laptop")
    assert code == 0
    meta, steps, evals = only_run(out)
    assert meta["status"] == "ok" and meta["error"] is None
    assert meta["source"] == "nanogpt-log" and meta["source_file"].endswith("laptop-cpu.log")
    assert meta["run_id"] == "cpu-fp32-b12-eager" and meta["host"] == "laptop"
    assert meta["model"] == dict(
        n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65, dropout=0.0, bias=False
    )
    train = {k: meta["train"][k] for k in ("max_iters", "lr_decay_iters", "eval_iters", "eval_interval")}
    assert train == {"max_iters": 2000, "lr_decay_iters": 2000, "eval_iters": 20, "eval_interval": 250}
    train = {k: meta["train"][k] for k in ("learning_rate", "min_lr", "warmup_iters", "beta2")}
    assert train == {"learning_rate": 1e-3, "min_lr": 1e-4, "warmup_iters": 100, "beta2": 0.99}
    axes = {k: meta[k] for k in ("dtype", "compile", "batch_size", "tokens_per_iter")}
    assert axes == {"dtype": "fp32", "compile": "off", "batch_size": 12, "tokens_per_iter": 768}
    assert meta["assumed"] == []  # everything came from the echo, the overrides or train.py itself

    from model.gpt import GPTConfig, flops_per_iter

    assert meta["flops_per_iter"] == flops_per_iter(GPTConfig(4, 4, 128, 64, 65, 0.0, False), 12)
    assert len(steps) == 2001  # train.py runs iters 0..max_iters
    phases = {int(r["iter"]): r["phase"] for r in steps}
    # iteration 0's time holds the step-0 eval (train.py's timer starts before it): after_eval, never warmup
    assert [phases[i] for i in range(5)] == ["after_eval"] + ["warmup"] * 4
    assert {i for i, p in phases.items() if p == "after_eval"} == set(truth["eval_iters"])
    lrs = {int(r["iter"]): float(r["lr"]) for r in steps}
    assert lrs[0] == pytest.approx(1e-3 / 101, rel=1e-5) and lrs[2000] == pytest.approx(1e-4, rel=1e-5)

    s = meta["summary"]
    assert s["ms_median"] == pytest.approx(statistics.median(truth["timed_ms"]))
    assert s["iters_done"] == 2001 and s["warmup_iters"] == 5
    assert (s["final_train_loss"], s["final_val_loss"]) == truth["final"]
    assert s["nanogpt_mfu_printed"] == pytest.approx(0.0001)  # what the log says: "mfu 0.01%"
    achieved = truth["flops_per_iter"] / (statistics.median(truth["timed_ms"]) / 1e3)
    assert s["achieved_flops_per_s"] == pytest.approx(achieved)
    assert s["mfu_vs_a100"] == pytest.approx(achieved / 312e12)
    assert meta["peak_flops"]["value"] is None and s["mfu"] is None
    assert "--hwinfo" in meta["peak_flops"]["detail"]
    # every after-eval iteration shows the eval's cost: ~1400 ms (+ a 60 ms checkpoint) on top of a ~120 ms step
    assert len(s["eval_spike_ms"]) == 9 == s["eval_spikes_count"]
    assert all(1400 * 0.95 < e < 1400 * 1.05 + 60 for e in s["eval_spike_ms"])
    # iteration 0 = step-0 eval (the later evals' cost) + 300 ms start-up + one step; not compiled
    first = s["eval_spikes"][0]
    assert first["first"] and first["iter"] == 0 and first["includes"] == "eval + start-up"
    assert first["ms"] == truth["ms"][0] == s["first_iter_printed_ms"]
    assert first["eval_ms_est"] == pytest.approx(statistics.median(s["eval_spike_ms"][1:]))
    assert first["startup_ms_est"] == pytest.approx(300 + 1400 - first["eval_ms_est"], abs=10)
    assert s["first_step_ms"] == pytest.approx(truth["ms"][0] - first["eval_ms_est"])

    assert len(evals) == 2 * len(truth["eval_iters"]) and {r["split"] for r in evals} == {"train", "val"}
    assert all(math.isnan(float(r["ms"])) for r in evals)  # train.py does not time its evals
    sweep = read_json(out / "sweep.json")
    assert sweep["source"] == "nanogpt-log" and sweep["host"] == "laptop"
    assert "cpu-fp32-b12-eager" in capsys.readouterr().out


def test_gpu_log_log_interval_10_eval_spikes_and_mfu(tmp_path, capsys):
    text, truth = train_py_log(gpu_recipe())
    log = write(tmp_path, "desktop-gpu.log", text)
    code, out = do_import(tmp_path, [log], "--host", "desktop", "--device-name", "RTX 4070 Ti")
    assert code == 0
    meta, steps, _ = only_run(out)
    assert meta["status"] == "ok"
    assert meta["run_id"] == "cuda-bf16-b64-compile"
    assert meta["model"]["n_layer"] == 6 and meta["model"]["dropout"] == 0.2 and meta["block_size"] == 256
    assert meta["nanogpt"]["log_interval"] == 10 and len(steps) == 501
    assert meta["assumed"] == ["dtype"]  # train.py picks bf16 or fp16 by the GPU; the log does not say
    s = meta["summary"]
    assert s["ms_median"] == pytest.approx(statistics.median(truth["timed_ms"]))
    spikes = {x["iter"]: x for x in s["eval_spikes"]}
    assert set(spikes) == set(truth["eval_iters"])
    # iteration 0: the step-0 eval (~445 ms, the eval-only spikes) + 25 s of compilation + one step
    first = spikes.pop(0)
    assert first["includes"] == "eval + compilation and start-up"
    assert first["eval_ms_est"] == pytest.approx(445, abs=34 * 0.05)
    assert first["startup_ms_est"] == pytest.approx(25000, abs=34 * 0.05)
    assert s["first_step_ms"] == pytest.approx(25000 + 34, abs=34 * 0.05)  # compilation, out of the median
    for it, x in spikes.items():
        extra = 445 + (60 if it in truth["checkpoint_iters"] else 0)
        assert x["eval_ms_est"] == pytest.approx(extra, abs=34 * 0.05)
        assert x["includes"] == ("eval + checkpoint" if it in truth["checkpoint_iters"] else "eval")
    assert s["eval_ms_total"] == pytest.approx(
        sum(x["eval_ms_est"] for x in spikes.values()) + first["eval_ms_est"]
    )
    # nanoGPT's running mfu averages the eval iterations in, so it prints less than the steps achieve
    assert s["mfu_vs_a100"] == pytest.approx(truth["flops_per_iter"] / (s["ms_median"] / 1e3) / 312e12)
    assert 0.8 * s["mfu_vs_a100"] < s["nanogpt_mfu_printed"] < 0.95 * s["mfu_vs_a100"]
    printed = capsys.readouterr().out
    assert re.search(r"iter 250: 5\d\d ms, of which ~50\d ms eval \+ checkpoint", printed)

    if have_hwinfo_peaks():
        from hwinfo.peaks import gpu_peaks

        assert meta["peak_flops"] == gpu_peaks("RTX 4070 Ti")["bf16"]
        assert meta["peak_flops"]["source"] == "spec" and meta["peak_flops"]["value"] > 1e13
        assert s["mfu"] == pytest.approx(s["achieved_flops_per_s"] / meta["peak_flops"]["value"])


def test_printed_mfu_matches_recomputed_without_eval_spikes(tmp_path):
    """With evals free, nanoGPT's running mfu and the recomputed figure agree: same FLOP count."""
    text, truth = train_py_log(gpu_recipe(eval_ms=0.0, checkpoint_ms=0.0, cut_after=2000))
    code, out = do_import(tmp_path, [write(tmp_path, "g.log", text)])
    assert code == 0
    s = only_run(out)[0]["summary"]
    assert s["nanogpt_achieved_flops_per_s"] == pytest.approx(s["achieved_flops_per_s"], rel=0.02)
    assert s["nanogpt_mfu_printed"] == pytest.approx(s["mfu_vs_a100"], rel=0.02)


def test_cpu_peak_only_from_a_name_hwinfo_knows(tmp_path):
    if not have_hwinfo_peaks():
        pytest.skip("hwinfo.peaks (the peak tables) not importable")
    text, _ = train_py_log(cpu_recipe(cut_after=50))
    log = write(tmp_path, "m2.log", text)
    code, out = do_import(tmp_path, [log], "--device-name", "Apple M2", out="m2")
    assert code == 0
    meta = only_run(out)[0]
    assert meta["peak_flops"]["source"] == "spec" and meta["peak_flops"]["value"] > 1e11
    assert meta["summary"]["mfu"] == pytest.approx(
        meta["summary"]["achieved_flops_per_s"] / meta["peak_flops"]["value"]
    )
    # an x86 name alone does not give cores and clock: unknown, and never this machine's own peak
    code, out = do_import(tmp_path, [log], "--device-name", "Intel Core i7-1165G7", out="intel")
    meta = only_run(out)[0]
    assert code == 0 and meta["peak_flops"]["value"] is None and meta["summary"]["mfu"] is None
    assert "i7-1165G7" in meta["peak_flops"]["detail"]


def test_unknown_device_name_says_peak_unknown(tmp_path):
    text, _ = train_py_log(gpu_recipe())
    code, out = do_import(tmp_path, [write(tmp_path, "g.log", text)], "--device-name", "Imaginary GPU 9000")
    assert code == 0
    meta, _, _ = only_run(out)
    assert meta["peak_flops"]["value"] is None and meta["peak_flops"]["source"] == "unknown"
    assert "Imaginary GPU 9000" in meta["peak_flops"]["detail"]
    assert meta["summary"]["mfu"] is None and meta["summary"]["mfu_vs_a100"] > 0


# --- what real logs look like --------------------------------------------------------------------------


def test_crlf_warnings_and_tracebacks_between_lines_change_nothing(tmp_path):
    clean, _ = train_py_log(cpu_recipe())
    noisy, _ = train_py_log(cpu_recipe(noise_lines_at={3: GRADSCALER_WARNING, 700: THREAD_TRACEBACK}))
    code_a, out_a = do_import(tmp_path, [write(tmp_path, "clean.log", clean)], out="a")
    code_b, out_b = do_import(tmp_path, [write(tmp_path, "noisy.log", noisy, newline="\r\n")], out="b")
    assert code_a == code_b == 0
    meta_a, steps_a, evals_a = only_run(out_a)
    meta_b, steps_b, evals_b = only_run(out_b)
    assert steps_a == steps_b and evals_a == evals_b
    assert meta_b["status"] == "ok"  # a traceback mid-log that training survived is not the end
    for key in ("model", "train", "assumed", "flops_per_iter", "run_id"):
        assert meta_a[key] == meta_b[key]
    assert meta_b["nanogpt"]["other_lines"] > meta_a["nanogpt"]["other_lines"]


def test_log_cut_off_mid_run_is_interrupted(tmp_path):
    text, _ = train_py_log(gpu_recipe(cut_after=1230))
    text += "iter 1240: loss 1.23"  # the last line, half written
    code, out = do_import(tmp_path, [write(tmp_path, "cut.log", text)])
    assert code == 0
    meta, steps, _ = only_run(out)
    assert meta["status"] == "interrupted"
    assert meta["summary"]["iters_done"] == 1231 and int(steps[-1]["iter"]) == 1230
    assert "1230 of 5000" in meta["error"]
    assert meta["summary"]["ms_median"] is not None  # the steps it did are still timed


@pytest.mark.parametrize(
    ("tail", "status"),
    [
        (["^CTraceback (most recent call last):", '  File "train.py", line 300, in <module>', "KeyboardInterrupt"],
         "interrupted"),
        (["Traceback (most recent call last):", '  File "train.py", line 300, in <module>',
          "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"], "failed"),
    ],
)  # fmt: skip
def test_log_ending_in_a_traceback(tmp_path, tail, status):
    text, _ = train_py_log(gpu_recipe(cut_after=600, tail=tail))
    code, out = do_import(tmp_path, [write(tmp_path, "t.log", text)])
    assert code == 0
    meta, _, _ = only_run(out)
    assert meta["status"] == status
    assert tail[-1].split(":")[0] in meta["error"] and "after iter 600" in meta["error"]


def test_no_config_echo_needs_set_and_reports_assumed(tmp_path, capsys):
    text, truth = train_py_log(cpu_recipe())
    # the config echo and the Overriding lines lost (e.g. a log captured from a notebook cell)
    text = text[text.index("tokens per iteration") :]
    log = write(tmp_path, "bare.log", text)
    code, _ = do_import(tmp_path, [log], out="a")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "tokens per iteration will be: 768" in err[0] and "--set" in err[0]

    sets = ["--set", "batch_size=12", "--set", "block_size=64", "--set", "device=cpu"]
    code, _ = do_import(tmp_path, [log], *sets, out="b")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "number of parameters: 0.80M" in err[0] and "n_layer" in err[0]

    model = ["--set", "n_layer=4", "--set", "n_head=4", "--set", "n_embd=128", "--set", "max_iters=2000"]
    code, out = do_import(tmp_path, [log], *sets, *model, "--set", "compile=False", out="c")
    assert code == 0
    meta, steps, _ = only_run(out)
    assert meta["status"] == "ok" and meta["flops_per_iter"] == truth["flops_per_iter"]
    assumed = set(meta["assumed"])
    assert {"batch_size", "block_size", "n_layer", "n_head", "n_embd", "max_iters"} <= assumed
    assert {"device", "compile"} <= assumed
    assert {"learning_rate", "warmup_iters", "dropout"} <= assumed  # train.py defaults, a guess here
    assert "vocab_size" not in assumed  # "found vocab_size = 65" is in the log
    assert "eval_interval" not in assumed and meta["train"]["eval_interval"] == 250  # read off the step lines
    assert "log_interval" not in assumed
    assert "assumed, not in the log" in capsys.readouterr().out


def test_not_a_nanogpt_log_is_refused_with_one_line(tmp_path, capsys):
    other = write(tmp_path, "notes.txt", "epoch 1/10 - loss: 0.4321 - accuracy: 0.88\nhello\n")
    code, out = do_import(tmp_path, [other])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "notes.txt is not a nanoGPT train.py training log" in err[0]
    assert not out.exists()

    binary = tmp_path / "ckpt.pt"
    binary.write_bytes(b"PK\x03\x04\x00\x00" * 100)
    code, _ = do_import(tmp_path, [binary])
    assert code == 2 and "binary" in capsys.readouterr().err


def test_several_attempts_in_one_file_import_the_last_or_the_one_asked(tmp_path, capsys):
    crashed, _ = train_py_log(gpu_recipe(cut_after=0, tail=THREAD_TRACEBACK[1:]))
    crashed = (
        crashed[: crashed.index("step 0:")] + "\n".join(THREAD_TRACEBACK[1:]) + "\n"
    )  # died before iter 0
    short, _ = train_py_log(gpu_recipe(cut_after=100, seed=1))
    full, truth = train_py_log(gpu_recipe(seed=2))
    log = write(tmp_path, "three.log", crashed + short + full)
    code, out = do_import(tmp_path, [log], out="last")
    err = capsys.readouterr().err
    assert code == 0
    meta, steps, _ = only_run(out)
    assert meta["nanogpt"]["attempt"] == 3 and len(meta["nanogpt"]["attempts"]) == 3
    assert "3 attempts in one file, 1 ended in a traceback; importing attempt 3" in err
    assert "attempt 1" in err and "stopped before iter 0" in err and "ConnectionResetError" in err
    assert meta["status"] == "ok" and [float(r["ms"]) for r in steps] == list(truth["ms"].values())

    code, out = do_import(tmp_path, [log], "--attempt", "2", out="second")
    meta, steps, _ = only_run(out)
    assert code == 0 and meta["nanogpt"]["attempt"] == 2 and steps[-1]["iter"] == "100"
    assert meta["status"] == "interrupted"
    capsys.readouterr()

    code, _ = do_import(tmp_path, [log], "--attempt", "1", out="first")
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        code == 2
        and len(err) == 1
        and "attempt 1 has no iteration lines: the run stopped before iter 0" in err[0]
    )


def test_bad_set_and_existing_out(tmp_path, capsys):
    text, _ = train_py_log(gpu_recipe(cut_after=20))
    log = write(tmp_path, "g.log", text)
    assert do_import(tmp_path, [log], "--set", "batchsize=12")[0] == 2
    assert "not a nanoGPT train.py config key" in capsys.readouterr().err
    assert do_import(tmp_path, [log], "--set", "batch_size=twelve")[0] == 2
    assert "whole number" in capsys.readouterr().err
    assert do_import(tmp_path, [log])[0] == 0
    assert do_import(tmp_path, [log])[0] == 2
    assert "already holds" in capsys.readouterr().err


def test_several_logs_one_directory(tmp_path):
    a, _ = train_py_log(gpu_recipe(seed=1))
    b, _ = train_py_log(gpu_recipe(seed=2))
    code, out = do_import(tmp_path, [write(tmp_path, "a.log", a), write(tmp_path, "b.log", b)])
    assert code == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["cuda-bf16-b64-compile", "cuda-bf16-b64-compile-2"]
    assert read_json(out / "sweep.json")["host"] == "a"


def test_import_does_not_load_torch(tmp_path):
    import subprocess
    import sys

    text, _ = train_py_log(gpu_recipe(cut_after=30))
    log = write(tmp_path, "g.log", text)
    code = (
        "import sys; from bench.cli import main; "
        f"rc = main(['import', 'nanogpt', {str(log)!r}, '--out', {str(tmp_path / 'o')!r}]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": ""})  # fmt: skip
    assert proc.returncode == 0, proc.stderr


# --- round trip: import -> report -> the findings the question needs ----------------------------------


def test_round_trip_import_report_findings(tmp_path, capsys):
    if importlib.util.find_spec("reports.cli") is None:
        pytest.skip("reports/cli.py (bench report) not written yet")
    cpu_text, _ = train_py_log(cpu_recipe())
    gpu_text, _ = train_py_log(gpu_recipe())
    code_a, laptop = do_import(
        tmp_path, [write(tmp_path, "cpu.log", cpu_text)], "--host", "laptop", out="laptop"
    )
    code_b, desktop = do_import(
        tmp_path, [write(tmp_path, "gpu.log", gpu_text)], "--host", "desktop", "--device-name", "RTX 4070 Ti",
        out="desktop",
    )  # fmt: skip
    assert code_a == code_b == 0
    capsys.readouterr()
    assert main(["report", str(laptop), str(desktop), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    findings = report["findings"] if isinstance(report, dict) else report
    kinds = {f["kind"] for f in findings}
    assert {"config_mismatch", "eval_in_timer", "mfu_vs_a100"} <= kinds
    mismatch = next(f for f in findings if f["kind"] == "config_mismatch")
    assert "train.max_iters" in mismatch["evidence"]["differs"]
    assert "model.n_layer" in mismatch["evidence"]["differs"]
    evals = [f for f in findings if f["kind"] == "eval_in_timer"]
    assert len(evals) == 2  # one per machine
    assert any("desktop" in f["sentence"] for f in evals)
    mfu = {f["runs"][0]: f for f in findings if f["kind"] == "mfu_vs_a100"}
    assert set(mfu) == {"laptop/cpu-fp32-b12-eager", "desktop/cuda-bf16-b64-compile"}
    assert mfu["laptop/cpu-fp32-b12-eager"]["evidence"]["mfu"] is None  # the CPU was not named
    if have_hwinfo_peaks():
        assert mfu["desktop/cuda-bf16-b64-compile"]["evidence"]["mfu"] > 0.3  # vs the RTX 4070 Ti's bf16 peak
    assumed = [f for f in findings if f["kind"] == "assumed_config"]
    assert [f["evidence"]["assumed"] for f in assumed] == [["dtype"]]


# --- the machine that made the log: --hwinfo, --peak-flops --------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "nanogpt"


def test_hwinfo_gives_the_cpu_its_own_peak(tmp_path, capsys):
    text, _ = train_py_log(cpu_recipe(cut_after=300))
    hw = EXAMPLES / "laptop-hwinfo.json"
    code, out = do_import(tmp_path, [write(tmp_path, "cpu.log", text)], "--hwinfo", str(hw))
    assert code == 0
    meta = only_run(out)[0]
    snapshot = json.loads(hw.read_text())
    assert meta["device_name"] == snapshot["cpu"]["model_name"] == "12th Gen Intel(R) Core(TM) i7-12700H"
    peak = meta["peak_flops"]
    # 6 P-cores x 4.7 GHz x 32 + 8 E-cores x 3.5 GHz x 16 FP32 FLOP/cycle, computed by hwinfo from that JSON
    assert peak["value"] == pytest.approx(6 * 4.7e9 * 32 + 8 * 3.5e9 * 16) and peak["source"] == "spec"
    assert "laptop-hwinfo.json" in peak["detail"] and "P-cores" in peak["detail"]
    s = meta["summary"]
    assert s["mfu"] == pytest.approx(s["achieved_flops_per_s"] / peak["value"])
    sweep = read_json(out / "sweep.json")
    assert sweep["host"] == "laptop"  # hwinfo's host label, as no --host was given
    assert sweep["hwinfo"]["cpu"] == snapshot["cpu"] and sweep["hwinfo"]["devices"] == snapshot["devices"]
    assert "no MFU" not in capsys.readouterr().err


def test_hwinfo_gives_the_gpu_its_peak_and_train_py_dtype(tmp_path):
    text, _ = train_py_log(gpu_recipe(cut_after=300))
    code, out = do_import(
        tmp_path, [write(tmp_path, "g.log", text)], "--hwinfo", str(EXAMPLES / "desktop-hwinfo.json")
    )
    assert code == 0
    meta = only_run(out)[0]
    assert meta["device_name"] == "NVIDIA GeForce RTX 4070 Ti" and meta["dtype"] == "bf16"
    assert meta["peak_flops"]["value"] == pytest.approx(80.2e12)
    # compute capability 8.9: train.py's default dtype is bfloat16 there, so it is no longer an assumption
    assert meta["assumed"] == [] and meta["nanogpt"]["config_source"]["dtype"] == "hwinfo"


def test_hwinfo_without_torch_still_names_the_gpu(tmp_path):
    """hwinfo run where PyTorch had no CUDA: the GPU is on the PCI bus / NVML list, not in devices."""
    snapshot = json.loads((EXAMPLES / "desktop-hwinfo.json").read_text())
    snapshot["devices"] = [d for d in snapshot["devices"] if d["device"] == "cpu"]
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps(snapshot))
    text, _ = train_py_log(gpu_recipe(cut_after=100))
    code, out = do_import(tmp_path, [write(tmp_path, "g.log", text)], "--hwinfo", str(hw))
    meta = only_run(out)[0]
    assert code == 0 and meta["peak_flops"]["value"] == pytest.approx(80.2e12)
    assert "GPU list" in meta["peak_flops"]["detail"] and meta["assumed"] == ["dtype"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "no such file"),
        ("not json {", "is not JSON"),
        ('{"schema": "devicebench/2"}', "is not hwinfo JSON"),
        ('{"schema": "devicebench-hwinfo/9", "cpu": {}, "devices": []}', "newer hwinfo"),
        ('{"schema": "devicebench-hwinfo/1", "cpu": {}, "devices": [{"device": 3}]}', "incomplete"),
        ("[1, 2]", "is not hwinfo JSON"),
        ("laptop", "describes laptop, which has no cuda"),  # the other machine's JSON
    ],
)
def test_bad_hwinfo_is_one_line(tmp_path, capsys, content, words):
    text, _ = train_py_log(gpu_recipe(cut_after=20))
    hw = tmp_path / "hw.json"
    if content == "laptop":
        hw = EXAMPLES / "laptop-hwinfo.json"
    elif content is not None:
        hw.write_text(content)
    code, out = do_import(tmp_path, [write(tmp_path, "g.log", text)], "--hwinfo", str(hw))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not out.exists()


def test_peak_flops_overrides_and_must_cover_the_dtype(tmp_path, capsys):
    text, _ = train_py_log(cpu_recipe(cut_after=100))
    log = write(tmp_path, "cpu.log", text)
    hw = str(EXAMPLES / "laptop-hwinfo.json")
    code, out = do_import(tmp_path, [log], "--hwinfo", hw, "--peak-flops", "fp32=2T", out="a")
    meta = only_run(out)[0]
    assert code == 0 and meta["peak_flops"]["value"] == 2e12 and meta["peak_flops"]["source"] == "user"
    assert meta["device_name"] == "12th Gen Intel(R) Core(TM) i7-12700H"
    assert do_import(tmp_path, [log], "--peak-flops", "bf16=2T", out="b")[0] == 2
    assert "ran in fp32: add fp32=VALUE" in capsys.readouterr().err
    assert do_import(tmp_path, [log], "--peak-flops", "fp32=fast", out="c")[0] == 2
    assert "--peak-flops fp32" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse: one machine description, not two
        do_import(tmp_path, [log], "--hwinfo", hw, "--device-name", "RTX 4070 Ti", out="d")
    assert e.value.code == 2


def test_without_a_peak_the_import_says_what_to_do_in_one_line(tmp_path, capsys):
    text, _ = train_py_log(cpu_recipe(cut_after=100))
    code, _ = do_import(tmp_path, [write(tmp_path, "cpu.log", text)])
    hints = [line for line in capsys.readouterr().err.splitlines() if "no MFU" in line]
    assert code == 0 and len(hints) == 1
    assert "--hwinfo FILE" in hints[0] and "--peak-flops fp32=VALUE" in hints[0]


def test_impossible_mfu_is_flagged_never_a_result(tmp_path, capsys):
    """A peak below what the run achieved: MFU above 100%, said on stderr and in the report."""
    text, _ = train_py_log(cpu_recipe())
    code, out = do_import(tmp_path, [write(tmp_path, "cpu.log", text)], "--peak-flops", "fp32=1G")
    s = only_run(out)[0]["summary"]
    assert code == 0 and s["mfu"] > 1  # recorded as computed; every reader flags it
    captured = capsys.readouterr()
    assert "impossible" in captured.err and "MFU impossible" in captured.out
    assert main(["report", str(out), "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    (f,) = [f for f in findings if f["kind"] == "impossible_mfu"]
    assert f["evidence"]["mfu"] == pytest.approx(s["mfu"]) and "impossible" in f["sentence"]
    assert "--peak-flops" in f["evidence"]["check"]


# --- hostile and broken logs: a clear error or a safe result -------------------------------------------


def _tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def test_hostile_device_value_never_reaches_a_path(tmp_path, capsys):
    text, _ = train_py_log(cpu_recipe(cut_after=30))
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    for bad in ("../../x", "cpu/../../x", "/etc/x", "cuda:0/../y", "cpu\n"):
        hostile = text.replace("Overriding: device = cpu", f"Overriding: device = {bad}".rstrip("\n"))
        log = write(work, "evil.log", hostile)
        before = _tree(tmp_path)
        code, out = do_import(work, [log], out=f"o{len(before)}")
        err = capsys.readouterr().err.strip().splitlines()
        if bad == "cpu\n":  # "cpu" once stripped: a plain cpu run
            assert code == 0 and only_run(out)[0]["run_id"] == "cpu-fp32-b12-eager"
            continue
        assert code == 2 and len(err) == 1 and "is not a device train.py runs on" in err[0]
        assert _tree(tmp_path) == before  # nothing written anywhere
    log = write(work, "ok.log", text)
    code, _ = do_import(work, [log], "--set", "device=../../x", out="s")
    assert code == 2 and "--set: device" in capsys.readouterr().err


def test_host_label_and_run_dirs_stay_inside_out(tmp_path, capsys):
    text, _ = train_py_log(cpu_recipe(cut_after=30))
    log = write(tmp_path, "l.log", text)
    code, out = do_import(tmp_path, [log], "--host", "../../evil/$(x)", out="o")
    assert code == 0 and "is used as 'evil-x'" in capsys.readouterr().err
    assert read_json(out / "sweep.json")["host"] == "evil-x"
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))
    assert not (tmp_path.parent / "evil").exists()
    # a runs/ folder that is a symlink out of --out is refused before anything is written
    out2, elsewhere = tmp_path / "o2", tmp_path / "elsewhere"
    out2.mkdir()
    elsewhere.mkdir()
    (out2 / "runs").symlink_to(elsewhere)
    code, _ = do_import(tmp_path, [log], out="o2")
    assert code == 2 and "outside" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == [] and not (out2 / "sweep.json").exists()


def test_long_lines_and_huge_numbers_are_linear(tmp_path):
    """The old regexes were quadratic: a 30,000-digit number took 19 s, a 1 MB line hours."""
    clean, _ = train_py_log(cpu_recipe(cut_after=300))
    lines = clean.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("iter 100:"))
    hostile = [
        "iter 7: loss " + "9" * 1_000_000 + " time",  # a 1 MB line
        "iter 8: loss 1." + "1" * 30_000 + "x, time 1.0ms, mfu 1%",  # the 30,000-digit number
        *(f"iter {i}: loss " + "9" * 9_000 + "e" for i in range(40)),  # just under the line cap
        *("step 1: train loss " + "9" * 9_000 + "e" for _ in range(40)),
        "tokens per iteration will be: " + "1," * 4_000,
        "found vocab_size = 65 (inside " * 300,
        "number of parameters: " + "9" * 9_000 + "M",
    ]
    # literal_eval's recursion limit, where an Overriding line belongs (after iterations it starts an attempt)
    deep = ["Overriding: out_dir = " + "(" * 9_000]
    log = write(tmp_path, "hostile.log", "\n".join(deep + lines[:at] + hostile + lines[at:]) + "\n")
    t0 = time.perf_counter()
    code, out = do_import(tmp_path, [log], out="h")
    elapsed = time.perf_counter() - t0
    assert code == 0 and elapsed < 10, elapsed  # well under a second here; 10 s so it never flakes
    code, ref = do_import(tmp_path, [write(tmp_path, "clean.log", clean)], out="c")
    (meta, steps, evals), (ref_meta, ref_steps, ref_evals) = only_run(out), only_run(ref)
    assert steps == ref_steps and evals == ref_evals  # the junk changed nothing
    assert meta["nanogpt"]["long_lines_skipped"] == 2 and meta["model"] == ref_meta["model"]
    # the patterns alone, on a line just under the cap, are linear too
    t0 = time.perf_counter()
    for _ in range(20):
        assert nanogpt.ITER_RE.search("iter 1: loss " + "9" * 9_999 + "x") is None
        assert nanogpt.STEP_RE.search("step 1: train loss 1, val loss " + "1" * 9_999 + "e") is not None
    assert time.perf_counter() - t0 < 5


def test_memory_stays_bounded_on_a_large_log(tmp_path):
    """The log is streamed twice; what is kept is 8 bytes per timed iteration, not the text."""
    import tracemalloc

    import numpy  # noqa: F401 - imported before measuring: its import is not the import's memory

    from bench.metrics import step_summary

    path = tmp_path / "big.log"
    head, _ = train_py_log(cpu_recipe(cut_after=0))
    n = 30_000
    with open(path, "w") as f:
        f.write(head.replace("max_iters = 2000", f"max_iters = {n}"))
        for i in range(1, n + 1):
            if i % 2500 == 0:
                f.write(f"step {i}: train loss 1.5000, val loss 1.6000\n")
            f.write(f"iter {i}: loss {1.5 + (i % 7) / 100:.4f}, time {120 + (i % 13):.2f}ms, mfu 0.01%\n")
    size = path.stat().st_size

    def pipeline(log_path: Path) -> tuple:
        log = nanogpt.parse_log(nanogpt.read_lines(log_path), source=str(log_path))
        cfg = nanogpt.effective_config(log)
        run = nanogpt.build_run(log, cfg, {"value": None}, step_summary, str(log_path), "h", None)
        return run, sum(1 for _ in nanogpt.run_rows(nanogpt.read_lines(log_path), cfg))

    small = tmp_path / "small.log"
    small.write_text(train_py_log(cpu_recipe(cut_after=100))[0])
    pipeline(small)  # modules imported on first use (numpy's percentile, ...) are not the log's memory
    tracemalloc.start()
    try:
        run, rows = pipeline(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == n + 1 + 2 * (n // 2500 + 1)
    assert run.meta["summary"]["iters_done"] == n + 1
    assert run.meta["summary"]["ms_median"] == pytest.approx(
        statistics.median([120 + i % 13 for i in range(5, n + 1) if i % 2500])
    )
    # ~8 bytes per timed iteration line of ~50, up to twice that while the array grows (the old reader held the
    # text and its lines: ~9x the size)
    assert peak < size / 3, (peak, size)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_loss_going_nan_is_a_failed_run_with_its_evals_kept(tmp_path, capsys, bad):
    healthy, _ = train_py_log(cpu_recipe())
    lines = []
    for line in healthy.splitlines():
        m = re.match(r"(iter|step) (\d+):", line)
        if m and int(m.group(2)) >= 700:
            line = re.sub(r"loss \d+\.\d+", f"loss {bad}", line)
        lines.append(line)
    sick = write(tmp_path, "sick.log", "\n".join(lines) + "\n")
    code, out = do_import(tmp_path, [write(tmp_path, "healthy.log", healthy), sick], "--host", "laptop")
    assert code == 0
    run_dir = out / "runs" / "cpu-fp32-b12-eager-2"
    text = (run_dir / "run.json").read_text()
    meta = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in run.json"))  # strict JSON
    assert meta["status"] == "failed" and meta["error"].startswith(
        f"diverged: training loss became {bad} at iter 700"
    )
    s = meta["summary"]
    assert s["diverged"] == {"iter": 700, "where": "training loss", "loss": bad}
    assert s["final_val_loss"] is None and s["best_val_loss"] < 2.5 and s["best_val_iter"] == 500
    with open(run_dir / "evals.csv", newline="") as f:
        evals = list(csv.DictReader(f))
    assert len(evals) == 2 * 9  # kept, never dropped
    assert [r["loss"] for r in evals if int(r["iter"]) >= 750] == [bad] * 12
    for p in out.rglob("*.json"):
        json.loads(p.read_text(), parse_constant=lambda c, p=p: pytest.fail(f"{c} in {p}"))
    capsys.readouterr()
    assert main(["report", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} in the report"))
    runs = {r["run_id"]: r for r in report["runs"]}
    assert runs["cpu-fp32-b12-eager-2"]["status"] == "failed"
    kinds_ = {f["kind"] for f in report["findings"]}
    assert "loss_agree" not in kinds_  # a diverged run never "agrees within noise" with a healthy one


@pytest.mark.parametrize(
    ("args", "log_change", "words"),
    [
        (["--set", "batch_size=0"], None, "batch_size = 0 is impossible: it must be at least 1"),
        (["--set", "n_layer=-2"], None, "n_layer = -2 is impossible"),
        (["--set", "dropout=1.5"], None, "dropout = 1.5 is impossible"),
        (["--set", "max_iters=10**20"], None, "should be a whole number"),
        (
            ["--set", "max_iters=100000000000000000000"],
            None,
            "max_iters = 100000000000000000000 is impossible",
        ),
        (["--set", "learning_rate=nan"], None, "should be a number"),
        ([], ("Overriding: batch_size = 12", "Overriding: batch_size = 0"), "batch_size = 0 is impossible"),
        (
            [],
            ("tokens per iteration will be: 768", "tokens per iteration will be: 0"),
            "tokens per iteration will be: 0",
        ),
        ([], ("Overriding: n_embd = 128", "Overriding: n_embd = 130"), "not a multiple of n_head"),
    ],
)
def test_impossible_values_are_refused(tmp_path, capsys, args, log_change, words):
    text, _ = train_py_log(cpu_recipe(cut_after=30))
    if log_change:
        text = text.replace(*log_change)
    code, out = do_import(tmp_path, [write(tmp_path, "l.log", text)], *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not out.exists()


def test_no_config_echo_at_all_is_refused_with_the_keys_to_set(tmp_path, capsys):
    """Only iter lines: it used to become a GPT-2-size GPU run ("MFU vs A100 3,543%")."""
    text, _ = train_py_log(cpu_recipe(cut_after=50))
    bare = "\n".join(line for line in text.splitlines() if line.startswith(("iter ", "step "))) + "\n"
    code, out = do_import(tmp_path, [write(tmp_path, "bare.log", bare)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    for key in nanogpt.REQUIRED_WITHOUT_ECHO:
        assert f"--set {key}=" in err[0]


def test_utf16_log_from_powershell_imports_like_utf8(tmp_path):
    text, _ = train_py_log(cpu_recipe(cut_after=40))
    a = write(tmp_path, "a.log", text)
    b = tmp_path / "b.log"
    b.write_bytes(text.replace("\n", "\r\n").encode("utf-16"))
    assert do_import(tmp_path, [a], out="a")[0] == 0 and do_import(tmp_path, [b], out="b")[0] == 0
    assert only_run(tmp_path / "a")[1:] == only_run(tmp_path / "b")[1:]


def test_iteration_0_without_later_evals_estimates_the_eval_from_eval_iters(tmp_path):
    text, truth = train_py_log(cpu_recipe(cut_after=200))  # evals at 0 only (eval_interval 250)
    code, out = do_import(tmp_path, [write(tmp_path, "l.log", text)])
    s = only_run(out)[0]["summary"]
    (first,) = s["eval_spikes"]
    # 2 x 20 eval batches, each a forward pass at ~1/3 of a 120 ms train step
    assert first["eval_ms_est"] == pytest.approx(2 * 20 * s["ms_median"] / 3)
    assert "eval_iters" in first["eval_ms_source"] and first["includes"] == "eval + start-up"


def test_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    text, _ = train_py_log(cpu_recipe(cut_after=20))
    (tmp_path / "afile").write_text("not a directory")
    code = main(
        ["import", "nanogpt", str(write(tmp_path, "l.log", text)), "--out", str(tmp_path / "afile" / "x")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "cannot write the results" in err[-1] and "Not a directory" in err[-1]
    assert not any("Traceback" in line for line in err)


@pytest.mark.parametrize("bad_time", ["nanms", "infms", "-50.0ms"])
def test_unreadable_iteration_line_is_said_and_wall_time_not_summed_short(tmp_path, capsys, bad_time):
    text, _ = train_py_log(cpu_recipe())
    text, n = re.subn(r"(?m)^(iter 101: loss \S+, time )[0-9.]+ms", rf"\g<1>{bad_time}", text)
    assert n == 1
    code, out = do_import(tmp_path, [write(tmp_path, "bad.log", text)])
    assert code == 0
    meta, steps, _ = only_run(out)
    assert "101" not in {s["iter"] for s in steps}
    assert meta["summary"]["wall_s"] is None  # a sum missing an iteration is no wall time
    assert meta["nanogpt"]["bad_iter_lines_skipped"] == 1
    assert "1 iteration line(s) with a time or mfu that is not a number" in capsys.readouterr().err


def test_a_set_value_past_pythons_digit_limit_is_called_too_large(tmp_path, capsys):
    text, _ = train_py_log(cpu_recipe(cut_after=40))
    code, out = do_import(tmp_path, [write(tmp_path, "l.log", text)], "--set", "batch_size=" + "9" * 5000)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert "batch_size" in err[0] and "too large" in err[0] and "whole number" not in err[0]


def test_control_characters_in_device_name_never_reach_the_terminal_or_run_json(tmp_path, capsys):
    text, _ = train_py_log(gpu_recipe())
    name = "Imaginary\x1b[2J GPU\x07 9000"
    code, out = do_import(tmp_path, [write(tmp_path, "g.log", text)], "--device-name", name)
    err = capsys.readouterr().err
    assert code == 0 and "\x1b" not in err and "\x07" not in err
    meta = only_run(out)[0]
    assert meta["device_name"] == "Imaginary[2J GPU 9000"
    assert "\x1b" not in json.dumps(meta, ensure_ascii=False)


@pytest.mark.parametrize(
    "prefix",
    ["> ", "> > ", "2023-03-22 09:30:39 ", "> 2023-03-22T09:30:39.123Z ", "[09:30:39] ", "[rank0]: ",
     "[2024-04-02 01:59:23] [rank0]: "],
)  # fmt: skip
def test_quote_markers_timestamps_and_rank_prefixes_change_nothing(tmp_path, prefix):
    """A log pasted into an issue (`> ` quotes), timestamped by a logger, or prefixed by torchrun: the same run
    (the config echo, the `saving checkpoint` lines and the eval lines are read through the prefix)."""
    text, truth = train_py_log(gpu_recipe(cut_after=600))
    prefixed = "".join(prefix + line + "\n" for line in text.splitlines())
    code, out = do_import(tmp_path, [write(tmp_path, "p.log", prefixed)], out="p")
    assert code == 0
    code, ref = do_import(tmp_path, [write(tmp_path, "c.log", text)], out="c")
    (meta, steps, evals), (ref_meta, ref_steps, ref_evals) = only_run(out), only_run(ref)
    assert steps == ref_steps and evals == ref_evals and meta["model"] == ref_meta["model"]
    assert meta["tokens_per_iter"] == ref_meta["tokens_per_iter"] and meta["compile"] == "on"
    assert [s["includes"] for s in meta["summary"]["eval_spikes"]] == [
        s["includes"] for s in ref_meta["summary"]["eval_spikes"]
    ]
    assert any(s["includes"] == "eval + checkpoint" for s in meta["summary"]["eval_spikes"])


def test_a_flood_of_restarts_is_refused_not_held(tmp_path, capsys):
    """Each attempt keeps its own figures while the file is read: a file of thousands of restarts is refused."""
    text, _ = train_py_log(cpu_recipe(cut_after=5))
    flood = text + "Traceback (most recent call last):\ntokens per iteration will be: 768\n" * 2000
    code, out = do_import(tmp_path, [write(tmp_path, "flood.log", flood)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "more than 1,000 runs" in err[0] and not out.exists()


def test_torchrun_ranks_repeating_the_echo_are_one_run(tmp_path, capsys):
    """Under torchrun every rank prints the config echo and the tokens line before the first step."""
    text, truth = train_py_log(gpu_recipe(cut_after=300))
    head, body = text[: text.index("found vocab_size")], text[text.index("found vocab_size") :]
    code, out = do_import(tmp_path, [write(tmp_path, "ddp.log", head * 4 + body)])
    err = capsys.readouterr().err
    meta, steps, _ = only_run(out)
    assert code == 0 and "attempts" not in err and meta["nanogpt"]["attempts"] == []
    assert [float(r["ms"]) for r in steps] == list(truth["ms"].values())


def test_eval_only_run_says_so(tmp_path, capsys):
    text, _ = train_py_log(cpu_recipe(cut_after=0))
    text = text[: text.index("iter 0:")].replace(
        "Overriding: device = cpu", "Overriding: device = cpu\nOverriding: eval_only = True"
    )
    code, _ = do_import(tmp_path, [write(tmp_path, "e.log", text)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "eval_only run" in err[0]
