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
