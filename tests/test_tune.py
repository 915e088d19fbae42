"""`bench tune` end to end on the CPU with a tiny model (seconds), resume, interruption, bad input; the
block alternation and the turns to a target loss with fakes."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bench import results as R
from bench.cli import main
from bench.tune.measure import Side, block_steps, measure_pair
from bench.tune.plan import Knobs
from bench.tune.to_loss import ToLoss, ToLossRun, run_interleaved

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16"]
SHORT = ["--iters", "30", "--eval-interval", "10", "--eval-iters", "2", "--timing-warmup-iters", "3",
         "--repeats", "4", "--block-seconds", "0.02", "--max-seconds", "1", "--profile", "2", "--threads", "1",
         "--no-progress"]  # fmt: skip
TIPS = ["--tips", "threads,fused_adamw,tf32,batch_x2,num_workers,eval_iters"]


def tune(out: Path, *extra: str) -> int:
    return main(["tune", "--devices", "cpu", *TINY, *SHORT, *TIPS, "--out", str(out), *extra])


def run_json(out: Path, run_id: str) -> dict:
    return json.loads((out / "runs" / run_id / "run.json").read_text())


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> Path:
    """The tiny tune's results directory; what it said on stderr is kept beside it in stderr.txt."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("tune") / "res"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert tune(out) == 0
    (out.parent / "stderr.txt").write_text(err.getvalue())
    return out


def test_a_tiny_tune_writes_an_ordinary_results_directory(tuned):
    sweep = json.loads((tuned / "sweep.json").read_text())
    assert sweep["schema"] == R.SCHEMA and sweep["tune"]["repeats"] == 4
    assert set(sweep["tune"]["tips"]) == {
        "threads",
        "fused_adamw",
        "tf32",
        "batch_x2",
        "num_workers",
        "eval_iters",
    }
    runs = sorted(p.name for p in (tuned / "runs").iterdir())
    assert {"cpu-default", "cpu-fused-adamw", "cpu-tf32", "cpu-batch24"} <= set(runs)
    assert run_json(tuned, "cpu-tf32")["status"] == "skipped"
    assert "tf32 is a CUDA" in run_json(tuned, "cpu-tf32")["error"]


def test_throughput_variant_holds_its_samples_and_the_defaults(tuned):
    run = run_json(tuned, "cpu-fused-adamw")
    assert (
        run["status"] == "ok"
        and run["tune"]["tip"] == "fused_adamw"
        and run["tune"]["measure"] == "throughput"
    )
    t = run["tune"]
    n = len(t["samples_tokens_per_s"])
    assert n >= 4 and len(t["default_samples_tokens_per_s"]) == n == t["pairs"]
    assert t["stopped"] in ("the verdict is known", "--max-seconds ran out") and t["max_seconds"] == 1.0
    assert t["stopped"] == "the verdict is known" or t["pairs_s"] >= 1.0
    assert all(0 <= i < n for i in t["spoiled_pairs"])
    assert all(x > 0 for x in t["samples_tokens_per_s"] + t["default_samples_tokens_per_s"])
    assert t["knobs"]["fused_adamw"] is True and t["default_knobs"]["fused_adamw"] is False
    assert "would_settle" in t  # None once settled; what more pairs would take when the budget ran out
    said = (tuned.parent / "stderr.txt").read_text()
    assert re.search(
        r"cpu: \d throughput variant\(s\) measured, \d conclusive: ", said
    )  # the verdicts counted
    assert t["changed"] == ["fused_adamw on"]
    steps = (tuned / "runs" / "cpu-fused-adamw" / "steps.csv").read_text().splitlines()
    n_timed = sum(1 for line in steps if line.endswith(",timed"))
    assert n_timed == n * t["steps_per_block"]["variant"] and run["summary"]["ms_median"] > 0


def test_a_tune_whose_tips_all_had_no_effect_says_so_plainly():
    """The line after a device's throughput variants counts the verdicts the table's way, and says plainly when
    every tip measured had no effect; one variant that turns a tip off counts in the tip's direction."""
    from bench.tune.plan import Variant
    from bench.tune.runner import verdict_summary
    from bench.tune.verdict import Candidate, Effect

    knobs = Knobs("fp32", "off", None, None, False, 4)
    vs = [Variant("cpu", "fused_adamw", "fused-adamw", "optimizer", knobs, "throughput"),
          Variant("cpu", "threads", "threads1", "threads", knobs, "throughput", applies_tip=False)]  # fmt: skip
    none = [
        Candidate(v.name, v.group, {}, Effect("throughput", "no effect", 1.0, 0.98, 1.02, 8, 8)) for v in vs
    ]
    line = verdict_summary("cpu", vs, none)
    assert "2 throughput variant(s) measured, 2 conclusive: no effect 2" in line
    assert "Every tip measured had no effect here" in line and "no best configuration" in line
    mixed = [
        none[0],
        Candidate("threads1", "threads", {}, Effect("throughput", "worth it", 1.5, 1.3, 1.7, 8, 8)),
    ]
    line = verdict_summary("cpu", vs, mixed)
    assert (
        "harmful 1" in line and "no effect 1" in line and "Every tip" not in line
    )  # threads 1 turns the tip off
    odd = [
        none[0],
        Candidate("threads1", "threads", {}, Effect("throughput", "inconclusive", 1.0, 0.7, 1.4, 6, 6)),
    ]
    assert "1 conclusive" in verdict_summary("cpu", vs, odd) and "Every tip" not in verdict_summary(
        "cpu", vs, odd
    )


def test_the_default_sets_the_target_and_the_batch_variant_is_timed_to_it(tuned):
    default = run_json(tuned, "cpu-default")
    d = default["tune"]
    assert default["status"] == "ok" and d["measure"] == "default" and d["stopped"] == "end of recipe"
    evals = (tuned / "runs" / "cpu-default" / "evals.csv").read_text().splitlines()
    final_val = [line for line in evals if line.startswith("30,val,")][0]
    assert d["target_val_loss"] == pytest.approx(float(final_val.split(",")[2]), abs=1e-6)
    assert 0 < d["time_to_target_s"] <= d["clock_s"]
    assert (tuned / "runs" / "cpu-default" / "profile.json").exists()
    b = run_json(tuned, "cpu-batch24")["tune"]
    assert b["measure"] == "time_to_loss" and b["target_val_loss"] == d["target_val_loss"]
    assert b["cap_s"] == pytest.approx(1.1 * d["time_to_target_s"])
    assert b["stopped"] in ("target reached", "time cap", "end of recipe")
    if b["stopped"] == "target reached":
        assert b["time_to_target_s"] <= b["clock_s"]
        # at an eval of the recipe's schedule, or at the one made when it passed the cap
        assert b["reached_at_iter"] % 10 == 0 or b["time_to_target_s"] > b["cap_s"]


def test_the_time_to_loss_phase_says_how_long_it_will_take_before_it_starts(tuned):
    import re
    import statistics

    err = (tuned.parent / "stderr.txt").read_text()
    line = next(ln for ln in err.splitlines() if ln.startswith("cpu: time to loss: "))
    assert (
        err.index("cpu-batch24: batch_size 24: to the target")
        < err.index(line)
        < err.index("cpu-default: ok")
    )
    # the default's tokens/s: the median of its blocks in every throughput variant before the phase
    blocks = [x for run_id in ("cpu-threads2", "cpu-fused-adamw", "cpu-best") if (tuned / "runs" / run_id).exists()
              for x in run_json(tuned, run_id)["tune"]["default_samples_tokens_per_s"]]  # fmt: skip
    speed = statistics.median(blocks)
    assert f"at its {speed:,.0f} tokens/s" in line
    recipe_s = 30 * 12 * 16 / speed  # --iters 30, batch 12 of 16 tokens
    said = re.search(r"the default's 30 steps \(([\d.]+) s at", line)
    assert said and float(said.group(1)) == pytest.approx(recipe_s, abs=0.5)
    # batch x2, and the best configuration when a variant was worth it
    n = sum(run_json(tuned, p.name)["tune"]["measure"] == "time_to_loss" for p in (tuned / "runs").iterdir())
    total = re.search(r"up to about ([\d.]+) s", line)
    assert total and float(total.group(1)) == pytest.approx(recipe_s * (1 + 1.1 * n), abs=0.5)
    assert f"{n} variant(s) run to it, each for at most 1.1x the default's time" in line


def test_the_report_answers_each_tip(tuned):
    from reports.diagnosis import diagnose
    from reports.load import load_results
    from reports.summary import render
    from reports.tips import tip_rows

    results = load_results(tuned)
    rows = {r.tip: r for r in tip_rows(results)}
    assert set(rows) == {"threads", "fused_adamw", "tf32", "batch_x2", "num_workers", "eval_iters"}
    assert rows["tf32"].verdict == "not available"
    assert rows["fused_adamw"].effect is not None and rows["fused_adamw"].measure == "throughput"
    assert rows["batch_x2"].measure == "time_to_loss"
    assert "DataLoader" in rows["num_workers"].why and "%" in rows["num_workers"].why  # from the profile
    assert "already evaluates on 2 batches" in rows["eval_iters"].why
    kinds = [f.kind for f in diagnose(results)]
    assert kinds.count("best_config") == 1 and kinds.count("tip") == 6 and "time_to_loss" in kinds
    report = json.loads(render(results, diagnose(results), "json"))
    assert {t["tip"] for t in report["tips"]} == set(rows)
    assert report["time_to_loss"][0]["source"] == "tune"


def test_resume_skips_what_finished_and_prints_the_tips_table(tuned, capsys):
    assert tune(tuned, "--resume") == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "cpu-fused-adamw: already done (resume)" in err and "cpu-default: already done (resume)" in err
    assert "fused AdamW" in captured.out and "not available" in captured.out  # the table, on stdout
    assert (
        "Fastest configuration measured on cpu" in captured.out
        or "the fastest measured on cpu" in captured.out
        or "no variant was worth it" in captured.out
    )


def test_a_tips_table_that_cannot_be_made_is_a_failed_tune_not_a_success(tuned, monkeypatch, capsys):
    import reports.tips

    def broken(results, form="text"):
        raise TypeError("'<' not supported between instances of 'NoneType' and 'int'")

    monkeypatch.setattr(reports.tips, "render_tips", broken)
    assert tune(tuned, "--resume") == 1
    err = capsys.readouterr().err
    assert f"the tips table of {tuned} could not be made (TypeError" in err and "recorded there" in err


def test_bench_never_imports_reports():
    """Data flows bench -> results -> reports: the tips table after a tune is printed by the command line above
    both (bench.cli's AFTERWARDS names reports.tips by string), never by an import in bench/."""
    import ast

    root = Path(__file__).resolve().parents[1] / "bench"
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] == "reports"]
    assert found == []


def test_an_interrupted_variant_is_recorded_and_resume_completes_it(tmp_path, monkeypatch, capsys):
    import bench.tune.measure as measure

    real = measure.measure_pair

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(measure, "measure_pair", interrupted)
    out = tmp_path / "res"
    args = ["tune", "--devices", "cpu", *TINY, *SHORT, "--tips", "fused_adamw", "--out", str(out)]
    assert main(args) == 130
    run = run_json(out, "cpu-fused-adamw")
    assert run["status"] == "interrupted" and "Ctrl-C" in run["error"]
    assert "bench tune --out" in capsys.readouterr().err
    monkeypatch.setattr(measure, "measure_pair", real)
    assert main([*args, "--resume"]) == 0
    assert run_json(out, "cpu-fused-adamw")["status"] == "ok"


def test_an_interrupted_time_to_loss_phase_is_run_again_together(tmp_path, monkeypatch):
    import bench.tune.to_loss as to_loss

    real = to_loss.run_interleaved

    def interrupted(runs, *a, **k):
        for r in runs:
            r.advance_to(10.0)  # a turn each (10 ms of its clock), then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(to_loss, "run_interleaved", interrupted)
    out = tmp_path / "res"
    args = ["tune", "--devices", "cpu", *TINY, *SHORT, "--tips", "batch_x2", "--out", str(out)]
    assert main(args) == 130
    for run_id in ("cpu-default", "cpu-batch24"):
        run = run_json(out, run_id)
        assert run["status"] == "interrupted" and "Ctrl-C" in run["error"]
        evals = (out / "runs" / run_id / "evals.csv").read_text()
        assert evals.count("\n0,val,") == 1  # its first turn's eval
    monkeypatch.setattr(to_loss, "run_interleaved", real)
    assert main([*args, "--resume"]) == 0
    assert run_json(out, "cpu-default")["status"] == "ok" and run_json(out, "cpu-batch24")["status"] == "ok"


def test_a_variant_that_fails_fails_alone_and_the_exit_is_1(tmp_path, monkeypatch, capsys):
    import bench.tune.measure as measure

    real = measure.measure_pair

    def fails_for_fused(default, variant, *a, **k):
        if variant.knobs.fused_adamw:
            raise RuntimeError("fused kernel exploded")
        return real(default, variant, *a, **k)

    monkeypatch.setattr(measure, "measure_pair", fails_for_fused)
    out = tmp_path / "res"
    rc = main(["tune", "--devices", "cpu", *TINY, *SHORT, "--tips", "fused_adamw,bf16", "--out", str(out)])
    assert rc == 1
    failed = run_json(out, "cpu-fused-adamw")
    assert (
        failed["status"] == "failed"
        and "RuntimeError: fused kernel exploded during the warm-up" in failed["error"]
    )
    # the other variant still measured (bf16: every CPU has it)
    assert run_json(out, "cpu-bf16")["status"] == "ok"
    err = capsys.readouterr().err
    assert "1 variant(s) failed: cpu-fused-adamw" in err


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--batch-sizes", "12,24"], "one value (tune tries x2 and x4 itself)"),
        (["--threads", "1,2"], "--threads 1,2: bench tune measures around one recipe"),
        (["--repeats", "3"], "--repeats 3: expected a whole number of pairs of blocks from 4"),
        (
            ["--repeats", "999999999"],
            "--repeats 999999999: expected a whole number of pairs of blocks from 4 (fewer "
            "can never give a significant difference) to 1000",
        ),
        (["--block-seconds", "1e9"], "--block-seconds 1e9: expected seconds from 0.01 to 60"),
        (["--block-seconds", "999999"], "--block-seconds 999999: expected seconds from 0.01 to 60"),
        (["--block-seconds", "nan"], "--block-seconds nan: expected seconds from 0.01 to 60"),
        (["--max-seconds", "0.5"], "--max-seconds 0.5: expected seconds from 1 to 3600"),
        (["--time-cap", "inf"], "--time-cap inf: expected a factor from 1 to 10"),
        (["--resume"], "holds no tune to resume (no sweep.json): run without --resume"),
        (
            ["--profile", "1000000000"],
            "--profile 1000000000: expected a number of steps",
        ),
        (["--repeats", "many"], "--repeats many"),
        (["--block-seconds", "0"], "--block-seconds 0: expected seconds"),
        (["--time-cap", "0.5"], "--time-cap 0.5: expected a factor from 1 to 10"),
        (["--tips", "turbo"], "unknown tip(s) turbo; choose from compile"),
        (["--devices", "tpu"], "unknown device 'tpu'"),
        (["--iters", "0"], "--iters 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, says):
    rc = main(["tune", *TINY, "--devices", "cpu", "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x" / "sweep.json").exists()


def test_an_existing_directory_needs_resume_and_must_be_a_tune(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", "--devices", "cpu", *TINY, "--iters", "4", "--eval-interval", "2", "--eval-iters", "1",
                 "--timing-warmup-iters", "1", "--no-progress", "--out", str(run_dir)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["tune", "--devices", "cpu", *TINY, "--out", str(run_dir)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["tune", "--devices", "cpu", *TINY, "--out", str(run_dir), "--resume"]) == 2
    assert "not a tune" in capsys.readouterr().err


def _damage(out: Path, **changes) -> None:
    sweep = json.loads((out / "sweep.json").read_text())
    sweep.update(changes)
    (out / "sweep.json").write_text(json.dumps(sweep))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"spec": "x"}, "its 'spec' (the tune's recipe) is damaged ('x')"),
        ({"spec": {}}, "its 'spec' (the tune's recipe) is damaged ({})"),
        ({"tune": "x"}, "its 'tune' block is damaged (expected a table, got str)"),
        ({"tune": {"tips": ["threads"], "repeats": "many"}}, "its 'tune' block is damaged (repeats 'many')"),
        ({"tune": {"tips": ["turbo"]}}, "its 'tune' block is damaged (tips ['turbo'])"),
        ({"tune": {"tips": ["threads"], "block_seconds": 1e9}}, "damaged (block_seconds 1000000000.0)"),
    ],
)
def test_resume_refuses_a_damaged_sweep_json_and_says_what_is_damaged(tmp_path, capsys, changes, says):
    """A damaged spec once trained the 2000-step reference recipe beside the tiny runs (read as {}); a damaged
    tune block was blamed on --tips/--repeats never given."""
    out = tmp_path / "res"
    out.mkdir()
    sweep = {"schema": R.SCHEMA, "sweep_id": "x", "spec": {"model": {}, "train": {}, "sweep": {}},
             "tune": {"tips": ["threads"], "repeats": 4}}  # fmt: skip
    (out / "sweep.json").write_text(json.dumps(sweep))
    _damage(out, **changes)
    before = (out / "sweep.json").read_text()
    assert main(["tune", "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert says in err and "another --out" in err and len(err.strip().splitlines()) == 1, err
    assert "--tips/--repeats" not in err and (out / "sweep.json").read_text() == before
    assert not (out / "runs").exists()


def test_resume_with_other_options_names_the_ones_given(tuned, capsys):
    assert tune(tuned, "--resume", "--repeats", "5") == 2
    err = capsys.readouterr().err
    assert "--repeats 5 (the tune used 4)" in err and "--tips" not in err.split("resume it without")[1]


def test_dry_run_prints_the_plan(capsys):
    assert main(["tune", "--devices", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cpu-compile-reduce-overhead" in out and "not available" in out and "time_to_loss" in out


# ---- the mechanics, with fakes ------------------------------------------------------------------------------


class FakeDevice:
    uses_cpu_threads = False

    def cpu_affinity(self, cpus):
        return contextlib.nullcontext()

    def matmul_precision(self, dtype):
        return contextlib.nullcontext()


class FakeTrainer:
    """Steps of a fixed time; val loss falling by `drop` per step; evals of a fixed time."""

    def __init__(self, name: str, ms: float, log: list, drop: float = 0.01, max_iters: int = 100):
        self.name, self.ms, self.log, self.drop = name, ms, log, drop
        self.device, self.batch_size, self.dtype = FakeDevice(), 4, "fp32"
        self.model = SimpleNamespace(config=SimpleNamespace(block_size=8))
        self.train_cfg = SimpleNamespace(max_iters=max_iters, eval_interval=10, timing_warmup_iters=2)
        self.steps = 0

    def train_step(self, it):
        self.log.append(self.name)
        self.steps += 1
        return self.ms, torch.tensor(1.0), 1e-3

    def eval_samplers(self):
        return {}

    def evaluate(self, samplers):
        loss = 4.0 - self.drop * self.steps
        return {"train": (loss, 5.0), "val": (loss + 0.1, 5.0)}


class FakeWriter:
    def __init__(self):
        self.steps, self.evals = [], []

    def step(self, *row):
        self.steps.append(row)

    def eval(self, *row):
        self.evals.append(row)


def test_blocks_alternate_and_each_gives_one_sample():
    log: list[str] = []
    knobs = Knobs("fp32", "off", None, None, False, 4)
    a, b = Side(FakeTrainer("A", 10.0, log), knobs), Side(FakeTrainer("B", 20.0, log), knobs)
    result = measure_pair(a, b, repeats=4, block_s=0.06, warmup_steps=3, progress=False)
    assert (result.default_steps_per_block, result.variant_steps_per_block) == (6, 3)
    timed = "".join(log[6:])
    assert timed == "A" * 6 + "B" * 3 + "B" * 3 + "A" * 6 + "A" * 6 + "B" * 3 + "B" * 3 + "A" * 6
    assert result.default_tokens_per_s == [32 / 0.010] * 4 and result.variant_tokens_per_s == [32 / 0.020] * 4
    assert block_steps([5000.0, 1.0, 1.0], 10.0) == 500  # the first (compiling) step is left out; at most 500


def test_turns_to_the_target_default_sets_it_and_a_slow_variant_is_capped():
    log: list[str] = []
    knobs = Knobs("fp32", "off", None, None, False, 4)

    def make(name, ms, drop, default=False):
        return ToLossRun(
            Side(FakeTrainer(name, ms, log, drop), knobs), FakeWriter(), ToLoss(None, None), default
        )

    default = make("D", 10.0, 0.01, default=True)  # 100 steps x 10 ms + 11 evals x 10 ms = 1.11 s
    quick = make("Q", 10.0, 0.02)  # twice the progress per step: reaches the target at iter 50
    slow = make("S", 30.0, 0.01)  # the same progress per step, 3x the time: past the 1.5x cap
    run_interleaved([default, quick, slow], turn_s=0.05, time_cap=1.5)
    assert default.state.target == pytest.approx(4.0 - 0.01 * 100 + 0.1)
    assert default.state.reached_s == pytest.approx(1.11) and default.state.stopped == "end of recipe"
    assert quick.state.stopped == "target reached" and quick.state.reached_iter == 50
    assert quick.state.reached_s == pytest.approx(
        0.5 + 6 * 0.01
    ) and quick.state.prev_eval_s == pytest.approx(0.45)
    assert slow.state.stopped == "time cap" and slow.state.reached_s is None
    assert slow.state.clock_ms / 1e3 > 1.5 * 1.11
    assert "D" in log[:5] and "Q" in log[:20] and "S" in log[:40]  # they took turns from the start


def test_turns_keep_the_runs_level_in_clock_so_none_runs_far_past_the_cap():
    """A variant whose steps overshoot every turn (45 ms steps, 50 ms turns: 90 ms a turn) must not drift ahead
    of the default: it would be past its cap before the default has finished and set it."""
    log: list[str] = []
    knobs = Knobs("fp32", "off", None, None, False, 4)
    default = ToLossRun(
        Side(FakeTrainer("D", 10.0, log, 0.01), knobs), FakeWriter(), ToLoss(None, None), True
    )
    slow = ToLossRun(Side(FakeTrainer("S", 45.0, log, 0.01), knobs), FakeWriter(), ToLoss(None, None))
    run_interleaved([default, slow], turn_s=0.05, time_cap=1.5)
    cap = 1.5 * default.state.reached_s  # 1.5 x 1.11 s
    assert slow.state.stopped == "time cap"
    # stopped at its first step past the cap: one 45 ms step (and at most one 10 ms eval) beyond it
    assert cap < slow.state.clock_ms / 1e3 <= cap + 0.055, slow.state.clock_ms
    # its val loss is known at the cap: one eval made there, off the every-10-steps schedule, so "not at the
    # target within the cap" is measured, not inferred from an eval up to an interval earlier
    it, _, at_s = slow.state.val_evals[-1]
    assert at_s > cap and it % 10 != 0 and slow.writer.evals[-1][0] == it


class ScriptedTrainer(FakeTrainer):
    """Step times from a script: ms(block) for the block its step is in (steps_per_block steps each, warm-up
    steps first), so a test decides what each block measures. `clock` is the sum of every step's ms so far."""

    clock_ms = 0.0

    def __init__(self, name: str, ms_of_block, log: list, warmup: int = 3, per_block: int = 3):
        super().__init__(name, 10.0, log)
        self.ms_of_block, self.warmup, self.per_block = ms_of_block, warmup, per_block

    def train_step(self, it):
        block = max(0, self.steps - self.warmup) // self.per_block
        ms = 10.0 if self.steps < self.warmup else self.ms_of_block(block)
        ScriptedTrainer.clock_ms += ms
        super().train_step(it)
        return ms, torch.tensor(1.0), 1e-3


def scripted_pair(default_ms, variant_ms, **kw):
    """measure_pair on two scripted sides (3 steps a block), its clock the fake steps' own time."""
    from bench.tune.verdict import throughput_effect

    ScriptedTrainer.clock_ms = 0.0
    log: list[str] = []
    knobs = Knobs("fp32", "off", None, None, False, 4)
    a = Side(ScriptedTrainer("A", default_ms, log), knobs)
    b = Side(ScriptedTrainer("B", variant_ms, log), knobs)
    r = measure_pair(a, b, block_s=0.03, warmup_steps=3, progress=False,
                     clock=lambda: ScriptedTrainer.clock_ms / 1e3, **kw)  # fmt: skip
    return r, throughput_effect(r.variant_tokens_per_s, r.default_tokens_per_s)


def jitter(i: int, amount: float = 0.01) -> float:
    """A fixed, uneven wobble (no randomness): +-amount around 1."""
    return 1 + amount * ((i * 7919) % 11 - 5) / 5


def test_a_clear_effect_stops_at_the_least_pairs_with_its_verdict_known():
    from bench.tune.verdict import STOP_SETTLED

    r, e = scripted_pair(
        lambda i: 10.0 * jitter(i), lambda i: 8.0 * jitter(i + 3), repeats=6, max_seconds=1e9
    )
    assert r.stopped == STOP_SETTLED and len(r.variant_tokens_per_s) == 6
    assert e.verdict == "worth it" and e.low > 1.05


def test_an_effect_on_the_bar_repeats_until_the_budget_runs_out_and_says_so():
    """1.05x exactly with a symmetric 3% wobble (pairs alternately 3% above and below): the interval keeps holding 1.05, so no number of pairs settles
    worth it against small gain; the pairs stop at --max-seconds (the fake clock: the steps' own ms), and say
    why."""
    from bench.tune.verdict import STOP_BUDGET

    r, e = scripted_pair(lambda i: 10.5, lambda i: 10.0 / (1 + 0.03 * (-1) ** i), repeats=4, max_seconds=3.0)
    assert r.stopped == STOP_BUDGET and r.pairs_s >= 3.0
    n = len(r.variant_tokens_per_s)
    assert n == len(r.default_tokens_per_s)
    assert 3.0 / (3 * 10.5e-3 + 3 * 10e-3 / 0.97) <= n <= 3.0 / (3 * 10.5e-3 + 3 * 10e-3 / 1.03) + 1
    assert e.low < 1.05 < e.high


def test_a_noisy_gain_keeps_measuring_until_the_interval_settles():
    """12% faster under a 10% wobble: inconclusive after the least pairs; more pairs narrow the interval until
    it lies wholly above the bar: worth it, stopped because the verdict is known."""
    from bench.tune.verdict import STOP_SETTLED, throughput_effect

    r, e = scripted_pair(lambda i: 11.2 * jitter(i, 0.10), lambda i: 10.0 * jitter(i * 3 + 1, 0.10), repeats=4,
                         max_seconds=1e9)  # fmt: skip
    first = throughput_effect(r.variant_tokens_per_s[:4], r.default_tokens_per_s[:4])
    assert first.verdict == "inconclusive"
    assert r.stopped == STOP_SETTLED and len(r.variant_tokens_per_s) > 4
    assert e.verdict == "worth it" and e.low > 1.05 and e.settled


def test_a_burst_of_load_spoils_a_pair_which_is_dropped_and_counted():
    """Pair 5 (index 4) runs under a burst: both its blocks 3x slower, and unevenly (the variant's block caught
    more of it). The stated rule drops it and counts it; the verdict comes from the other pairs."""
    from bench.tune.verdict import spoiled_pairs, throughput_effect

    default = [100.0 * jitter(i) for i in range(10)]
    variant = [110.0 * jitter(i + 2) for i in range(10)]
    default[4], variant[4] = 40.0, 20.0  # the burst: far from both sides' neighbours
    assert spoiled_pairs(variant, default) == [4]
    e = throughput_effect(variant, default)
    assert e.n_spoiled == 1 and e.n_variant == 9 and e.verdict == "worth it"
    # one side alone far from its neighbours is the variant's own behaviour, never dropped
    variant[4] = 110.0
    assert spoiled_pairs(variant, default) == []
    assert throughput_effect(variant, default).n_spoiled == 0


LDCONFIG = """\t3 libs found in cache `/etc/ld.so.cache'
\tlibtcmalloc_minimal.so.4 (libc6) => /usr/lib/i386-linux-gnu/libtcmalloc_minimal.so.4
\tlibtcmalloc_minimal.so.4 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
\tlibgomp.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libgomp.so.1
"""


def test_an_allocator_is_found_by_ldconfig_or_not_available_with_how_to_install_it():
    from bench.tune.levers import allocator_unavailable, find_library

    assert (
        find_library(("libtcmalloc.so", "libtcmalloc_minimal.so"), LDCONFIG)
        == (
            "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"  # the 64-bit build, not the i386 one listed first
        )
    )
    found = find_library(
        ("libjemalloc.so",), LDCONFIG
    )  # not in that cache: only an environment's lib/ may have it
    assert found is None or ("jemalloc" in found and Path(found).exists())
    why = allocator_unavailable("jemalloc", None)
    assert why.startswith("jemalloc is not installed (`ldconfig -p` lists no libjemalloc.so)")
    assert "apt install libjemalloc2" in why


def test_process_wide_levers_run_in_processes_of_their_own(tmp_path, monkeypatch):
    """OpenMP affinity: the variant and the default each in a child process, only the environment differing,
    alternated as in-process sides are. An allocator that LD_PRELOAD did not load (a path that is not there:
    ld.so only warns and goes on with glibc malloc) fails as such, never measured as if it were jemalloc."""
    import bench.tune.child as child
    from bench.tune import levers

    real = levers.find_library
    monkeypatch.setattr(levers, "find_library", lambda names, text=None: "/nonexistent/libjemalloc.so.2"
                        if names == ("libjemalloc.so",) else real(names, text))  # fmt: skip
    started = []
    real_init = child.ChildTrainer.__init__

    def spy(self, cfg, knobs, device, env):
        started.append((knobs.omp_affinity, knobs.allocator, dict(env)))
        real_init(self, cfg, knobs, device, env)

    monkeypatch.setattr(child.ChildTrainer, "__init__", spy)
    out = tmp_path / "res"
    rc = main(
        ["tune", "--devices", "cpu", *TINY, *SHORT, "--tips", "omp_affinity,allocator", "--out", str(out)]
    )
    assert rc == 1  # the jemalloc variant failed
    default_child = (None, "system", {})
    omp_env = {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}
    assert started[:2] == [
        ("close-cores", "system", omp_env),
        default_child,
    ]  # the variant's, then its default's
    # the jemalloc variant's process failed at once: its default's process was never started
    assert started[2:] == [(None, "jemalloc", {"LD_PRELOAD": "/nonexistent/libjemalloc.so.2"})]
    omp = run_json(out, "cpu-omp-close-cores")
    assert omp["status"] == "ok", omp["error"]
    assert omp["tune"]["process"]["env"] == {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}
    assert omp["tune"]["pairs"] >= 4 and omp["tune"]["knobs"]["omp_affinity"] == "close-cores"
    jem = run_json(out, "cpu-jemalloc")
    assert (
        jem["status"] == "failed"
        and "LD_PRELOAD=/nonexistent/libjemalloc.so.2 was not loaded" in jem["error"]
    )
    tcm = run_json(out, "cpu-tcmalloc")
    assert tcm["status"] in ("skipped", "ok")  # not installed here (with how to install it), or measured
    import psutil

    assert not [
        p for p in psutil.Process().children(recursive=True) if "bench.tune.child" in " ".join(p.cmdline())
    ]


def test_a_low_noise_no_effect_settles_in_few_pairs():
    """Equal speeds under a 1% wobble: 'no effect' is known at the least pairs (or within a few more), long
    before the budget."""
    from bench.tune.verdict import NO_EFFECT, STOP_SETTLED

    r, e = scripted_pair(
        lambda i: 10.0 * jitter(i), lambda i: 10.0 * jitter(i + 5), repeats=6, max_seconds=1e9
    )
    assert r.stopped == STOP_SETTLED and len(r.variant_tokens_per_s) <= 8
    assert e.verdict == NO_EFFECT and 0.95 <= e.low <= 1 <= e.high <= 1.05


def test_a_high_noise_tune_runs_to_the_budget_and_says_what_would_settle_it():
    """Equal speeds under a 30% wobble: the interval stays wider than the bar, so the pairs run until
    --max-seconds (the fake clock) and the line says so, with about how many pairs (and seconds) would settle
    it at the spread measured."""
    from bench.tune.plan import Variant
    from bench.tune.runner import progress_words
    from bench.tune.verdict import INCONCLUSIVE, STOP_BUDGET, pairs_needed, what_would_settle

    r, e = scripted_pair(lambda i: 10.0 * jitter(i, 0.3), lambda i: 10.0 * jitter(i * 3 + 1, 0.3), repeats=6,
                         max_seconds=2.0)  # fmt: skip
    n = len(r.variant_tokens_per_s)
    assert r.stopped == STOP_BUDGET and r.pairs_s >= 2.0 and n > 6
    assert e.verdict == INCONCLUSIVE and not e.settled
    w = what_would_settle(r.variant_tokens_per_s, r.default_tokens_per_s, r.pairs_s)
    assert w["pairs_needed"] > n and w["pairs_needed"] >= pairs_needed(e.ratio, w["spread"])
    assert w["seconds_needed"] == pytest.approx(w["pairs_needed"] * r.pairs_s / n)
    knobs = Knobs("fp32", "off", None, None, False, 4)
    line = progress_words(Variant("cpu", "bf16", "bf16", "dtype", knobs, "throughput"), r)
    assert (
        "--max-seconds ran out" in line
        and f"about {w['pairs_needed']} pairs" in line
        and "inconclusive" in line
    )
