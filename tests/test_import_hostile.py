"""`bench import nanogpt` on real logs made hostile the way files reach a new user: re-encoded, cut, merged,
printed by several ranks, resumed. Each is a one-line refusal or a labelled result, never a traceback and never
an impossible figure. The base is a real log (tests/data/nanogpt-wild/macmini-m4-mps-echo.log: full echo, 501
iterations, imports without --set), so the answer each variant must give is the clean log's own import."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.cli import main
from bench.results import read_json

WILD = Path(__file__).parent / "data" / "nanogpt-wild"
BASE = (WILD / "macmini-m4-mps-echo.log").read_text(encoding="utf-8")


def run(tmp_path: Path, name: str, data: bytes | str, *args: str) -> tuple[int, dict | None]:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    out = tmp_path / ("out-" + name)
    code = main(["import", "nanogpt", str(path), "--out", str(out), *args])
    runs = sorted((out / "runs").iterdir()) if (out / "runs").exists() else []
    return code, read_json(runs[0] / "run.json") if runs else None


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict:
    code, meta = run(tmp_path_factory.mktemp("clean"), "clean.log", BASE)
    assert code == 0 and meta is not None
    return meta["summary"]


def same_figures(summary: dict, clean: dict) -> None:
    for key in ("ms_median", "iters_done", "mfu_vs_a100", "final_train_loss", "final_val_loss"):
        assert summary[key] == clean[key], key


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_reads_like_utf8(tmp_path, clean, encoding):
    """Some Windows tools write UTF-16 with no BOM: every other byte NUL. That is text, not a binary file."""
    code, meta = run(tmp_path, "nobom.log", BASE.replace("\n", "\r\n").encode(encoding))
    assert code == 0
    same_figures(meta["summary"], clean)


def test_utf16_without_a_bom_and_chinese_text_is_still_text(tmp_path, capsys):
    """A log with CJK text (not every other byte is NUL there) is read, not called binary."""
    zh = (WILD / "chennxiao-hongloumeng-char.log").read_text(encoding="utf-8") + "训练完成\n"
    code, _ = run(tmp_path, "zh.log", zh.encode("utf-16-le"))
    err = capsys.readouterr().err
    assert code == 2 and "binary" not in err and "--set n_layer=" in err


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("empty.log", b"", "is empty"),
        ("blank.log", b"\n\n  \n", "is empty"),
        ("ckpt.pt", b"PK\x03\x04" + bytes(range(256)) * 40, "is a binary file"),
        ("elf.bin", b"\x7fELF\x02\x01\x01" + bytes(4000), "is a binary file"),
    ],
)
def test_empty_and_binary_files_are_one_line(tmp_path, capsys, name, data, words):
    code, meta = run(tmp_path, name, data)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and meta is None and len(err) == 1 and words in err[0]


def test_a_log_of_only_eval_lines_says_the_iteration_lines_are_missing(tmp_path, capsys):
    """`grep step log` keeps the evals up to step 500: the run did train, its iteration lines were left out;
    that is not a run that stopped before iter 0."""
    lines = [line for line in BASE.splitlines() if not line.startswith("iter ")]
    code, _ = run(tmp_path, "evals.log", "\n".join(lines) + "\n")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "eval lines up to step 500 but no iteration lines" in err[0] and "before iter 0" not in err[0]


def test_two_ranks_printing_every_line_are_one_run(tmp_path, capsys, clean):
    """A train.py changed to print on every rank: each iteration and eval line twice, in turn. The repeats are
    skipped and counted, not read as hundreds of restarts (each of which would have no config)."""
    doubled = "".join(
        line * 2 if line.startswith(("iter ", "step ")) else line for line in BASE.splitlines(keepends=True)
    )
    code, meta = run(tmp_path, "ranks.log", doubled)
    err = capsys.readouterr().err
    assert code == 0 and "attempts in one file" not in err
    same_figures(meta["summary"], clean)
    n = sum(1 for line in BASE.splitlines() if line.startswith(("iter ", "step ")))
    assert meta["nanogpt"]["repeated_iter_lines_skipped"] == n and f"{n} iteration or eval line(s)" in err


def test_iterations_going_back_without_a_new_echo_keep_the_config(tmp_path, capsys):
    """Output pasted again from iter 250 (a resume whose header the user trimmed): the second attempt is
    imported with the first's config (said in the attempts line), not refused for a config it showed."""
    lines = BASE.splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if line.startswith("iter 300:"))
    again = next(i for i, line in enumerate(lines) if line.startswith("iter 250:"))
    code, meta = run(tmp_path, "back.log", "".join(lines[: cut + 1] + lines[again:]))
    err = capsys.readouterr().err
    assert code == 0, err
    ng = meta["nanogpt"]
    assert ng["attempt"] == 2 and "attempt 1's config" in ng["attempts"][1]
    assert ng["config_source"]["n_layer"] == "log" and meta["model"]["n_layer"] == 6
    assert ng["excerpt"] and meta["summary"]["first_step_ms"] is None  # it starts at iter 250: no first step
    # the same figures as the excerpt pasted under its own echo
    head = next(i for i, line in enumerate(lines) if line.startswith(("iter ", "step ")))
    code, alone = run(tmp_path, "alone.log", "".join(lines[:head] + lines[again:]))
    assert code == 0 and meta["summary"]["ms_median"] == alone["summary"]["ms_median"]
    assert meta["tokens_per_iter"] == alone["tokens_per_iter"]


def test_a_traceback_then_the_same_iteration_is_a_new_attempt_not_a_repeat(tmp_path, capsys):
    """After a crash, the next run printing iter 0 again is a new attempt (with the config it echoes)."""
    lines = BASE.splitlines(keepends=True)
    first_iter = next(i for i, line in enumerate(lines) if line.startswith("iter 0:"))
    crash = 'Traceback (most recent call last):\n  File "train.py", line 1\nRuntimeError: boom\n'
    code, meta = run(tmp_path, "crash.log", "".join(lines[: first_iter + 1]) + crash + BASE)
    assert code == 0 and meta["nanogpt"]["attempt"] == 2 and len(meta["nanogpt"]["attempts"]) == 2
    assert "RuntimeError: boom" in capsys.readouterr().err


@pytest.mark.parametrize("cut", [17, 1000, 5000])
def test_a_log_cut_mid_line_is_interrupted_with_the_iterations_it_finished(tmp_path, capsys, cut):
    """A copy stopped at any byte: a labelled partial result or one line, never a traceback, no NaN figure."""
    data = BASE.encode("utf-8")
    data = data[: len(data) - cut]
    code, meta = run(tmp_path, "cut.log", data)
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
    if code == 0:
        s = meta["summary"]
        assert meta["status"] == "interrupted"
        assert all(not isinstance(v, float) or math.isfinite(v) for v in s.values())
        assert s["mfu_vs_a100"] is None or 0 < s["mfu_vs_a100"] <= 1


def test_a_log_ending_in_nul_padding_after_a_crash_is_text(tmp_path, clean):
    """A machine that lost power while train.py wrote its log can leave a block of NUL bytes at its end."""
    code, meta = run(tmp_path, "crashed.log", BASE.encode("utf-8") + bytes(8192))
    assert code == 0
    same_figures(meta["summary"], clean)


def test_a_file_of_only_nul_bytes_says_so(tmp_path, capsys):
    code, _ = run(tmp_path, "zeros.log", bytes(8192))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "only NUL bytes" in err[0]
