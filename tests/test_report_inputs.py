"""`bench report` on bad input (issue 15 and beyond): every case renders, or ends in one line with exit 2;
no output path can overwrite an input; no figure is wrong without a word."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest

from bench.cli import main
from reports.diagnosis import diagnose
from reports.load import load_results
from tests import fixtures

SHORT = {"max_iters": 40, "lr_decay_iters": 40, "eval_interval": 10, "timing_warmup_iters": 2}


def one_dir(tmp_path: Path, name: str = "r", host: str = "laptop", **run) -> Path:
    d = fixtures.write_sweep(tmp_path / name, host=host)
    fixtures.write_run(d, run.pop("run_id", "cpu"), host=host, train=SHORT, **run)
    return d


def report(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["report", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bench report: error: ") and "Traceback" not in err
    return lines[0]


# --- the cases of issue 15 --------------------------------------------------------------------------


def test_directory_without_evals_renders_html(tmp_path, capsys):
    d = one_dir(tmp_path)
    (d / "runs/cpu/evals.csv").write_text("iter,split,loss,ms\n")
    rc, _, err = report(capsys, d, "--html")
    assert rc == 0, err
    page = (d / "report.html").read_text()
    assert 'id="plot-loss"' in page and "data:image/png;base64," in page
    (d / "runs/cpu/evals.csv").unlink()  # no file at all: the same
    assert report(capsys, d, "--html")[0] == 0


def test_dollar_signs_in_a_host_label_are_drawn_as_written(tmp_path, capsys):
    host = r"lab$\alpha^^$box"
    a = one_dir(tmp_path, "a", host=host)
    b = one_dir(tmp_path, "b", host="desk$top")
    rc, out, err = report(capsys, a, b, "--html")
    assert rc == 0, err
    assert host in out
    from reports.plots import text

    assert text(host) == r"lab\$\alpha^^\$box"  # escaped: matplotlib draws it, never parses it as mathtext


def test_two_directories_with_the_same_host_and_run_id_give_rows_told_apart(tmp_path, capsys):
    a = one_dir(tmp_path / "x", "results", ms=50.0)
    b = one_dir(tmp_path / "y", "results", ms=80.0)
    results = load_results([a, b])
    assert len(results.runs) == 2
    assert sorted(results.runs.index) == ["laptop/x/results/cpu", "laptop/y/results/cpu"]
    assert sorted(results.runs["name"]) == ["x/results/cpu", "y/results/cpu"]
    rc, out, _ = report(capsys, a, b)
    rows = [line for line in out.splitlines() if line.startswith("laptop ")]
    assert len(rows) == 2 and rows[0] != rows[1] and "x/results/cpu" in out and "y/results/cpu" in out
    rc, out, _ = report(capsys, a, b, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert len({r["key"] for r in table}) == 2 and len({r["results_dir"] for r in table}) == 2
    # the same directory twice is one directory
    assert len(load_results([a, a]).runs) == 1


def test_one_directory_holding_two_runs_with_one_run_id(tmp_path):
    d = one_dir(tmp_path)
    run2 = d / "runs" / "cpu-copy"
    run2.mkdir()
    for f in (d / "runs/cpu").iterdir():
        (run2 / f.name).write_bytes(f.read_bytes())  # run.json still says run_id "cpu"
    results = load_results(d)
    assert sorted(results.runs["name"]) == ["r/runs/cpu", "r/runs/cpu-copy"]
    assert len(set(results.runs.index)) == 2


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://x","y")', "+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_never_passes_a_formula_through(tmp_path, capsys, cell):
    d = one_dir(tmp_path, status="failed", error=cell)
    rc, out, _ = report(capsys, d, "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(out, newline="")))  # a CR inside a cell is quoted
    assert row["error"] == "'" + cell
    assert float(row["ms_median"]) > 0  # numbers stay numbers


def test_csv_keeps_negative_numbers_as_numbers():
    from reports.summary import csv_cell

    assert csv_cell(-1.5) == -1.5 and csv_cell("-1.5") == "-1.5" and csv_cell("-x") == "'-x"


def test_malformed_profile_is_one_warning_and_left_out(tmp_path, capsys):
    d = one_dir(tmp_path)
    fixtures.write_run(d, "cpu2", train=SHORT)
    (d / "runs/cpu/profile.json").write_text(json.dumps({"schema": "devicebench-profile/1", "mean": {}}))
    rc, out, err = report(capsys, d, "--html")
    assert rc == 0
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(d / "runs/cpu/profile.json") in warnings[0]
    assert "left out" in warnings[0] and "'mean'" not in out
    assert "step_breakdown" not in out and "profile.json" in (d / "report.html").read_text()


def test_impossible_mfu_is_never_shown_as_a_result(tmp_path, capsys):
    d = one_dir(tmp_path, peak=1e9)  # a peak far below what the run achieved: a wrong peak
    results = load_results(d)
    value = results.runs.iloc[0]["mfu"]
    assert value > 1
    pct = f"{value * 100:,.0f}%"
    rc, out, _ = report(capsys, d)
    row = next(line for line in out.splitlines() if line.startswith("laptop"))
    assert f"impossible ({pct})" in row
    assert "wrong" in out and "not shown as a result" in out
    rc, out, _ = report(capsys, d, "--format", "json")
    run = json.loads(out)["runs"][0]
    assert run["mfu"] is None and run["mfu_impossible"] == pytest.approx(value)
    rc, out, _ = report(capsys, d, "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["mfu"] == "" and float(row["mfu_impossible"]) == pytest.approx(value)
    assert report(capsys, d, "--html")[0] == 0
    page = (d / "report.html").read_text()
    assert f"impossible ({pct})" in page and "its MFU is impossible" in page
    assert not re.search(rf"<td class=num>{re.escape(pct)}</td>", page)


# --- output paths -----------------------------------------------------------------------------------


def test_html_before_two_directories_reads_both(tmp_path, capsys):
    a = one_dir(tmp_path, "a", host="a")
    b = one_dir(tmp_path, "b", host="b")
    rc, out, err = report(capsys, "--html", a, b)
    assert rc == 0, err
    assert (a / "report.html").is_file() and json.loads((a / "sweep.json").read_text())["host"] == "a"
    assert "a/cpu" in (a / "report.html").read_text() and "b/cpu" in (a / "report.html").read_text()
    rc, out, err = report(capsys, b, "--html", a)  # the order given decides the default page's home
    assert rc == 0 and (b / "report.html").is_file()


@pytest.mark.parametrize("target", ["sweep.json", "runs/cpu/run.json", "runs/cpu/steps.csv", "runs/cpu/profile.json",
                                    ".lock", "", "runs", "runs/cpu"])  # fmt: skip
def test_an_output_path_can_never_be_an_input_or_a_results_file(tmp_path, capsys, target):
    d = one_dir(tmp_path)
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    rc, out, err = report(capsys, d, f"--html={d / target}")
    assert rc == 2 and out == ""
    one_error_line(err)
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before


def test_a_link_named_html_to_a_results_file_is_refused(tmp_path, capsys):
    d = one_dir(tmp_path)
    (tmp_path / "page.html").symlink_to(d / "sweep.json")
    rc, _, err = report(capsys, d, "--html", tmp_path / "page.html")
    assert rc == 2 and "sweep.json" in one_error_line(err)
    assert json.loads((d / "sweep.json").read_text())["host"] == "laptop"


def test_an_html_name_given_as_a_directory_says_what_to_do(tmp_path, capsys):
    d = one_dir(tmp_path)
    rc, _, err = report(capsys, d, tmp_path / "out.html")
    assert rc == 2 and "--html=" in one_error_line(err)


def test_html_page_written_atomically_beside_its_target(tmp_path, capsys, monkeypatch):
    d = one_dir(tmp_path)
    out = tmp_path / "pages" / "week1.html"
    out.parent.mkdir()
    out.write_text("old page")
    import reports.html

    def boom(*a, **k):
        raise RuntimeError("render failed")

    monkeypatch.setattr(reports.html, "render_html", boom)
    assert main(["report", str(d), f"--html={out}"]) == 1
    assert out.read_text() == "old page" and os.listdir(out.parent) == ["week1.html"]
    monkeypatch.undo()
    capsys.readouterr()
    assert report(capsys, d, f"--html={out}")[0] == 0 and out.read_text().startswith("<!DOCTYPE html>")


def test_unwritable_html_target_is_one_line(tmp_path, capsys):
    d = one_dir(tmp_path)
    (tmp_path / "file").write_text("x")
    rc, _, err = report(capsys, d, f"--html={tmp_path / 'file' / 'r.html'}")
    assert rc == 2 and "cannot write" in one_error_line(err)


# --- directories written before this change ---------------------------------------------------------


@pytest.mark.parametrize("name", ["results-schema1", "results-schema2"])
def test_directories_written_before_still_report(tmp_path, capsys, name):
    import shutil

    d = shutil.copytree(Path(__file__).parent / "data" / name, tmp_path / name)
    rc, out, err = report(capsys, d, "--html")
    assert rc == 0 and err.startswith("report: ") and "warning" not in err
    results = load_results(d)
    (key,) = results.runs.index
    assert results.runs.loc[key, "status"] == "ok" and len(results.steps_of(key)) in (5, 12)
    assert set(results.steps_of(key)["phase"]) == {"warmup", "timed"}
    if name == "results-schema1":  # no stored MFU: computed as a run would, from its achieved FLOP/s and peak
        assert results.runs.loc[key, "mfu"] == pytest.approx(1e10 / 1e12)
    else:  # a stored sentence is ignored: the words come from the profile's numbers
        (f,) = [f for f in diagnose(results) if f.kind == "step_breakdown"]
        assert (
            f.evidence["device"] == "cpu" and f.evidence["batch_size"] == 2 and "sentence" not in f.evidence
        )


# --- other bad input --------------------------------------------------------------------------------


def test_json_output_is_strict(tmp_path, capsys):
    d = one_dir(tmp_path, status="failed", error="nan loss")
    meta = json.loads((d / "runs/cpu/run.json").read_text())
    meta["summary"]["final_val_loss"] = None
    (d / "runs/cpu/run.json").write_text(json.dumps(meta))
    rc, out, _ = report(capsys, d, "--format", "json")
    assert rc == 0 and "NaN" not in out and "Infinity" not in out
    json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def test_empty_directories(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, _, err = report(capsys, tmp_path / "empty")
    assert rc == 2 and "no sweep.json" in one_error_line(err)
    d = fixtures.write_sweep(tmp_path / "sweep-only")  # a sweep that never started a run
    rc, out, err = report(capsys, d, "--html", "--format", "json")
    assert rc == 0 and json.loads(out)["runs"] == [] and (d / "report.html").is_file()


def test_a_results_directory_that_is_a_file(tmp_path, capsys):
    (tmp_path / "results").write_text("not a directory")
    rc, _, err = report(capsys, tmp_path / "results")
    assert rc == 2 and "is a file" in one_error_line(err)
    d = one_dir(tmp_path)
    rc, _, err = report(capsys, d / "sweep.json")
    assert rc == 2 and f"pass its directory, {d}" in one_error_line(err)
    (d / "runs/cpu").rename(tmp_path / "moved")
    (d / "runs").rmdir()
    (d / "runs").write_text("x")
    rc, _, err = report(capsys, d)
    assert rc == 2 and "not a directory" in one_error_line(err)


def test_run_json_with_missing_fields_and_wrong_types_renders(tmp_path, capsys):
    d = one_dir(tmp_path)
    fixtures.write_run(d, "gpu", device="cuda:0", device_name="GPU", train=SHORT, ms=5.0, peak=80e12)
    (d / "runs/bare").mkdir()
    (d / "runs/bare/run.json").write_text(json.dumps({"schema": "devicebench/2"}))
    path = d / "runs/cpu/run.json"
    meta = json.loads(path.read_text())
    meta.update(batch_size="12", model=[1, 2], train="x", summary={**meta["summary"], "ms_median": "fast"})
    path.write_text(json.dumps(meta))
    rc, out, err = report(capsys, d, "--html", "--format", "md")
    assert rc == 0, err
    assert "batch_size" in err and "summary.ms_median" in err and "Traceback" not in err
    assert "| laptop | bare |" in out  # a run.json with nothing but its schema is still listed


def test_steps_with_garbage_and_huge_values_render(tmp_path, capsys):
    d = one_dir(tmp_path)
    with open(d / "runs/cpu/steps.csv", "a") as f:
        f.write("garbage,row\n40,1e308,1e308,0.001,timed\n41,1e999,nan,x,timed\nzz,1,1,1,timed\n")
    rc, _, err = report(capsys, d, "--html")
    assert rc == 0, err
    assert "2 unreadable rows left out" in err


def test_unicode_and_html_in_labels_are_escaped(tmp_path, capsys):
    host = "<script>alert(1)</script>-Ünïcødé-机器"
    d = one_dir(tmp_path, host=host, error="<b>x</b>", device_name="<img src=x onerror=alert(1)>")
    rc, out, _ = report(capsys, d, "--html")
    page = (d / "report.html").read_text(encoding="utf-8")
    assert rc == 0 and host in out
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;-Ünïcødé-机器" in page


def test_terminal_escape_sequences_in_labels_are_neutralised(tmp_path, capsys):
    d = one_dir(tmp_path, host="evil\x1b[2J\nhost", status="failed", error="line1\nline2\x1b]0;title\x07")
    rc, out, _ = report(capsys, d)
    assert rc == 0 and "\x1b" not in out and "\x07" not in out
    assert "evil [2J host" in out and "line1 line2 ]0;title" in out
    from reports.summary import one_line

    assert one_line("abc\u202edcba\u2066x") == "abc dcba x"  # no right-to-left override reorders a line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file: permission denied cannot happen")
def test_permission_denied_is_one_line(tmp_path, capsys):
    d = one_dir(tmp_path)
    (d / "runs/cpu/run.json").chmod(0)
    rc, _, err = report(capsys, d)
    assert rc == 2 and "permission denied" in one_error_line(err)


def test_permission_denied_is_one_line_even_as_root(tmp_path, capsys, monkeypatch):
    d = one_dir(tmp_path)
    fixtures.deny_reading(monkeypatch, "run.json")
    rc, _, err = report(capsys, d)
    assert rc == 2 and "permission denied" in one_error_line(err)


def test_report_piped_into_head_is_not_an_error(tmp_path):
    import subprocess
    import sys

    d = one_dir(tmp_path)
    for i in range(40):
        fixtures.write_run(d, f"cpu-{i}", train={**SHORT, "max_iters": 12, "lr_decay_iters": 12}, seed=i)
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(f"{sys.executable} -m bench report {d} --format md | head -1", shell=True, cwd=repo,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)})  # fmt: skip
    assert proc.stdout.startswith("**Synthetic CPU fp32: ") and proc.stderr == "", proc.stderr


def test_an_absurd_figure_is_never_hundreds_of_digits(tmp_path, capsys):
    d = one_dir(tmp_path, peak=1e-250)  # a damaged peak: an MFU of about 1e262
    rc, out, err = report(capsys, d)
    assert rc == 0, err
    assert "impossible" in out
    assert not re.search(r"[\d,]{40}", out + err), max((out + err).splitlines(), key=len)[:300]


def test_a_run_that_lost_its_run_json_is_said_to_be_left_out(tmp_path, capsys):
    d = one_dir(tmp_path)
    fixtures.write_run(d, "gone", host="laptop", train=SHORT)
    (d / "runs/gone/run.json").unlink()  # its steps are there, its record is not
    (d / "runs/never").mkdir()  # a run that never started: only CSV headers, nothing to say
    (d / "runs/never/steps.csv").write_text("iter,ms,loss,lr,phase\n")
    rc, out, err = report(capsys, d)
    assert rc == 0
    assert "runs/gone: steps.csv holds steps but there is no run.json" in err
    assert "never" not in err


@pytest.mark.parametrize("damage", ["missing", "empty", "header only"])
def test_an_ok_run_without_steps_says_its_curve_is_left_out(tmp_path, capsys, damage):
    d = one_dir(tmp_path)
    steps = d / "runs/cpu/steps.csv"
    if damage == "missing":
        steps.unlink()
    else:
        steps.write_text("" if damage == "empty" else "iter,ms,loss,lr,phase\n")
    rc, out, err = report(capsys, d)
    assert rc == 0
    assert "runs/cpu: an ok run whose steps.csv is missing or has no rows" in err
    assert "cpu" in out  # the run's summary row is still there


def test_a_whole_run_gives_no_steps_warning(tmp_path, capsys):
    rc, out, err = report(capsys, one_dir(tmp_path))
    assert rc == 0 and "steps.csv" not in err
