"""`bench report` on hostile results, as a new user might hand it: a run.json of the wrong shape, garbage CSV
rows, two directories with one sweep_id, a directory with no runs, one whose runs all failed. The report is
always made (exit 0); each problem is one warning line naming the directory and the run; no traceback, and no
impossible figure in what is shown."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("payload", [[1, 2, 3], "hello", 1e308, None, {"schema": "devicebench/99"}])
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
