"""`bench report` on hostile results, as a new user might hand it: a run.json of the wrong shape, garbage CSV
rows, two directories with one sweep_id, a directory with no runs, one whose runs all failed. The report is
always made (exit 0); each problem is one warning line naming the directory and the run; no traceback, and no
impossible figure in what is shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.cli import main
from tests import fixtures

SHORT = {"max_iters": 40, "lr_decay_iters": 40, "eval_interval": 10, "timing_warmup_iters": 2}


def one_dir(tmp_path: Path, name: str, **run) -> Path:
    d = fixtures.write_sweep(tmp_path / name, host=name)
    fixtures.write_run(d, run.pop("run_id", "cpu"), host=name, train=SHORT, **run)
    return d


def report(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["report", *map(str, argv)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out
    return rc, out.out, out.err


def warning_lines(err: str) -> list[str]:
    lines = [x for x in err.splitlines() if x.startswith("bench report: warning: ")]
    assert len(lines) == len([x for x in err.splitlines() if x.strip() and not x.startswith("report: ")]), err
    return lines


@pytest.mark.parametrize("payload", [[1, 2, 3], "hello", 1e308, None, {"schema": "someone-elses/1"}])
def test_a_run_json_of_the_wrong_shape_leaves_that_run_out_with_one_warning(tmp_path, capsys, payload):
    good = one_dir(tmp_path, "good")
    bad = one_dir(tmp_path, "bad")
    fixtures.write_run(bad, "fine", host="bad", train=SHORT)
    (bad / "runs/cpu/run.json").write_text(json.dumps(payload))
    rc, out, err = report(capsys, good, bad, "--format", "json")
    assert rc == 0, err
    keys = {r["key"] for r in json.loads(out)["runs"]}
    assert keys == {"good/cpu", "bad/fine"}  # the rest of that directory is kept
    (line,) = [w for w in warning_lines(err) if "runs/cpu" in w]
    assert str(bad / "runs/cpu/run.json") in line and "left out" in line
    # and the text report, and the page, are made too
    assert report(capsys, good, bad, "--html", tmp_path / "r.html")[0] == 0


def test_a_directory_with_no_runs_and_one_whose_runs_all_failed(tmp_path, capsys):
    empty = fixtures.write_sweep(tmp_path / "empty", host="empty")
    rc, out, err = report(capsys, empty)
    assert rc == 0 and out.startswith("No runs here: nothing to report.") and not err.strip()
    failed = fixtures.write_sweep(tmp_path / "failed", host="failed")
    fixtures.write_run(failed, "a", host="failed", train=SHORT, status="failed", error="boom")
    fixtures.write_run(failed, "b", host="failed", train=SHORT, status="failed", error="out of memory")
    rc, out, err = report(capsys, failed, "--format", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["headline"]["evidence"] == {"case": "none", "runs": 2, "finished": 0, "warnings": 0}
    assert data["findings"] == []  # nothing is said about runs that did not finish but that they did not
    rc, out, _ = report(capsys, failed, empty)
    assert rc == 0 and "No run finished" in out and "boom" in out and "out of memory" in out


def test_a_finished_run_with_no_usable_step_time_is_not_said_to_have_not_finished(tmp_path, capsys):
    d = one_dir(tmp_path, "neg")
    path = d / "runs/cpu/run.json"
    meta = json.loads(path.read_text())
    meta["summary"].update(ms_median=-50.0, ms_p10=-60.0)
    path.write_text(json.dumps(meta))
    rc, out, err = report(capsys, d)
    assert rc == 0
    assert out.startswith("1 run finished, but none has step times that can be used")
    lines = warning_lines(err)
    assert len(lines) == 2 and all(str(path) in w and "ms_" in w for w in lines)
    assert "-50" not in out.split("\n\n", 1)[1]  # the negative time is never shown


def test_huge_and_contradicting_figures_are_left_out_with_a_warning_each(tmp_path, capsys):
    """Valid JSON, every field of the right type, and yet impossible: 1e20 threads, a 1e300 ms first step, a
    p90 of 1e308 ms, tokens/s of 1e300 beside a 50 ms step, a negative iteration count. Each is one warning
    naming the run; none is shown, and no figure derived from one is either."""
    d = one_dir(tmp_path, "huge")
    fixtures.write_run(d, "b24", host="huge", train=SHORT, batch_size=24)
    path = d / "runs/cpu/run.json"
    meta = json.loads(path.read_text())
    meta["summary"].update(ms_p90=1e308, first_step_ms=1e300, iters_done=-3, tokens_per_s=1e300, wall_s=1e308,
                           peak_mem_bytes=1e308)  # fmt: skip
    meta.update(threads=1e20, flops_per_token=1e308)
    path.write_text(json.dumps(meta))
    rc, out, err = report(capsys, d, "--all", "--details")
    assert rc == 0, err
    lines = warning_lines(err)
    named = {w.split(": ")[3].split(" = ")[0] for w in lines}
    assert named == {"threads", "flops_per_token", "summary.ms_p90", "summary.first_step_ms",
                     "summary.iters_done", "summary.tokens_per_s", "summary.wall_s", "summary.peak_mem_bytes"}  # fmt: skip
    assert all(str(path) in w for w in lines)
    assert not re.search(r"e\+(\d{3}|[2-9]\d)|\d{13}", out), out  # nothing near 1e20 or past it is shown
    assert report(capsys, d, "--html", tmp_path / "r.html")[0] == 0
    page = re.sub(r"data:image[^\"]*", "", (tmp_path / "r.html").read_text())
    assert not re.search(
        r"e\+(\d{3}|[2-9]\d)</td>|\d{13}", page.split("Left out or ignored while reading")[0]
    )
    rc, out, _ = report(capsys, d, "--format", "json")
    (row,) = [r for r in json.loads(out)["runs"] if r["key"] == "huge/cpu"]
    assert row["threads"] is None and row["ms_p90"] is None and row["first_step_ms"] is None
    # the rate was recomputed from what is left: tokens per iteration over the median step
    tokens_per_iter = meta["tokens_per_iter"]  # 12 x 64, untouched
    assert row["tokens_per_s"] == pytest.approx(tokens_per_iter / (row["ms_median"] / 1e3))


def test_a_p10_above_the_median_is_left_out_not_shown(tmp_path, capsys):
    d = one_dir(tmp_path, "order")
    path = d / "runs/cpu/run.json"
    meta = json.loads(path.read_text())
    meta["summary"].update(ms_p10=80.0, ms_p90=90.0)  # the median is about 50
    path.write_text(json.dumps(meta))
    rc, out, err = report(capsys, d)
    assert rc == 0 and "[80" not in out and "-90" not in out
    assert len(warning_lines(err)) == 2 and "does not bracket the median" in err


def test_garbage_csv_rows_are_one_warning_per_file_naming_the_run(tmp_path, capsys):
    d = one_dir(tmp_path, "garbage")
    with open(d / "runs/cpu/steps.csv", "a") as f:
        f.write("garbage,row\n40,-1e308,1e308,0.001,timed\n41,1e999,nan,x,timed\nzz,1,1,1,timed\n\x00\x00\n")
        f.write("a," * 50 + "\n")
    with open(d / "runs/cpu/evals.csv", "a") as f:
        f.write("x,y,z\n50,val,-1e300,-5\n")
    rc, out, err = report(capsys, d, "--all")
    assert rc == 0, err
    lines = warning_lines(err)
    assert lines and all(str(d / "runs/cpu") in w for w in lines)
    assert not re.search(r"e\+(\d{3}|[2-9]\d)|\d{13}", out), out


def test_two_directories_with_one_sweep_id_are_said_to_be_one_sweep_read_twice(tmp_path, capsys):
    """A copy of a results directory beside the original: its runs would count twice. One warning names both."""
    import shutil

    a = one_dir(tmp_path, "a")
    b = tmp_path / "copy-of-a"
    shutil.copytree(a, b)
    rc, out, err = report(capsys, a, b, "--format", "json")
    assert rc == 0, err
    (line,) = [w for w in warning_lines(err) if "sweep_id" in w]
    assert str(a) in line and str(b) in line
    assert json.loads(out)["warnings"] and len(json.loads(out)["runs"]) == 2  # both kept, told apart


def test_a_negative_or_huge_loss_in_evals_csv_is_never_a_figure(tmp_path, capsys):
    """A val loss of -1e300 (no cross-entropy is below zero) once became "Val 1.6684 vs -1000...000" in the
    config_mismatch sentence; it is left out. A huge positive one (a damaged file) is shown in 3 digits."""
    a = one_dir(tmp_path, "a")
    b = one_dir(tmp_path, "b", batch_size=24)
    with open(b / "runs/cpu/evals.csv", "a") as f:
        f.write("50,val,-1e300,5\n")
    rc, out, err = report(capsys, a, b, "--all")
    assert rc == 0, err
    assert not re.search(r"e\+(\d{3}|[2-9]\d)|\d{13}", out), out
    assert "-1" not in out.split("Findings")[-1]
    from reports import fmt

    assert fmt.loss(1e300) == "1.00e+300" and fmt.loss(1.66844) == "1.6684"
