"""Bad input to `bench run` and `bench tune` found by review: one line, exit 2, nothing started or lost."""

from __future__ import annotations

import pytest

from bench.cli import main

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--iters", "2"]


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
