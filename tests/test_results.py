"""bench.results, the one module that owns the results format: strict JSON, atomic writes that honour the
umask, the writer lock (two real processes), and readers that accept every older directory."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import results as R
from bench.metrics import mfu, mfu_is_possible, step_summary
from tests import fixtures

REPO = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """umask(mask) sets the process umask for the test; the old one is restored after."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def test_module_imports_neither_torch_nor_pandas():
    code = "import sys, bench.results, bench.metrics; bad = {'torch', 'pandas'} & set(sys.modules); assert not bad, bad"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_strict_json_never_writes_nan(tmp_path):
    path = R.atomic_write_json(
        tmp_path / "x.json", {"a": math.nan, "b": [math.inf, 1.5], "c": {"d": -math.inf}}
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": {"d": None}}
    # and a file an older devicebench wrote with bare NaN (issue 14) reads as null
    (tmp_path / "old.json").write_text('{"schema": "devicebench/1", "mfu": NaN}')
    assert R.read_json(tmp_path / "old.json")["mfu"] is None


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_every_file_written_honours_the_umask(tmp_path, umask, mask):
    umask(mask)
    root = fixtures.write_sweep(tmp_path / "r")
    run = fixtures.write_run(root, "cpu", train={"max_iters": 20, "lr_decay_iters": 20, "eval_interval": 10})
    fixtures.write_run(root, "skipped", status="skipped", error="no GPU")
    with R.ResultsDir(root).lock("bench run"):
        pass
    R.atomic_write_text(tmp_path / "r" / "report.html", "<html></html>")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {
        "sweep.json",
        "run.json",
        "steps.csv",
        "evals.csv",
        ".lock",
        "report.html",
    }
    for p in files:
        assert _mode(p) == 0o666 & ~mask, (p, oct(_mode(p)))
    for d in [p for p in tmp_path.rglob("*") if p.is_dir()]:
        assert _mode(d) == 0o777 & ~mask, (d, oct(_mode(d)))
    assert not list(tmp_path.rglob("*.tmp")), "no temp file left behind"
    assert (run / "run.json").is_file()


def test_atomic_write_leaves_the_old_file_when_it_fails(tmp_path):
    path = R.atomic_write_json(tmp_path / "run.json", {"status": "ok"})

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        R.atomic_write_json(path, {"status": Unserialisable()})
    assert json.loads(path.read_text()) == {"status": "ok"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # the temp file beside it is gone


_HOLDER = textwrap.dedent(
    """
    import sys
    from bench.results import ResultsDir
    with ResultsDir(sys.argv[1]).lock("bench run --out X"):
        print("locked", flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)


def _holder(root: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root)], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_in_one_line_naming_the_holder(tmp_path):
    root = tmp_path / "r"
    proc = _holder(root)
    try:
        with pytest.raises(R.ResultsError) as e:
            with R.ResultsDir(root).lock("bench run --resume"):
                pytest.fail("two writers held the lock")
        msg = str(e.value)
        assert "\n" not in msg and e.value.exit_code == 2
        assert msg.startswith(f"{root} is being written by pid {proc.pid} on {socket.gethostname()} since ")
        assert "(`bench run --out X`): wait for it to finish or choose another --out" in msg
        holder = json.loads((root / ".lock").read_text())
        assert holder["pid"] == proc.pid and holder["command"] == "bench run --out X"
    finally:
        proc.stdin.write("\n")
        proc.stdin.close()
        assert proc.stdout.readline().strip() == "released"
        proc.wait(timeout=30)
    with R.ResultsDir(root).lock("bench run --resume"):  # released: the next writer gets it
        assert json.loads((root / ".lock").read_text())["pid"] == os.getpid()
    assert (root / ".lock").read_text() == ""  # released: it no longer names a holder


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    root = tmp_path / "r"
    proc = _holder(root)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert json.loads((root / ".lock").read_text())["pid"] == proc.pid  # its note is still there...
    with R.ResultsDir(root).lock("bench run --resume"):  # ...but the kernel dropped its lock
        pass


def test_lock_on_a_path_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(R.ResultsError, match="choose another --out"):
        with R.ResultsDir(tmp_path / "f").lock("bench run"):
            pass


def test_check_schema_versions():
    assert R.check_schema("devicebench/1", "x") == 1
    assert R.check_schema(R.SCHEMA, "x") == R.SCHEMA_VERSION
    with pytest.raises(R.ResultsError, match="upgrade devicebench"):
        R.check_schema(f"devicebench/{R.SCHEMA_VERSION + 1}", "x")
    for bad in (None, 2, "devicebench-profile/1", "devicebench/x", "devicebench/-1"):
        with pytest.raises(R.ResultsError):
            R.check_schema(bad, "x")
    assert R.check_schema("devicebench-profile/1", "p", R.PROFILE_SCHEMA_NAME, R.PROFILE_SCHEMA_VERSION) == 1
    with pytest.raises(R.ResultsError, match="not a devicebench profile file"):
        R.check_schema("devicebench/2", "p", R.PROFILE_SCHEMA_NAME, R.PROFILE_SCHEMA_VERSION)


DATA = Path(__file__).resolve().parent / "data"


def test_readers_accept_a_schema_1_directory():
    """tests/data/results-schema1: as devicebench wrote it before schema 2 (no phase column, no profile)."""
    root = DATA / "results-schema1"
    run = root / "runs" / "cpu-fp32-b12-eager"
    assert R.read_sweep(root)["host"] == "old"
    assert R.run_dirs(root) == [run]
    rec = R.read_run(run)
    assert rec.warnings == [] and rec.meta["summary"]["ms_median"] == 52.0
    steps = R.read_steps(run, warmup_iters=rec.meta["summary"]["warmup_iters"])
    assert steps.columns["phase"] == ["warmup", "warmup", "timed", "timed", "timed"]
    assert steps.columns["ms"] == [50.0, 51.0, 52.0, 53.0, 54.0] and steps.bad_rows == 0
    assert R.read_evals(run).columns["split"] == ["train", "val", "train", "val"]
    assert R.read_profile(run / "profile.json") is None  # no profile: not profiled


def test_readers_accept_a_schema_2_directory_written_before_this_module():
    """tests/data/results-schema2: written by `bench run --profile 1` before this change (0600 JSON files,
    a profile.json that stores its own sentence)."""
    root = DATA / "results-schema2"
    (run,) = R.run_dirs(root)
    rec = R.read_run(run)
    assert rec.warnings == [] and rec.meta["status"] == "ok"
    steps = R.read_steps(run, 0)
    assert len(steps) == 12 and steps.columns["phase"][:2] == ["warmup", "warmup"]
    assert "sentence" in R.read_profile(run / "profile.json")


@pytest.mark.parametrize("with_sentence", [True, False])
def test_profile_reader_with_or_without_a_stored_sentence(tmp_path, with_sentence):
    prof = {
        "schema": "devicebench-profile/1",
        "mean": {"step_ms": 4.0, "fraction": {"matmul": 0.5, "other": 0.5}},
    }
    if with_sentence:
        prof["sentence"] = "words from an older devicebench"
    (tmp_path / "profile.json").write_text(json.dumps(prof))
    assert R.read_profile(tmp_path / "profile.json")["mean"]["step_ms"] == 4.0


@pytest.mark.parametrize(
    ("text", "match"),
    [("{", "corrupt"), ("[]", "expected a JSON object"), ('{"schema": "devicebench-profile/9"}', "newer"),
     ('{"schema": "devicebench-profile/1"}', "no 'mean'"),
     ('{"schema": "devicebench-profile/1", "mean": {"fraction": {"matmul": 1}}}', "step_ms"),
     ('{"schema": "devicebench-profile/1", "mean": {"step_ms": 3, "fraction": {"matmul": "x"}}}', "fraction"),
     ('{"schema": "devicebench-profile/1", "mean": {"step_ms": -3, "fraction": {"matmul": 1}}}', "step_ms")],
)  # fmt: skip
def test_a_malformed_profile_is_refused_in_one_line(tmp_path, text, match):
    (tmp_path / "profile.json").write_text(text)
    with pytest.raises(R.ResultsError, match=match) as e:
        R.read_profile(tmp_path / "profile.json")
    assert "\n" not in str(e.value)


def test_run_fields_of_the_wrong_type_read_as_null_with_a_warning(tmp_path):
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    meta = {"schema": "devicebench/2", "run_id": 7, "status": "ok", "batch_size": "12", "threads": True,
            "model": ["n_layer", 4], "peak_flops": {"value": "1e12", "source": 3},
            "summary": {"ms_median": -5, "tokens_per_s": "fast", "mfu": 0.5, "host_load": {"steal_cpu_cores": "x"}},
            "compile": False}  # fmt: skip
    (run / "run.json").write_text(json.dumps(meta))
    rec = R.read_run(run)
    m = rec.meta
    assert m["run_id"] is None and m["batch_size"] is None and m["threads"] is None and m["model"] is None
    assert m["peak_flops"] == {"value": None, "source": "3"} and m["compile"] == "off"
    assert m["summary"]["ms_median"] is None and m["summary"]["tokens_per_s"] is None
    assert m["summary"]["mfu"] == 0.5 and m["summary"]["host_load"] == {"steal_cpu_cores": None}
    named = " ".join(rec.warnings)
    for field in ("run_id", "batch_size", "threads", "model", "peak_flops.value", "summary.ms_median",
                  "summary.tokens_per_s"):  # fmt: skip
        assert f"{field} = " in named
    assert all(w.startswith(str(run / "run.json")) and "\n" not in w for w in rec.warnings)
    # a number at or below zero is named as what it is not: a number above zero (never "not a number")
    assert "summary.ms_median = -5 is not a number above zero" in named


def test_steps_with_garbage_and_huge_values(tmp_path):
    (tmp_path / "steps.csv").write_text(
        "iter,ms,loss,lr,phase\n"
        "0,10,4.0,0.001,warmup\n"
        "1,abc,3.9,0.001,timed\n"  # not a number: NaN, the row kept
        "2,1e999,inf,0.001,timed\n"  # an infinite time is no time; an infinite loss is a diverged run
        "x,10,3.0,0.001,timed\n"  # no iteration: left out
        "-1,10,3.0,0.001,timed\n"
        "4.5,10,3.0,0.001,timed\n"
        "1e300,10,3.0,0.001,timed\n"
        "5,10,3.0\n"  # short row: left out
        "6,-3,2.0,0.001,timed\n"  # a time below zero is no time
        "\n"
    )
    rows = R.read_steps(tmp_path)
    assert rows.columns["iter"] == [0.0, 1.0, 2.0, 6.0] and rows.bad_rows == 5
    ms = rows.columns["ms"]
    assert ms[0] == 10.0 and all(math.isnan(v) for v in ms[1:])
    assert rows.columns["loss"][2] == math.inf


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"ms,loss\n1,2\n", "no iter column"), (b"iter,ms\n\xff\xfe,1\n", "corrupt"), (b"", None)],
)
def test_unusable_csv_is_named_not_fatal(tmp_path, content, problem):
    (tmp_path / "steps.csv").write_bytes(content)
    rows = R.read_steps(tmp_path)
    assert len(rows) == 0
    assert (rows.problem is None) if problem is None else (problem in rows.problem)


def test_unreadable_run_json_is_one_line(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    fixtures.deny_reading(monkeypatch, "run.json")
    with pytest.raises(R.ResultsError, match="permission denied: ask its owner for read access"):
        R.read_run(run)


def test_metrics_mfu_is_computed_once_and_flags_the_impossible():
    assert mfu(5e11, 1e12) == 0.5
    assert mfu(None, 1e12) is None and mfu(1e12, None) is None and mfu(1e12, 0) is None
    assert mfu(1e12, math.nan) is None
    assert mfu_is_possible(0.99) and mfu_is_possible(None) and not mfu_is_possible(1.5)
    s = step_summary([10.0, 20.0, 30.0, 40.0, 50.0], 100, 1e9, 2e11)
    assert (
        s["ms_median"] == 30.0 and s["ms_p10"] == pytest.approx(14.0) and s["ms_p90"] == pytest.approx(46.0)
    )
    assert s["mfu"] == mfu(s["achieved_flops_per_s"], 2e11) == pytest.approx(1e9 / 0.03 / 2e11)


def test_the_fixture_writer_writes_what_the_readers_read(tmp_path):
    """tests/fixtures.py goes through ResultsDir/RunWriter and step_summary: its files read back whole."""
    root = fixtures.write_sweep(tmp_path / "r")
    run = fixtures.write_run(root, "cpu", train={"max_iters": 30, "lr_decay_iters": 30, "eval_interval": 10})
    rec = R.read_run(run)
    steps = R.read_steps(run)
    timed = [ms for ms, ph in zip(steps.columns["ms"], steps.columns["phase"], strict=True) if ph == "timed"]
    assert rec.warnings == [] and len(steps) == 30 and steps.columns["phase"][:10] == ["warmup"] * 10
    assert rec.meta["summary"]["ms_median"] == pytest.approx(
        step_summary(timed, 1, 1, None)["ms_median"], abs=1e-3
    )
    assert sorted(set(R.read_evals(run).columns["iter"])) == [0, 10, 20, 30]


def test_a_fifo_where_a_file_should_be_never_blocks(tmp_path):
    os.mkfifo(tmp_path / "steps.csv")
    os.mkfifo(tmp_path / "profile.json")
    os.mkfifo(tmp_path / "run.json")
    assert "not a regular file" in R.read_steps(tmp_path).problem
    with pytest.raises(R.ResultsError, match="not a regular file"):
        R.read_profile(tmp_path / "profile.json")
    with pytest.raises(R.ResultsError, match="not a regular file"):
        R.read_json(tmp_path / "run.json")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize(
    "tail",
    [
        "",
        '7,"10",2.0,0.001,timed\n',
        "7,10,2.0,0.001,timed,extra\n8,10,2.0,0.001\n",
        "7,10,2.0,0.001,timed\r\n",
    ],
)
def test_the_column_reader_reads_as_the_csv_module_does(tmp_path, newline, tail):
    """The whole-column fast path (plain lines) and the csv module's row-by-row path (quotes, ragged lines)
    give the same columns: garbage cells NaN, bad rows counted, negative times dropped."""
    import csv

    body = (
        "0,10,4.0,0.001,warmup\n1,abc,3.9,0.001,timed\n2,-3,3.8,,timed\nx,1,1,1,timed\n3,11,3.7,0.001,timed\n"
    )
    text = ("iter,ms,loss,lr,phase\n" + body + tail).replace("\n", newline)
    (tmp_path / "steps.csv").write_bytes(text.encode())
    rows = R.read_steps(tmp_path)
    expected = [r for r in csv.reader(text.splitlines()[1:]) if len(r) == 5 and r[0].isdigit()]
    assert rows.columns["iter"] == [float(r[0]) for r in expected]
    assert rows.columns["phase"] == [r[4] for r in expected]
    assert rows.bad_rows == 1 + (2 if "extra" in tail else 0)
    ms = rows.columns["ms"]
    assert ms[0] == 10.0 and math.isnan(ms[1]) and math.isnan(ms[2]) and ms[3] == 11.0
    assert math.isnan(rows.columns["lr"][2])


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize(
    "cell",
    ["1e5", ".5", "5.", "+3", "-0", "1e400", "1e-400", "nan", "inf", " 7", "1_0", "", "1e", "0x10", "\u0663"],
)
@pytest.mark.parametrize("arrays", [False, True])
def test_numpy_reads_every_number_cell_as_float_does(tmp_path, newline, cell, arrays):
    """Plain files are parsed by numpy in one go (what a 1,500-run report needs): each cell is the value float()
    gives, NaN where float() refuses it, whether numpy reads the column or the csv path does."""
    import csv

    lines = ["0,10,4.0,0.001,warmup", f"1,{cell},3.9,{cell},timed", "2,12.25,3.8,0.0005,timed"]
    text = newline.join(["iter,ms,loss,lr,phase", *lines]) + newline
    (tmp_path / "steps.csv").write_bytes(text.encode())
    rows = R.read_steps(tmp_path, arrays=arrays)

    def num(c: str) -> float:
        try:
            return float(c)
        except ValueError:
            return math.nan

    expected = list(csv.reader(lines))
    for name, i in (("ms", 1), ("lr", 3)):
        want = [num(r[i]) for r in expected]
        want = [v if 0 <= v < math.inf else math.nan for v in want]
        got = [float(v) for v in rows.columns[name]]
        assert [repr(v) for v in got] == [repr(v) for v in want], name
    assert list(rows.columns["phase"]) == ["warmup", "timed", "timed"] and rows.bad_rows == 0


STEPS_TEXT = "iter,ms,loss,lr,phase\n" + "".join(
    f"{i},{10 + i / 2:.4f},{5 - i / 100:.6f},0.001,{'warmup' if i < 2 else 'timed'}\n" for i in range(12)
)
EVALS_TEXT = "iter,split,loss,ms\n" + "".join(
    f"{i * 5},{s},{4 - i / 10:.4f},{12.5 + i}\n" for i in range(4) for s in ("train", "val")
)
DAMAGE = [  # what hands, editors and full disks do to a CSV file: each alone and in pairs
    ("blank line", lambda t: t.replace("\n", "\n\n", 2)),
    ("whitespace line", lambda t: t.replace("\n", "\n   \n", 1)),
    ("tab line", lambda t: t + "\t\n"),
    ("extra cell", lambda t: t.replace("\n3,", "\n3,x,", 1)),
    ("missing cell", lambda t: t.replace(",", "", 2)),
    ("empty cell", lambda t: t.replace(",0.001,", ",,", 1).replace(",train,", ",,", 1)),
    ("CRLF", lambda t: t.replace("\n", "\r\n")),
    ("some CRLF", lambda t: t.replace("\n", "\r\n", 3)),
    ("spaced cells", lambda t: t.replace(",", ", ", 3).replace("timed", " timed ", 2)),
    ("nan and inf", lambda t: t.replace("5", "nan", 1).replace("1", "inf", 1)),
    ("cut mid-row", lambda t: t[:-5]),
    ("no final newline", lambda t: t.rstrip("\n")),
    ("negative and fractional iters", lambda t: t.replace("\n3,", "\n-3,", 1).replace("\n10,", "\n10.5,", 1)),
    ("comment-like line", lambda t: t.replace("\n", "\n#c\n", 1)),
]


@pytest.mark.parametrize("kind", ["steps", "evals"])
def test_the_fast_reader_and_the_csv_module_read_damaged_files_alike(tmp_path, monkeypatch, kind):
    """A plain file goes through numpy in one call; anything else through the csv module, row by row. Whichever
    path a file takes, the rows kept, the values and the count of bad rows are the same."""
    import itertools

    read = (
        (lambda: R.read_steps(tmp_path, 2, arrays=True))
        if kind == "steps"
        else (lambda: R.read_evals(tmp_path, arrays=True))
    )
    base = STEPS_TEXT if kind == "steps" else EVALS_TEXT
    cases = [[d] for d in DAMAGE] + [list(p) for p in itertools.combinations(DAMAGE, 2)] + [[]]
    fast_taken = 0
    for damage in cases:
        text = base
        for _, f in damage:
            text = f(text)
        (tmp_path / f"{kind}.csv").write_bytes(text.encode())
        with monkeypatch.context() as m:
            m.setattr(R, "_typed_columns", lambda *a: None)
            m.setattr(R, "_plain_columns", lambda *a: None)
            slow = read()
        fast_taken += (
            R._typed_columns(text.partition("\n")[2], len(base.split("\n")[0].split(",")), [0]) is not None
        )
        fast = read()
        names = [n for n, _ in damage]
        assert (fast.bad_rows, fast.problem) == (slow.bad_rows, slow.problem), names
        for c, got in fast.columns.items():
            want = slow.columns[c]
            assert [repr(v) for v in list(got)] == [repr(v) for v in list(want)], (names, c)
    assert (
        fast_taken >= 5
    )  # the plain files (spaced cells, nan, CRLF, no final newline, untouched) took numpy's path


def test_results_class_loads_migrates_saves_and_derives(tmp_path):
    """One class owns a directory: load (checked, migrated), save (current schema, atomic), derived columns."""
    root = fixtures.write_sweep(tmp_path / "r")
    run = fixtures.write_run(root, "cpu", train={"max_iters": 20, "lr_decay_iters": 20, "eval_interval": 10})
    meta = json.loads((run / "run.json").read_text())
    meta["schema"] = "devicebench/1"
    meta["compile"] = False  # schema 1 wrote a boolean
    del meta["summary"]["mfu"], meta["summary"]["tokens_per_s"]  # before MFU and tokens/s were stored
    (run / "run.json").write_text(json.dumps(meta))
    loaded = R.Results.load(root)
    (record,) = loaded.runs
    assert record.meta["compile"] == "off"
    d = loaded.derived(record)
    s = meta["summary"]
    assert d["tokens_per_s"] == pytest.approx(meta["tokens_per_iter"] / (s["ms_median"] / 1e3))
    assert d["mfu"] == pytest.approx(s["achieved_flops_per_s"] / meta["peak_flops"]["value"])
    assert d["mfu_impossible"] is False and d["energy_source"] is None and d["world_size"] == 1
    record.meta["peak_flops"]["value"] = s["achieved_flops_per_s"] / 2  # a peak below what ran
    assert loaded.derived(record)["mfu_impossible"] is True
    loaded.save()
    again = json.loads((run / "run.json").read_text())
    assert again["schema"] == R.SCHEMA and again["compile"] == "off"
    assert R.read_sweep(root)["schema"] == R.SCHEMA and not list(root.rglob("*.tmp"))


def test_the_report_derives_through_the_results_class(tmp_path):
    """reports.load computes no figure itself: its MFU, tokens/s and energy columns are derived_columns'."""
    from reports.load import load_results

    root = fixtures.write_sweep(tmp_path / "r")
    run = fixtures.write_run(root, "cpu", train={"max_iters": 20, "lr_decay_iters": 20, "eval_interval": 10})
    row = load_results(root).runs.loc["laptop/cpu"]
    derived = R.Results.load(root).derived(R.read_run(run))
    for k, v in derived.items():
        assert row[k] == v or (v is None and row[k] is None) or (v != v and row[k] != row[k]), k
