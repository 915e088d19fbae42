"""Checkpoints end to end on the CPU with a tiny model: save, continue at another thread count, compare with an
uninterrupted run; nanoGPT ckpt.pt in its exact format; the bad inputs, each one line and exit 2."""

from __future__ import annotations

import csv
import json
import pathlib
import shutil
from pathlib import Path

import pytest
import torch

from bench.checkpoint import CHECKPOINT_NAME, estimate_bytes
from bench.cli import main
from bench.results import atomic_write_json, read_json, writer_lock
from model.config import GPTConfig

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16"]
COMMON = ["--devices", "cpu", "--batch-sizes", "4", "--no-progress"]
SHORT = ["--eval-interval", "10", "--eval-iters", "2", "--timing-warmup-iters", "2"]
N = 20  # steps saved, then N more continued; compared with an uninterrupted 2N


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def only_run(out: Path) -> Path:
    (run,) = (out / "runs").iterdir()
    return run


@pytest.fixture(scope="module")
def trio(tmp_path_factory) -> dict[str, Path]:
    """Part 1 (N steps of a 2N schedule, 1 thread, saved), part 2 (N more at 2 threads), and 2N uninterrupted."""
    base = tmp_path_factory.mktemp("ckpt")
    part1, part2, whole = base / "part1", base / "part2", base / "whole"
    assert main(["run", *COMMON, *TINY, *SHORT, "--iters", str(N), "--lr-decay-iters", str(2 * N), "--threads", "1",
                 "--save-checkpoint", "--out", str(part1)]) == 0  # fmt: skip
    assert main(["run", *COMMON, "--init-from", str(only_run(part1)), "--iters", str(N), "--threads", "2",
                 "--save-checkpoint", "--out", str(part2)]) == 0  # fmt: skip
    assert main(["run", *COMMON, *TINY, *SHORT, "--iters", str(2 * N), "--threads", "1", "--save-checkpoint",
                 "--out", str(whole)]) == 0  # fmt: skip
    return {"part1": only_run(part1), "part2": only_run(part2), "whole": only_run(whole)}


def test_continued_run_reproduces_the_uninterrupted_one(trio):
    # Same weights, moments, batches and schedule: at 1 vs 2 threads the steps may differ in float rounding only.
    cont = torch.load(trio["part2"] / CHECKPOINT_NAME, weights_only=True)
    whole = torch.load(trio["whole"] / CHECKPOINT_NAME, weights_only=True)
    assert cont["iter_num"] == whole["iter_num"] == 2 * N
    diff = max((cont["model"][k] - whole["model"][k]).abs().max().item() for k in whole["model"])
    assert diff <= 1e-5, diff
    assert torch.equal(
        cont["rng"]["train_batches"], whole["rng"]["train_batches"]
    )  # the same batches were drawn
    steps_c, steps_w = rows(trio["part2"] / "steps.csv"), rows(trio["whole"] / "steps.csv")
    assert [int(r["iter"]) for r in steps_c] == list(range(N, 2 * N))
    by_iter = {int(r["iter"]): r for r in steps_w}
    for r in steps_c:
        w = by_iter[int(r["iter"])]
        assert float(r["lr"]) == pytest.approx(float(w["lr"]), rel=1e-12)
        assert float(r["loss"]) == pytest.approx(float(w["loss"]), abs=1e-4)
    evals_c = {(int(r["iter"]), r["split"]): float(r["loss"]) for r in rows(trio["part2"] / "evals.csv")}
    evals_w = {(int(r["iter"]), r["split"]): float(r["loss"]) for r in rows(trio["whole"] / "evals.csv")}
    assert set(evals_c) == {
        (it, s) for it in (30, 40) for s in ("train", "val")
    }  # the eval at 20 is part 1's
    for key, loss in evals_c.items():
        assert loss == pytest.approx(evals_w[key], abs=1e-4)


def test_continued_run_records_where_it_came_from(trio):
    meta = read_json(trio["part2"] / "run.json")
    src = meta["init_from"]
    assert src["kind"] == "devicebench" and src["iter"] == N and src["run_id"] == trio["part1"].name
    assert src["threads"] == 1 and meta["threads"] == 2
    assert src["data_order"] == "carried on" and src["optimizer"] == "carried on"
    assert src["sweep_id"] == read_json(trio["part1"].parent.parent / "sweep.json")["sweep_id"]
    assert meta["train"]["max_iters"] == 2 * N and meta["train"]["lr_decay_iters"] == 2 * N
    assert meta["model"]["n_layer"] == 1 and meta["batch_size"] == 4
    assert meta["summary"]["iters_done"] == N
    assert "init_from" not in read_json(trio["whole"] / "run.json")


def test_checkpoint_and_sample_recorded(trio):
    meta = read_json(trio["part1"] / "run.json")
    ck = meta["checkpoint"]
    size = (trio["part1"] / CHECKPOINT_NAME).stat().st_size
    assert ck["bytes"] == size and ck["iter"] == N
    assert 0.5 * size < estimate_bytes(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16)) < 2 * size
    text = (trio["part1"] / "sample.txt").read_text()
    assert meta["sample"]["tokens"] == 200 and len(text) == 201 and text.startswith("\n")
    assert meta["sample"]["temperature"] == 0.8 and meta["sample"]["top_k"] == 200
    # same weights, same seed: the continued and the uninterrupted runs write the same sample
    assert (trio["part2"] / "sample.txt").read_text() == (trio["whole"] / "sample.txt").read_text()


def test_no_checkpoint_by_default_and_size_in_dry_run(tmp_path, capsys):
    out = tmp_path / "plain"
    assert main(["run", *COMMON, *TINY, *SHORT, "--iters", "4", "--out", str(out)]) == 0
    run = only_run(out)
    assert not (run / CHECKPOINT_NAME).exists() and "checkpoint" not in read_json(run / "run.json")
    assert (run / "sample.txt").is_file()
    capsys.readouterr()
    assert main(["run", *COMMON, *TINY, "--iters", "4", "--save-checkpoint", "--dry-run"]) == 0
    assert "--save-checkpoint: ~" in capsys.readouterr().out


def test_bench_sample_prints_the_run_sample(trio, capsys):
    capsys.readouterr()
    assert main(["sample", str(trio["part1"])]) == 0
    assert capsys.readouterr().out == (trio["part1"] / "sample.txt").read_text() + "\n"
    assert main(["sample", str(trio["part1"]), "--tokens", "15", "--seed", "3", "--prompt", "ROMEO:"]) == 0
    got = capsys.readouterr().out
    assert got.startswith("ROMEO:") and len(got) == len("ROMEO:") + 15 + 1


# --- bad input: one line, exit 2, nothing written ------------------------------------------------


def refused(capsys, argv: list[str], out: Path | None, *words: str) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err
    if out is not None:
        assert not out.exists()
    return err


def copy_run(src: Path, dest_root: Path) -> Path:
    shutil.copytree(src.parent.parent, dest_root)
    return dest_root / "runs" / src.name


def set_status(run: Path, status: str) -> None:
    meta = read_json(run / "run.json")
    meta["status"], meta["error"] = (
        status,
        "loss became nan at iter 3 (diverged)" if status == "failed" else None,
    )
    atomic_write_json(run / "run.json", meta)


def cont(src: Path | str, out: Path, *extra: str) -> list[str]:
    return ["run", *COMMON, "--init-from", str(src), "--iters", "2", "--out", str(out), *extra]


def test_refuses_a_failed_run(trio, tmp_path, capsys):
    run = copy_run(trio["part1"], tmp_path / "r")
    set_status(run, "failed")
    refused(capsys, cont(run, tmp_path / "o"), tmp_path / "o", "failed run", "finished ok")


def test_refuses_a_run_still_being_written(trio, tmp_path, capsys):
    run = copy_run(trio["part1"], tmp_path / "r")
    set_status(run, "running")
    with writer_lock(tmp_path / "r", "bench run --out r"):
        refused(capsys, cont(run, tmp_path / "o"), tmp_path / "o", "still being written", "pid")
    refused(capsys, cont(run, tmp_path / "o"), tmp_path / "o", "never finished")


def test_refuses_a_truncated_checkpoint(trio, tmp_path, capsys):
    run = copy_run(trio["part1"], tmp_path / "r")
    data = (run / CHECKPOINT_NAME).read_bytes()
    (run / CHECKPOINT_NAME).write_bytes(data[: len(data) // 2])
    refused(capsys, cont(run, tmp_path / "o"), tmp_path / "o", "truncated")
    (run / CHECKPOINT_NAME).write_bytes(b"")
    refused(capsys, cont(run, tmp_path / "o"), tmp_path / "o", "empty")
    (run / CHECKPOINT_NAME).unlink()
    refused(capsys, cont(run, tmp_path / "o"), tmp_path / "o", "--save-checkpoint")
    refused(capsys, ["sample", str(run)], None, "--save-checkpoint")


def test_refuses_another_model_shape_and_missing_iters(trio, tmp_path, capsys):
    refused(capsys, cont(trio["part1"], tmp_path / "o", "--n-layer", "2"), tmp_path / "o", "n_layer = 1")
    argv = ["run", *COMMON, "--init-from", str(trio["part1"]), "--out", str(tmp_path / "o")]
    refused(capsys, argv, tmp_path / "o", "--iters N")
    refused(capsys, cont(trio["part1"].parent.parent, tmp_path / "o"), tmp_path / "o", "results directory")


# --- nanoGPT's ckpt.pt ------------------------------------------------------------------------------

C, L, V, T = 32, 2, 65, 16  # n_embd, n_layer, vocab (Tiny Shakespeare's characters), block_size


def nanogpt_names_and_shapes() -> list[tuple[str, tuple[int, ...]]]:
    """The parameters of nanoGPT model.py's GPT (bias=False) in named_parameters() order, written out from its
    module definitions (Embedding(vocab, C), Linear(C, 3C) as a (3C, C) weight, ...), not from our model."""
    out = [("transformer.wte.weight", (V, C)), ("transformer.wpe.weight", (T, C))]
    for i in range(L):
        h = f"transformer.h.{i}."
        out += [(h + "ln_1.weight", (C,)), (h + "attn.c_attn.weight", (3 * C, C)), (h + "attn.c_proj.weight", (C, C)),
                (h + "ln_2.weight", (C,)), (h + "mlp.c_fc.weight", (4 * C, C)), (h + "mlp.c_proj.weight", (C, 4 * C))]  # fmt: skip
    return [*out, ("transformer.ln_f.weight", (C,))]


def nanogpt_ckpt(iter_num: int = 100, compiled: bool = True, mask_buffer: bool = True) -> dict:
    """What nanoGPT's train.py saves: model (torch.compile's `_orig_mod.` prefixes), optimizer, model_args,
    iter_num, best_val_loss (a 0-d tensor, as estimate_loss returns), config (train.py's globals)."""
    g = torch.Generator().manual_seed(0)
    params = {
        n: torch.nn.Parameter(torch.randn(s, generator=g) * 0.02) for n, s in nanogpt_names_and_shapes()
    }
    decay = [p for p in params.values() if p.dim() >= 2]
    nodecay = [p for p in params.values() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))  # fmt: skip
    sum((p.float() ** 2).sum() for p in params.values()).backward()
    opt.step()
    sd = {n: p.detach().clone() for n, p in params.items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]  # tied: state_dict() holds both names
    if mask_buffer:  # PyTorch < 2.0: the causal mask registered as a buffer named "bias"
        for i in range(L):
            sd[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    prefix = "_orig_mod." if compiled else ""
    model_args = dict(n_layer=L, n_head=2, n_embd=C, block_size=T, bias=False, vocab_size=V, dropout=0.0)
    config = {"out_dir": "out-shakespeare-char", "eval_interval": 50, "eval_iters": 2, "dataset": "shakespeare_char",
              "gradient_accumulation_steps": 1, "batch_size": 4, "block_size": T, "n_layer": L, "n_head": 2,
              "n_embd": C, "dropout": 0.0, "bias": False, "learning_rate": 1e-3, "max_iters": 5000,
              "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.99, "grad_clip": 1.0, "decay_lr": True,
              "warmup_iters": 100, "lr_decay_iters": 5000, "min_lr": 1e-4, "backend": "nccl", "device": "cpu",
              "dtype": "float32", "compile": compiled}  # fmt: skip
    return {"model": {prefix + k: v for k, v in sd.items()}, "optimizer": opt.state_dict(), "model_args": model_args,
            "iter_num": iter_num, "best_val_loss": torch.tensor(2.5), "config": config}  # fmt: skip


def test_nanogpt_ckpt_samples_and_continues(tmp_path, capsys):
    ckpt = nanogpt_ckpt()
    path = tmp_path / "ckpt.pt"
    torch.save(ckpt, path)
    capsys.readouterr()
    assert main(["sample", str(path), "--tokens", "12"]) == 0
    got = capsys.readouterr()
    assert (
        len(got.out) == 1 + 12 + 1
        and got.out.startswith("\n")
        and "nanogpt checkpoint at iter 100" in got.err
    )
    out = tmp_path / "cont"
    assert (
        main(
            ["run", *COMMON, "--init-from", str(path), "--iters", "3", "--save-checkpoint", "--out", str(out)]
        )
        == 0
    )
    run = only_run(out)
    meta = read_json(run / "run.json")
    src = meta["init_from"]
    assert src["kind"] == "nanogpt" and src["iter"] == 100 and src["best_val_loss"] == pytest.approx(2.5)
    assert src["optimizer"] == "carried on" and src["data_order"].startswith("restarted")
    assert meta["model"]["n_layer"] == L and meta["train"]["lr_decay_iters"] == 5000
    assert meta["train"]["eval_interval"] == 50 and meta["batch_size"] == 4
    assert [int(r["iter"]) for r in rows(run / "steps.csv")] == [100, 101, 102]
    assert {int(r["iter"]) for r in rows(run / "evals.csv")} == {100, 103}  # evaluated where it was loaded
    saved = torch.load(run / CHECKPOINT_NAME, weights_only=True)
    # the AdamW step count went on from nanoGPT's single step
    assert float(saved["optimizer"]["state"][0]["step"]) == 1 + 3
    before = ckpt["model"]["_orig_mod.transformer.h.1.attn.c_attn.weight"]
    after = saved["model"]["transformer.h.1.attn.c_attn.weight"]
    assert 0 < (after - before).abs().max().item() < 0.05  # trained on from nanoGPT's weights


def test_nanogpt_ckpt_loads_its_weights_exactly(tmp_path):
    from bench.checkpoint import open_source

    ckpt = nanogpt_ckpt(compiled=False, mask_buffer=False)
    torch.save(ckpt, tmp_path / "ckpt.pt")
    src = open_source(str(tmp_path / "ckpt.pt"))
    for name, _ in nanogpt_names_and_shapes():
        assert torch.equal(src.model_state[name], ckpt["model"][name])
    assert src.batch_size == 4 and src.train_values["warmup_iters"] == 100


def test_nanogpt_ckpt_of_another_shape_is_refused(tmp_path, capsys):
    bad = nanogpt_ckpt()
    bad["model"]["_orig_mod.transformer.h.0.mlp.c_fc.weight"] = torch.zeros(3 * C, C)
    torch.save(bad, tmp_path / "shape.pt")
    refused(
        capsys,
        cont(tmp_path / "shape.pt", tmp_path / "o"),
        tmp_path / "o",
        "mlp.c_fc.weight",
        "[96, 32]",
        "[128, 32]",
    )
    other = nanogpt_ckpt()
    other["model"]["_orig_mod.transformer.h.0.ln_1.gain"] = other["model"].pop(
        "_orig_mod.transformer.h.0.ln_1.weight"
    )
    torch.save(other, tmp_path / "rms.pt")
    refused(capsys, ["sample", str(tmp_path / "rms.pt")], None, "ln_1.gain", "another architecture")
    wide = nanogpt_ckpt()
    wide["model_args"]["vocab_size"] = 50304
    torch.save(wide, tmp_path / "bpe.pt")
    refused(capsys, cont(tmp_path / "bpe.pt", tmp_path / "o"), tmp_path / "o", "wte.weight")


def test_unsafe_checkpoint_needs_trust(tmp_path, capsys):
    ckpt = nanogpt_ckpt()
    ckpt["config"]["out_dir"] = pathlib.PurePosixPath("out")  # a class the safe loader will not build
    torch.save(ckpt, tmp_path / "ckpt.pt")
    err = refused(
        capsys, ["sample", str(tmp_path / "ckpt.pt")], None, "--trust-checkpoint", "weights_only=True"
    )
    assert "Traceback" not in err
    refused(capsys, cont(tmp_path / "ckpt.pt", tmp_path / "o"), tmp_path / "o", "--trust-checkpoint")
    assert main(["sample", str(tmp_path / "ckpt.pt"), "--trust-checkpoint", "--tokens", "5"]) == 0


def test_not_a_checkpoint(tmp_path, capsys):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "x.pt")
    refused(capsys, ["sample", str(tmp_path / "x.pt")], None, "neither", "weights")
    (tmp_path / "y.pt").write_text(json.dumps({"model": 1}))
    refused(capsys, ["sample", str(tmp_path / "y.pt")], None, "not a PyTorch checkpoint")


# --- the report: joined curves, the comparison, samples -----------------------------------------------


def test_report_joins_and_compares(trio, tmp_path):
    from reports.continuation import continuations, describe
    from reports.html import render_html
    from reports.load import load_results
    from reports.summary import render

    results = load_results([trio[k].parent.parent for k in ("part1", "part2", "whole")])
    (c,) = continuations(results)
    key = {results.runs.loc[k, "run_dir"]: k for k in results.runs.index}
    assert c.key == key[str(trio["part2"])] and c.parent == key[str(trio["part1"])]
    assert c.reference == key[str(trio["whole"])]
    assert [(i, p) for i, _, p in c.curve] == [
        (0, "before"),
        (10, "before"),
        (20, "before"),
        (30, "after"),
        (40, "after"),
    ]
    assert c.shared_evals == 2 and c.max_abs_diff <= 1e-4 and c.tolerance == 0.02 and c.reproduces
    assert c.start_iter == 20 and c.end_iter == 40 and c.end_val < c.start_val
    text = describe(results, c)
    assert "from iter 20" in text and "It reproduces the uninterrupted" in text and "1 thread)" in text
    assert "Continued runs:" in render(results, [], "text")
    page = render_html(results, [])
    assert '<section id="continued">' in page and '<section id="samples">' in page
    sample = (trio["part1"] / "sample.txt").read_text()
    from html import escape

    assert escape(sample) in page


def test_a_run_and_its_continuation_are_not_compared_as_two_recipes(trio):
    """Part 1 and its continuation are one training run in two parts: no loss gap "through its recipe" between
    them, and the continued run's clock (which starts mid-recipe) is not raced to a target loss."""
    from reports.diagnosis import config_findings
    from reports.load import load_results
    from reports.time_to_loss import to_loss_sets

    results = load_results([trio[k].parent.parent for k in ("part1", "part2", "whole")])
    key = {results.runs.loc[k, "run_dir"]: k for k in results.runs.index}
    part1, part2, whole = (key[str(trio[k])] for k in ("part1", "part2", "whole"))
    found = config_findings(results, results.ok_runs())
    pairs = [{f.evidence["run"], f.evidence["reference"]} for f in found if f.kind == "config_mismatch"]
    assert {part1, part2} not in pairs and {part1, whole} in pairs  # part 1 against the real 2N run only
    assert all(part2 not in [r.key for r in s.runs] for s in to_loss_sets(results))


def test_report_says_when_a_continuation_does_not_reproduce(trio, tmp_path):
    from bench.results import RunWriter
    from reports.continuation import continuations, describe
    from reports.load import load_results

    bent = tmp_path / "part2"
    shutil.copytree(trio["part2"].parent.parent, bent)
    run = bent / "runs" / trio["part2"].name
    steps, evals = rows(run / "steps.csv"), rows(run / "evals.csv")
    with RunWriter(run, read_json(run / "run.json")) as w:  # the real writer, one val loss moved by 0.1
        for r in steps:
            w.step(int(r["iter"]), float(r["ms"]), float(r["loss"]), float(r["lr"]), r["phase"])
        for r in evals:
            bump = 0.1 if (r["iter"], r["split"]) == ("40", "val") else 0.0
            w.eval(int(r["iter"]), r["split"], float(r["loss"]) + bump, float(r["ms"]))
    results = load_results([trio["part1"].parent.parent, bent, trio["whole"].parent.parent])
    (c,) = continuations(results)
    assert c.reproduces is False and c.at_iter == 40 and c.max_abs_diff == pytest.approx(0.1, abs=1e-3)
    assert "does not reproduce" in describe(results, c)
    alone = load_results([bent])  # neither its start nor an uninterrupted run loaded
    (c,) = continuations(alone)
    assert (
        c.parent is None
        and c.reference is None
        and c.start_val == pytest.approx(read_json(trio["part1"] / "run.json")["summary"]["final_val_loss"])
    )
    assert "No uninterrupted run" in describe(alone, c)


def test_resume_of_a_continued_sweep_needs_its_checkpoint(trio, tmp_path, capsys):
    part2 = tmp_path / "part2"
    shutil.copytree(trio["part2"].parent.parent, part2)
    assert read_json(part2 / "sweep.json")["init_from"]["iter"] == N
    # --resume alone would train from step 0: refused, pointing at the command that made it
    refused(capsys, ["run", "--out", str(part2), "--resume", "--no-progress"], None, "sweep.json ('command')")
    capsys.readouterr()
    argv = cont(trio["part1"], part2, "--resume")
    argv[argv.index("--iters") + 1] = str(N)
    argv += ["--threads", "2"]
    assert main(argv) == 0
    assert "already done (resume)" in capsys.readouterr().err


def test_dry_run_of_a_continuation_says_where_it_starts(trio, tmp_path, capsys):
    capsys.readouterr()
    assert main(cont(trio["part1"], tmp_path / "d", "--dry-run")) == 0
    assert f"starts at iter {N} (devicebench checkpoint) and trains 2 more steps" in capsys.readouterr().out
    assert not (tmp_path / "d").exists()


def test_sample_of_a_text_without_newlines(tmp_path, capsys):
    data = tmp_path / "t.txt"
    data.write_text("to be or not to be, that is the question. " * 100)
    out = tmp_path / "r"
    assert main(["run", *COMMON, *TINY, *SHORT, "--iters", "4", "--data", str(data), "--save-checkpoint",
                 "--out", str(out)]) == 0  # fmt: skip
    run = only_run(out)
    meta = read_json(run / "run.json")
    assert (
        meta["status"] == "ok" and meta["sample"]["prompt"] == " "
    )  # the text's first character in sort order
    text = (run / "sample.txt").read_text()
    assert len(text) == 201 and set(text) <= set(data.read_text())
    capsys.readouterr()
    assert main(["sample", str(run), "--tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith(" ")
