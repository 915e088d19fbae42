"""Every command's --help renders as text: no argparse internals leaking from a stray '%' in a help string."""

import contextlib
import io

import pytest

from bench.cli import main as bench_main
from hwinfo.cli import main as hwinfo_main


@pytest.mark.parametrize(
    "entry,argv",
    [
        (bench_main, ["--help"]),
        (bench_main, ["run", "--help"]),
        (bench_main, ["tune", "--help"]),
        (bench_main, ["report", "--help"]),
        (bench_main, ["gate", "--help"]),
        (bench_main, ["import", "nanogpt", "--help"]),
        (hwinfo_main, ["--help"]),
    ],
)
def test_help_text_is_clean(entry, argv):
    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.raises(SystemExit) as done:
        entry(argv)
    assert done.value.code == 0
    text = out.getvalue()
    assert "usage:" in text
    for leak in ("option_strings", "%(", "argparse."):
        assert leak not in text, f"{' '.join(argv)}: help shows {leak!r}"


@pytest.mark.parametrize(
    "entry,argv,prog,words",
    [
        (bench_main, ["tune", "--nproc", "2"], "bench tune", "unrecognized arguments: --nproc 2"),
        (bench_main, ["run", "--iters"], "bench run", "--iters: expected one argument"),
        (bench_main, ["report", "--format", "xml"], "bench report", "invalid choice: 'xml'"),
        (bench_main, ["import", "nanogpt", "x.log"], "bench import", "required: --out"),
        (bench_main, ["frob"], "bench", "invalid choice: 'frob'"),
        (bench_main, ["--bogus"], "bench", "unrecognized arguments: --bogus"),
        (hwinfo_main, ["--dtypes", "fp8"], "hwinfo", "unknown dtype 'fp8'"),
        (hwinfo_main, ["--frob"], "hwinfo", "unrecognized arguments: --frob"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_command(entry, argv, prog, words, capsys):
    """Not argparse's usage block, and an unknown flag after a subcommand is blamed on that subcommand."""
    try:
        code = entry(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: ") and words in err, err
    assert f"(see `{prog} --help`)" in err


@pytest.mark.parametrize("command", ["run", "tune"])
def test_an_error_is_the_only_line_even_when_a_warning_applies(command, capsys):
    """--iters 5 warns (at or below the timing warm-up), but a missing device ends the command first."""
    assert bench_main([command, "--devices", "tpu", "--iters", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"bench {command}: error: unknown device 'tpu'"), err
