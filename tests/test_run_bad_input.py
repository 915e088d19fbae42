"""Bad input to `bench run` and `bench tune` found by review: one line, exit 2, nothing started or lost."""

from __future__ import annotations

import os

import pytest

from bench.cli import main

TINY = [
    "--n-layer",
    "1",
    "--n-head",
    "2",
    "--n-embd",
    "32",
    "--block-size",
    "16",
    "--iters",
    "2",
    "--timing-warmup-iters",
    "1",
]


@pytest.mark.parametrize("command", ["run", "tune"])
def test_an_empty_out_is_refused_not_replaced_by_the_default(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([command, "--devices", "cpu", *TINY, "--out", ""]) == 2
    err = capsys.readouterr().err
    assert "--out '': expected a directory path" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("flag", [["--nproc", "2"], ["--dist-timeout", "5"]])
def test_tune_refuses_the_ddp_flags_it_would_ignore(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["tune", "--devices", "cpu", *TINY, "--dry-run", "--out", str(tmp_path / "t"), *flag])
    assert e.value.code == 2 and f"unrecognized arguments: {' '.join(flag)}" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "tune"])
def test_a_text_shorter_than_a_block_is_a_usage_error_before_anything_starts(command, tmp_path, capsys):
    """It was every run `failed: could not start`, exit 1, a results directory of failures."""
    text = tmp_path / "short.txt"
    text.write_text("hello world, a short text\n" * 3)  # 78 characters: train 70, val 8
    out = tmp_path / "r"
    assert (
        main(
            [command, "--devices", "cpu", *TINY, "--data", str(text), "--vocab-size", "65", "--out", str(out)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "its val split has 8 characters, too short for block_size 16 (it needs at least 17)" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_data_that_is_a_device_or_a_pipe_is_refused_before_it_is_read(tmp_path):
    """--data /dev/zero was read until the machine ran out of memory."""
    from bench.config import ConfigError, settings

    data = next(s for s in settings() if s.name == "data")
    with pytest.raises(ConfigError, match="--data /dev/zero: expected a regular text file or an http"):
        data.from_text("/dev/zero")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a device or a pipe"):
        data.from_text(str(fifo))
    assert data.from_text(str(tmp_path)) == str(tmp_path)  # a directory: the reader's own line later


def test_a_failed_run_under_nproc_exits_1_not_as_interrupted():
    """The launcher ends the other ranks with SIGTERM once one exits 1: that 143 is not an interrupt."""
    from types import SimpleNamespace

    from bench.distributed import _exit_code

    def failures(*codes: int) -> SimpleNamespace:
        return SimpleNamespace(failures={rank: SimpleNamespace(exitcode=c) for rank, c in enumerate(codes)})

    assert _exit_code(failures(1, 143)) == 1
    assert _exit_code(failures(1, -15)) == 1
    assert _exit_code(failures(143, 2)) == 2
    assert _exit_code(failures(130, 130)) == 130
    assert _exit_code(failures(-15, 143)) == 143


@pytest.mark.parametrize("value", ["1e300", "1e-9", "0"])
def test_a_dist_timeout_torch_cannot_take_is_refused_up_front(value, capsys):
    """1e300 overflowed torch's milliseconds on every rank, 1e-9 timed the rendezvous out with a C++ trace."""
    assert main(["run", "--devices", "cpu", *TINY, "--nproc", "2", "--dist-timeout", value, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"--dist-timeout {value}: expected a number of seconds from 1 to 1000000" in err, err


def test_a_config_that_never_ends_is_refused_not_read_until_memory_runs_out(tmp_path, capsys):
    """--config /dev/zero was read whole: the process grew until the kernel killed it."""
    import bench.config

    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * 200)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench.config, "CONFIG_MAX_BYTES", 1000)
        assert main(["run", "--config", str(big), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"config file {big} is larger than" in err and "is it the right file?" in err, err


def test_bench_run_resume_refuses_a_tune_directory(tmp_path, capsys):
    """It ran the tune's recipe into the tune's directory: a stray run in its tips and time-to-loss sets."""
    from bench.results import ResultsDir

    out = tmp_path / "tune"
    assert main(["run", "--devices", "cpu", *TINY, "--no-progress", "--out", str(out)]) == 0
    results = ResultsDir(out)
    results.write_sweep({**results.read_sweep(), "tune": {"tips": ["threads"], "repeats": 4}})
    capsys.readouterr()
    runs = sorted(p.name for p in (out / "runs").iterdir())
    for extra in ([], ["--iters", "3"]):
        assert main(["run", "--out", str(out), "--resume", "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert "holds a `bench tune`, not a `bench run` sweep" in err and "bench tune --out" in err, err
    assert sorted(p.name for p in (out / "runs").iterdir()) == runs
